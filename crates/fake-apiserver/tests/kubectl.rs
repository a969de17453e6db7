//! kubectl (v1.32, /usr/bin/kubectl) against the fake: discovery, create and get.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use fake_apiserver::{FakeApiServer, Options};

const EVENT_YAML: &str = r#"apiVersion: v1
kind: Event
metadata:
  name: test-upgrade-event
  namespace: org-giantswarm
involvedObject:
  apiVersion: cluster.x-k8s.io/v1beta1
  kind: Cluster
  name: test01
  namespace: org-giantswarm
reason: ClusterIsUpdating
message: "Cluster test01 is upgrading"
type: Normal
source:
  component: kubectl
"#;

fn kubectl_path() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/kubectl");
    p.exists().then_some(p)
}

/// Run kubectl off the runtime threads the server needs.
async fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(kubectl_path().unwrap());
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .arg("--request-timeout=20s");
    cmd.env_remove("KUBECONFIG");
    cmd.env("HOME", kubeconfig.parent().unwrap()); // a private discovery cache
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_and_get_events() {
    if kubectl_path().is_none() {
        eprintln!("kubectl not installed; skipping");
        return;
    }
    // No token: client-go never sends bearer tokens over plain http://.
    let server = FakeApiServer::start_with(Options::default()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("fake-apiserver-kubectl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kc = dir.join("kubeconfig");
    server.write_kubeconfig(&kc).unwrap();
    let yaml = dir.join("event.yaml");
    std::fs::write(&yaml, EVENT_YAML).unwrap();

    let out = kubectl(
        &kc,
        &["create", "-f", yaml.to_str().unwrap(), "--validate=false"],
    )
    .await;
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("event/test-upgrade-event created"));
    let stored = server
        .cluster()
        .get_object("v1", "Event", Some("org-giantswarm"), "test-upgrade-event")
        .expect("stored");
    assert_eq!(stored["reason"], "ClusterIsUpdating");
    assert_eq!(stored["involvedObject"]["kind"], "Cluster");
    assert_eq!(server.cluster().events_len(), 1);

    let out = kubectl(&kc, &["get", "events", "-A"]).await;
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("test-upgrade-event") && stdout.contains("org-giantswarm"),
        "{stdout}"
    );

    let out = kubectl(
        &kc,
        &["get", "events", "-n", "org-giantswarm", "-o", "json"],
    )
    .await;
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["items"][0]["message"], "Cluster test01 is upgrading");

    // Discovery was served and the create went to the core path.
    let reqs = server.cluster().requests();
    assert!(reqs.iter().any(|r| r.path == "/api/v1" || r.path == "/api"));
    assert!(
        reqs.iter()
            .any(|r| r.method == "POST" && r.path == "/api/v1/namespaces/org-giantswarm/events")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
