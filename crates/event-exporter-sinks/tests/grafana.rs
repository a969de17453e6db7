//! Grafana annotations against a fake Grafana on loopback: the seed README's Graphite
//! annotations through a webhook, the native sink's annotations and regions, auth and retries.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::time::Duration;

use event_exporter_core::config::Config;
use event_exporter_core::{EnrichedEvent, Router};
use event_exporter_sinks::delivery::{DispatchOptions, Dispatcher, RetryPolicy, StatsSnapshot};
use serde_json::json;
use support::fake_grafana::{FakeGrafana, Fault};

const TOKEN: &str = "glsa_test";

fn options() -> DispatchOptions {
    DispatchOptions {
        queue_capacity: 64,
        retry: RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            max_elapsed: Duration::from_secs(10),
        },
    }
}

fn event(uid: &str, kind: &str, reason: &str, at: &str) -> Arc<EnrichedEvent> {
    let ev = json!({
        "metadata": {"name": format!("x.{uid}"), "namespace": "org-acme", "uid": uid},
        "involvedObject": {"kind": kind, "namespace": "org-acme", "name": "prod1",
                           "apiVersion": "cluster.x-k8s.io/v1beta2", "uid": "obj-1"},
        "reason": reason, "message": format!("{reason} happened"), "type": "Normal", "count": 1,
        "source": {"component": "capi"},
        "firstTimestamp": at, "lastTimestamp": at
    });
    Arc::new(EnrichedEvent::from_json_value(&ev).unwrap())
}

async fn deliver(yaml: &str, events: Vec<Arc<EnrichedEvent>>) -> Vec<(String, StatsSnapshot)> {
    let cfg = Config::from_yaml(yaml).unwrap();
    let names: Vec<&str> = cfg.receivers.iter().map(|r| r.name.as_str()).collect();
    let router = Router::compile(&cfg.route, &names).unwrap();
    let d = Dispatcher::start(
        router,
        event_exporter_sinks::build_all(&cfg).unwrap(),
        options(),
    );
    for ev in events {
        d.dispatch_wait(ev).await;
    }
    d.shutdown(Duration::from_secs(30)).await
}

#[tokio::test]
async fn the_seed_readme_graphite_annotations_through_a_webhook() {
    let fake = FakeGrafana::start(TOKEN, "viewer", "admin:admin").await;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/compat/configs/seed-readme.yaml"
    ))
    .unwrap();
    let url = fake.url();
    let cfg = Config::load_str(&text, |name| match name {
        "GRAFANA_URL" => Some(url.clone()),
        "GRAFANA_TOKEN" => Some(TOKEN.into()),
        "WEBHOOK_URL" => Some(format!("{url}/unused")),
        _ => None,
    })
    .unwrap();
    let names: Vec<&str> = cfg.receivers.iter().map(|r| r.name.as_str()).collect();
    let router = Router::compile(&cfg.route, &names).unwrap();
    let d = Dispatcher::start(
        router,
        event_exporter_sinks::build_all(&cfg).unwrap(),
        options(),
    );
    d.dispatch_wait(event(
        "a",
        "MachineDeployment",
        "ScalingUp",
        "2026-11-23T10:00:00Z",
    ))
    .await;
    d.dispatch_wait(event(
        "b",
        "HelmRelease",
        "UpgradeSucceeded",
        "2026-11-23T10:01:00Z",
    ))
    .await;
    let stats = d.shutdown(Duration::from_secs(30)).await;
    let grafana = stats.iter().find(|(n, _)| n == "grafana-TEAM").unwrap().1;
    assert_eq!(
        grafana,
        StatsSnapshot {
            sent: 2,
            retried: 0,
            failed: 0,
            dropped: 0
        }
    );
    let notes = fake.annotations();
    assert_eq!(notes.len(), 2);
    assert_eq!(
        notes[0].text,
        "MachineDeployment - ScalingUp\nScalingUp happened for MachineDeployment org-acme/prod1 on gs-prod-1 reported by capi"
    );
    assert_eq!(
        notes[0].tags,
        [
            "event",
            "TEAM",
            "ScalingUp",
            "Normal",
            "MachineDeployment",
            "prod1",
            "gs-prod-1",
            "acme",
            "capa",
            "stable",
            "capi"
        ]
    );
    assert_eq!(notes[1].tags[2], "UpgradeSucceeded");
}

