//! End to end: the exporter against the fake API server, delivering to a loopback webhook.
//! Restarts, 410s, leader hand-overs and a receiver that is down for a while: every
//! occurrence is delivered exactly once.
#![allow(clippy::unwrap_used)]

#[path = "../../event-exporter-sinks/tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_exporter_core::{Config, Router};
use event_exporter_kube::checkpoint::{
    Checkpoint, CheckpointStore, ConfigMapCheckpointStore, FileCheckpointStore,
};
use event_exporter_kube::exporter::{Exporter, ExporterSettings, RunSummary};
use event_exporter_kube::leader::{LeaderElector, LeaseSettings};
use event_exporter_kube::metrics::Metrics;
use event_exporter_kube::occurrence::UidKey;
use event_exporter_kube::server::{Health, MetricsSource};
use fake_apiserver::{Cluster, FakeApiServer};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A webhook receiver: records every body it accepts; answers 503 while `down`.
#[derive(Clone, Default)]
struct Collector {
    bodies: Arc<Mutex<Vec<Value>>>,
    refused: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Collector {
    async fn start() -> (Self, SocketAddr) {
        Self::start_slow(Duration::ZERO).await
    }

    /// A collector that takes `delay` to answer each request.
    async fn start_slow(delay: Duration) -> (Self, SocketAddr) {
        let me = Self::default();
        let state = me.clone();
        let addr = support::serve(move |req: support::Incoming| {
            let state = state.clone();
            async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if state.down.load(Ordering::SeqCst) {
                    state.refused.fetch_add(1, Ordering::SeqCst);
                    return support::text_reply(503, "down");
                }
                let value: Value = serde_json::from_str(&req.body).unwrap();
                state.bodies.lock().unwrap().push(value);
                support::text_reply(200, "ok")
            }
        })
        .await;
        (me, addr)
    }

    fn ids(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn wait_for(&self, n: usize) {
        for _ in 0..1500 {
            if self.ids().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "expected {n} deliveries, got {}: {:?}",
            self.ids().len(),
            self.ids()
        );
    }
}

fn config(addr: SocketAddr) -> Config {
    let yaml = format!(
        r#"
route:
  routes:
    - match:
        - receiver: hook
receivers:
  - name: hook
    webhook:
      endpoint: "http://{addr}/events"
      layout:
        id: "{{{{ .GetDeliveryID }}}}"
        reason: "{{{{ .Reason }}}}"
    delivery:
      initialBackoff: 20ms
      maxBackoff: 100ms
      maxElapsed: 120s
"#
    );
    Config::load_str(&yaml, |_| None).unwrap()
}

fn client(server: &FakeApiServer) -> kube::Client {
    let mut config = kube::Config::new(server.url().parse().unwrap());
    config.default_namespace = "default".into();
    kube::Client::try_from(config).unwrap()
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<RunSummary>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    live: event_exporter_kube::exporter::LiveMetrics,
}

impl Running {
    async fn stop(self) -> RunSummary {
        let _ = self.stop.send(());
        self.task.await.unwrap()
    }
}

struct Setup<'a> {
    server: &'a FakeApiServer,
    config: &'a Config,
    store: Option<Arc<dyn CheckpointStore>>,
    elector: Option<LeaderElector>,
    identity: &'a str,
    /// `maxEventAgeSeconds` (an hour unless a test is about it).
    max_event_age: Duration,
}

