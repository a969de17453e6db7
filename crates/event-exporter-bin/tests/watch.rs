//! The binary against the fake API server, as the seed app runs it: its rendered config,
//! kubectl creating the Cluster API upgrade events, the Slack fake receiving the threaded
//! messages, the ConfigMap thread cache and checkpoint, SIGTERM and a restart that repeats
//! nothing.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "../../event-exporter-sinks/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_apiserver::{Cluster, FakeApiServer};
use serde_json::{Value, json};
use support::fake_slack::FakeSlack;

const BIN: &str = env!("CARGO_BIN_EXE_event-exporter");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/compat/configs")
        .join(name)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ee-watch-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The exporter process, with its stderr collected and its metrics address read from it.
struct Exporter {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Exporter {
    fn start(config: &Path, kubeconfig: &Path, envs: &[(&str, String)]) -> Self {
        Self::start_limited(config, kubeconfig, envs, None)
    }

    /// [`Exporter::start`] with at most `fd_limit` open file descriptors (`ulimit -n`).
    fn start_limited(
        config: &Path,
        kubeconfig: &Path,
        envs: &[(&str, String)],
        fd_limit: Option<u32>,
    ) -> Self {
        let mut cmd = match fd_limit {
            None => Command::new(BIN),
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), BIN]);
                sh
            }
        };
        // Upstream's Go-style flags, as existing manifests pass them.
        cmd.arg(format!("-conf={}", config.display()))
            .arg(format!("-kubeconfig={}", kubeconfig.display()))
            .arg("-metrics-address=127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env("POD_NAMESPACE", "monitoring")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The operations server's address, from the log.
    async fn address(&self) -> String {
        for _ in 0..1000 {
            let log = self.log();
            if let Some(rest) = log.split("address=").nth(1) {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no metrics address in the log:\n{}", self.log());
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let addr = self.address().await;
        let url = format!("{addr}{path}");
        tokio::task::spawn_blocking(move || http_get(&url))
            .await
            .unwrap()
    }

    async fn wait_ready(&self) {
        for _ in 0..1000 {
            if self.get("/readyz").await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("never ready:\n{}", self.log());
    }

    /// SIGTERM, then the exit status.
    async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = tokio::task::spawn_blocking(move || {
            let status = self.child.wait().unwrap();
            (status, self)
        })
        .await
        .unwrap();
        // Let the stderr reader finish.
        tokio::time::sleep(Duration::from_millis(50)).await;
        (status.0, status.1.log())
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// A minimal HTTP/1.1 GET over a fresh connection: (status, body).
fn http_get(addr_path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let (addr, path) = addr_path.split_at(addr_path.find('/').unwrap());
    let Ok(mut tcp) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = tcp.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

async fn kubectl(kubeconfig: &Path, args: &[&str], stdin: &str) -> String {
    let mut cmd = tokio::process::Command::new("kubectl");
    cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl is installed");
    use tokio::io::AsyncWriteExt;
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn upgrade_event(name: &str, reason: &str, message: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Event
metadata:
  name: {name}
  namespace: org-giantswarm
  annotations:
    giantswarm.io/target-version: 25.1.0
involvedObject:
  apiVersion: cluster.x-k8s.io/v1beta2
  kind: Cluster
  name: test01
  namespace: org-giantswarm
reason: {reason}
message: "{message}"
type: Normal
count: 1
firstTimestamp: "{now}"
lastTimestamp: "{now}"
source:
  component: cluster-api-events-controller
"#,
        now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ")
    )
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A webhook receiver recording every JSON body it accepts.
async fn hook_collector() -> (Arc<Mutex<Vec<Value>>>, std::net::SocketAddr) {
    let hooks: Arc<Mutex<Vec<Value>>> = Arc::default();
    let recorded = Arc::clone(&hooks);
    let addr = support::serve(move |req: support::Incoming| {
        let hooks = Arc::clone(&recorded);
        async move {
            hooks
                .lock()
                .unwrap()
                .push(serde_json::from_str(&req.body).unwrap());
            support::text_reply(200, "ok")
        }
    })
    .await;
    (hooks, addr)
}

fn configmap_data(cluster: &Cluster, ns: &str, name: &str, key: &str) -> Option<String> {
    cluster
        .get_object("v1", "ConfigMap", Some(ns), name)
        .and_then(|cm| cm["data"][key].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_flow_from_kubectl_to_a_slack_thread_survives_a_restart() {
    let api = FakeApiServer::start().await.unwrap();
    let cluster = api.cluster();
    // The involved Cluster, looked up for enrichment (the rules name the kind). The seed's
    // threadKey reads the event's own annotation (`.Annotations`, as upstream's embedded
    // ObjectMeta), which the events below carry.
    cluster.put_object(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
        "metadata": {"name": "test01", "namespace": "org-giantswarm", "labels": {"team": "upgrades"}}
    }));
    let slack = FakeSlack::start("xoxb-test", &[("#upgrades", "C0UPGRADES")]).await;
    let (hooks, hook_addr) = hook_collector().await;

    let dir = temp_dir("seed");
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).unwrap();
    // The seed chart's rendered config, unchanged but for where Slack's API is.
    let seed = std::fs::read_to_string(fixture("seed-chart-rendered.yaml")).unwrap();
    let config_text = seed.replace(
        "  slack:\n    token:",
        &format!("  slack:\n    apiURL: {}\n    token:", slack.api_url()),
    );
    assert_ne!(config_text, seed, "the Slack receiver was found");
    let config = dir.join("config.yaml");
    std::fs::write(&config, config_text).unwrap();
    let envs = [
        ("SLACK_TOKEN", "xoxb-test".to_owned()),
        ("WEBHOOK_URL", format!("http://{hook_addr}/hook")),
    ];

    let exporter = Exporter::start(&config, &kubeconfig, &envs);
    exporter.wait_ready().await;
    kubectl(
        &kubeconfig,
        &["create", "-f", "-", "--validate=false"],
        &upgrade_event(
            "test01.upgrade-begins",
            "UpgradingWithNodeRoll",
            "from 25.0.0 to 25.1.0",
        ),
    )
    .await;
    eventually("the Slack parent message", || slack.messages().len() == 1).await;
    let parent = &slack.messages()[0];
    assert_eq!(parent.channel, "C0UPGRADES");
    assert_eq!(
        parent.body["text"].as_str().unwrap().trim(),
        "The cluster upgrade of `org-giantswarm/test01` on `gs-prod-1` from 25.0.0 to 25.1.0 has begun. This upgrade will replace nodes."
    );
    assert!(parent.body.get("thread_ts").is_none());
    eventually("the webhook", || hooks.lock().unwrap().len() == 1).await;
    // The thread is remembered in the seed's ConfigMap format.
    for _ in 0..500 {
        if configmap_data(
            &cluster,
            "monitoring",
            "release-name-thread-cache",
            "threads",
        )
        .is_some_and(|t| t.contains("org-giantswarm/test01/25.1.0"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        configmap_data(
            &cluster,
            "monitoring",
            "release-name-thread-cache",
            "threads"
        )
        .is_some_and(|t| t.contains("org-giantswarm/test01/25.1.0")),
        "thread cache: {:?}\n{}",
        cluster.get_object(
            "v1",
            "ConfigMap",
            Some("monitoring"),
            "release-name-thread-cache"
        ),
        exporter.log()
    );
    let (status, metrics) = exporter.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("events_exported_total 1"), "{metrics}");
    assert!(
        metrics.contains(r#"deliveries_total{receiver="slack-upgrade",outcome="sent"} 1"#),
        "{metrics}"
    );
    // The involved Cluster was looked up once, without errors.
    assert!(
        metrics.contains("enrichment_cache_misses_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("enrichment_errors_total 0"), "{metrics}");
    assert_eq!(exporter.get("/healthz").await.0, 200);

    let (status, log) = exporter.terminate().await;
    assert!(status.success(), "exit {status:?}:\n{log}");
    let checkpoint = configmap_data(
        &cluster,
        "monitoring",
        "event-exporter-checkpoint",
        "checkpoint",
    )
    .expect("the checkpoint is saved at shutdown");
    assert!(
        checkpoint.contains("reason=UpgradingWithNodeRoll"),
        "{checkpoint}"
    );

    // Restarted: nothing is sent again; the next event of the upgrade goes into the thread.
    let exporter = Exporter::start(&config, &kubeconfig, &envs);
    exporter.wait_ready().await;
    kubectl(
        &kubeconfig,
        &["create", "-f", "-", "--validate=false"],
        &upgrade_event("test01.upgrade-done", "Upgraded", "to 25.1.0"),
    )
    .await;
    eventually("the threaded reply", || slack.messages().len() == 2).await;
    let reply = &slack.messages()[1];
    assert_eq!(reply.body["thread_ts"], json!(parent.ts));
    assert_eq!(
        reply.body["text"].as_str().unwrap().trim(),
        "The cluster upgrade of `org-giantswarm/test01` on `gs-prod-1` has completed to 25.1.0."
    );
    eventually("the completion reaction", || {
        slack
            .reactions()
            .iter()
            .any(|(_, ts, emoji)| ts == &parent.ts && emoji == "white_check_mark")
    })
    .await;
    eventually("the second webhook", || hooks.lock().unwrap().len() == 2).await;
    let (status, log) = exporter.terminate().await;
    assert!(status.success(), "exit {status:?}:\n{log}");
    assert_eq!(slack.messages().len(), 2, "nothing was sent twice");
    assert_eq!(hooks.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_is_logged_and_retried_not_a_crash() {
    // A kubeconfig pointing at a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = temp_dir("unreachable");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: default\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        "route:\n  routes:\n    - match:\n        - receiver: out\nreceivers:\n  - name: out\n    stdout: {}\n",
    )
    .unwrap();
    let exporter = Exporter::start(&config, &kubeconfig, &[]);
    let (status, body) = {
        exporter.address().await;
        eventually("a logged API failure", || {
            let log = exporter.log();
            log.contains("watch failed") || log.contains("cannot read the checkpoint")
        })
        .await;
        exporter.get("/readyz").await
    };
    assert_eq!(status, 503, "{body}");
    let (status, log) = exporter.terminate().await;
    assert!(status.success(), "exit {status:?}:\n{log}");
    assert!(
        log.contains("cannot read the checkpoint") || log.contains("watch failed"),
        "{log}"
    );
}

#[test]
fn a_bad_config_is_refused_before_anything_starts() {
    let dir = temp_dir("bad");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        "route:\n  routes:\n    - match:\n        - receiver: nowhere\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg(format!("-conf={}", config.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nowhere"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_on_the_operations_port_costs_no_delivery_and_no_probe() {
    let api = FakeApiServer::start().await.unwrap();
    let cluster = api.cluster();
    let (hooks, hook_addr) = hook_collector().await;
    let dir = temp_dir("crowd");
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "maxEventAgeSeconds: 3600\ncheckpoint:\n  file: {}\nroute:\n  routes:\n    - match:\n        - receiver: hook\nreceivers:\n  - name: hook\n    webhook:\n      endpoint: http://{hook_addr}/hook\n      layout:\n        name: \"{{{{ .Name }}}}\"\n",
            dir.join("checkpoint.json").display()
        ),
    )
    .unwrap();
    // 128 descriptors in all: less than the crowd below would take if it were let in.
    let exporter = Exporter::start_limited(&config, &kubeconfig, &[], Some(128));
    exporter.wait_ready().await;
    let addr = exporter.address().await;
    let ops: std::net::SocketAddr = addr.trim_start_matches("http://").parse().unwrap();
    let crowd = tokio::task::spawn_blocking(move || {
        (0..300)
            .filter_map(|_| std::net::TcpStream::connect(ops).ok())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(crowd.len() > 128, "{} connections", crowd.len());
    for i in 0..20 {
        cluster
            .create_event(
                "default",
                json!({
                    "metadata": {"name": format!("crowd-{i}"), "namespace": "default"},
                    "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
                    "reason": "BackOff", "count": 1,
                    "lastTimestamp": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                }),
            )
            .unwrap();
    }
    eventually("every delivery", || hooks.lock().unwrap().len() == 20).await;
    assert_eq!(exporter.get("/healthz").await.0, 200, "{}", exporter.log());
    let (status, metrics) = exporter.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"deliveries_total{receiver="hook",outcome="failed"} 0"#),
        "{metrics}"
    );
    drop(crowd);
    let (status, log) = exporter.terminate().await;
    assert!(status.success(), "exit {status:?}:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_answering_with_a_huge_page_is_logged_briefly() {
    let api = FakeApiServer::start().await.unwrap();
    let cluster = api.cluster();
    // The list, the watch and the checkpoint read all get 200 KB of HTML instead of an answer.
    cluster.misbehave(
        "GET",
        "/api/v1",
        None,
        fake_apiserver::Misbehavior::Garbage {
            status: 502,
            bytes: 200_000,
        },
    );
    let dir = temp_dir("garbage");
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        "route:\n  routes:\n    - match:\n        - receiver: out\nreceivers:\n  - name: out\n    stdout: {}\n",
    )
    .unwrap();
    let exporter = Exporter::start(&config, &kubeconfig, &[("RUST_LOG", String::new())]);
    eventually("a logged API failure", || {
        let log = exporter.log();
        log.contains("cannot read the checkpoint") || log.contains("watch failed")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, log) = exporter.terminate().await;
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(
        longest < 2_000,
        "a log line of {longest} bytes:\n{}",
        &log[..log.len().min(4000)]
    );
    assert!(
        log.contains("proxy error"),
        "the excerpt says what the server said:\n{log}"
    );
}
