//! The HTTP client shared by HTTP sinks: hyper 1 with rustls (native roots), connection reuse,
//! and a request timeout; plus the retry classification of responses, kept apart from any
//! waiting policy.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use event_exporter_core::sink::{Request, SendError};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Default time allowed for one request, response body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest part of a response body quoted in errors.
const SNIPPET: usize = 200;

/// Whether a response status is worth retrying: 408, 429 and 5xx except 501.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..600).contains(&status) && status != 501
}

/// A shared HTTPS-capable client. It is created on first use, so building sinks does no I/O.
#[derive(Debug, Default)]
pub struct HttpClient {
    inner: OnceLock<Client<HttpsConnector<HttpConnector>, Full<Bytes>>>,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body (truncated to a snippet when large).
    pub body: String,
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(SNIPPET) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.into_owned(),
    }
}

impl HttpClient {
    fn client(&self) -> Result<&Client<HttpsConnector<HttpConnector>, Full<Bytes>>, SendError> {
        if let Some(c) = self.inner.get() {
            return Ok(c);
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| SendError::Transport {
                message: format!("loading the system's TLS roots: {e}"),
                retryable: false,
            })?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Ok(self.inner.get_or_init(|| client))
    }

    /// Sends `request` and reads the response, within `timeout`. Non-2xx statuses are errors,
    /// retryable or not by [`is_retryable_status`]; the message quotes a body snippet and never
    /// a header value.
    pub async fn send(&self, request: &Request, timeout: Duration) -> Result<Response, SendError> {
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(request.url.as_str());
        for h in &request.headers {
            builder = builder.header(h.name.as_str(), h.value.as_str());
        }
        let req = builder
            .body(Full::new(Bytes::from(request.body.clone())))
            .map_err(|e| SendError::Transport {
                message: format!("invalid request to {}: {e}", redact_url(&request.url)),
                retryable: false,
            })?;
        let client = self.client()?;
        let exchange = async {
            let resp = client.request(req).await.map_err(|e| SendError::Transport {
                message: format!("{} {}: {e}", request.method, redact_url(&request.url)),
                retryable: true,
            })?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| SendError::Transport {
                    message: format!("reading the response of {}: {e}", redact_url(&request.url)),
                    retryable: true,
                })?
                .to_bytes();
            Ok::<_, SendError>(Response {
                status,
                body: snippet(&body),
            })
        };
        let resp = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| SendError::Transport {
                message: format!(
                    "{} {}: no response within {timeout:?}",
                    request.method,
                    redact_url(&request.url)
                ),
                retryable: true,
            })??;
        if (200..300).contains(&resp.status) {
            Ok(resp)
        } else {
            Err(SendError::Transport {
                message: format!(
                    "{} {}: HTTP {}: {}",
                    request.method,
                    redact_url(&request.url),
                    resp.status,
                    resp.body
                ),
                retryable: is_retryable_status(resp.status),
            })
        }
    }
}

/// A URL fit for logs: user info and query string (where tokens hide) removed.
pub fn redact_url(url: &str) -> String {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return "<invalid url>".to_owned();
    };
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or("");
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    // Paths can carry secrets too (Slack incoming webhooks): keep the first segment only.
    let path = uri.path();
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    let rest = if path.trim_start_matches('/').len() > first.len() { "/…" } else { "" };
    let query = if uri.query().is_some() { "?…" } else { "" };
    format!("{scheme}://{host}{port}/{first}{rest}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classification() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409, 501] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn redacts_credentials_and_queries() {
        assert_eq!(
            redact_url("https://user:pw@hooks.example.com/services/x?token=abc"),
            "https://hooks.example.com/services/…?…"
        );
        assert_eq!(redact_url("http://127.0.0.1:8080/a"), "http://127.0.0.1:8080/a");
    }
}
