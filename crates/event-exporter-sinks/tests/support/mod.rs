//! Fake receivers for tests: real HTTP servers on 127.0.0.1 ephemeral ports.
#![allow(dead_code, unreachable_pub)]

pub mod fake_grafana;
pub mod fake_slack;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Response};
use hyper_util::rt::TokioIo;

/// A request as a fake sees it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub method: Method,
    /// The request target as sent (absolute form when it came through as a proxy request).
    pub uri: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: String,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// What a fake answers: a response, or `None` to drop the connection unanswered (a reset).
pub type Answer = Option<Response<Full<Bytes>>>;

/// Serves `handler` over HTTP/1.1 on an ephemeral loopback port until the runtime ends.
pub async fn serve<H, F>(handler: H) -> SocketAddr
where
    H: Fn(Incoming) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Answer> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let incoming = Incoming {
                            uri: parts.uri.to_string(),
                            method: parts.method,
                            path: parts.uri.path().to_owned(),
                            query: parts.uri.query().map(str::to_owned),
                            headers: parts.headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        };
                        handler(incoming)
                            .await
                            .ok_or_else(|| std::io::Error::other("reset"))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// Serves a stateful fake: `handle` answers each request with the shared `state` locked.
/// Returns the address and the state (for assertions and fault injection).
pub async fn serve_state<S: Send + 'static>(
    state: S,
    handle: fn(&Mutex<S>, Incoming) -> Answer,
) -> (SocketAddr, Arc<Mutex<S>>) {
    let state = Arc::new(Mutex::new(state));
    let shared = Arc::clone(&state);
    let addr = serve(move |req| {
        let state = Arc::clone(&shared);
        async move { handle(&state, req) }
    })
    .await;
    (addr, state)
}

/// A JSON response.
pub fn json_reply(status: u16, body: &serde_json::Value, retry_after: Option<u64>) -> Answer {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8");
    if let Some(s) = retry_after {
        b = b.header("retry-after", s.to_string());
    }
    Some(b.body(Full::new(Bytes::from(body.to_string()))).unwrap())
}

/// A plain-text response.
pub fn text_reply(status: u16, body: &str) -> Answer {
    Some(
        Response::builder()
            .status(status)
            .header("content-type", "text/html")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap(),
    )
}
