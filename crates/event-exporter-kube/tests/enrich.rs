//! Involved-object enrichment against the fake API server.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use event_exporter_core::ObjectEnrichment;
use event_exporter_core::config::{RouteConfig, RuleConfig};
use event_exporter_kube::enrich::{EnrichSettings, Enricher, KindFilter, rate_limited_client};
use event_exporter_kube::metrics::Metrics;
use fake_apiserver::FakeApiServer;
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use serde_json::json;

fn event(api_version: &str, kind: &str, namespace: &str, name: &str) -> Event {
    Event {
        involved_object: ObjectReference {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
            namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
            name: Some(name.to_owned()),
            ..ObjectReference::default()
        },
        ..Event::default()
    }
}

fn client(server: &FakeApiServer) -> kube::Client {
    kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap()
}

fn enricher(
    server: &FakeApiServer,
    settings: EnrichSettings,
    kinds: KindFilter,
) -> (Enricher, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new("t_"));
    (
        Enricher::new(client(server), settings, kinds, Arc::clone(&metrics)),
        metrics,
    )
}

/// The value of an unlabelled series in the rendered metrics.
fn metric(metrics: &Metrics, name: &str) -> u64 {
    let text = metrics.render(&[]);
    let prefix = format!("t_{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

/// The paths of the requests the fake server saw, in order.
fn paths(server: &FakeApiServer) -> Vec<String> {
    server
        .cluster()
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect()
}

fn put_pod(server: &FakeApiServer, name: &str) {
    server.cluster().put_object(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "default",
            "labels": {"app": "web", "pod": name},
            "annotations": {"team": "a\"b"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f",
                "uid": "3f1c2b9e-0000-4000-8000-000000000001", "controller": true
            }]
        }
    }));
}

/// Answers the next GETs of pod `name` with 429 and a Retry-After of a minute: kube retries a
/// 429 after its Retry-After, far longer than a lookup may take.
fn throttle_pod(server: &FakeApiServer, name: &str) {
    server.cluster().fail_next(
        "GET",
        &format!("/api/v1/namespaces/default/pods/{name}"),
        429,
        Some(60),
        5,
    );
}

#[tokio::test]
async fn pod_and_capi_cluster_enrichment() {
    let server = FakeApiServer::start().await.unwrap();
    put_pod(&server, "web-1");
    server.cluster().put_object(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
        "metadata": {
            "name": "test01", "namespace": "org-giantswarm",
            "labels": {"cluster.x-k8s.io/cluster-name": "test01", "giantswarm.io/organization": "giantswarm"},
            "annotations": {"giantswarm.io/service-priority": "highest"}
        }
    }));
    let (enricher, metrics) = enricher(&server, EnrichSettings::default(), KindFilter::all());

    let pod = enricher
        .enrich(&event("v1", "Pod", "default", "web-1"))
        .await;
    assert!(!pod.deleted);
    assert_eq!(
        pod.labels.unwrap(),
        [
            ("app".to_owned(), "web".to_owned()),
            ("pod".to_owned(), "web-1".to_owned())
        ]
        .into()
    );
    assert_eq!(pod.annotations.unwrap()["team"], "a\"b");
    let owners = pod.owner_references.unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].kind, "ReplicaSet");
    assert_eq!(owners[0].name, "web-5d8f");
    assert_eq!(owners[0].controller, Some(true));

    let cluster = enricher
        .enrich(&event(
            "cluster.x-k8s.io/v1beta1",
            "Cluster",
            "org-giantswarm",
            "test01",
        ))
        .await;
    assert!(!cluster.deleted);
    assert_eq!(
        cluster.labels.unwrap()["giantswarm.io/organization"],
        "giantswarm"
    );
    assert_eq!(
        cluster.annotations.unwrap()["giantswarm.io/service-priority"],
        "highest"
    );
    assert_eq!(cluster.owner_references, None);

    let paths = paths(&server);
    assert!(paths.contains(&"/api/v1".to_owned()), "{paths:?}");
    assert!(
        paths.contains(&"/apis/cluster.x-k8s.io/v1beta1".to_owned()),
        "{paths:?}"
    );
    assert!(
        paths.contains(
            &"/apis/cluster.x-k8s.io/v1beta1/namespaces/org-giantswarm/clusters/test01".to_owned()
        ),
        "{paths:?}"
    );
    assert_eq!(metric(&metrics, "enrichment_cache_misses_total"), 2);
    assert_eq!(metric(&metrics, "enrichment_errors_total"), 0);
}

#[tokio::test]
async fn missing_object_is_deleted() {
    let server = FakeApiServer::start().await.unwrap();
    put_pod(&server, "web-1"); // makes pods discoverable
    let (enricher, metrics) = enricher(&server, EnrichSettings::default(), KindFilter::all());
    let gone = enricher
        .enrich(&event("v1", "Pod", "default", "web-9"))
        .await;
    assert_eq!(
        gone,
        ObjectEnrichment {
            deleted: true,
            ..ObjectEnrichment::default()
        }
    );
    assert_eq!(metric(&metrics, "enrichment_not_found_total"), 1);
    assert_eq!(metric(&metrics, "enrichment_errors_total"), 0);
}

