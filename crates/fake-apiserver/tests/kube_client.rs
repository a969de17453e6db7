//! kube-rs against the fake: typed list paging, selectors, POST/PATCH/GET, the runtime watcher
//! (initial list, live events, relist after 410), leases with optimistic concurrency.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{kube_client, legacy_event};
use fake_apiserver::FakeApiServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

#[tokio::test]
async fn typed_list_paging_selectors_and_writes() {
    let server = FakeApiServer::start().await.unwrap();
    let c = server.cluster();
    for i in 0..1200 {
        let ns = format!("ns-{}", i % 4);
        let reason = if i % 10 == 0 { "Rare" } else { "Common" };
        c.create_event(&ns, legacy_event(&ns, &format!("ev-{i:05}"), reason))
            .unwrap();
    }
    let client = kube_client(&server.url());
    let events: Api<Event> = Api::all(client.clone());

    let mut lp = ListParams::default().limit(500);
    let mut pages = Vec::new();
    let mut total = 0;
    loop {
        let page = events.list(&lp).await.unwrap();
        total += page.items.len();
        pages.push(page.metadata.resource_version.clone().unwrap());
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = lp.continue_token(&token),
            None => break,
        }
    }
    assert_eq!(pages.len(), 3);
    assert_eq!(total, 1200);
    assert!(
        pages
            .iter()
            .all(|rv| *rv == c.resource_version().to_string())
    );

    let rare = events
        .list(&ListParams::default().fields("reason=Rare"))
        .await
        .unwrap();
    assert_eq!(rare.items.len(), 120);
    assert!(
        rare.items
            .iter()
            .all(|e| e.reason.as_deref() == Some("Rare"))
    );
    let err = events
        .list(&ListParams::default().fields("nope=1"))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 400);
            assert_eq!(s.message, "field label not supported: nope");
        }
        other => panic!("unexpected {other:?}"),
    }

    let ns_events: Api<Event> = Api::namespaced(client.clone(), "default");
    let body: Event = serde_json::from_value(legacy_event("default", "posted", "Posted")).unwrap();
    let created = ns_events
        .create(&PostParams::default(), &body)
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    let rv = created.metadata.resource_version.clone().unwrap();
    let patched = ns_events
        .patch(
            "posted",
            &PatchParams::default(),
            &Patch::Strategic(json!({"count": 2, "message": "twice"})),
        )
        .await
        .unwrap();
    assert_eq!(patched.count, Some(2));
    assert_ne!(patched.metadata.resource_version.unwrap(), rv);
    let got = ns_events.get("posted").await.unwrap();
    assert_eq!(got.message.as_deref(), Some("twice"));
    assert_eq!(got.first_timestamp, created.first_timestamp);
    let err = ns_events
        .create(&PostParams::default(), &body)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err:?}"
    );
    let missing = ns_events.get_opt("nope").await.unwrap();
    assert!(missing.is_none());

    // The events.k8s.io view through kube's typed API.
    let v1: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client, "default");
    let ev = v1.get("posted").await.unwrap();
    assert_eq!(ev.deprecated_count, Some(2));
    assert_eq!(ev.note.as_deref(), Some("twice"));
    assert!(ev.event_time.is_none());
}

type WatchItem = Result<watcher::Event<Event>, watcher::Error>;

/// Drive the watcher in a task (it only issues requests while polled) and hand its items over.
fn drive(api: Api<Event>, cfg: watcher::Config) -> tokio::sync::mpsc::UnboundedReceiver<WatchItem> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = watcher(api, cfg).boxed();
        while let Some(item) = stream.next().await {
            if tx.send(item).is_err() {
                break;
            }
        }
    });
    rx
}

async fn next_event(rx: &mut tokio::sync::mpsc::UnboundedReceiver<WatchItem>) -> WatchItem {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("watcher event within 20s")
        .expect("stream does not end")
}

