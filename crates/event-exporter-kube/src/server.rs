//! The operations HTTP server: `GET /metrics`, `GET /healthz` and `GET /readyz`.
//!
//! * `/metrics` renders a [`MetricsSource`] in the Prometheus text format 0.0.4.
//! * `/healthz` (liveness) answers 503 once the event watch has been failing continuously for
//!   longer than the [`Health`] bound — a restart may help then; a short failure streak (a 410
//!   relist, an API server rollout) does not make the process unhealthy.
//! * `/readyz` answers 200 once the watch has delivered its initial list since the process (or
//!   its leadership) started and is not failing beyond the bound, and always on a standby
//!   replica (see [`Health::set_standby`]).
//!
//! Anything else is 404; a method other than `GET` (or `HEAD`) on a known path is 405.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The `Content-Type` of `/metrics`.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long in-flight requests may take to finish after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why a listen address could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No `:port` part.
    #[error(
        "listen address {address:?} has no port (expected \":2112\", \"host:port\" or \"[ipv6]:port\")"
    )]
    MissingPort {
        /// The address as configured.
        address: String,
    },
    /// The port is not a number from 0 to 65535.
    #[error("listen address {address:?}: invalid port {port:?}")]
    InvalidPort {
        /// The address as configured.
        address: String,
        /// The port part.
        port: String,
    },
    /// The host is not an IP address (or `localhost`).
    #[error("listen address {address:?}: host {host:?} is not an IP address")]
    InvalidHost {
        /// The address as configured.
        address: String,
        /// The host part.
        host: String,
    },
}

/// Reads a listen address in Go's `net.Listen` forms: `":2112"` (every interface),
/// `"127.0.0.1:2112"`, `"[::]:2112"`, `"localhost:2112"`.
pub fn parse_listen_address(s: &str) -> Result<SocketAddr, ServerError> {
    let (host, port) = s.rsplit_once(':').ok_or_else(|| ServerError::MissingPort {
        address: s.to_owned(),
    })?;
    let port: u16 = port.parse().map_err(|_| ServerError::InvalidPort {
        address: s.to_owned(),
        port: port.to_owned(),
    })?;
    let ip = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => {
            let bare = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            let ip: IpAddr = bare.parse().map_err(|_| ServerError::InvalidHost {
                address: s.to_owned(),
                host: host.to_owned(),
            })?;
            // An IPv6 address must be bracketed: "::1:2112" is ambiguous.
            if ip.is_ipv6() && bare == host {
                return Err(ServerError::InvalidHost {
                    address: s.to_owned(),
                    host: host.to_owned(),
                });
            }
            ip
        }
    };
    Ok(SocketAddr::new(ip, port))
}

/// Something that renders the metrics page (the exporter combines
/// [`crate::metrics::Metrics::render`] with its receivers' live statistics).
pub trait MetricsSource: Send + Sync {
    /// The whole page in the Prometheus text format 0.0.4.
    fn render(&self) -> String;
}

#[derive(Debug, Default)]
struct HealthState {
    established: bool,
    /// The watch streams failing now, each with the start of its failure.
    failing: BTreeMap<usize, Instant>,
    standby: bool,
}

/// The watch's health as `/healthz` and `/readyz` report it; shared as `Arc<Health>`.
///
/// Call [`Health::watch_established`] when every watch stream has its initial list,
/// [`Health::watch_failed`] when a stream fails and [`Health::watch_recovered`] when it works
/// again (it delivered an update, or its watch stayed open); these are not per-event
/// calls. A stream that keeps failing — an API server that refuses, hangs or answers with
/// nothing — makes the process unhealthy once its failure has lasted longer than the bound,
/// however far apart its retries are. Time is [`tokio::time::Instant`].
#[derive(Debug)]
pub struct Health {
    unhealthy_after: Duration,
    state: Mutex<HealthState>,
}