#[tokio::test]
async fn native_annotations_with_dashboard_org_and_regions() {
    let fake = FakeGrafana::start(TOKEN, "viewer", "admin:admin").await;
    let yaml = format!(
        r#"route:
  match:
    - kind: Cluster
      receiver: grafana
receivers:
  - name: grafana
    grafana:
      url: {}
      token: {TOKEN}
      orgId: 1
      dashboardUID: upgrades
      panelId: 4
      text: "{{{{ .Reason }}}}: {{{{ .Message }}}}"
      tags: ["k8s", "kind:{{{{ .InvolvedObject.Kind }}}}", "reason:{{{{ .Reason }}}}"]
      regionKey: "{{{{ .InvolvedObject.Namespace }}}}/{{{{ .InvolvedObject.Name }}}}"
      endCondition: '{{{{ if eq .Reason "Upgraded" }}}}true{{{{ end }}}}'
"#,
        fake.url()
    );
    fake.fail_next([Fault::Status(502), Fault::Reset]);
    let stats = deliver(
        &yaml,
        vec![
            event(
                "a",
                "Cluster",
                "UpgradingWithNodeRoll",
                "2026-11-23T10:00:00Z",
            ),
            event(
                "b",
                "Cluster",
                "UpgradedControlPlane",
                "2026-11-23T10:05:00Z",
            ),
            event("c", "Cluster", "Upgraded", "2026-11-23T10:20:00Z"),
            event("d", "Pod", "BackOff", "2026-11-23T10:21:00Z"),
        ],
    )
    .await;
    assert_eq!(
        stats[0].1,
        StatsSnapshot {
            sent: 3,
            retried: 2,
            failed: 0,
            dropped: 0
        }
    );
    let notes = fake.annotations();
    assert_eq!(
        notes.len(),
        2,
        "start region + a point inside it; the end patches the start"
    );
    let region = &notes[0];
    assert_eq!(
        region.text,
        "UpgradingWithNodeRoll: UpgradingWithNodeRoll happened"
    );
    assert_eq!(
        region.tags,
        ["k8s", "kind:Cluster", "reason:UpgradingWithNodeRoll"]
    );
    assert_eq!(region.dashboard_uid.as_deref(), Some("upgrades"));
    assert_eq!(region.panel_id, Some(4));
    assert_eq!(region.time, 1_795_428_000_000);
    assert_eq!(
        region.time_end, 1_795_429_200_000,
        "the upgrade shows as a 20-minute span"
    );
    assert_eq!(notes[1].time, notes[1].time_end);
    let patch = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(patch.path, "/api/annotations/1");
    assert_eq!(patch.body, r#"{"timeEnd":1795429200000}"#);
    for r in fake.requests() {
        assert_eq!(r.header("x-grafana-org-id").as_deref(), Some("1"));
        assert_eq!(
            r.header("authorization").as_deref(),
            Some("Bearer glsa_test")
        );
    }
}

#[tokio::test]
async fn basic_auth_and_permanent_errors() {
    let fake = FakeGrafana::start(TOKEN, "viewer", "admin:s3cret").await;
    let base = format!(
        "route:\n  match: [{{receiver: g}}]\nreceivers:\n- name: g\n  grafana:\n    url: {}\n    text: '{{{{ .Reason }}}}'\n",
        fake.url()
    );
    let ok = deliver(
        &format!("{base}    username: admin\n    password: s3cret\n"),
        vec![event("a", "Pod", "BackOff", "2026-11-23T10:00:00Z")],
    )
    .await;
    assert_eq!(ok[0].1.sent, 1);
    let forbidden = deliver(
        &format!("{base}    token: viewer\n"),
        vec![event("b", "Pod", "BackOff", "2026-11-23T10:00:00Z")],
    )
    .await;
    assert_eq!(
        forbidden[0].1,
        StatsSnapshot {
            sent: 0,
            retried: 0,
            failed: 1,
            dropped: 0
        }
    );
    let unauthorized = deliver(
        &format!("{base}    token: wrong\n"),
        vec![event("c", "Pod", "BackOff", "2026-11-23T10:00:00Z")],
    )
    .await;
    assert_eq!(unauthorized[0].1.failed, 1);
    assert_eq!(fake.requests().len(), 3, "401 and 403 are not retried");
}

#[tokio::test]
async fn native_graphite_api() {
    let fake = FakeGrafana::start(TOKEN, "viewer", "a:b").await;
    let yaml = format!(
        "route:\n  match: [{{receiver: g}}]\nreceivers:\n- name: g\n  grafana:\n    url: {}\n    token: {TOKEN}\n    api: graphite\n    what: '{{{{ .InvolvedObject.Kind }}}} - {{{{ .Reason }}}}'\n    data: '{{{{ .Message }}}}'\n    tags: [k8s, '{{{{ .Type }}}}']\n",
        fake.url()
    );
    let stats = deliver(
        &yaml,
        vec![event("a", "Pod", "BackOff", "2026-11-23T10:00:00Z")],
    )
    .await;
    assert_eq!(stats[0].1.sent, 1);
    let notes = fake.annotations();
    assert_eq!(notes[0].text, "Pod - BackOff\nBackOff happened");
    assert_eq!(notes[0].tags, ["k8s", "Normal"]);
    assert_eq!(notes[0].time, 1_795_428_000_000);
}

#[test]
fn bad_grafana_config_is_refused_with_the_receiver_name() {
    let cfg = Config::from_yaml(
        "receivers:\n- name: g\n  grafana: {text: x}\n- name: h\n  grafana: {url: 'ftp://x', token: t, api: graphite, what: w, regionKey: k, endCondition: e}\n- name: i\n  grafana: {url: 'http://127.0.0.1:9', token: t, text: '{{ .Nope }}', regionKey: k}\n",
    )
    .unwrap();
    let text: Vec<String> = event_exporter_sinks::build_all(&cfg)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    for needle in [
        "receivers[0] `g` (grafana): url: missing",
        "receivers[0] `g` (grafana): token: missing",
        "receivers[1] `h` (grafana): url: `ftp://x` must be an http:// or https:// URL",
        "receivers[1] `h` (grafana): regionKey, dashboardUID, panelId: the graphite API",
        "receivers[2] `i` (grafana): regionKey, endCondition: a region needs both",
    ] {
        assert!(
            text.iter().any(|e| e.starts_with(needle)),
            "missing {needle:?} in {text:#?}"
        );
    }
}