fn name(e: &Event) -> &str {
    e.metadata.name.as_deref().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_watcher_lists_watches_and_relists_after_410() {
    let server = FakeApiServer::start().await.unwrap();
    let c = server.cluster();
    for i in 0..3 {
        c.create_event("default", legacy_event("default", &format!("pre-{i}"), "A"))
            .unwrap();
    }
    let events: Api<Event> = Api::all(kube_client(&server.url()));
    let mut stream = drive(events, watcher::Config::default());

    assert!(matches!(
        next_event(&mut stream).await.unwrap(),
        watcher::Event::Init
    ));
    let mut initial = Vec::new();
    loop {
        match next_event(&mut stream).await.unwrap() {
            watcher::Event::InitApply(e) => initial.push(name(&e).to_string()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(initial, ["pre-0", "pre-1", "pre-2"]);

    // The watch request is in flight once the server has registered it.
    wait_for(|| c.watchers_len() == 1).await;
    c.create_event("default", legacy_event("default", "live", "A"))
        .unwrap();
    match next_event(&mut stream).await.unwrap() {
        watcher::Event::Apply(e) => assert_eq!(name(&e), "live"),
        other => panic!("unexpected {other:?}"),
    }
    let watch_req = c
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.param("watch").is_some())
        .unwrap();
    assert_eq!(
        watch_req.param("allowWatchBookmarks").as_deref(),
        Some("true")
    );
    assert_eq!(watch_req.param("timeoutSeconds").as_deref(), Some("290"));

    // An abrupt cut: kube re-watches from its last RV without relisting.
    c.cut_watches();
    wait_for(|| c.watchers_len() == 1).await;
    c.create_event("default", legacy_event("default", "after-cut", "A"))
        .unwrap();
    loop {
        match next_event(&mut stream).await {
            Err(_) => {} // the cut surfaces as a watch error
            Ok(watcher::Event::Apply(e)) => {
                assert_eq!(name(&e), "after-cut");
                break;
            }
            Ok(other) => panic!("unexpected {other:?}"),
        }
    }

    // Compaction + a write + the 410 ERROR event in the open stream: kube relists.
    c.compact();
    c.create_event("default", legacy_event("default", "after-compact", "A"))
        .unwrap();
    c.expire_watches();
    let mut saw_410 = false;
    loop {
        match next_event(&mut stream).await {
            Err(e) => {
                saw_410 |= format!("{e:?}").contains("410");
            }
            Ok(watcher::Event::Init) => break,
            Ok(watcher::Event::Apply(e)) => assert_eq!(name(&e), "after-compact"),
            Ok(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(saw_410, "the 410 surfaces as a watch error");
    let mut relisted = Vec::new();
    loop {
        match next_event(&mut stream).await.unwrap() {
            watcher::Event::InitApply(e) => relisted.push(name(&e).to_string()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        relisted,
        [
            "after-compact",
            "after-cut",
            "live",
            "pre-0",
            "pre-1",
            "pre-2"
        ]
    );
    let lists = c
        .requests()
        .iter()
        .filter(|r| r.param("watch").is_none())
        .count();
    assert_eq!(lists, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_watcher_streaming_list() {
    let server = FakeApiServer::start().await.unwrap();
    let c = server.cluster();
    c.create_event("default", legacy_event("default", "one", "A"))
        .unwrap();
    let events: Api<Event> = Api::all(kube_client(&server.url()));
    let cfg = watcher::Config::default().streaming_lists();
    let mut stream = drive(events, cfg);
    assert!(matches!(
        next_event(&mut stream).await.unwrap(),
        watcher::Event::Init
    ));
    assert!(
        matches!(next_event(&mut stream).await.unwrap(), watcher::Event::InitApply(e) if name(&e) == "one")
    );
    assert!(matches!(
        next_event(&mut stream).await.unwrap(),
        watcher::Event::InitDone
    ));
    c.patch_event("default", "one", json!({"count": 9}))
        .unwrap();
    match next_event(&mut stream).await.unwrap() {
        watcher::Event::Apply(e) => assert_eq!(e.count, Some(9)),
        other => panic!("unexpected {other:?}"),
    }
    c.delete_event("default", "one").unwrap();
    assert!(
        matches!(next_event(&mut stream).await.unwrap(), watcher::Event::Delete(e) if name(&e) == "one")
    );
}

async fn wait_for(mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 10s");
}

#[tokio::test]
async fn leases_optimistic_concurrency() {
    let server = FakeApiServer::start().await.unwrap();
    let leases: Api<Lease> = Api::namespaced(kube_client(&server.url()), "monitoring");
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "exporter", "namespace": "monitoring"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15,
                 "acquireTime": "2024-05-01T12:00:00.000000Z", "renewTime": "2024-05-01T12:00:00.000000Z",
                 "leaseTransitions": 0}
    }))
    .unwrap();
    let err = leases.get("exporter").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.message == "leases.coordination.k8s.io \"exporter\" not found"),
        "{err:?}"
    );
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let err = leases
        .create(&PostParams::default(), &lease)
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"));
    let got = leases.get("exporter").await.unwrap();
    assert_eq!(
        got.metadata.resource_version,
        created.metadata.resource_version
    );

    // A successful renew with the current RV.
    let mut renew = got.clone();
    renew.spec.as_mut().unwrap().renew_time = None;
    let renewed = leases
        .replace("exporter", &PostParams::default(), &renew)
        .await
        .unwrap();
    assert_ne!(
        renewed.metadata.resource_version,
        got.metadata.resource_version
    );

    // The stale RV from the first GET now conflicts.
    let err = leases
        .replace("exporter", &PostParams::default(), &got)
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
            assert_eq!(
                s.message,
                "Operation cannot be fulfilled on leases.coordination.k8s.io \"exporter\": the object has been modified; please apply your changes to the latest version and try again"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let mut no_rv = got.clone();
    no_rv.metadata.resource_version = None;
    let err = leases
        .replace("exporter", &PostParams::default(), &no_rv)
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422);
            assert!(
                s.message.contains(
                    "metadata.resourceVersion: Invalid value: 0: must be specified for an update"
                ),
                "{}",
                s.message
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let listed = leases.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let all: Vec<Lease> = watcher(leases.clone(), watcher::Config::default())
        .take_while(|e| futures::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
        .try_filter_map(|e| async move {
            Ok(match e {
                watcher::Event::InitApply(l) => Some(l),
                _ => None,
            })
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    leases
        .delete("exporter", &Default::default())
        .await
        .unwrap();
    assert!(leases.get_opt("exporter").await.unwrap().is_none());
}