impl Health {
    /// A process that has not established its watch yet: healthy, not ready. It becomes
    /// unhealthy when a watch stream fails continuously for longer than `unhealthy_after`.
    pub fn new(unhealthy_after: Duration) -> Self {
        Self {
            unhealthy_after,
            state: Mutex::new(HealthState::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, HealthState> {
        // The state is a few plain fields, valid whatever a panicking holder left.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every watch stream has its initial list: ready.
    pub fn watch_established(&self) {
        self.state().established = true;
    }

    /// Watch stream `stream` failed; its first failure since it last worked starts the
    /// unhealthy clock.
    pub fn watch_failed(&self, stream: usize) {
        self.state()
            .failing
            .entry(stream)
            .or_insert_with(Instant::now);
    }

    /// Watch stream `stream` works again: its failure is over.
    pub fn watch_recovered(&self, stream: usize) {
        self.state().failing.remove(&stream);
    }

    /// Marks this replica as a standby (not the leader, so not watching) or as the leader.
    ///
    /// A standby is ready and healthy: the process is up and waiting for the lease, and
    /// restarting it would not help. Its failures are forgotten. Becoming the leader
    /// (`false`) means a new watch must list first, so the replica is not ready until
    /// [`Health::watch_established`].
    pub fn set_standby(&self, standby: bool) {
        let mut s = self.state();
        s.standby = standby;
        s.failing.clear();
        if !standby {
            s.established = false;
        }
    }

    fn failing_too_long(&self, s: &HealthState) -> Option<Duration> {
        let since = s.failing.values().min()?;
        let failing = Instant::now().saturating_duration_since(*since);
        (failing > self.unhealthy_after).then_some(failing)
    }

    /// Whether `/readyz` answers 200: a standby, or a watch that was established since the
    /// last (re)start and is not failing beyond the bound.
    pub fn ready(&self) -> bool {
        self.readiness().is_ok()
    }

    /// Whether `/healthz` answers 200: false once a watch stream has been failing
    /// continuously for longer than the bound.
    pub fn healthy(&self) -> bool {
        self.liveness().is_ok()
    }

    fn readiness(&self) -> Result<(), String> {
        let s = self.state();
        if s.standby {
            return Ok(());
        }
        if !s.established {
            return Err("watch not established yet".to_owned());
        }
        match self.failing_too_long(&s) {
            Some(d) => Err(format!("watch failing for {}s", d.as_secs())),
            None => Ok(()),
        }
    }

    fn liveness(&self) -> Result<(), String> {
        let s = self.state();
        if s.standby {
            return Ok(());
        }
        match self.failing_too_long(&s) {
            Some(d) => Err(format!("watch failing for {}s", d.as_secs())),
            None => Ok(()),
        }
    }
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

const PLAIN: &str = "text/plain; charset=utf-8";

fn handle(
    req: &Request<Incoming>,
    metrics: &dyn MetricsSource,
    health: &Health,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return text(StatusCode::NOT_FOUND, PLAIN, "not found\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "method not allowed\n",
        );
        resp.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let probe = match path {
        "/metrics" => return text(StatusCode::OK, METRICS_CONTENT_TYPE, metrics.render()),
        "/healthz" => health.liveness(),
        _ => health.readiness(),
    };
    match probe {
        Ok(()) => text(StatusCode::OK, PLAIN, "ok\n"),
        Err(reason) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            PLAIN,
            format!("{reason}\n"),
        ),
    }
}

/// What the operations server allows its clients: it is often reachable by anything in the
/// cluster, without authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections open at once (default 64), so that no number of clients can take the
    /// process's file descriptors: one more makes the oldest go (a probe or a scrape lasts
    /// milliseconds; what holds a connection longest is what does not send or read).
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long a connection may
    /// sit idle between requests (default 10 s): a slow or silent client is let go.
    pub header_timeout: Duration,
    /// How long one connection may last in all (default 60 s): a client that never reads its
    /// answer is let go too.
    pub max_connection_time: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            header_timeout: Duration::from_secs(10),
            max_connection_time: Duration::from_secs(60),
        }
    }
}

/// Serves the operations endpoints on `listener` until `shutdown` completes; then stops
/// accepting, lets in-flight requests finish (for at most a few seconds) and returns. Clients
/// are held to the [`ServeLimits::default`] limits.
///
/// Errors of single connections are logged at debug and do not end the server; an accept
/// error is returned.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<dyn MetricsSource>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, metrics, health, ServeLimits::default(), shutdown).await
}