fn start(setup: Setup<'_>) -> Running {
    let names: Vec<&str> = setup
        .config
        .receivers
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    let router = Router::compile(&setup.config.route, &names).unwrap();
    let receivers = event_exporter_sinks::build_receivers(
        setup.config,
        event_exporter_sinks::default_delivery(),
    )
    .unwrap();
    let metrics = Arc::new(Metrics::new("ee_"));
    let health = Arc::new(Health::new(Duration::from_secs(300)));
    let settings = ExporterSettings {
        max_event_age: setup.max_event_age,
        checkpoint_interval: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(10),
        identity: setup.identity.to_owned(),
        ..ExporterSettings::default()
    };
    let mut exporter = Exporter::new(
        client(setup.server),
        router,
        receivers,
        Arc::clone(&metrics),
        Arc::clone(&health),
        settings,
    );
    if let Some(store) = setup.store {
        exporter = exporter.with_checkpoint(store);
    }
    if let Some(elector) = setup.elector {
        exporter = exporter.with_leader_election(elector);
    }
    let live = exporter.metrics_source();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        exporter
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap()
    });
    Running {
        stop,
        task,
        metrics,
        health,
        live,
    }
}

/// What every test starts with: a fake API server, a webhook collector, and a config routing
/// every event to it.
struct World {
    server: FakeApiServer,
    cluster: Cluster,
    collector: Collector,
    config: Config,
}

impl World {
    async fn start() -> Self {
        Self::start_slow(Duration::ZERO).await
    }

    /// A world whose collector takes `delay` to answer each request.
    async fn start_slow(delay: Duration) -> Self {
        let server = FakeApiServer::start().await.unwrap();
        let cluster = server.cluster();
        let (collector, addr) = Collector::start_slow(delay).await;
        Self {
            server,
            cluster,
            collector,
            config: config(addr),
        }
    }
}

/// One replica without leader election.
fn single(
    server: &FakeApiServer,
    config: &Config,
    store: Option<Arc<dyn CheckpointStore>>,
    identity: &str,
) -> Running {
    start(Setup {
        server,
        config,
        store,
        elector: None,
        identity,
        max_event_age: Duration::from_secs(3600),
    })
}

