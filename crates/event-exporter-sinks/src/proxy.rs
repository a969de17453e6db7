//! `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` (and their lower-case forms), as
//! curl and Go read them: the seed chart sets them for clusters that reach Slack and Grafana
//! only through a proxy.
//!
//! An `https://` receiver behind a proxy is reached through a `CONNECT` tunnel, so TLS still
//! runs end to end with the receiver; an `http://` one is sent to the proxy in absolute form.
//! Credentials in the proxy URL (`http://user:pass@proxy:3128`) go in `Proxy-Authorization`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

/// Which receivers are reached through which proxy.
#[derive(Clone, Default)]
pub struct ProxySettings {
    matcher: Option<Arc<Matcher>>,
}

impl std::fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The matcher's own Debug could show proxy credentials.
        f.debug_struct("ProxySettings")
            .field("enabled", &self.matcher.is_some())
            .finish()
    }
}

impl ProxySettings {
    /// No proxy: every receiver is reached directly.
    pub fn none() -> Self {
        Self::default()
    }

    /// The proxies the process environment names.
    pub fn from_env() -> Self {
        let set = |name: &str| {
            std::env::var(name).is_ok_and(|v| !v.is_empty())
                || std::env::var(name.to_ascii_lowercase()).is_ok_and(|v| !v.is_empty())
        };
        if !["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]
            .iter()
            .any(|n| set(n))
        {
            return Self::none();
        }
        Self {
            matcher: Some(Arc::new(Matcher::from_env())),
        }
    }

    /// Explicit proxies: for `http://` receivers, for `https://` receivers, and the `NO_PROXY`
    /// list of hosts reached directly.
    pub fn new(http: Option<&str>, https: Option<&str>, no_proxy: Option<&str>) -> Self {
        let mut builder = Matcher::builder();
        if let Some(p) = http {
            builder = builder.http(p);
        }
        if let Some(p) = https {
            builder = builder.https(p);
        }
        if let Some(n) = no_proxy {
            builder = builder.no(n);
        }
        Self {
            matcher: Some(Arc::new(builder.build())),
        }
    }

    /// The proxy for `dst`, if it is reached through one: its URI and `Proxy-Authorization`.
    pub(crate) fn intercept(&self, dst: &Uri) -> Option<(Uri, Option<HeaderValue>)> {
        let intercept = self.matcher.as_ref()?.intercept(dst)?;
        Some((intercept.uri().clone(), intercept.basic_auth().cloned()))
    }
}

/// A connection, direct or through a proxy. Marked as proxied when requests on it must use
/// the absolute form (plain HTTP through a proxy).
#[derive(Debug)]
pub struct ProxyStream {
    inner: TokioIo<TcpStream>,
    absolute_form: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.inner.connected().proxy(self.absolute_form)
    }
}

impl Read for ProxyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl Write for ProxyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Connects directly, or through the proxy [`ProxySettings`] picks for the destination.
#[derive(Debug, Clone)]
pub struct ProxyConnector {
    http: HttpConnector,
    proxy: ProxySettings,
}

impl ProxyConnector {
    /// A connector opening TCP connections with `http`.
    pub fn new(http: HttpConnector, proxy: ProxySettings) -> Self {
        Self { http, proxy }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut http = self.http.clone();
        let intercept = self.proxy.intercept(&dst);
        Box::pin(async move {
            match intercept {
                None => Ok(ProxyStream {
                    inner: http.call(dst).await?,
                    absolute_form: false,
                }),
                Some((proxy, auth)) if dst.scheme_str() == Some("https") => {
                    let mut tunnel = Tunnel::new(proxy, http);
                    if let Some(auth) = auth {
                        tunnel = tunnel.with_auth(auth);
                    }
                    Ok(ProxyStream {
                        inner: tunnel.call(dst).await?,
                        absolute_form: false,
                    })
                }
                Some((proxy, _)) => Ok(ProxyStream {
                    inner: http.call(proxy).await?,
                    absolute_form: true,
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_proxies_by_scheme_and_honours_no_proxy() {
        let p = ProxySettings::new(
            Some("http://proxy:3128"),
            Some("http://user:pw@secure-proxy:3129"),
            Some("internal.example,10.0.0.0/8"),
        );
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(
            p.intercept(&uri("http://hooks.example/x")).unwrap().0,
            "http://proxy:3128/"
        );
        let (https, auth) = p.intercept(&uri("https://slack.com/api")).unwrap();
        assert_eq!(https, "http://secure-proxy:3129/");
        assert!(auth.is_some());
        assert!(
            p.intercept(&uri("https://grafana.internal.example/api"))
                .is_none()
        );
        assert!(p.intercept(&uri("http://10.1.2.3/hook")).is_none());
        assert!(ProxySettings::none().intercept(&uri("http://x/")).is_none());
        assert!(!format!("{p:?}").contains("pw"));
    }
}
