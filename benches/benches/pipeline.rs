//! End-to-end throughput of the cluster runtime (issue 4): the fake API server's watch stream →
//! occurrence filter → (enrichment) → routing → rendering → a loopback webhook, all in this
//! process, on one 2-worker tokio runtime (what the binary uses on a 2-core machine).
//!
//! One run: a fresh fake API server, a fresh exporter (library) watching it, a keep-alive
//! HTTP/1.1 collector. Once the exporter is ready (initial list done), a plain thread creates
//! N new events with fresh timestamps as fast as the fake accepts them
//! (`Cluster::create_event`), and the run is timed from the first create until the collector
//! has received all N bodies. Reports every run and the median.
//!
//! ```sh
//! cargo bench -p event-exporter-benches --bench pipeline                         # defaults
//! cargo bench -p event-exporter-benches --bench pipeline -- --events 50000 --runs 5 --variant all
//! ```
//!
//! Variants (`--variant`, default `all`): `omit` (`omitLookup: true`, the headline figure),
//! `enrich` (lookups on; the involved Pods exist — `--pods` distinct ones, default 500, so the
//! LRU serves most lookups), `full` (`omitLookup`, no layout: the whole event as the body).
//! Not a criterion bench: each run is seconds long and has a large setup; it only runs under
//! `cargo bench` (given `--bench`), otherwise (`cargo test --benches`) it is a 500-event smoke run.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_exporter_core::{Config, Router};
use event_exporter_kube::enrich::{EnrichSettings, Enricher, KindFilter};
use event_exporter_kube::exporter::{Exporter, ExporterSettings};
use event_exporter_kube::metrics::Metrics;
use event_exporter_kube::server::Health;
use fake_apiserver::{Cluster, FakeApiServer, Options};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::sync::{Notify, oneshot};

/// Counts the bodies it receives; wakes the waiter once `target` have arrived.
struct Collector {
    received: AtomicUsize,
    bad: AtomicUsize,
    target: AtomicUsize,
    done: Notify,
}

