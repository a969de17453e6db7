//! Wire-level protocol tests with a raw HTTP/1.1 client (exact status codes, lines, chunking).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{End, get, legacy_event, request, send_json};
use fake_apiserver::{FakeApiServer, Options};
use serde_json::{Value, json};

async fn server_with_events(n: usize) -> FakeApiServer {
    let server = FakeApiServer::start().await.unwrap();
    let c = server.cluster();
    for i in 0..n {
        let ns = format!("ns-{}", i % 3);
        c.create_event(
            &ns,
            legacy_event(
                &ns,
                &format!("ev-{i:04}"),
                if i % 2 == 0 { "A" } else { "B" },
            ),
        )
        .unwrap();
    }
    server
}

#[tokio::test]
async fn list_pages_share_one_rv_items_sorted_without_type() {
    let server = server_with_events(25).await;
    let addr = server.addr();
    let mut names = Vec::new();
    let mut rvs = Vec::new();
    let mut path = "/api/v1/events?limit=10".to_string();
    let mut pages = 0;
    loop {
        let (code, body) = get(addr, &path).await;
        assert_eq!(code, 200);
        assert_eq!(body["kind"], "EventList");
        assert_eq!(body["apiVersion"], "v1");
        // A write between pages must not change the page RV.
        if pages == 0 {
            server
                .cluster()
                .create_event("zz", legacy_event("zz", "late", "A"))
                .unwrap();
        }
        pages += 1;
        rvs.push(
            body["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        for item in body["items"].as_array().unwrap() {
            assert!(item.get("kind").is_none() && item.get("apiVersion").is_none());
            assert_eq!(item["reportingComponent"], "");
            assert_eq!(item["eventTime"], Value::Null);
            names.push(format!(
                "{}/{}",
                item["metadata"]["namespace"].as_str().unwrap(),
                item["metadata"]["name"].as_str().unwrap()
            ));
        }
        match body["metadata"]["continue"].as_str() {
            Some(c) if !c.is_empty() => path = format!("/api/v1/events?limit=10&continue={c}"),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert!(rvs.iter().all(|r| *r == rvs[0]), "{rvs:?}");
    assert_eq!(rvs[0], "26");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(
        names.len(),
        26,
        "25 + the late one (documented: pages read current data)"
    );

    // Namespaced list + field selectors.
    let (code, body) = get(
        addr,
        "/api/v1/namespaces/ns-1/events?fieldSelector=reason%3DA",
    )
    .await;
    assert_eq!(code, 200);
    let items = body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(
        items
            .iter()
            .all(|i| i["reason"] == "A" && i["metadata"]["namespace"] == "ns-1")
    );
    let (code, body) = get(
        addr,
        "/api/v1/events?fieldSelector=reason!%3DA,involvedObject.kind%3DPod",
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["reason"] == "B")
    );

    let (code, body) = get(addr, "/api/v1/events?fieldSelector=foo%3Dbar").await;
    assert_eq!(code, 400);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["message"], "field label not supported: foo");
    let (code, body) = get(addr, "/api/v1/events?sendInitialEvents=true").await;
    assert_eq!(code, 422);
    assert_eq!(body["reason"], "Invalid");

    // Expired continue token: HTTP 410 with a fresh token in metadata.continue.
    let (_, body) = get(addr, "/api/v1/events?limit=5").await;
    let token = body["metadata"]["continue"].as_str().unwrap().to_string();
    server.cluster().expire_continue_tokens();
    let (code, body) = get(addr, &format!("/api/v1/events?limit=5&continue={token}")).await;
    assert_eq!(code, 410);
    assert_eq!(body["reason"], "Expired");
    let fresh = body["metadata"]["continue"].as_str().unwrap();
    let (code, _) = get(addr, &format!("/api/v1/events?limit=5&continue={fresh}")).await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn watch_initial_state_live_replay_and_410() {
    let server = server_with_events(3).await;
    let addr = server.addr();
    let c = server.cluster();
    let mut w = request(
        addr,
        "GET",
        "/api/v1/namespaces/ns-0/events?watch=true",
        &[],
        None,
    )
    .await;
    assert_eq!(w.status, 200);
    assert!(w.header("transfer-encoding").unwrap().contains("chunked"));
    let first = w.next_json().await;
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["kind"], "Event");
    assert_eq!(first["object"]["apiVersion"], "v1");
    assert_eq!(first["object"]["metadata"]["name"], "ev-0000");
    let rv_before = c.resource_version();
    c.patch_event("ns-0", "ev-0000", json!({"count": 2, "message": "again"}))
        .unwrap();
    c.create_event("ns-1", legacy_event("ns-1", "other-ns", "A"))
        .unwrap();
    c.create_event("ns-0", legacy_event("ns-0", "new", "A"))
        .unwrap();
    let m = w.next_json().await;
    assert_eq!(m["type"], "MODIFIED");
    assert_eq!(m["object"]["count"], 2);
    assert_eq!(
        m["object"]["metadata"]["resourceVersion"],
        (rv_before + 1).to_string()
    );
    let a = w.next_json().await;
    assert_eq!(a["type"], "ADDED");
    assert_eq!(
        a["object"]["metadata"]["name"], "new",
        "ns-1 event must not be delivered"
    );
    c.delete_event("ns-0", "new").unwrap();
    let d = w.next_json().await;
    assert_eq!(d["type"], "DELETED");
    assert_eq!(
        d["object"]["metadata"]["resourceVersion"],
        c.resource_version().to_string()
    );

    // Replay from an RV inside the window: only later changes, no synthetic ADDED.
    let mut r = request(
        addr,
        "GET",
        &format!("/api/v1/events?watch=1&resourceVersion={rv_before}&timeoutSeconds=1"),
        &[],
        None,
    )
    .await;
    let mut types = Vec::new();
    while let Ok(line) = r.next_line().await {
        let v: Value = serde_json::from_str(&line).unwrap();
        types.push(v["type"].as_str().unwrap().to_string());
    }
    assert_eq!(types, ["MODIFIED", "ADDED", "ADDED", "DELETED"]);

    // After compaction an old RV gets 200 + one ERROR line with code 410, then the end.
    c.compact();
    let mut old = request(
        addr,
        "GET",
        &format!("/api/v1/events?watch=true&resourceVersion={rv_before}"),
        &[],
        None,
    )
    .await;
    assert_eq!(old.status, 200);
    let e = old.next_json().await;
    assert_eq!(e["type"], "ERROR");
    assert_eq!(e["object"]["kind"], "Status");
    assert_eq!(e["object"]["code"], 410);
    assert_eq!(e["object"]["reason"], "Expired");
    let current = c.resource_version();
    assert_eq!(
        e["object"]["message"],
        format!("too old resource version: {rv_before} ({current})")
    );
    assert_eq!(old.next_line().await, Err(End::Clean));
    // Watching from the current RV still works after compaction.
    let mut ok = request(
        addr,
        "GET",
        &format!("/api/v1/events?watch=true&resourceVersion={current}&timeoutSeconds=1"),
        &[],
        None,
    )
    .await;
    assert_eq!(ok.next_line().await, Err(End::Clean));
}

#[tokio::test]
async fn watch_window_overflow_gives_410() {
    let server = FakeApiServer::start_with(Options {
        watch_window: 5,
        ..Options::default()
    })
    .await
    .unwrap();
    let c = server.cluster();
    let start = c.resource_version();
    for i in 0..10 {
        c.create_event("default", legacy_event("default", &format!("e{i}"), "A"))
            .unwrap();
    }
    let mut w = request(
        server.addr(),
        "GET",
        &format!("/api/v1/events?watch=true&resourceVersion={start}"),
        &[],
        None,
    )
    .await;
    let e = w.next_json().await;
    assert_eq!(e["object"]["code"], 410);
    // Inside the window: the last 5 changes are replayed.
    let inside = c.resource_version() - 5;
    let mut w = request(
        server.addr(),
        "GET",
        &format!("/api/v1/events?watch=true&resourceVersion={inside}&timeoutSeconds=1"),
        &[],
        None,
    )
    .await;
    let mut n = 0;
    while w.next_line().await.is_ok() {
        n += 1;
    }
    assert_eq!(n, 5);
}

#[tokio::test]
async fn bookmarks_timeout_cut_and_injected_lines() {
    let server = server_with_events(1).await;
    let addr = server.addr();
    let c = server.cluster();
    let rv = c.resource_version();
    let mut w = request(
        addr,
        "GET",
        &format!("/api/v1/events?watch=true&allowWatchBookmarks=true&resourceVersion={rv}"),
        &[],
        None,
    )
    .await;
    let mut plain = request(
        addr,
        "GET",
        &format!("/api/v1/events?watch=true&resourceVersion={rv}"),
        &[],
        None,
    )
    .await;
    // Both watchers registered before we act (registration happens before the response head).
    assert_eq!(c.watchers_len(), 2);
    c.send_bookmark();
    c.inject_watch_line("this is not json");
    let b = w.next_json().await;
    assert_eq!(
        b,
        json!({"type": "BOOKMARK", "object": {"kind": "Event", "apiVersion": "v1",
        "metadata": {"resourceVersion": rv.to_string(), "creationTimestamp": null}}})
    );
    assert_eq!(w.next_line().await.unwrap(), "this is not json");
    // The watcher without allowWatchBookmarks gets only the injected line.
    assert_eq!(plain.next_line().await.unwrap(), "this is not json");
    c.cut_watches();
    assert_eq!(w.next_line().await, Err(End::Abrupt));
    assert_eq!(plain.next_line().await, Err(End::Abrupt));

    // timeoutSeconds: clean EOF (the terminating chunk) at the deadline.
    let started = std::time::Instant::now();
    let mut t = request(
        addr,
        "GET",
        &format!("/api/v1/events?watch=true&resourceVersion={rv}&timeoutSeconds=1"),
        &[],
        None,
    )
    .await;
    assert_eq!(t.next_line().await, Err(End::Clean));
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Periodic bookmarks.
    let fast = FakeApiServer::start_with(Options {
        bookmark_interval: Some(Duration::from_millis(50)),
        ..Options::default()
    })
    .await
    .unwrap();
    let mut p = request(
        fast.addr(),
        "GET",
        "/api/v1/events?watch=true&allowWatchBookmarks=true",
        &[],
        None,
    )
    .await;
    assert_eq!(p.next_json().await["type"], "BOOKMARK");
}

#[tokio::test]
async fn streaming_list_sends_initial_events_end_bookmark() {
    let server = server_with_events(4).await;
    let addr = server.addr();
    let (code, body) = get(addr, "/api/v1/events?watch=true&sendInitialEvents=true").await;
    assert_eq!(code, 422, "{body}");
    let (code, _) = get(
        addr,
        "/api/v1/events?watch=true&resourceVersionMatch=NotOlderThan&resourceVersion=0",
    )
    .await;
    assert_eq!(code, 422);
    let mut w = request(
        addr,
        "GET",
        "/api/v1/events?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0",
        &[],
        None,
    )
    .await;
    for _ in 0..4 {
        assert_eq!(w.next_json().await["type"], "ADDED");
    }
    let b = w.next_json().await;
    assert_eq!(b["type"], "BOOKMARK");
    assert_eq!(
        b["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(
        b["object"]["metadata"]["resourceVersion"],
        server.cluster().resource_version().to_string()
    );

    let gated = FakeApiServer::start_with(Options {
        watch_list: false,
        ..Options::default()
    })
    .await
    .unwrap();
    let (code, _) = get(
        gated.addr(),
        "/api/v1/events?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
    )
    .await;
    assert_eq!(code, 422);
}

#[tokio::test]
async fn watch_selector_transitions() {
    let server = server_with_events(0).await;
    let c = server.cluster();
    c.create_event("default", legacy_event("default", "x", "A"))
        .unwrap();
    let mut w = request(
        server.addr(),
        "GET",
        "/api/v1/events?watch=true&fieldSelector=reason%3DA",
        &[],
        None,
    )
    .await;
    assert_eq!(w.next_json().await["type"], "ADDED");
    c.create_event("default", legacy_event("default", "y", "B"))
        .unwrap();
    c.patch_event("default", "x", json!({"reason": "B"}))
        .unwrap();
    let d = w.next_json().await;
    assert_eq!(
        (d["type"].as_str(), d["object"]["metadata"]["name"].as_str()),
        (Some("DELETED"), Some("x"))
    );
    c.patch_event("default", "y", json!({"reason": "A"}))
        .unwrap();
    let a = w.next_json().await;
    assert_eq!(
        (a["type"].as_str(), a["object"]["metadata"]["name"].as_str()),
        (Some("ADDED"), Some("y"))
    );
}

#[tokio::test]
async fn event_create_rules_and_events_v1_view() {
    let server = server_with_events(0).await;
    let addr = server.addr();
    let c = server.cluster();
    let created = c.create_event("ns", legacy_event("ns", "a", "R")).unwrap();
    assert_eq!(created["kind"], "Event");
    assert!(created["metadata"]["uid"].as_str().unwrap().len() == 36);
    assert!(
        created["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(
        c.create_event("ns", legacy_event("ns", "a", "R"))
            .unwrap_err()
            .code,
        409
    );
    assert_eq!(
        c.create_event("other", legacy_event("ns", "b", "R"))
            .unwrap_err()
            .code,
        400
    );
    let mut bad = legacy_event("ns", "c", "R");
    bad["involvedObject"]["namespace"] = json!("elsewhere");
    let err = c.create_event("ns", bad).unwrap_err();
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains("involvedObject.namespace"),
        "{}",
        err.message
    );
    let mut gen_name = legacy_event("ns", "", "R");
    gen_name["metadata"] = json!({"generateName": "web-"});
    let g = c.create_event("ns", gen_name).unwrap();
    assert!(g["metadata"]["name"].as_str().unwrap().starts_with("web-"));

    // HTTP POST: 201; PATCH with an unsupported content type: 415.
    let mut r = request(
        addr,
        "POST",
        "/api/v1/namespaces/ns/events",
        &[("Content-Type", "application/json")],
        Some(&legacy_event("ns", "h", "R")),
    )
    .await;
    assert_eq!(r.status, 201);
    let body: Value = serde_json::from_slice(&r.body().await).unwrap();
    assert_eq!(body["metadata"]["name"], "h");
    let mut r = request(
        addr,
        "PATCH",
        "/api/v1/namespaces/ns/events/h",
        &[("Content-Type", "text/plain")],
        Some(&json!({})),
    )
    .await;
    assert_eq!(r.status, 415);
    let _ = r.body().await;
    let mut r = request(
        addr,
        "PATCH",
        "/api/v1/namespaces/ns/events/h",
        &[("Content-Type", "application/strategic-merge-patch+json")],
        Some(&json!({"count": 5})),
    )
    .await;
    assert_eq!(r.status, 200);
    let body: Value = serde_json::from_slice(&r.body().await).unwrap();
    assert_eq!(body["count"], 5);
    assert_eq!(body["firstTimestamp"], "2024-05-01T12:00:00Z");

    // The events.k8s.io view of the same storage.
    let (code, v1) = get(addr, "/apis/events.k8s.io/v1/namespaces/ns/events/h").await;
    assert_eq!(code, 200);
    assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v1["eventTime"], Value::Null);
    assert_eq!(v1["deprecatedCount"], 5);
    assert_eq!(v1["note"], "R happened");
    assert_eq!(v1["regarding"]["name"], "web-1");
    let (code, list) = get(
        addr,
        "/apis/events.k8s.io/v1/events?fieldSelector=regarding.name%3Dweb-1",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(list["apiVersion"], "events.k8s.io/v1");
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    let (code, _) = get(
        addr,
        "/apis/events.k8s.io/v1/events?fieldSelector=involvedObject.name%3Dweb-1",
    )
    .await;
    assert_eq!(code, 400);

    // A new-style event through events.k8s.io is visible through core/v1.
    let new_style = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "n1", "namespace": "ns"},
        "eventTime": "2024-05-01T12:00:00.123456Z", "type": "Warning", "reason": "Failed",
        "action": "Reconcile", "reportingController": "example.com/ctl", "reportingInstance": "ctl-1",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "ns"}, "note": "boom"
    });
    let mut r = request(
        addr,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/ns/events",
        &[("Content-Type", "application/json")],
        Some(&new_style),
    )
    .await;
    let body = r.body().await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&body));
    let (_, core) = get(addr, "/api/v1/namespaces/ns/events/n1").await;
    assert_eq!(core["reportingComponent"], "example.com/ctl");
    assert_eq!(core["message"], "boom");
    assert_eq!(core["involvedObject"]["name"], "p");
    assert_eq!(core["firstTimestamp"], Value::Null);
    let mut missing_time = new_style.clone();
    missing_time["metadata"]["name"] = json!("n2");
    missing_time.as_object_mut().unwrap().remove("eventTime");
    let (status, _) = send_json(
        addr,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/ns/events",
        &missing_time,
    )
    .await;
    assert_eq!(status, 422);
    // merge PATCH of series via events.k8s.io (what kube's Recorder does).
    let mut r = request(
        addr,
        "PATCH",
        "/apis/events.k8s.io/v1/namespaces/ns/events/n1",
        &[("Content-Type", "application/merge-patch+json")],
        Some(&json!({"series": {"count": 2, "lastObservedTime": "2024-05-01T12:01:00.000000Z"}})),
    )
    .await;
    assert_eq!(r.status, 200);
    let body: Value = serde_json::from_slice(&r.body().await).unwrap();
    assert_eq!(body["series"]["count"], 2);
    assert_eq!(body["reportingController"], "example.com/ctl");
}