async fn until_ready(running: &Running) {
    for _ in 0..500 {
        if running.health.ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never ready");
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The events created, by name: uid and current count.
#[derive(Default)]
struct Events {
    made: BTreeMap<String, (String, i64)>,
    /// The resourceVersion of the latest event created.
    last_rv: u64,
    /// uid → the resourceVersion it was created with.
    created_rv: BTreeMap<String, u64>,
}

impl Events {
    fn create(&mut self, cluster: &Cluster, name: &str, reason: &str) {
        let t = now();
        let created = cluster
            .create_event(
                "default",
                json!({
                    "metadata": {"name": name, "namespace": "default"},
                    "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "apiVersion": "v1"},
                    "reason": reason,
                    "message": format!("{name} happened"),
                    "type": "Normal",
                    "count": 1,
                    "firstTimestamp": t,
                    "lastTimestamp": t,
                    "source": {"component": "test"},
                }),
            )
            .unwrap();
        let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
        self.last_rv = created["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        self.created_rv.insert(uid.clone(), self.last_rv);
        self.made.insert(name.to_owned(), (uid, 1));
    }

    fn repeat(&mut self, cluster: &Cluster, name: &str) {
        let entry = self.made.get_mut(name).unwrap();
        entry.1 += 1;
        cluster
            .patch_event(
                "default",
                name,
                json!({"count": entry.1, "lastTimestamp": now()}),
            )
            .unwrap();
    }

    /// A change that is not a new occurrence.
    fn relabel(cluster: &Cluster, name: &str, value: &str) {
        cluster
            .patch_event(
                "default",
                name,
                json!({"metadata": {"labels": {"touched": value}}}),
            )
            .unwrap();
    }

    fn expected_after(&self, done: &mut BTreeSet<String>) -> usize {
        for (uid, count) in self.made.values() {
            for n in 1..=*count {
                done.insert(format!("{uid}/{n}"));
            }
        }
        done.len()
    }
}

fn assert_exactly_once(collector: &Collector, events: &Events) {
    let ids = collector.ids();
    let mut seen = BTreeMap::<&str, usize>::new();
    for id in &ids {
        *seen.entry(id.as_str()).or_default() += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "delivered more than once: {repeated:?}"
    );
    let mut expected = BTreeSet::new();
    events.expected_after(&mut expected);
    let got: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(got, expected, "missing or unexpected deliveries");
}

/// A checkpoint kept in the file at `path`.
fn file_store(path: &std::path::Path) -> Arc<dyn CheckpointStore> {
    Arc::new(FileCheckpointStore::new(path))
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ee-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("checkpoint.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_stream_delivers_every_occurrence_exactly_once() {
    let World {
        server,
        cluster,
        collector,
        config,
    } = World::start().await;
    let path = temp_path("restart");
    let store = || file_store(&path);
    let mut events = Events::default();
    for i in 0..20 {
        events.create(&cluster, &format!("before-{i}"), "Started");
    }

    let a = single(&server, &config, Some(store()), "a");
    collector.wait_for(20).await;
    for i in 0..10 {
        events.create(&cluster, &format!("live-{i}"), "Pulled");
    }
    for i in 0..5 {
        events.repeat(&cluster, &format!("before-{i}"));
        Events::relabel(&cluster, &format!("before-{}", i + 10), "x");
    }
    collector.wait_for(35).await;
    let summary = a.stop().await;
    assert_eq!(summary.receivers[0].1.sent, 35);

    // While the exporter is down: new events, repeats, and updates that are no occurrence.
    for i in 0..10 {
        events.create(&cluster, &format!("down-{i}"), "Killing");
    }
    for i in 3..8 {
        events.repeat(&cluster, &format!("before-{i}"));
    }
    Events::relabel(&cluster, "live-3", "y");

    let b = single(&server, &config, Some(store()), "b");
    collector.wait_for(50).await;
    b.stop().await;
    assert_exactly_once(&collector, &events);
    let saved = FileCheckpointStore::new(&path)
        .load()
        .await
        .unwrap()
        .unwrap();
    assert!(saved.streams.contains_key(""), "{saved:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_mid_stream_relists_without_repeating() {
    let World {
        server,
        cluster,
        collector,
        config,
    } = World::start().await;
    let mut events = Events::default();
    let running = single(&server, &config, None, "a");
    for i in 0..10 {
        events.create(&cluster, &format!("e-{i}"), "Started");
    }
    collector.wait_for(10).await;
    // Move the global resourceVersion past what the watch has seen (a write it does not
    // watch), forget the history, and cut the stream: the re-watch gets a 410 and relists.
    cluster.put_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bump", "namespace": "default"}, "data": {}}));
    cluster.compact();
    cluster.cut_watches();
    for i in 10..15 {
        events.create(&cluster, &format!("e-{i}"), "Started");
    }
    events.repeat(&cluster, "e-1");
    collector.wait_for(16).await;
    // The relist happened (one restart counted) and delivered nothing twice.
    for _ in 0..500 {
        if running.live.render().contains("ee_watch_restarts_total 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        running.live.render().contains("ee_watch_restarts_total 1"),
        "{}",
        running.live.render()
    );
    running.stop().await;
    assert_exactly_once(&collector, &events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_gets_its_events_when_it_returns() {
    let World {
        server,
        cluster,
        collector,
        config,
    } = World::start().await;
    let mut events = Events::default();
    let running = single(&server, &config, None, "a");
    collector.down.store(true, Ordering::SeqCst);
    for i in 0..5 {
        events.create(&cluster, &format!("e-{i}"), "BackOff");
    }
    for _ in 0..500 {
        if collector.refused.load(Ordering::SeqCst) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(collector.refused.load(Ordering::SeqCst) >= 3);
    collector.down.store(false, Ordering::SeqCst);
    collector.wait_for(5).await;
    let summary = running.stop().await;
    assert_exactly_once(&collector, &events);
    assert!(summary.receivers[0].1.retried >= 3);
    assert_eq!(summary.receivers[0].1.failed, 0);
}

/// A short Lease, but not so short that a starved test machine (CI's two cores compiling
/// beside it) misses renewals: a leader that does hands over mid-stream, and whatever it
/// delivered after its last checkpoint save is delivered again — at-least-once by design, and
/// not what this test is about.
fn lease_settings(identity: &str) -> LeaseSettings {
    let mut s = LeaseSettings::new("default", "event-exporter", identity);
    s.lease_duration = Duration::from_millis(3000);
    s.renew_deadline = Duration::from_millis(2000);
    s.retry_period = Duration::from_millis(200);
    s
}

fn holder(cluster: &Cluster) -> Option<String> {
    cluster
        .get_object(
            "coordination.k8s.io/v1",
            "Lease",
            Some("default"),
            "event-exporter",
        )
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
        .filter(|h| !h.is_empty())
}

async fn checkpoint_reaches(cluster: &Cluster, rv: u64) {
    for _ in 0..500 {
        let cp = cluster
            .get_object("v1", "ConfigMap", Some("default"), "ee-checkpoint")
            .and_then(|cm| cm["data"]["checkpoint"].as_str().map(str::to_owned))
            .and_then(|t| Checkpoint::parse(&t, "cm").ok());
        // Everything up to `rv` handled, and nothing of it still pending: all delivered.
        if cp.is_some_and(|c| c.watermarks(&[String::new()])[0] >= Some(rv) && c.pending.is_empty())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("checkpoint never reached {rv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_delivers_and_the_other_takes_over() {
    let World {
        server,
        cluster,
        collector,
        config,
    } = World::start().await;
    let mut events = Events::default();
    let replica = |identity: &'static str| {
        let store: Arc<dyn CheckpointStore> = Arc::new(ConfigMapCheckpointStore::new(
            client(&server),
            "default",
            "ee-checkpoint",
        ));
        start(Setup {
            server: &server,
            config: &config,
            store: Some(store),
            elector: Some(LeaderElector::new(
                client(&server),
                lease_settings(identity),
            )),
            identity,
            max_event_age: Duration::from_secs(3600),
        })
    };
    let a = replica("replica-a");
    let b = replica("replica-b");
    for _ in 0..500 {
        if holder(&cluster).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first = holder(&cluster).expect("a leader");
    for i in 0..10 {
        events.create(&cluster, &format!("e-{i}"), "Upgrading");
    }
    collector.wait_for(10).await;
    // Only the leader exported.
    let (leader, standby) = if first == "replica-a" { (a, b) } else { (b, a) };
    assert!(leader.live.render().contains("ee_events_exported_total 10"));
    assert!(standby.live.render().contains("ee_events_exported_total 0"));
    assert!(standby.health.ready(), "a standby is ready");
    // The leader dies without a word (no release, no final checkpoint) once its progress is
    // saved.
    // (Not the cluster's resourceVersion: Lease renewals move that on.)
    checkpoint_reaches(&cluster, events.last_rv).await;
    leader.task.abort();
    for i in 10..20 {
        events.create(&cluster, &format!("e-{i}"), "Upgrading");
    }
    events.repeat(&cluster, "e-2");
    collector.wait_for(21).await;
    assert_eq!(
        holder(&cluster).as_deref(),
        Some(if first == "replica-a" {
            "replica-b"
        } else {
            "replica-a"
        })
    );
    assert!(standby.metrics.render(&[]).contains("ee_leader 1"));
    standby.stop().await;
    assert_exactly_once(&collector, &events);
    assert_eq!(holder(&cluster), None, "released at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_logged_counted_and_survived() {
    let World {
        server,
        cluster,
        collector,
        config,
    } = World::start().await;
    let path = temp_path("corrupt");
    std::fs::write(&path, "{ not a checkpoint").unwrap();
    let mut events = Events::default();
    let running = single(&server, &config, Some(file_store(&path)), "a");
    events.create(&cluster, "first", "Started");
    collector.wait_for(1).await;
    // An object that is JSON but not an Event, then a line that is not JSON at all.
    let rv = cluster.resource_version();
    cluster.inject_watch_line(&format!(
        r#"{{"type":"ADDED","object":{{"kind":"Event","apiVersion":"v1","metadata":{{"name":"bad","namespace":"default","uid":"bad","resourceVersion":"{rv}"}},"involvedObject":{{}},"count":"many"}}}}"#
    ));
    cluster.inject_watch_line("this is not json");
    events.create(&cluster, "second", "Started");
    collector.wait_for(2).await;
    let text = running.live.render();
    assert!(
        text.contains(r#"ee_events_discarded_total{reason="malformed"} 1"#),
        "{text}"
    );
    running.stop().await;
    assert_exactly_once(&collector, &events);
    // The corrupt checkpoint was replaced by a valid one.
    assert!(
        FileCheckpointStore::new(&path)
            .load()
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_rbac_is_retried_not_fatal() {
    let World {
        server,
        cluster,
        config,
        ..
    } = World::start().await;
    cluster.forbid("list", "events");
    let running = single(&server, &config, None, "a");
    for _ in 0..500 {
        if !running.live.render().contains("ee_watch_errors_total 0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!running.live.render().contains("ee_watch_errors_total 0"));
    assert!(!running.health.ready());
    running.stop().await;
}

/// Creates `n` events named `{prefix}-{i}` one by one, with a pause every 10.
async fn trickle(cluster: Cluster, prefix: &'static str, n: usize, pause: Duration) -> Events {
    let mut events = Events::default();
    for i in 0..n {
        events.create(&cluster, &format!("{prefix}-{i}"), "Trickle");
        if i % 10 == 9 {
            tokio::time::sleep(pause).await;
        }
    }
    events
}

/// Whether `checkpoint` records delivery `id` (`uid/count`) among its recent occurrences.
fn recently_saved(checkpoint: &Checkpoint, id: &str) -> bool {
    let (uid, count) = id.split_once('/').unwrap();
    let count: u32 = count.parse().unwrap();
    checkpoint
        .recent
        .get(&UidKey::of(uid).to_hex())
        .is_some_and(|&n| n >= count)
}

/// What [`interrupted`] leaves.
struct Interrupted {
    collector: Collector,
    events: Events,
    /// The deliveries replica `a` made.
    by_a: Vec<String>,
    /// The checkpoint on disk when `a` was gone.
    checkpoint: Option<Checkpoint>,
}

/// Streams 400 new events while replica `a` (file checkpoint) exports; once 100 have arrived,
/// `a` is stopped (gracefully, or aborted like a crash: its task and its delivery workers die
/// where they are) and replica `b` takes over. Returns when `b` has delivered every event at
/// least once and has stopped.
async fn interrupted(name: &str, crash: bool) -> Interrupted {
    let World {
        server,
        cluster,
        collector,
        config,
    } = World::start().await;
    let path = temp_path(name);
    let store = || file_store(&path);
    let a = single(&server, &config, Some(store()), "a");
    until_ready(&a).await;
    let pause = Duration::from_millis(if crash { 20 } else { 5 });
    let writer = tokio::spawn(trickle(cluster.clone(), "m", 400, pause));
    collector.wait_for(100).await;
    if crash {
        // Crash once a periodic save covers some of `a`'s deliveries, so that both sides are
        // seen: what was saved is not sent again, what was not is.
        for _ in 0..500 {
            let saved = store().load().await.unwrap().map_or(0, |cp| {
                let ids = collector.ids();
                ids.iter().filter(|id| recently_saved(&cp, id)).count()
            });
            if saved >= 50 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // No drain, no final save: only the periodic checkpoint survives.
        a.task.abort();
        let _ = a.task.await;
    } else {
        // The watch ends, what was dispatched drains, the checkpoint is saved.
        a.stop().await;
    }
    // A request already on the wire when `a` died may still land: let it, before counting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let by_a = collector.ids();
    let checkpoint = store().load().await.unwrap();
    let b = single(&server, &config, Some(store()), "b");
    let events = writer.await.unwrap();
    until_all_delivered(&collector, &events).await;
    b.stop().await;
    Interrupted {
        collector,
        events,
        by_a,
        checkpoint,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_events_stream_in_loses_and_repeats_nothing() {
    let run = interrupted("midstream", false).await;
    let by_a = run.by_a.len();
    assert!(
        by_a < 400,
        "the stop happened mid-stream ({by_a} delivered)"
    );
    assert_exactly_once(&run.collector, &run.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_stream_loses_nothing() {
    let run = interrupted("crash", true).await;
    let ids = run.collector.ids();
    let mut expected = BTreeSet::new();
    run.events.expected_after(&mut expected);
    let got: BTreeSet<String> = ids.iter().cloned().collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    assert!(missing.is_empty(), "lost in the crash: {missing:?}");
    assert!(run.by_a.len() < 400, "the crash happened mid-stream");
    // Exactly what `a` delivered after its last checkpoint save is repeated, once; nothing
    // the checkpoint covers, and nothing `b` delivered itself.
    let cp = run.checkpoint.as_ref();
    let threshold = cp
        .and_then(|cp| cp.streams.get(""))
        .map(|rv| rv.parse::<u64>().unwrap());
    // What the checkpoint covers: at or below its resourceVersion and not pending, or among
    // the recently finished.
    let covered = |id: &str| {
        let uid = id.split_once('/').unwrap().0;
        let pending = cp.is_some_and(|cp| cp.pending.contains_key(&UidKey::of(uid).to_hex()));
        (!pending && threshold.is_some_and(|t| run.events.created_rv[uid] <= t))
            || cp.is_some_and(|cp| recently_saved(cp, id))
    };
    let expected_repeats: BTreeSet<&str> = run
        .by_a
        .iter()
        .map(String::as_str)
        .filter(|id| !covered(id))
        .collect();
    let mut times = BTreeMap::<&str, usize>::new();
    for id in &ids {
        *times.entry(id.as_str()).or_default() += 1;
    }
    assert!(
        expected_repeats.len() + 50 <= run.by_a.len(),
        "the crash came after a save that covered some of a's deliveries"
    );
    assert!(
        times.values().all(|&n| n <= 2),
        "an event delivered 3 times"
    );
    let repeats: BTreeSet<&str> = times
        .iter()
        .filter(|(_, n)| **n == 2)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        repeats,
        expected_repeats,
        "repeats other than a's deliveries after its last save ({} of a's {} were saved)",
        run.by_a.len() - expected_repeats.len(),
        run.by_a.len()
    );
}

/// Waits until every occurrence of `events` has been delivered at least once.
async fn until_all_delivered(collector: &Collector, events: &Events) {
    let mut expected = BTreeSet::new();
    events.expected_after(&mut expected);
    for _ in 0..3000 {
        let got: BTreeSet<String> = collector.ids().into_iter().collect();
        if got.is_superset(&expected) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A graceful stop part-way through a catch-up (thousands of events created while the
/// exporter was down: more than the checkpoint keeps as recently finished occurrences), then a
/// restart: exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_a_large_catch_up_repeats_nothing() {
    let World {
        server,
        cluster,
        collector,
        config,
    } = World::start_slow(Duration::from_micros(300)).await;
    let path = temp_path("catch-up");
    let store = || file_store(&path);
    let mut events = Events::default();
    events.create(&cluster, "first", "Started");
    let a = single(&server, &config, Some(store()), "a");
    collector.wait_for(1).await;
    a.stop().await;
    for i in 0..7000 {
        events.create(&cluster, &format!("down-{i}"), "Killing");
    }
    let b = single(&server, &config, Some(store()), "b");
    collector.wait_for(4700).await;
    b.stop().await;
    assert!(collector.ids().len() < 7001, "the stop came mid-catch-up");
    let c = single(&server, &config, Some(store()), "c");
    until_all_delivered(&collector, &events).await;
    c.stop().await;
    assert_exactly_once(&collector, &events);
}

/// A graceful stop before the very first list has been delivered, then a restart after more
/// than `maxEventAgeSeconds`: the first start's cut-off is kept, so neither what the first list
/// had left nor what was created meanwhile is dropped as too old; nothing is repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_the_first_list_keeps_its_age_cut_off() {
    let World {
        server,
        cluster,
        collector,
        config,
    } = World::start_slow(Duration::from_millis(2)).await;
    let path = temp_path("first-list");
    let store = || file_store(&path);
    let mut events = Events::default();
    for i in 0..1500 {
        events.create(&cluster, &format!("early-{i}"), "Started");
    }
    let setup = |identity| Setup {
        server: &server,
        config: &config,
        store: Some(store()),
        elector: None,
        identity,
        max_event_age: Duration::from_secs(3),
    };
    let a = start(setup("a"));
    collector.wait_for(200).await;
    a.stop().await;
    assert!(collector.ids().len() < 1500, "the stop came mid-list");
    for i in 0..5 {
        events.create(&cluster, &format!("down-{i}"), "Killing");
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let b = start(setup("b"));
    until_ready(&b).await;
    until_all_delivered(&collector, &events).await;
    let text = b.live.render();
    b.stop().await;
    let too_old = text
        .lines()
        .find_map(|l| l.strip_prefix("ee_events_discarded_total{reason=\"too_old\"} "))
        .unwrap_or("0");
    assert_eq!(too_old, "0", "{text}");
    assert_exactly_once(&collector, &events);
}

/// One receiver that is down (retrying one event) while another delivers thousands, then a
/// graceful restart: the healthy receiver's deliveries are not repeated, and the stuck one is
/// delivered once its receiver is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_dead_receiver_holds_back_nothing_of_the_others_across_a_restart() {
    let server = FakeApiServer::start().await.unwrap();
    let cluster = server.cluster();
    let (collector, addr) = Collector::start().await;
    let (dead, dead_addr) = Collector::start().await;
    dead.down.store(true, Ordering::SeqCst);
    let yaml = format!(
        r#"
route:
  routes:
    - match:
        - receiver: hook
    - match:
        - receiver: dead
          reason: ^Rare$
receivers:
  - name: hook
    webhook:
      endpoint: "http://{addr}/events"
      layout:
        id: "{{{{ .GetDeliveryID }}}}"
  - name: dead
    webhook:
      endpoint: "http://{dead_addr}/events"
      layout:
        id: "{{{{ .GetDeliveryID }}}}"
    delivery:
      initialBackoff: 20ms
      maxBackoff: 100ms
      maxAttempts: 100000
      maxElapsed: 600s
"#
    );
    let config = Config::load_str(&yaml, |_| None).unwrap();
    let path = temp_path("dead-receiver");
    let store = || file_store(&path);
    let mut events = Events::default();
    let a = single(&server, &config, Some(store()), "a");
    until_ready(&a).await;
    events.create(&cluster, "rare", "Rare");
    for i in 0..5000 {
        events.create(&cluster, &format!("n-{i}"), "Normal");
    }
    collector.wait_for(5001).await;
    let a_metrics = Arc::clone(&a.metrics);
    a.stop().await;
    assert!(
        a_metrics.render(&[]).contains("ee_checkpoint_pending 1\n"),
        "the stuck delivery shows in the metrics"
    );
    let cp = store().load().await.unwrap().unwrap();
    let rare = &events.made["rare"].0;
    let pending = &cp.pending[&UidKey::of(rare).to_hex()];
    assert_eq!(pending.occurrence, 1);
    assert_eq!(pending.receivers, ["dead"], "only `dead` owes it");
    dead.down.store(false, Ordering::SeqCst);
    let b = single(&server, &config, Some(store()), "b");
    dead.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.stop().await;
    assert_exactly_once(&collector, &events);
    assert_eq!(dead.ids(), vec![format!("{rare}/1")]);
}
