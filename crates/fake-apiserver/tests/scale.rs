//! Scale: 100k events pre-loaded in-process, paged LIST with limit=500, watch throughput.
//! Timings are printed; the bounds are generous (debug builds) and only catch O(n²) regressions.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::request;
use fake_apiserver::FakeApiServer;
use serde_json::json;

const N: usize = 100_000;

fn event(i: usize) -> serde_json::Value {
    let ns = format!("ns-{}", i % 10);
    json!({
        "metadata": {"name": format!("pod-{i}.{i:016x}"), "namespace": ns},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": format!("pod-{i}"), "namespace": ns},
        "reason": "Started", "message": format!("event {i}"), "type": "Normal",
        "source": {"component": "kubelet"}, "count": 1,
        "firstTimestamp": "2024-05-01T12:00:00Z", "lastTimestamp": "2024-05-01T12:00:00Z"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_events_list_and_watch() {
    let server = FakeApiServer::start().await.unwrap();
    let c = server.cluster();
    let t = Instant::now();
    for i in 0..N {
        let ev = event(i);
        let ns = ev["metadata"]["namespace"].as_str().unwrap().to_string();
        c.create_event(&ns, ev).unwrap();
    }
    let create = t.elapsed();
    assert_eq!(c.events_len(), N);

    // Paged LIST over all of them.
    let t = Instant::now();
    let mut path = "/api/v1/events?limit=500".to_string();
    let (mut pages, mut items) = (0, 0);
    loop {
        let mut r = request(server.addr(), "GET", &path, &[], None).await;
        assert_eq!(r.status, 200);
        let body: serde_json::Value = serde_json::from_slice(&r.body().await).unwrap();
        pages += 1;
        items += body["items"].as_array().unwrap().len();
        match body["metadata"]["continue"].as_str() {
            Some(tok) if !tok.is_empty() => {
                path = format!("/api/v1/events?limit=500&continue={tok}")
            }
            _ => break,
        }
    }
    let list = t.elapsed();
    assert_eq!((pages, items), (N / 500, N));

    // Watch: all 100k as synthetic ADDED, then 20k live changes.
    let t = Instant::now();
    let mut w = request(server.addr(), "GET", "/api/v1/events?watch=true", &[], None).await;
    for _ in 0..N {
        let line = w.next_line().await.unwrap();
        assert!(line.starts_with(r#"{"type":"ADDED","object":{"kind":"Event","apiVersion":"v1","#));
    }
    let initial = t.elapsed();
    let live = 20_000;
    let writer = {
        let c = c.clone();
        tokio::task::spawn_blocking(move || {
            for i in 0..live {
                let ns = format!("ns-{}", i % 10);
                c.patch_event(&ns, &format!("pod-{i}.{i:016x}"), json!({"count": 2}))
                    .unwrap();
            }
        })
    };
    let t = Instant::now();
    for _ in 0..live {
        let line = w.next_line().await.unwrap();
        assert!(line.starts_with(r#"{"type":"MODIFIED""#));
    }
    let live_t = t.elapsed();
    writer.await.unwrap();
    eprintln!(
        "create {N}: {create:?}; list {pages} pages: {list:?}; watch {N} initial: {initial:?} ({:.0}/s); {live} live: {live_t:?}",
        N as f64 / initial.as_secs_f64()
    );
    // Generous bounds (debug build on 2 cores).
    assert!(create < Duration::from_secs(20), "{create:?}");
    assert!(list < Duration::from_secs(20), "{list:?}");
}