#[tokio::test]
async fn cluster_scoped_kinds_are_fetched_without_namespace() {
    let server = FakeApiServer::start().await.unwrap();
    server.cluster().put_object(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-1", "labels": {"zone": "a"}}
    }));
    let (enricher, _) = enricher(&server, EnrichSettings::default(), KindFilter::all());
    // Some Node events carry a namespace anyway; it is ignored for a cluster-scoped kind.
    let node = enricher
        .enrich(&event("v1", "Node", "default", "node-1"))
        .await;
    assert_eq!(node.labels.unwrap()["zone"], "a");
    let paths = paths(&server);
    assert!(
        paths.contains(&"/api/v1/nodes/node-1".to_owned()),
        "{paths:?}"
    );
}

#[tokio::test]
async fn one_discovery_per_group_version_and_cached_objects() {
    let server = FakeApiServer::start().await.unwrap();
    for i in 0..10 {
        put_pod(&server, &format!("web-{i}"));
    }
    server.cluster().clear_requests();
    let (enricher, metrics) = enricher(&server, EnrichSettings::default(), KindFilter::all());

    // 100 concurrent lookups of 10 objects, none cached yet.
    let events: Vec<Event> = (0..100)
        .map(|i| event("v1", "Pod", "default", &format!("web-{}", i % 10)))
        .collect();
    let results = futures::future::join_all(events.iter().map(|e| enricher.enrich(e))).await;
    for (i, r) in results.iter().enumerate() {
        assert_eq!(
            r.labels.as_ref().unwrap()["pod"],
            format!("web-{}", i % 10),
            "lookup {i}"
        );
    }
    // And 100 more, sequentially: all cached.
    for e in &events {
        assert!(!enricher.enrich(e).await.deleted);
    }

    let requests = paths(&server);
    let discovery = requests.iter().filter(|p| *p == "/api/v1").count();
    let gets = requests
        .iter()
        .filter(|p| p.starts_with("/api/v1/namespaces/default/pods/"))
        .count();
    assert_eq!(discovery, 1, "{requests:?}");
    assert!(gets <= 10, "{gets} GETs: {requests:?}");
    assert_eq!(requests.len(), discovery + gets, "{requests:?}");
    assert_eq!(metric(&metrics, "enrichment_cache_misses_total"), 10);
    assert_eq!(metric(&metrics, "enrichment_cache_hits_total"), 190);
}

#[tokio::test]
async fn omit_lookup_and_kind_filter_send_nothing() {
    let server = FakeApiServer::start().await.unwrap();
    put_pod(&server, "web-1");
    server.cluster().clear_requests();

    let omit = EnrichSettings {
        omit_lookup: true,
        ..EnrichSettings::default()
    };
    let (enricher1, _) = enricher(&server, omit, KindFilter::all());
    assert_eq!(
        enricher1
            .enrich(&event("v1", "Pod", "default", "web-1"))
            .await,
        ObjectEnrichment::default()
    );

    let route = RouteConfig {
        match_: vec![RuleConfig {
            kind: "Deployment|Node".to_owned(),
            ..RuleConfig::default()
        }],
        ..RouteConfig::default()
    };
    let (enricher2, _) = enricher(
        &server,
        EnrichSettings::default(),
        KindFilter::from_route(&route),
    );
    assert_eq!(
        enricher2
            .enrich(&event("v1", "Pod", "default", "web-1"))
            .await,
        ObjectEnrichment::default()
    );
    assert_eq!(paths(&server), Vec::<String>::new());
}

#[tokio::test]
async fn forbidden_gives_empty_enrichment_and_counts_an_error() {
    let server = FakeApiServer::start().await.unwrap();
    put_pod(&server, "web-1");
    server.cluster().forbid("get", "pods");
    let (enricher, metrics) = enricher(&server, EnrichSettings::default(), KindFilter::all());
    let e = enricher
        .enrich(&event("v1", "Pod", "default", "web-1"))
        .await;
    assert_eq!(e, ObjectEnrichment::default());
    assert_eq!(metric(&metrics, "enrichment_errors_total"), 1);
}

#[tokio::test]
async fn server_error_gives_empty_enrichment() {
    let server = FakeApiServer::start().await.unwrap();
    put_pod(&server, "web-1");
    server
        .cluster()
        .fail_next("GET", "/api/v1/namespaces/default/pods/web-1", 500, None, 1);
    let (enricher, metrics) = enricher(&server, EnrichSettings::default(), KindFilter::all());
    let e = enricher
        .enrich(&event("v1", "Pod", "default", "web-1"))
        .await;
    assert_eq!(e, ObjectEnrichment::default());
    assert_eq!(metric(&metrics, "enrichment_errors_total"), 1);
}

