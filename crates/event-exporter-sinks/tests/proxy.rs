//! Receivers behind a proxy: plain HTTP in absolute form with `Proxy-Authorization`, HTTPS
//! through a real `CONNECT` tunnel with TLS end to end, and `NO_PROXY` hosts reached directly.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_exporter_core::config::Config;
use event_exporter_core::{EnrichedEvent, Router};
use event_exporter_sinks::delivery::{Dispatcher, StatsSnapshot};
use event_exporter_sinks::proxy::ProxySettings;
use support::tls::{pki, tls_server};
use support::{Incoming, serve, text_reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A recording HTTP server answering 200 (a receiver, or a plain-HTTP proxy).
async fn recorder() -> (std::net::SocketAddr, Arc<Mutex<Vec<Incoming>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let addr = serve(move |req| {
        let s = Arc::clone(&s);
        async move {
            s.lock().unwrap().push(req);
            text_reply(200, "ok")
        }
    })
    .await;
    (addr, seen)
}

/// A CONNECT proxy: reads the request head, connects to the target, answers 200 and pipes.
async fn connect_proxy() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let line = head.lines().next().unwrap_or_default().to_owned();
                s.lock().unwrap().push(line.clone());
                let target = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                if client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (addr, seen)
}

async fn deliver(yaml: &str, proxy: &ProxySettings) -> StatsSnapshot {
    let cfg = Config::from_yaml(yaml).unwrap();
    let names: Vec<&str> = cfg.receivers.iter().map(|r| r.name.as_str()).collect();
    let router = Router::compile(&cfg.route, &names).unwrap();
    let receivers = event_exporter_sinks::build_receivers_with(
        &cfg,
        event_exporter_sinks::default_delivery(),
        proxy,
    )
    .unwrap();
    let d = Dispatcher::start_each(router, receivers);
    let ev = EnrichedEvent::from_json_str(
        r#"{"metadata":{"uid":"u"},"involvedObject":{},"reason":"R","count":1}"#,
    )
    .unwrap();
    d.dispatch_wait(Arc::new(ev)).await;
    d.shutdown(Duration::from_secs(20)).await[0].1
}

fn webhook(endpoint: &str, tls: &str) -> String {
    format!(
        "route:\n  match: [{{receiver: w}}]\nreceivers:\n- name: w\n  delivery: {{maxAttempts: 1}}\n  webhook:\n    endpoint: {endpoint}\n    layout: {{reason: '{{{{ .Reason }}}}'}}\n{tls}"
    )
}

#[tokio::test]
async fn plain_http_goes_to_the_proxy_in_absolute_form_with_its_credentials() {
    let (proxy, seen) = recorder().await;
    let settings = ProxySettings::new(Some(&format!("http://user:pw@{proxy}")), None, None);
    // The receiver's host does not even resolve: only the proxy is contacted.
    let stats = deliver(&webhook("http://receiver.invalid:8080/hook", ""), &settings).await;
    assert_eq!(stats.sent, 1, "{stats:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri, "http://receiver.invalid:8080/hook");
    assert_eq!(
        seen[0].header("proxy-authorization").as_deref(),
        Some("Basic dXNlcjpwdw==")
    );
    assert_eq!(seen[0].body, r#"{"reason":"R"}"#);
}

#[tokio::test]
async fn https_goes_through_a_connect_tunnel_with_tls_end_to_end() {
    let pki = pki("proxy");
    let (tls_port, served) = tls_server(&pki, None).await;
    let (proxy, connects) = connect_proxy().await;
    let settings = ProxySettings::new(None, Some(&format!("http://{proxy}")), None);
    let tls = format!(
        "    tls: {{caFile: '{}', serverName: hooks.internal}}\n",
        pki.ca.display()
    );
    let stats = deliver(
        &webhook(&format!("https://127.0.0.1:{tls_port}/hook"), &tls),
        &settings,
    )
    .await;
    assert_eq!(stats.sent, 1, "{stats:?}");
    assert_eq!(served.load(Ordering::SeqCst), 1);
    assert_eq!(
        *connects.lock().unwrap(),
        [format!("CONNECT 127.0.0.1:{tls_port} HTTP/1.1")]
    );
}

#[tokio::test]
async fn no_proxy_hosts_are_reached_directly() {
    let (proxy, via_proxy) = recorder().await;
    let (receiver, direct) = recorder().await;
    let settings = ProxySettings::new(Some(&format!("http://{proxy}")), None, Some("127.0.0.1"));
    let stats = deliver(&webhook(&format!("http://{receiver}/hook"), ""), &settings).await;
    assert_eq!(stats.sent, 1, "{stats:?}");
    assert_eq!(direct.lock().unwrap().len(), 1);
    assert!(via_proxy.lock().unwrap().is_empty());
}
