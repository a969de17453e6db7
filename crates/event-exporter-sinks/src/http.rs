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

use crate::proxy::{ProxyConnector, ProxySettings};
use crate::tls::TlsSettings;

/// Default time allowed for one request, response body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed to open a TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest part of a response body kept for debug logs.
const SNIPPET: usize = 200;

/// Longest response body kept (larger ones are cut; no receiver we talk to sends more).
const MAX_BODY: usize = 1 << 20;

/// Whether a response status is worth retrying: 408, 429 and 5xx except 501.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..600).contains(&status) && status != 501
}

/// Checks that `url` is an absolute http(s) URL with a host. The error shows the URL masked
/// ([`masked_url`]: no credentials, no query) and cut short.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let shown = || {
        let masked = masked_url(url).unwrap_or_else(|| without_user_info(url));
        event_exporter_core::redact::excerpt(&masked, 100)
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("`{}` is not a valid URL: {e}", shown()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("`{}` must be an http:// or https:// URL", shown())),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("`{}` has no host", shown()));
    }
    Ok(())
}

/// `url` with the user info of any `scheme://user:password@host` masked (for URLs that are
/// not http(s), which [`masked_url`] leaves alone).
fn without_user_info(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// `uri` without its user info, and the `Authorization: Basic` value the user info makes, as
/// Go's `net/http` sends it (`https://user:pass@host/`; user and password percent-decoded).
fn take_user_info(uri: http::Uri) -> Result<(http::Uri, Option<String>), String> {
    use base64::Engine as _;
    let Some(authority) = uri.authority().map(|a| a.as_str().to_owned()) else {
        return Ok((uri, None));
    };
    let Some((user_info, host)) = authority.rsplit_once('@') else {
        return Ok((uri, None));
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (user, password) = match user_info.split_once(':') {
        Some((u, p)) => (decode(u), decode(p)),
        None => (decode(user_info), String::new()),
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut parts = uri.into_parts();
    parts.authority = Some(
        host.parse()
            .map_err(|_| "invalid host after the user info".to_owned())?,
    );
    let uri = http::Uri::from_parts(parts).map_err(|e| e.to_string())?;
    Ok((uri, Some(format!("Basic {basic}"))))
}

/// The `Authorization` value a URL's user info makes (what [`HttpClient::send`] sends), for a
/// receiver's secrets.
pub fn user_info_authorization(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    take_user_info(uri).ok()?.1
}

/// An HTTPS-capable client with connection reuse. The connection pool is created on first
/// use; TLS files were already read when the receiver was built.
#[derive(Debug, Default)]
pub struct HttpClient {
    tls: TlsSettings,
    proxy: ProxySettings,
    inner: OnceLock<Client<HttpsConnector<ProxyConnector>, Full<Bytes>>>,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body (at most 1 MiB kept).
    pub body: String,
}

/// The start of a response body, fit for one debug log line (control characters escaped).
/// It is carried by [`SendError::body`], never in a message: a receiver or a proxy may echo
/// the request, credentials included.
pub fn snippet(body: &[u8]) -> String {
    event_exporter_core::redact::excerpt(&String::from_utf8_lossy(body), SNIPPET)
}

impl HttpClient {
    /// A client using `tls` (see [`TlsSettings::load`]), reaching receivers through `proxy`.
    pub fn new(tls: TlsSettings, proxy: ProxySettings) -> Self {
        Self {
            tls,
            proxy,
            inner: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<&Client<HttpsConnector<ProxyConnector>, Full<Bytes>>, SendError> {
        if let Some(c) = self.inner.get() {
            return Ok(c);
        }
        let tls = self.tls.client_config().map_err(SendError::permanent)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let builder = match self.tls.server_name() {
            Some(name) => builder.with_server_name_resolver(
                hyper_rustls::FixedServerNameResolver::new(name.clone()),
            ),
            None => builder,
        };
        let connector = builder
            .enable_http1()
            .wrap_connector(ProxyConnector::new(http, self.proxy.clone()));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Ok(self.inner.get_or_init(|| client))
    }

    /// Sends `request` and reads the response, within `timeout`. Non-2xx statuses are errors,
    /// retryable or not by [`is_retryable_status`], carrying the server's `Retry-After`; the
    /// message names the request by its scheme, host and port only and quotes neither a
    /// header value nor the body (the body's start is [`SendError::body`]). A URL's user info
    /// is sent as Basic auth (unless the request has its own `Authorization`), as Go does, and
    /// is not part of the URL the client sees.
    pub async fn send(&self, request: Request, timeout: Duration) -> Result<Response, SendError> {
        // What errors name the request by: computed only when one is reported.
        let target = || format!("{} {}", request.method, redact_url(&request.url));
        let uri: http::Uri = request
            .url
            .parse()
            .map_err(|e| SendError::permanent(format!("{}: invalid URL: {e}", target())))?;
        let (uri, basic) = take_user_info(uri)
            .map_err(|e| SendError::permanent(format!("{}: invalid URL: {e}", target())))?;
        let basic = basic.filter(|_| {
            !request
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("authorization"))
        });
        // Plain HTTP through a proxy goes to the proxy itself: its credentials ride along.
        let proxy_auth = match (uri.scheme_str(), self.proxy.intercept(&uri)) {
            (Some("http"), Some((_, auth))) => auth,
            _ => None,
        };
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(uri);
        for h in &request.headers {
            builder = builder.header(h.name.as_str(), h.value.as_str());
        }
        if let Some(basic) = basic {
            builder = builder.header(http::header::AUTHORIZATION, basic);
        }
        if let Some(auth) = proxy_auth {
            builder = builder.header(http::header::PROXY_AUTHORIZATION, auth);
        }
        let req = builder
            .body(Full::new(Bytes::from(request.body)))
            .map_err(|e| SendError::permanent(format!("{}: invalid request: {e}", target())))?;
        let client = self.client()?;
        let exchange = async {
            let resp = client.request(req).await.map_err(|e| {
                let message = format!("{}: {}", target(), error_chain(&e));
                if event_exporter_core::sink::out_of_descriptors(&e) {
                    SendError::Local(message)
                } else {
                    SendError::retryable(message)
                }
            })?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            // Read at most MAX_BODY: a huge or hostile reply is cut off, not buffered.
            let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    SendError::retryable(format!("{}: reading the response: {e}", target()))
                })?
                .to_bytes();
            let body = String::from_utf8_lossy(&body).into_owned();
            Ok::<_, SendError>((status, retry_after, body))
        };
        let (status, retry_after, body) =
            tokio::time::timeout(timeout, exchange)
                .await
                .map_err(|_| {
                    SendError::retryable(format!("{}: no response within {timeout:?}", target()))
                })??;
        if (200..300).contains(&status) {
            Ok(Response { status, body })
        } else {
            Err(SendError::Transport {
                message: format!("{}: HTTP {status}", target()),
                retryable: is_retryable_status(status),
                retry_after,
                status: Some(status),
                body: (!body.is_empty()).then(|| snippet(body.as_bytes())),
            })
        }
    }
}

/// `Retry-After` in delay-seconds form (the form Slack, Grafana and most APIs use).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// An error and its causes on one line ("connection refused" hides in the source chain).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A URL fit for logs: scheme, host and port only (paths and queries can carry secrets: Slack
/// and Teams webhooks, Telegram bot tokens, `?token=`).
pub fn redact_url(url: &str) -> String {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return "<invalid url>".to_owned();
    };
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or("");
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    let rest = if uri.path().len() > 1 || uri.query().is_some() {
        "/…"
    } else {
        ""
    };
    format!("{scheme}://{host}{port}{rest}")
}

/// Hosts (and their subdomains) whose webhook URLs are themselves the credential.
const CREDENTIAL_URL_HOSTS: &[&str] = &[
    "hooks.slack.com",
    "discord.com",
    "discordapp.com",
    "webhook.office.com",
    "outlook.office.com",
    "api.telegram.org",
    "chat.googleapis.com",
];

fn is_credential_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    CREDENTIAL_URL_HOSTS
        .iter()
        .any(|h| host == *h || host.ends_with(&format!(".{h}")))
}

