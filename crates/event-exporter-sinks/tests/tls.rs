//! Webhook `tls:` options against a real TLS server on loopback: a private CA (`caFile`), a
//! certificate for another name (`serverName`), `insecureSkipVerify`, mutual TLS
//! (`certFile`/`keyFile`), and files `check` must refuse.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use event_exporter_core::config::Config;
use event_exporter_core::{EnrichedEvent, Router};
use event_exporter_sinks::delivery::{DispatchOptions, Dispatcher, RetryPolicy, StatsSnapshot};
use support::tls::{pki, tls_server};

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
