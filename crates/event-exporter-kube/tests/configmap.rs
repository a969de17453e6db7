//! `ConfigMapKey` and the ConfigMap Slack thread store against the fake apiserver on loopback:
//! create, update, other keys and labels kept, concurrent writers merged through 409 retries,
//! the size limit, and the seed fork's `threads` format.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use event_exporter_kube::configmap::{ConfigMapError, ConfigMapKey, MAX_ATTEMPTS};
use event_exporter_kube::threads::{ConfigMapThreadStore, ConfigMapThreadStores};
use event_exporter_sinks::slack::{ThreadInfo, ThreadStore, ThreadStoreError, ThreadStoreProvider};
use fake_apiserver::FakeApiServer;
use serde_json::json;

const NS: &str = "monitoring";

fn client(server: &FakeApiServer) -> kube::Client {
    let mut config = kube::Config::new(server.url().parse().unwrap());
    config.default_namespace = NS.into();
    kube::Client::try_from(config).unwrap()
}

fn stored(server: &FakeApiServer, name: &str) -> Option<serde_json::Value> {
    server
        .cluster()
        .get_object("v1", "ConfigMap", Some(NS), name)
}

fn puts(server: &FakeApiServer) -> usize {
    server
        .cluster()
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/configmaps/"))
        .count()
}

#[tokio::test]
async fn creates_updates_and_keeps_other_keys_and_labels() {
    let server = FakeApiServer::start().await.unwrap();
    let key = ConfigMapKey::new(client(&server), NS, "state", "progress");
    assert_eq!(key.describe(), "configmap monitoring/state key progress");
    assert_eq!(key.read().await.unwrap(), None, "no ConfigMap yet");

    key.update(|current| {
        assert_eq!(current, None);
        Some("1".into())
    })
    .await
    .unwrap();
    assert_eq!(key.read().await.unwrap().as_deref(), Some("1"));

    // Someone adds a label and another key; our update keeps both.
    let mut cm = stored(&server, "state").unwrap();
    cm["metadata"]["labels"] = json!({"app.kubernetes.io/name": "event-exporter"});
    cm["data"]["other"] = json!("keep me");
    server.cluster().put_object(cm);
    key.update(|current| {
        assert_eq!(current, Some("1"));
        Some("2".into())
    })
    .await
    .unwrap();
    let cm = stored(&server, "state").unwrap();
    assert_eq!(cm["data"], json!({"progress": "2", "other": "keep me"}));
    assert_eq!(
        cm["metadata"]["labels"],
        json!({"app.kubernetes.io/name": "event-exporter"})
    );

    // No change, no write.
    let before = puts(&server);
    key.update(|_| None).await.unwrap();
    key.update(|current| current.map(str::to_owned))
        .await
        .unwrap();
    assert_eq!(puts(&server), before);

    // Another key of the same ConfigMap that is not there yet reads as absent.
    let absent = ConfigMapKey::new(client(&server), NS, "state", "nothing");
    assert_eq!(absent.read().await.unwrap(), None);
}

