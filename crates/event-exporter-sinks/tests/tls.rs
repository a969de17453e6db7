//! Webhook `tls:` options against a real TLS server on loopback: a private CA (`caFile`), a
//! certificate for another name (`serverName`), `insecureSkipVerify`, mutual TLS
//! (`certFile`/`keyFile`), and files `check` must refuse.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use event_exporter_core::config::Config;
use event_exporter_core::{EnrichedEvent, Router};
use event_exporter_sinks::delivery::{DispatchOptions, Dispatcher, RetryPolicy, StatsSnapshot};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

struct Pki {
    dir: PathBuf,
    ca: PathBuf,
    server_cert: String,
    server_key: String,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pki(tag: &str) -> Pki {
    let dir = std::env::temp_dir().join(format!("ee-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    // The server's certificate names `hooks.internal`, not the address it listens on.
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["hooks.internal".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["exporter".to_owned()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        client_cert: write("client.pem", client_cert.pem()),
        client_key: write("client-key.pem", client_key.serialize_pem()),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        dir,
    }
}

/// An HTTPS server answering 200; with `client_ca`, it requires a client certificate from it.
async fn tls_server(pki: &Pki, client_ca: Option<&Path>) -> (u16, Arc<AtomicUsize>) {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.server_cert.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap();
    let config = match client_ca {
        None => builder
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).unwrap() {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                Arc::new(rustls::crypto::ring::default_provider()),
            )
            .build()
            .unwrap();
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(certs, key)
                .unwrap()
        }
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, count) = (acceptor.clone(), Arc::clone(&count));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |_req| {
                    count.fetch_add(1, Ordering::SeqCst);
                    async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (port, served)
}

fn config(port: u16, tls: &str) -> Config {
    Config::from_yaml(&format!(
        "route:\n  match: [{{receiver: w}}]\nreceivers:\n- name: w\n  delivery: {{maxAttempts: 1}}\n  webhook:\n    endpoint: https://127.0.0.1:{port}/hook\n    tls: {tls}\n"
    ))
    .unwrap()
}

async fn deliver(cfg: &Config) -> StatsSnapshot {
    let router = Router::compile(&cfg.route, &["w"]).unwrap();
    let options = DispatchOptions {
        queue_capacity: 4,
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
    };
    let d = Dispatcher::start(
        router,
        event_exporter_sinks::build_all(cfg).unwrap(),
        options,
    );
    let ev =
        EnrichedEvent::from_json_str(r#"{"metadata":{"uid":"u"},"involvedObject":{},"count":1}"#)
            .unwrap();
    d.dispatch_wait(Arc::new(ev)).await;
    d.shutdown(Duration::from_secs(20)).await[0].1
}

#[tokio::test]
async fn a_private_ca_and_a_server_name_verify_the_server() {
    let pki = pki("ca");
    let (port, served) = tls_server(&pki, None).await;
    let ca = pki.ca.display();
    // Unknown CA: refused.
    assert_eq!(
        deliver(&config(port, "{serverName: hooks.internal}"))
            .await
            .failed,
        1
    );
    // Known CA, but the certificate is not for 127.0.0.1: refused.
    assert_eq!(
        deliver(&config(port, &format!("{{caFile: '{ca}'}}")))
            .await
            .failed,
        1
    );
    // Known CA and the certificate's name: delivered.
    let ok = deliver(&config(
        port,
        &format!("{{caFile: '{ca}', serverName: hooks.internal}}"),
    ))
    .await;
    assert_eq!(ok.sent, 1, "{ok:?}");
    // insecureSkipVerify: delivered without any of it.
    assert_eq!(
        deliver(&config(port, "{insecureSkipVerify: true}"))
            .await
            .sent,
        1
    );
    assert_eq!(served.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate() {
    let pki = pki("mtls");
    let (port, served) = tls_server(&pki, Some(&pki.ca)).await;
    let base = format!("caFile: '{}', serverName: hooks.internal", pki.ca.display());
    assert_eq!(
        deliver(&config(port, &format!("{{{base}}}"))).await.failed,
        1,
        "no client certificate"
    );
    let with_cert = format!(
        "{{{base}, certFile: '{}', keyFile: '{}'}}",
        pki.client_cert.display(),
        pki.client_key.display()
    );
    assert_eq!(deliver(&config(port, &with_cert)).await.sent, 1);
    assert_eq!(served.load(Ordering::SeqCst), 1);
}

#[test]
fn unreadable_or_mismatched_tls_files_are_refused_with_the_receiver_name() {
    let pki = pki("bad");
    let cases = [
        (
            "{caFile: /nonexistent/ca.pem}".to_owned(),
            "tls.caFile: cannot read /nonexistent/ca.pem",
        ),
        (
            format!("{{caFile: '{}'}}", pki.client_key.display()),
            "tls.caFile:",
        ),
        (
            format!("{{certFile: '{}'}}", pki.client_cert.display()),
            "a client certificate needs both",
        ),
        (
            format!(
                "{{certFile: '{}', keyFile: '{}'}}",
                pki.client_cert.display(),
                pki.ca.display()
            ),
            "tls.keyFile:",
        ),
        ("{serverName: 'not a name!'}".to_owned(), "tls.serverName:"),
    ];
    for (tls, needle) in cases {
        let errors = event_exporter_sinks::build_all(&config(9, &tls)).unwrap_err();
        let text = errors[0].to_string();
        assert!(text.starts_with("receivers[0] `w` (webhook): "), "{text}");
        assert!(text.contains(needle), "{tls}: {text}");
    }
}
