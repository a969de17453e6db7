//! The operations server over real loopback connections.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use event_exporter_kube::metrics::{Metrics, ReceiverSample};
use event_exporter_kube::server::{Health, MetricsSource, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Source(Metrics);

impl MetricsSource for Source {
    fn render(&self) -> String {
        self.0.render(&[ReceiverSample {
            name: "slack",
            sent: 2,
            ..ReceiverSample::default()
        }])
    }
}

struct Response {
    status: u16,
    head: String,
    body: String,
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
async fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> Response {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Response {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

async fn start() -> (
    std::net::SocketAddr,
    Arc<Health>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Metrics::new("event_exporter_");
    metrics.event_received();
    let health = Arc::new(Health::new(Duration::from_secs(300)));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        Arc::new(Source(metrics)),
        Arc::clone(&health),
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, health, stop, task)
}

#[tokio::test]
async fn routes_over_tcp() {
    let (addr, health, stop, task) = start().await;

    let m = request(addr, "GET", "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(
        m.head
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{}",
        m.head
    );
    assert!(
        m.body
            .contains("\nevent_exporter_events_received_total 1\n"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("event_exporter_deliveries_total{receiver=\"slack\",outcome=\"sent\"} 2\n")
    );
    assert!(m.body.contains("# TYPE event_exporter_build_info gauge\n"));

    let h = request(addr, "GET", "/healthz").await;
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));

    let r = request(addr, "GET", "/readyz").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body, "watch not established yet\n");
    health.watch_established();
    let r = request(addr, "GET", "/readyz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));

    assert_eq!(request(addr, "GET", "/nope").await.status, 404);
    let post = request(addr, "POST", "/metrics").await;
    assert_eq!(post.status, 405);
    assert!(post.head.contains("allow: get, head"));

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections() {
    let (addr, _health, stop, task) = start().await;
    // An idle keep-alive connection must not hold the server open.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(
        std::str::from_utf8(&buf[..n])
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("server stops promptly")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn slow_silent_and_too_many_clients_are_let_go() {
    use event_exporter_kube::server::{ServeLimits, serve_with};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let health = Arc::new(Health::new(Duration::from_secs(300)));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = ServeLimits {
        max_connections: 16,
        header_timeout: Duration::from_millis(300),
        max_connection_time: Duration::from_secs(2),
    };
    let task = tokio::spawn(serve_with(
        listener,
        Arc::new(Source(Metrics::new("ee_"))),
        Arc::clone(&health),
        limits,
        async move {
            let _ = stopped.await;
        },
    ));
    // A slowloris crowd: 200 connections that send half a request line and wait.
    let mut crowd = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(b"GET /metr").await;
        crowd.push(s);
    }
    // While they are there, a probe is answered: it takes the place of the oldest.
    assert_eq!(request(addr, "GET", "/healthz").await.status, 200);
    // Beyond the cap the oldest are closed at once, the others once the header timeout passes:
    // every one of them ends, none is held.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        for s in &mut crowd {
            let mut buf = [0u8; 64];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "slow connections were held");
    assert_eq!(request(addr, "GET", "/healthz").await.status, 200);
    // A keep-alive connection left idle is let go too.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        let mut all = Vec::new();
        idle.read_to_end(&mut all).await.map(|_| all)
    })
    .await
    .expect("an idle keep-alive connection is closed")
    .unwrap();
    assert!(String::from_utf8_lossy(&closed).starts_with("HTTP/1.1 200"));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