#[tokio::test]
async fn values_over_the_configmap_limit_are_refused() {
    let server = FakeApiServer::start().await.unwrap();
    let key = ConfigMapKey::new(client(&server), NS, "big", "k");
    let err = key
        .update(|_| Some("x".repeat(1_000_001)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigMapError::TooLarge {
                value_bytes: 1_000_001,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("configmap monitoring/big key k"));
    assert!(stored(&server, "big").is_none(), "nothing was written");
}

/// A writer whose first read is overtaken by another handle: its PUT gets 409, it reads again
/// and applies its change to the other's value, so both changes survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_write_is_reapplied_to_the_fresh_value() {
    let server = FakeApiServer::start().await.unwrap();
    let a = ConfigMapKey::new(client(&server), NS, "shared", "list");
    let b = ConfigMapKey::new(client(&server), NS, "shared", "list");
    a.update(|_| Some("start".into())).await.unwrap();

    let mut calls = Vec::new();
    a.update(|current| {
        calls.push(current.map(str::to_owned));
        if calls.len() == 1 {
            // The other replica writes between our GET and our PUT.
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current()
                    .block_on(b.update(|v| Some(format!("{},b", v.unwrap_or_default()))))
            })
            .unwrap();
        }
        Some(format!("{},a", current.unwrap_or_default()))
    })
    .await
    .unwrap();
    assert_eq!(
        calls,
        vec![Some("start".to_owned()), Some("start,b".to_owned())]
    );
    assert_eq!(a.read().await.unwrap().as_deref(), Some("start,b,a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_conflicts_give_up_after_the_bound() {
    let server = FakeApiServer::start().await.unwrap();
    let a = ConfigMapKey::new(client(&server), NS, "busy", "k");
    let b = ConfigMapKey::new(client(&server), NS, "busy", "k");
    a.update(|_| Some("0".into())).await.unwrap();
    let mut n = 0;
    let err = a
        .update(|_| {
            n += 1;
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(b.update(|_| Some(format!("b{n}"))))
            })
            .unwrap();
            Some("a".into())
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConfigMapError::Conflict { attempts, .. } if attempts == MAX_ATTEMPTS),
        "{err}"
    );
    assert_eq!(n, MAX_ATTEMPTS);
}