#[tokio::test]
async fn unknown_kind_is_an_error_not_a_panic() {
    let server = FakeApiServer::start().await.unwrap();
    put_pod(&server, "web-1");
    let (enricher, metrics) = enricher(&server, EnrichSettings::default(), KindFilter::all());
    let e = enricher.enrich(&event("v1", "Gizmo", "default", "g")).await;
    assert_eq!(e, ObjectEnrichment::default());
    let e = enricher
        .enrich(&event("nope.example.com/v1", "Gizmo", "default", "g"))
        .await;
    assert_eq!(e, ObjectEnrichment::default());
    assert_eq!(metric(&metrics, "enrichment_errors_total"), 2);
}

#[tokio::test]
async fn throttled_api_is_bounded_by_the_timeout() {
    let server = FakeApiServer::start().await.unwrap();
    put_pod(&server, "web-1");
    throttle_pod(&server, "web-1");
    let settings = EnrichSettings {
        timeout: Duration::from_millis(300),
        ..EnrichSettings::default()
    };
    let (enricher, metrics) = enricher(&server, settings, KindFilter::all());
    let started = std::time::Instant::now();
    let e = enricher
        .enrich(&event("v1", "Pod", "default", "web-1"))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e, ObjectEnrichment::default());
    assert_eq!(metric(&metrics, "enrichment_errors_total"), 1);
}

#[tokio::test]
async fn silent_api_is_bounded_by_the_timeout() {
    // A server that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let metrics = Arc::new(Metrics::new("t_"));
    let settings = EnrichSettings {
        timeout: Duration::from_millis(200),
        ..EnrichSettings::default()
    };
    let enricher = Enricher::new(client, settings, KindFilter::all(), Arc::clone(&metrics));
    let started = std::time::Instant::now();
    let e = enricher
        .enrich(&event("v1", "Pod", "default", "web-1"))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e, ObjectEnrichment::default());
    assert_eq!(metric(&metrics, "enrichment_errors_total"), 1);
    hold.abort();
}

#[tokio::test]
async fn rate_limited_client_talks_to_the_api() {
    let server = FakeApiServer::start().await.unwrap();
    put_pod(&server, "web-1");
    let client =
        rate_limited_client(kube::Config::new(server.url().parse().unwrap()), 0.0, 0).unwrap();
    let metrics = Arc::new(Metrics::new("t_"));
    let enricher = Enricher::new(
        client,
        EnrichSettings::default(),
        KindFilter::all(),
        metrics,
    );
    let e = enricher
        .enrich(&event("v1", "Pod", "default", "web-1"))
        .await;
    assert_eq!(e.labels.unwrap()["app"], "web");
}

#[tokio::test]
async fn a_timed_out_group_is_skipped_for_a_while_and_others_are_not() {
    let server = FakeApiServer::start().await.unwrap();
    put_pod(&server, "web-1");
    put_pod(&server, "web-2");
    server.cluster().put_object(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
        "metadata": {"name": "test01", "namespace": "org-a", "labels": {"team": "a"}}
    }));
    throttle_pod(&server, "web-1");
    let settings = EnrichSettings {
        timeout: Duration::from_millis(300),
        slow_api_pause: Duration::from_secs(600),
        ..EnrichSettings::default()
    };
    let (enricher, metrics) = enricher(&server, settings, KindFilter::all());
    let e = enricher
        .enrich(&event("v1", "Pod", "default", "web-1"))
        .await;
    assert_eq!(e, ObjectEnrichment::default());
    assert_eq!(metric(&metrics, "enrichment_errors_total"), 1);

    // Another pod (it would be found) is not asked for: core/v1 lookups are paused.
    let asked_before = paths(&server).len();
    let e = enricher
        .enrich(&event("v1", "Pod", "default", "web-2"))
        .await;
    assert_eq!(e, ObjectEnrichment::default());
    assert_eq!(metric(&metrics, "enrichment_skipped_total"), 1);
    assert_eq!(paths(&server).len(), asked_before, "a request was made");

    // Another group/version is looked up as usual.
    let cluster = enricher
        .enrich(&event(
            "cluster.x-k8s.io/v1beta1",
            "Cluster",
            "org-a",
            "test01",
        ))
        .await;
    assert_eq!(cluster.labels.unwrap()["team"], "a");
    assert_eq!(metric(&metrics, "enrichment_skipped_total"), 1);
}

#[tokio::test]
async fn a_pause_ends() {
    let server = FakeApiServer::start().await.unwrap();
    put_pod(&server, "web-1");
    put_pod(&server, "web-2");
    throttle_pod(&server, "web-1");
    let settings = EnrichSettings {
        timeout: Duration::from_millis(200),
        slow_api_pause: Duration::from_millis(300),
        ..EnrichSettings::default()
    };
    let (enricher, metrics) = enricher(&server, settings, KindFilter::all());
    enricher
        .enrich(&event("v1", "Pod", "default", "web-1"))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let e = enricher
        .enrich(&event("v1", "Pod", "default", "web-2"))
        .await;
    assert_eq!(e.labels.unwrap()["pod"], "web-2");
    assert_eq!(metric(&metrics, "enrichment_skipped_total"), 0);
}
