//! A protocol-faithful fake kube-apiserver for tests and benchmarks (see
//! `/work/shared/contracts/kubernetes-watch.md`).
//!
//! It serves plain HTTP on `127.0.0.1`: core/v1 Events (and the same storage viewed as
//! events.k8s.io/v1), ConfigMaps, Leases and any object stored with [`Cluster::put_object`], with
//! LIST paging, field/label selectors, WATCH (history window, 410 `ERROR` events, bookmarks,
//! `timeoutSeconds`, streaming lists), optimistic concurrency, legacy discovery, optional Bearer
//! auth, event TTL expiry and failure-injection hooks: error statuses ([`Cluster::fail_next`],
//! [`Cluster::forbid`]) and a hostile server ([`Cluster::misbehave`]: hang, half a body, drip,
//! an empty watch).
//!
//! Known simplifications: paginated lists are not served from a frozen snapshot — every page
//! reports the first page's `resourceVersion` but reads the current data after the continue key;
//! `resourceVersionMatch=Exact` lists return the current data; server-side apply is treated as a
//! JSON merge patch that creates missing objects; JSON patch (`application/json-patch+json`) is
//! answered with 415.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

mod event;
mod selector;
mod server;
mod status;
mod store;
mod util;
mod watch;

pub use status::{Status, StatusCause, StatusDetails};
pub use store::{Cluster, Misbehavior};

/// Server options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Events not updated for this long are deleted (watchers see `DELETED`). Default 1 h.
    pub event_ttl: Duration,
    /// The watch history length per resource (default 10 000 changes). A watch from an older RV
    /// gets a 410 `ERROR` event inside a 200 stream.
    pub watch_window: usize,
    /// Periodic `BOOKMARK`s to watchers that asked for `allowWatchBookmarks` (default 60 s).
    pub bookmark_interval: Option<Duration>,
    /// If set, require `Authorization: Bearer <token>` (401 Status otherwise).
    pub token: Option<String>,
    /// Support `sendInitialEvents` (streaming lists). Default true.
    pub watch_list: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            event_ttl: Duration::from_secs(3600),
            watch_window: 10_000,
            bookmark_interval: Some(Duration::from_secs(60)),
            token: None,
            watch_list: true,
        }
    }
}

/// One request seen by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The HTTP method, e.g. `GET`.
    pub method: String,
    /// The path, e.g. `/api/v1/events`.
    pub path: String,
    /// The raw (still percent-encoded) query string, without `?`; empty if none.
    pub query: String,
}

impl RecordedRequest {
    /// The decoded value of query parameter `key`, if present.
    pub fn param(&self, key: &str) -> Option<String> {
        util::parse_query(&self.query)
            .into_iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// A running fake apiserver. Dropping it shuts the server down (the accept loop, every
/// connection including open watch streams, and the background tasks).
#[derive(Debug)]
pub struct FakeApiServer {
    addr: SocketAddr,
    cluster: Cluster,
    token: Option<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl FakeApiServer {
    /// Bind `127.0.0.1:0` with [`Options::default`].
    pub async fn start() -> std::io::Result<FakeApiServer> {
        FakeApiServer::start_with(Options::default()).await
    }

    /// Bind `127.0.0.1:0` with these options.
    pub async fn start_with(options: Options) -> std::io::Result<FakeApiServer> {
        FakeApiServer::start_on(options, 0).await
    }

    /// Bind `127.0.0.1:port` (0 = any) with these options.
    pub async fn start_on(options: Options, port: u16) -> std::io::Result<FakeApiServer> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let token = options.token.clone();
        let cluster = Cluster::new(options.clone());
        let mut tasks = vec![tokio::spawn(accept_loop(
            listener,
            cluster.clone(),
            token.as_deref().map(Arc::from),
        ))];
        let ttl = options.event_ttl;
        let tick = (ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let c = cluster.clone();
        tasks.push(tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                c.expire_events(Instant::now());
            }
        }));
        if let Some(every) = options.bookmark_interval.filter(|d| !d.is_zero()) {
            let c = cluster.clone();
            tasks.push(tokio::spawn(async move {
                let mut interval =
                    tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    c.send_bookmark();
                }
            }));
        }
        Ok(FakeApiServer {
            addr,
            cluster,
            token,
            tasks,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle to the shared state.
    pub fn cluster(&self) -> Cluster {
        self.cluster.clone()
    }

    /// Write a kubeconfig (cluster `server` = [`FakeApiServer::url`], one context with namespace
    /// `default`, a user with the bearer token if [`Options::token`] is set) usable by kubectl and
    /// kube-rs. Note: kubectl (client-go) does not send bearer tokens over plain `http://`, so a
    /// server with [`Options::token`] set answers kubectl with 401; kube-rs does send it.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        let user = match &self.token {
            Some(t) => serde_json::json!({ "token": t }),
            None => serde_json::json!({}),
        };
        let cfg = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url()}}],
            "users": [{"name": "fake", "user": user}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "default"}}],
            "current-context": "fake",
            "preferences": {},
        });
        let text = serde_json::to_string_pretty(&cfg).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.cluster.cut_watches();
    }
}

async fn accept_loop(listener: TcpListener, cluster: Cluster, token: Option<Arc<str>>) {
    // Dropping the JoinSet (when this task is aborted) aborts every connection task.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "fake-apiserver: accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let cluster = cluster.clone();
                let token = token.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        server::handle(cluster.clone(), token.clone(), req)
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "fake-apiserver: connection ended");
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}