/// [`serve`] with explicit limits.
pub async fn serve_with(
    listener: TcpListener,
    metrics: Arc<dyn MetricsSource>,
    health: Arc<Health>,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    // The open connections, oldest first.
    let mut open: std::collections::VecDeque<tokio::task::AbortHandle> =
        std::collections::VecDeque::new();
    tokio::pin!(shutdown);
    let result = loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) if is_transient_accept_error(&err) => {
                    tracing::warn!(error = %err, "operations server: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(err) => break Err(err),
            },
        };
        // Reap finished connection tasks so the set stays small.
        while connections.try_join_next().is_some() {}
        open.retain(|c| !c.is_finished());
        while open.len() >= limits.max_connections.max(1) {
            if let Some(oldest) = open.pop_front() {
                tracing::debug!(
                    max = limits.max_connections,
                    "operations server: too many connections; closing the oldest"
                );
                oldest.abort();
            }
        }
        let metrics = Arc::clone(&metrics);
        let health = Arc::clone(&health);
        let mut stop = stop_rx.clone();
        let handle = connections.spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let resp = handle(&req, metrics.as_ref(), &health);
                async move { Ok::<_, Infallible>(resp) }
            });
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let served = tokio::time::timeout(limits.max_connection_time, async {
                tokio::select! {
                    res = conn.as_mut() => res,
                    () = async { let _ = stop.wait_for(|stopped| *stopped).await; } => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                }
            })
            .await;
            match served {
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "operations server: connection error");
                }
                Err(_) => {
                    tracing::debug!(%peer, "operations server: connection open too long; closed")
                }
                Ok(Ok(())) => {}
            }
        });
        open.push_back(handle);
    };
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    result
}

fn is_transient_accept_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    ) || err
        .raw_os_error()
        .is_some_and(|code| code == 24 || code == 23) // EMFILE, ENFILE
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_address(":2112").unwrap(),
            "0.0.0.0:2112".parse().unwrap()
        );
        assert_eq!(
            parse_listen_address("127.0.0.1:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert_eq!(
            parse_listen_address("[::]:2112").unwrap(),
            "[::]:2112".parse().unwrap()
        );
        assert_eq!(
            parse_listen_address("localhost:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert!(matches!(
            parse_listen_address("2112"),
            Err(ServerError::MissingPort { .. })
        ));
        assert!(matches!(
            parse_listen_address(":http"),
            Err(ServerError::InvalidPort { .. })
        ));
        assert!(matches!(
            parse_listen_address(":70000"),
            Err(ServerError::InvalidPort { .. })
        ));
        assert!(matches!(
            parse_listen_address("example.com:80"),
            Err(ServerError::InvalidHost { .. })
        ));
        assert!(matches!(
            parse_listen_address("::1:80"),
            Err(ServerError::InvalidHost { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn health_transitions() {
        let h = Health::new(Duration::from_secs(60));
        assert!(h.healthy());
        assert!(!h.ready());
        h.watch_established();
        assert!(h.ready() && h.healthy());

        h.watch_failed(0);
        tokio::time::advance(Duration::from_secs(30)).await;
        h.watch_failed(0); // the same failure: the clock keeps running from its start
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(
            h.ready() && h.healthy(),
            "exactly at the bound is still fine"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!h.healthy());
        assert!(!h.ready());
        assert_eq!(h.liveness(), Err("watch failing for 61s".to_owned()));

        h.watch_recovered(0);
        assert!(h.ready() && h.healthy());

        // A failure whose retries are far apart (a server that hangs until each request
        // times out) is still one failure: silence is not recovery.
        h.watch_failed(0);
        tokio::time::advance(Duration::from_secs(600)).await;
        assert!(!h.healthy());
        h.watch_recovered(0);
        assert!(h.healthy());

        // Any stream failing too long makes the process unhealthy; another one's recovery
        // does not hide it.
        h.watch_failed(1);
        tokio::time::advance(Duration::from_secs(30)).await;
        h.watch_failed(2);
        h.watch_recovered(2);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(!h.healthy());
        h.watch_recovered(1);
        assert!(h.healthy());

        // A standby replica is ready and healthy; becoming the leader needs a new list.
        h.watch_failed(0);
        tokio::time::advance(Duration::from_secs(120)).await;
        h.set_standby(true);
        assert!(h.ready() && h.healthy());
        h.set_standby(false);
        assert!(h.healthy());
        assert!(!h.ready());
        h.watch_established();
        assert!(h.ready());
    }
}