#[tokio::test]
async fn ttl_expiry_deletes_events() {
    let server = FakeApiServer::start_with(Options {
        event_ttl: Duration::from_millis(200),
        ..Options::default()
    })
    .await
    .unwrap();
    let c = server.cluster();
    c.create_event("default", legacy_event("default", "short", "A"))
        .unwrap();
    let mut w = request(
        server.addr(),
        "GET",
        &format!(
            "/api/v1/events?watch=true&resourceVersion={}",
            c.resource_version()
        ),
        &[],
        None,
    )
    .await;
    let d = w.next_json().await;
    assert_eq!(d["type"], "DELETED");
    assert_eq!(d["object"]["metadata"]["name"], "short");
    assert_eq!(c.events_len(), 0);
}

#[tokio::test]
async fn hooks_auth_failures_forbidden_and_recording() {
    let server = FakeApiServer::start_with(Options {
        token: Some("s3cret".into()),
        ..Options::default()
    })
    .await
    .unwrap();
    let addr = server.addr();
    let c = server.cluster();
    let (code, body) = get(addr, "/api/v1/events").await;
    assert_eq!((code, body["reason"].as_str()), (401, Some("Unauthorized")));
    let auth = [("Authorization", "Bearer s3cret")];
    let mut r = request(addr, "GET", "/api/v1/events", &auth, None).await;
    assert_eq!(r.status, 200);
    let _ = r.body().await;

    c.fail_next("GET", "/api/v1/events", 429, Some(7), 2);
    for _ in 0..2 {
        let mut r = request(addr, "GET", "/api/v1/events?limit=500", &auth, None).await;
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("7"));
        let body: Value = serde_json::from_slice(&r.body().await).unwrap();
        assert_eq!(body["reason"], "TooManyRequests");
        assert_eq!(body["details"]["retryAfterSeconds"], 7);
    }
    let mut r = request(addr, "GET", "/api/v1/events", &auth, None).await;
    assert_eq!(r.status, 200);
    let _ = r.body().await;
    c.fail_next("*", "/api/v1", 500, None, 1);
    let mut r = request(addr, "GET", "/api/v1/namespaces/x/events", &auth, None).await;
    assert_eq!(r.status, 500);
    let _ = r.body().await;

    c.forbid("watch", "events");
    let mut r = request(addr, "GET", "/api/v1/events?watch=true", &auth, None).await;
    assert_eq!(r.status, 403);
    let body: Value = serde_json::from_slice(&r.body().await).unwrap();
    assert_eq!(body["reason"], "Forbidden");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("cannot watch resource \"events\"")
    );
    let mut r = request(addr, "GET", "/api/v1/events", &auth, None).await;
    assert_eq!(r.status, 200, "list is still allowed");
    let _ = r.body().await;

    let reqs = c.requests();
    assert_eq!(reqs.len(), 8);
    assert_eq!(reqs[2].method, "GET");
    assert_eq!(reqs[2].path, "/api/v1/events");
    assert_eq!(reqs[2].query, "limit=500");
    assert_eq!(reqs[2].param("limit").as_deref(), Some("500"));
    c.clear_requests();
    assert!(c.requests().is_empty());

    let dir = std::env::temp_dir().join(format!("fake-apiserver-kc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kubeconfig");
    server.write_kubeconfig(&path).unwrap();
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        cfg.cluster_url.to_string().trim_end_matches('/'),
        server.url()
    );
    assert_eq!(cfg.default_namespace, "default");
    let client = kube::Client::try_from(cfg).unwrap();
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.major, "1");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn discovery_objects_configmaps_and_not_found() {
    let server = FakeApiServer::start().await.unwrap();
    let addr = server.addr();
    let c = server.cluster();
    let (code, v) = get(addr, "/version").await;
    assert_eq!((code, v["major"].as_str()), (200, Some("1")));
    let (_, api) = get(addr, "/api").await;
    assert_eq!(api["versions"], json!(["v1"]));
    let (_, v1) = get(addr, "/api/v1").await;
    assert!(
        v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "events" && r["namespaced"] == true)
    );

    let stored = c.put_object(json!({"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
        "metadata": {"name": "test01", "namespace": "org-giantswarm", "labels": {"a": "b"}}, "spec": {}}));
    assert!(stored["metadata"]["uid"].is_string());
    let (_, apis) = get(addr, "/apis").await;
    let groups: Vec<&str> = apis["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in [
        "events.k8s.io",
        "coordination.k8s.io",
        "apps",
        "cluster.x-k8s.io",
    ] {
        assert!(groups.contains(&g), "{groups:?}");
    }
    let (code, capi) = get(addr, "/apis/cluster.x-k8s.io/v1beta1").await;
    assert_eq!(code, 200);
    assert_eq!(capi["resources"][0]["name"], "clusters");
    assert_eq!(capi["resources"][0]["kind"], "Cluster");
    let (code, obj) = get(
        addr,
        "/apis/cluster.x-k8s.io/v1beta1/namespaces/org-giantswarm/clusters/test01",
    )
    .await;
    assert_eq!((code, obj["kind"].as_str()), (200, Some("Cluster")));
    let (code, list) = get(
        addr,
        "/apis/cluster.x-k8s.io/v1beta1/clusters?labelSelector=a%3Db",
    )
    .await;
    assert_eq!((code, list["items"].as_array().unwrap().len()), (200, 1));
    let (code, nf) = get(
        addr,
        "/apis/cluster.x-k8s.io/v1beta1/namespaces/org-giantswarm/clusters/nope",
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(nf["details"]["kind"], "clusters");
    assert_eq!(nf["details"]["group"], "cluster.x-k8s.io");
    c.put_object(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}));
    let (code, node) = get(addr, "/api/v1/nodes/node-1").await;
    assert_eq!(
        (code, node["metadata"]["name"].as_str()),
        (200, Some("node-1"))
    );
    assert!(c.get_object("v1", "Node", None, "node-1").is_some());
    assert!(c.delete_object("v1", "Node", None, "node-1"));
    assert!(!c.delete_object("v1", "Node", None, "node-1"));
    let (code, _) = get(addr, "/api/v1/nodes/node-1").await;
    assert_eq!(code, 404);
    let (code, body) = get(addr, "/apis/nope.example.com/v1/things").await;
    assert_eq!((code, body["kind"].as_str()), (404, Some("Status")));
    let (code, _) = get(addr, "/openapi/v2").await;
    assert_eq!(code, 404);

    // ConfigMaps: optimistic concurrency with the exact messages.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cp", "namespace": "default"}, "data": {"k": "1"}});
    let (status, created) =
        send_json(addr, "POST", "/api/v1/namespaces/default/configmaps", &cm).await;
    assert_eq!(status, 201);
    let (status, body) =
        send_json(addr, "POST", "/api/v1/namespaces/default/configmaps", &cm).await;
    assert_eq!(status, 409);
    assert_eq!(body["reason"], "AlreadyExists");
    let mut stale = created.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let (status, body) = send_json(
        addr,
        "PUT",
        "/api/v1/namespaces/default/configmaps/cp",
        &stale,
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        body["message"],
        "Operation cannot be fulfilled on configmaps \"cp\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let mut fresh = created.clone();
    fresh["data"]["k"] = json!("2");
    let (status, _) = send_json(
        addr,
        "PUT",
        "/api/v1/namespaces/default/configmaps/cp",
        &fresh,
    )
    .await;
    assert_eq!(status, 200);
    let mut r = request(addr, "PATCH", "/api/v1/namespaces/default/configmaps/cp", &[("Content-Type", "application/merge-patch+json")],
        Some(&json!({"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"k": "3"}}))).await;
    assert_eq!(r.status, 409, "RV in the patch is checked");
    let _ = r.body().await;
    let mut r = request(
        addr,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/cp",
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    let _ = r.body().await;
    let (code, nf) = get(addr, "/api/v1/namespaces/default/configmaps/cp").await;
    assert_eq!(code, 404);
    assert_eq!(nf["message"], "configmaps \"cp\" not found");
    assert_eq!(nf["details"]["kind"], "configmaps");
}
