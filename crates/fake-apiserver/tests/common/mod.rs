//! Shared helpers: a tiny raw HTTP/1.1 client (so tests see exact bytes) and a kube client.
#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A kube client for the fake server.
pub fn kube_client(url: &str) -> kube::Client {
    let mut cfg = kube::Config::new(url.parse().unwrap());
    cfg.default_namespace = "default".into();
    kube::Client::try_from(cfg).unwrap()
}

/// A legacy core/v1 event body.
pub fn legacy_event(ns: &str, name: &str, reason: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "web-1", "namespace": ns},
        "reason": reason, "message": format!("{reason} happened"), "type": "Normal",
        "source": {"component": "kubelet"}, "count": 1,
        "firstTimestamp": "2024-05-01T12:00:00Z", "lastTimestamp": "2024-05-01T12:00:00Z"
    })
}

/// A raw HTTP response being read.
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    chunked: bool,
    remaining_in_chunk: usize,
    content_left: Option<usize>,
    pending: Vec<u8>,
    eof: bool,
}

/// How a body ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The terminating zero-length chunk (clean EOF).
    Clean,
    /// The connection closed without the final chunk.
    Abrupt,
}

pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: fake\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let content_left = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap());
    RawResponse {
        status,
        headers,
        reader,
        chunked,
        remaining_in_chunk: 0,
        content_left,
        pending: Vec::new(),
        eof: false,
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let mut r = request(addr, "GET", path, &[], None).await;
    let body = r.body().await;
    (
        r.status,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

/// Sends `body` as JSON; the status and the reply parsed as JSON (`null` if it is not).
pub async fn send_json(addr: SocketAddr, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let mut r = request(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        Some(body),
    )
    .await;
    let reply = r.body().await;
    (
        r.status,
        serde_json::from_slice(&reply).unwrap_or(Value::Null),
    )
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Read more body bytes into `pending`; `Ok(false)` at the end of the body.
    async fn fill(&mut self) -> Result<bool, End> {
        if self.eof {
            return Ok(false);
        }
        if !self.chunked {
            let mut buf = vec![0u8; 65536];
            let want = self.content_left.map_or(buf.len(), |l| l.min(buf.len()));
            if want == 0 {
                self.eof = true;
                return Ok(false);
            }
            let n = self
                .reader
                .read(&mut buf[..want])
                .await
                .map_err(|_| End::Abrupt)?;
            if n == 0 {
                self.eof = true;
                return if self.content_left.is_some_and(|l| l > 0) {
                    Err(End::Abrupt)
                } else {
                    Ok(false)
                };
            }
            if let Some(l) = &mut self.content_left {
                *l -= n;
            }
            self.pending.extend_from_slice(&buf[..n]);
            return Ok(true);
        }
        if self.remaining_in_chunk == 0 {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .await
                .map_err(|_| End::Abrupt)?;
            if n == 0 {
                self.eof = true;
                return Err(End::Abrupt);
            }
            let size = usize::from_str_radix(line.trim(), 16).map_err(|_| End::Abrupt)?;
            if size == 0 {
                self.eof = true;
                return Ok(false);
            }
            self.remaining_in_chunk = size;
        }
        let mut buf = vec![0u8; self.remaining_in_chunk];
        self.reader
            .read_exact(&mut buf)
            .await
            .map_err(|_| End::Abrupt)?;
        self.remaining_in_chunk = 0;
        let mut crlf = [0u8; 2];
        self.reader
            .read_exact(&mut crlf)
            .await
            .map_err(|_| End::Abrupt)?;
        self.pending.extend_from_slice(&buf);
        Ok(true)
    }

    /// The whole body.
    pub async fn body(&mut self) -> Vec<u8> {
        while let Ok(true) = self.fill().await {}
        std::mem::take(&mut self.pending)
    }

    /// The next `\n`-terminated line, or how the body ended.
    pub async fn next_line(&mut self) -> Result<String, End> {
        loop {
            if let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                return Ok(String::from_utf8(line[..line.len() - 1].to_vec()).unwrap());
            }
            match self.fill().await {
                Ok(true) => {}
                Ok(false) => return Err(End::Clean),
                Err(e) => return Err(e),
            }
        }
    }

    /// The next line parsed as JSON, failing the test if nothing arrives within 10 s.
    pub async fn next_json(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), self.next_line())
            .await
            .expect("watch line within 10s")
            .expect("a line, not the end of the stream");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"))
    }
}