#[tokio::test]
async fn concurrent_writers_lose_nothing() {
    let server = FakeApiServer::start().await.unwrap();
    let mut tasks = Vec::new();
    for writer in 0..4 {
        let key = ConfigMapKey::new(client(&server), NS, "counter", "items");
        tasks.push(tokio::spawn(async move {
            for i in 0..3 {
                key.update(|current| {
                    let mut items: Vec<String> = current
                        .map(|c| serde_json::from_str(c).unwrap())
                        .unwrap_or_default();
                    items.push(format!("{writer}-{i}"));
                    Some(serde_json::to_string(&items).unwrap())
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let key = ConfigMapKey::new(client(&server), NS, "counter", "items");
    let items: Vec<String> = serde_json::from_str(&key.read().await.unwrap().unwrap()).unwrap();
    assert_eq!(items.len(), 12, "{items:?}");
}

#[tokio::test]
async fn api_errors_name_the_configmap() {
    let server = FakeApiServer::start().await.unwrap();
    server.cluster().forbid("get", "configmaps");
    let key = ConfigMapKey::new(client(&server), NS, "secret-ish", "k");
    let err = key.read().await.unwrap_err();
    assert!(matches!(err, ConfigMapError::Api { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("configmap monitoring/secret-ish key k: "),
        "{err}"
    );
}

fn info(ts: &str, channel: &str) -> ThreadInfo {
    ThreadInfo {
        ts: ts.into(),
        channel_id: channel.into(),
    }
}

#[tokio::test]
async fn thread_store_round_trips_in_the_seed_format() {
    let server = FakeApiServer::start().await.unwrap();
    let provider = ConfigMapThreadStores::new(client(&server));
    let store = provider.configmap(NS, "thread-cache");
    assert_eq!(store.get("key").await.unwrap(), None);
    store.set("key", info("1.2", "C1")).await.unwrap();
    let cm = stored(&server, "thread-cache").unwrap();
    assert_eq!(
        cm["data"],
        json!({"threads": r#"{"key":{"Timestamp":"1.2","ChannelID":"C1"}}"#})
    );
    // A restarted exporter finds it.
    let reopened = provider.configmap(NS, "thread-cache");
    assert_eq!(reopened.get("key").await.unwrap(), Some(info("1.2", "C1")));
    reopened.remove("key").await.unwrap();
    assert_eq!(reopened.get("key").await.unwrap(), None);
    assert_eq!(
        stored(&server, "thread-cache").unwrap()["data"]["threads"],
        "{}"
    );
}

#[tokio::test]
async fn a_seed_fork_configmap_is_read_and_kept() {
    let server = FakeApiServer::start().await.unwrap();
    server.cluster().put_object(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "release-name-thread-cache", "namespace": NS,
                     "labels": {"app.kubernetes.io/instance": "release-name"}},
        "data": {"threads": "{\"org-acme/prod1/25.0.0\":{\"Timestamp\":\"1700000000.000100\",\"ChannelID\":\"C0UPGRADES\"}}"}
    }));
    let store = ConfigMapThreadStore::new(client(&server), NS, "release-name-thread-cache");
    assert_eq!(
        store.get("org-acme/prod1/25.0.0").await.unwrap(),
        Some(info("1700000000.000100", "C0UPGRADES"))
    );
    store
        .set("org-acme/prod2/25.0.0", info("2.0", "C0UPGRADES"))
        .await
        .unwrap();
    let cm = stored(&server, "release-name-thread-cache").unwrap();
    assert_eq!(
        cm["metadata"]["labels"],
        json!({"app.kubernetes.io/instance": "release-name"})
    );
    let threads: serde_json::Value =
        serde_json::from_str(cm["data"]["threads"].as_str().unwrap()).unwrap();
    assert_eq!(
        threads,
        json!({
            "org-acme/prod1/25.0.0": {"Timestamp": "1700000000.000100", "ChannelID": "C0UPGRADES"},
            "org-acme/prod2/25.0.0": {"Timestamp": "2.0", "ChannelID": "C0UPGRADES"}
        })
    );
}

#[tokio::test]
async fn two_replicas_keep_each_others_threads() {
    let server = FakeApiServer::start().await.unwrap();
    let a: Arc<dyn ThreadStore> = Arc::new(ConfigMapThreadStore::new(client(&server), NS, "tc"));
    let b: Arc<dyn ThreadStore> = Arc::new(ConfigMapThreadStore::new(client(&server), NS, "tc"));
    // Both load (empty) before either writes.
    assert_eq!(a.get("x").await.unwrap(), None);
    assert_eq!(b.get("x").await.unwrap(), None);
    a.set("from-a", info("1", "C1")).await.unwrap();
    b.set("from-b", info("2", "C2")).await.unwrap();
    let fresh = ConfigMapThreadStore::new(client(&server), NS, "tc");
    assert_eq!(fresh.get("from-a").await.unwrap(), Some(info("1", "C1")));
    assert_eq!(fresh.get("from-b").await.unwrap(), Some(info("2", "C2")));
    // b's cache took in a's thread with its write.
    assert_eq!(b.get("from-a").await.unwrap(), Some(info("1", "C1")));
}

#[tokio::test]
async fn a_corrupt_threads_value_is_reported_then_repaired_by_set() {
    let server = FakeApiServer::start().await.unwrap();
    server.cluster().put_object(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "tc", "namespace": NS},
        "data": {"threads": "not json", "other": "kept"}
    }));
    let store = ConfigMapThreadStore::new(client(&server), NS, "tc");
    let err = store.get("k").await.unwrap_err();
    assert!(matches!(err, ThreadStoreError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("configmap monitoring/tc key threads")
    );
    store.set("k", info("1", "C1")).await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), Some(info("1", "C1")));
    let cm = stored(&server, "tc").unwrap();
    assert_eq!(
        cm["data"],
        json!({"threads": r#"{"k":{"Timestamp":"1","ChannelID":"C1"}}"#, "other": "kept"})
    );
}

#[tokio::test]
async fn api_failures_are_backend_errors() {
    let server = FakeApiServer::start().await.unwrap();
    server.cluster().forbid("get", "configmaps");
    let store = ConfigMapThreadStore::new(client(&server), NS, "tc");
    let err = store.get("k").await.unwrap_err();
    assert!(matches!(err, ThreadStoreError::Backend { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("thread store configmap monitoring/tc key threads: ")
    );
    // Nothing cached from the failure: once allowed, it reads.
    server.cluster().allow("get", "configmaps");
    assert_eq!(store.get("k").await.unwrap(), None);
}