async fn collector() -> (Arc<Collector>, SocketAddr) {
    let state = Arc::new(Collector {
        received: AtomicUsize::new(0),
        bad: AtomicUsize::new(0),
        target: AtomicUsize::new(usize::MAX),
        done: Notify::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the collector");
    let addr = listener.local_addr().expect("collector address");
    let shared = Arc::clone(&state);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let state = Arc::clone(&shared);
            tokio::spawn(async move {
                let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let state = Arc::clone(&state);
                    async move {
                        let body = req.into_body().collect().await?.to_bytes();
                        if body.first() != Some(&b'{') {
                            state.bad.fetch_add(1, Ordering::Relaxed);
                        }
                        let n = state.received.fetch_add(1, Ordering::AcqRel) + 1;
                        if n == state.target.load(Ordering::Acquire) {
                            state.done.notify_one();
                        }
                        Ok::<_, hyper::Error>(http::Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (state, addr)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    /// `omitLookup: true`, a five-field layout.
    Omit,
    /// Lookups on (Pods exist), same layout.
    Enrich,
    /// `omitLookup: true`, no layout: the whole event is the body.
    Full,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Omit => "omitLookup, 5-field layout",
            Variant::Enrich => "lookups (Pods exist), 5-field layout",
            Variant::Full => "omitLookup, whole event as body",
        }
    }
}

fn config(addr: SocketAddr, variant: Variant) -> Config {
    let layout = match variant {
        Variant::Full => String::new(),
        Variant::Omit | Variant::Enrich => r#"
      layout:
        id: "{{ .GetDeliveryID }}"
        reason: "{{ .Reason }}"
        type: "{{ .Type }}"
        object: "{{ .InvolvedObject.Kind }}/{{ .InvolvedObject.Namespace }}/{{ .InvolvedObject.Name }}"
        message: "{{ .Message }}""#
            .to_owned(),
    };
    // The default queue (1024): a burst larger than it waits for room (patient dispatch), so
    // nothing may be dropped — every run checks that.
    let yaml = format!(
        r#"
route:
  routes:
    - drop:
        - reason: "^Ignored"
      match:
        - receiver: hook
receivers:
  - name: hook
    webhook:
      endpoint: "http://{addr}/events"{layout}
"#
    );
    Config::load_str(&yaml, |_| None).expect("bench config")
}

fn kube_client(server: &FakeApiServer) -> kube::Client {
    let mut config = kube::Config::new(server.url().parse().expect("fake url"));
    config.default_namespace = "default".into();
    kube::Client::try_from(config).expect("kube client")
}

fn event(i: usize, pods: usize, now: &str) -> (String, serde_json::Value) {
    let p = i % pods;
    let ns = format!("ns-{}", p % 10);
    let warning = i.is_multiple_of(3);
    let ev = json!({
        "metadata": {"name": format!("pod-{p}.{i:016x}"), "namespace": ns},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": format!("pod-{p}"), "namespace": ns},
        "reason": if warning { "BackOff" } else { "Started" },
        "message": format!("Back-off restarting failed container app in pod pod-{p} (event {i})"),
        "type": if warning { "Warning" } else { "Normal" },
        "source": {"component": "kubelet", "host": format!("node-{}", p % 50)},
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
    });
    (ns, ev)
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn create_pods(cluster: &Cluster, pods: usize) {
    for p in 0..pods {
        cluster.put_object(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": format!("pod-{p}"),
                "namespace": format!("ns-{}", p % 10),
                "labels": {"app": "bench", "pod-template-hash": "5d8f9c7b6"},
                "annotations": {"team": "platform"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "bench-5d8f9c7b6", "uid": "0000", "controller": true}],
            },
            "spec": {"nodeName": format!("node-{}", p % 50), "containers": [{"name": "app", "image": "bench:1"}]},
        }));
    }
}

struct RunResult {
    create: Duration,
    total: Duration,
    received: usize,
    dropped: u64,
    failed: u64,
    bad: usize,
}

async fn one_run(n: usize, variant: Variant, pods: usize) -> RunResult {
    let server = FakeApiServer::start_with(Options {
        watch_window: 200_000,
        ..Options::default()
    })
    .await
    .expect("fake apiserver");
    let cluster = server.cluster();
    if variant == Variant::Enrich {
        create_pods(&cluster, pods);
    }
    let (collector, addr) = collector().await;
    collector.target.store(n, Ordering::Release);
    let cfg = config(addr, variant);
    let names: Vec<&str> = cfg.receivers.iter().map(|r| r.name.as_str()).collect();
    let router = Router::compile(&cfg.route, &names).expect("routes");
    let receivers =
        event_exporter_sinks::build_receivers(&cfg, event_exporter_sinks::default_delivery())
            .expect("receivers");
    let metrics = Arc::new(Metrics::new("bench_"));
    let health = Arc::new(Health::new(Duration::from_secs(300)));
    let client = kube_client(&server);
    let settings = ExporterSettings {
        max_event_age: Duration::from_secs(3600),
        shutdown_grace: Duration::from_secs(5),
        ..ExporterSettings::default()
    };
    let mut exporter = Exporter::new(
        client.clone(),
        router,
        receivers,
        Arc::clone(&metrics),
        Arc::clone(&health),
        settings,
    );
    if variant == Variant::Enrich {
        exporter = exporter.with_enricher(Enricher::new(
            client,
            EnrichSettings::default(),
            KindFilter::all(),
            Arc::clone(&metrics),
        ));
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        exporter
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    let ready_by = Instant::now() + Duration::from_secs(30);
    while !health.ready() {
        assert!(Instant::now() < ready_by, "the exporter never became ready");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The objects are built before the clock starts: only the fake's create (store, history,
    // fan-out to the watch) runs concurrently with the pipeline.
    let stamp = now();
    let objects: Vec<(String, serde_json::Value)> =
        (0..n).map(|i| event(i, pods, &stamp)).collect();
    let started = Instant::now();
    let creator = {
        let cluster = cluster.clone();
        std::thread::spawn(move || {
            for (ns, ev) in objects {
                cluster.create_event(&ns, ev).expect("create event");
            }
            started.elapsed()
        })
    };
    let finished = tokio::time::timeout(Duration::from_secs(120), collector.done.notified()).await;
    let total = started.elapsed();
    let create = tokio::task::spawn_blocking(move || creator.join().expect("creator"))
        .await
        .expect("join creator");
    if finished.is_err() {
        eprintln!(
            "  timed out: {} of {n} received",
            collector.received.load(Ordering::Acquire)
        );
    }
    let _ = stop.send(());
    let summary = task.await.expect("exporter task").expect("exporter run");
    let (dropped, failed) = summary
        .receivers
        .iter()
        .fold((0, 0), |(d, f), (_, s)| (d + s.dropped, f + s.failed));
    drop(server);
    RunResult {
        create,
        total,
        received: collector.received.load(Ordering::Acquire),
        dropped,
        failed,
        bad: collector.bad.load(Ordering::Acquire),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench_mode = args.iter().any(|a| a == "--bench");
    let mut events = if bench_mode { 50_000 } else { 500 };
    let mut runs = if bench_mode { 5 } else { 1 };
    let mut pods = 500;
    let mut variants = vec![Variant::Omit, Variant::Enrich, Variant::Full];
    let mut filter: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--events" => events = num("--events"),
            "--runs" => runs = num("--runs").max(1),
            "--pods" => pods = num("--pods").max(1),
            "--variant" => {
                variants = match it.next().map(String::as_str) {
                    Some("omit") => vec![Variant::Omit],
                    Some("enrich") => vec![Variant::Enrich],
                    Some("full") => vec![Variant::Full],
                    Some("all") => vec![Variant::Omit, Variant::Enrich, Variant::Full],
                    other => panic!("--variant omit|enrich|full|all, not {other:?}"),
                }
            }
            s if !s.starts_with('-') => filter = Some(s.to_owned()),
            _ => {} // criterion/libtest flags passed by cargo (`--bench`, ...)
        }
    }
    // `cargo bench -- route/seed` passes the filter to every bench binary: run only if it names us.
    if let Some(f) = filter
        && !"pipeline".contains(f.as_str())
        && !f.starts_with("pipeline")
    {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("pipeline: {events} events per run, {runs} runs, 2 tokio workers");
    for variant in variants {
        println!("\n{}", variant.name());
        println!(
            "  {:>4} {:>10} {:>10} {:>12} {:>9} {:>8}",
            "run", "create s", "total s", "events/s", "received", "dropped"
        );
        let mut rates = Vec::new();
        for r in 0..runs {
            let res = runtime.block_on(one_run(events, variant, pods));
            let rate = res.received as f64 / res.total.as_secs_f64();
            println!(
                "  {:>4} {:>10.3} {:>10.3} {:>12.0} {:>9} {:>8}",
                r + 1,
                res.create.as_secs_f64(),
                res.total.as_secs_f64(),
                rate,
                res.received,
                res.dropped
            );
            assert_eq!(res.bad, 0, "malformed bodies");
            assert_eq!(res.failed, 0, "failed deliveries");
            assert_eq!(res.received, events, "every event delivered once");
            rates.push(rate);
        }
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(0.0, f64::max);
        println!(
            "  median {:.0} events/s (min {min:.0}, max {max:.0})",
            median(rates)
        );
    }
}