/// `url` with credentials masked as `***`, if it carries any: user info, a query string, or
/// the path of a webhook host whose URLs are secrets. `None` when there is nothing to mask
/// (or it is not an http(s) URL: `stdout:`, `file://…`); an http(s) URL that does not parse
/// is masked whole.
pub fn masked_url(url: &str) -> Option<String> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return None;
    }
    let Ok(uri) = url.parse::<http::Uri>() else {
        return Some("<invalid url>".to_owned());
    };
    let host = uri.host().unwrap_or("");
    let has_userinfo = uri.authority().is_some_and(|a| a.as_str().contains('@'));
    let secret_path = is_credential_host(host);
    if !has_userinfo && !secret_path && uri.query().is_none() {
        return None;
    }
    let scheme = uri.scheme_str().unwrap_or("http");
    let user = if has_userinfo { "***@" } else { "" };
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    let path = if secret_path { "/***" } else { uri.path() };
    let query = if uri.query().is_some() { "?***" } else { "" };
    Some(format!("{scheme}://{user}{host}{port}{path}{query}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_credential_urls_only() {
        assert_eq!(masked_url("http://127.0.0.1:9/hook"), None);
        assert_eq!(masked_url("stdout:"), None);
        assert_eq!(masked_url("file:///var/log/events.jsonl"), None);
        assert_eq!(
            masked_url("https://hooks.slack.com/services/T0/B0/sekrit").as_deref(),
            Some("https://hooks.slack.com/***")
        );
        assert_eq!(
            masked_url("https://u:p@example.com/x?token=t").as_deref(),
            Some("https://***@example.com/x?***")
        );
        for secret in [
            "https://HOOKS.SLACK.COM/services/T/B/secret",
            "https://hooks.slack.com./services/T/B/secret",
            "https://acme.webhook.office.com/webhookb2/secret",
            "https://api.telegram.org/bot123:SECRET/sendMessage",
        ] {
            let masked = masked_url(secret).unwrap();
            assert!(
                !masked.to_lowercase().contains("secret"),
                "{secret} -> {masked}"
            );
        }
        assert_eq!(
            masked_url("https://u:p@host/a b?token=x").as_deref(),
            Some("<invalid url>")
        );
    }

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
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn redacts_credentials_and_queries() {
        assert_eq!(
            redact_url("https://user:pw@hooks.example.com/services/x?token=abc"),
            "https://hooks.example.com/…"
        );
        assert_eq!(
            redact_url("https://api.telegram.org/bot123:SECRET/sendMessage"),
            "https://api.telegram.org/…"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080"
        );
    }
}
