//! The watch against a hostile or hung API server (the fake API server's misbehaviours): every
//! request has a deadline, a failure is an item (counted, logged, retried with a backoff that
//! grows), and `/healthz` fails while it lasts.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use event_exporter_core::Router;
use event_exporter_core::config::RouteConfig;
use event_exporter_kube::exporter::{Exporter, ExporterSettings};
use event_exporter_kube::metrics::Metrics;
use event_exporter_kube::server::{Health, MetricsSource};
use event_exporter_kube::watch::{self, WatchError, WatchSettings, WatchStep};
use fake_apiserver::{FakeApiServer, Misbehavior};
use futures::StreamExt;
use serde_json::json;

const EVENTS: &str = "/api/v1/events";

fn client(server: &FakeApiServer) -> kube::Client {
    let mut config = kube::Config::new(server.url().parse().unwrap());
    config.default_namespace = "default".into();
    kube::Client::try_from(config).unwrap()
}

/// Short deadlines: a list page 300 ms, a watch's answer 300 ms, a watch of 1 s silent for
/// 500 ms more.
fn impatient() -> WatchSettings {
    WatchSettings {
        timeout_seconds: Some(1),
        list_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(300),
        idle_margin: Duration::from_millis(500),
        ..WatchSettings::default()
    }
}

type Item = Result<WatchStep, WatchError>;

/// The stream's next item that is not `Relist` (within 20 s).
async fn next_meaningful(stream: &mut (impl futures::Stream<Item = Item> + Unpin)) -> Item {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.next().await.unwrap() {
                Ok(WatchStep::Relist) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the watch stalled without an item")
}

/// Waits (at most 10 s) until `done`.
async fn until(what: &str, done: impl Fn() -> bool, live: &dyn MetricsSource) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never {what}: {}", live.render());
}

fn event(name: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "BackOff",
        "count": 1,
    })
}

#[tokio::test]
async fn a_list_that_never_completes_times_out_and_is_retried() {
    for how in [
        Misbehavior::Hang,
        Misbehavior::HalfBody,
        Misbehavior::Drip(Duration::from_millis(50)),
    ] {
        let server = FakeApiServer::start().await.unwrap();
        let cluster = server.cluster();
        cluster.create_event("default", event("a")).unwrap();
        cluster.misbehave("GET", EVENTS, Some(false), how.clone());
        let mut stream = Box::pin(watch::watch_stream(
            client(&server),
            &impatient(),
            String::new(),
        ));
        for _ in 0..2 {
            let item = next_meaningful(&mut stream).await;
            assert!(
                matches!(item, Err(WatchError::ListTimeout(_))),
                "{how:?}: {item:?}"
            );
        }
        // Once the server answers again, the list goes through.
        cluster.behave();
        let item = next_meaningful(&mut stream).await;
        assert!(
            matches!(item, Ok(WatchStep::Listed(_))),
            "{how:?}: {item:?}"
        );
    }
}

#[tokio::test]
async fn a_watch_that_hangs_or_never_ends_a_line_is_taken_for_dead() {
    for (how, expect_start_timeout) in [
        (Misbehavior::Hang, true),
        (Misbehavior::HalfBody, false),
        (Misbehavior::Drip(Duration::from_millis(50)), false),
    ] {
        let server = FakeApiServer::start().await.unwrap();
        let cluster = server.cluster();
        cluster.misbehave("GET", EVENTS, Some(true), how.clone());
        let mut stream = Box::pin(watch::watch_stream(
            client(&server),
            &impatient(),
            String::new(),
        ));
        assert!(matches!(
            next_meaningful(&mut stream).await,
            Ok(WatchStep::ListDone)
        ));
        let item = next_meaningful(&mut stream).await;
        if expect_start_timeout {
            assert!(
                matches!(item, Err(WatchError::WatchStartTimeout(_))),
                "{how:?}: {item:?}"
            );
        } else {
            assert!(
                matches!(item, Err(WatchError::Idle(_))),
                "{how:?}: {item:?}"
            );
        }
        cluster.behave();
        cluster.create_event("default", event("after")).unwrap();
        let item = next_meaningful(&mut stream).await;
        assert!(
            matches!(item, Ok(WatchStep::Applied(_))),
            "{how:?}: {item:?}"
        );
    }
}

#[tokio::test]
async fn an_empty_watch_is_a_failure_not_a_hot_loop() {
    let server = FakeApiServer::start().await.unwrap();
    let cluster = server.cluster();
    cluster.misbehave("GET", EVENTS, Some(true), Misbehavior::EmptyWatch);
    let mut stream = Box::pin(watch::watch_stream(
        client(&server),
        &WatchSettings::default(),
        String::new(),
    ));
    assert!(matches!(
        next_meaningful(&mut stream).await,
        Ok(WatchStep::ListDone)
    ));
    for _ in 0..3 {
        let item = next_meaningful(&mut stream).await;
        assert!(matches!(item, Err(WatchError::EndedAtOnce)), "{item:?}");
    }
    // Three failed watches took their backoff (0.4–0.8 s, 0.8–1.6 s, ...): a handful of
    // requests, where kube-runtime's watcher sent tens of thousands a second, without a word.
    let watches = cluster
        .requests()
        .iter()
        .filter(|r| r.param("watch").is_some())
        .count();
    assert!((3..=4).contains(&watches), "{watches} watch requests");
}

#[tokio::test]
async fn a_hung_api_server_is_counted_and_fails_healthz_until_it_answers() {
    let server = FakeApiServer::start().await.unwrap();
    let cluster = server.cluster();
    cluster.misbehave("GET", EVENTS, Some(false), Misbehavior::Hang);
    let metrics = Arc::new(Metrics::new("ee_"));
    let health = Arc::new(Health::new(Duration::from_secs(1)));
    let router = Router::compile(&RouteConfig::default(), &[] as &[&str]).unwrap();
    let exporter = Exporter::new(
        client(&server),
        router,
        Vec::new(),
        Arc::clone(&metrics),
        Arc::clone(&health),
        ExporterSettings {
            watch: impatient(),
            ..ExporterSettings::default()
        },
    );
    let live = exporter.metrics_source();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(exporter.run(async {
        let _ = stopped.await;
    }));
    until("unhealthy", || !health.healthy(), &live).await;
    assert!(!live.render().contains("ee_watch_errors_total 0"));
    assert!(!health.ready());
    cluster.behave();
    until(
        "healthy and ready again",
        || health.healthy() && health.ready(),
        &live,
    )
    .await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn every_other_api_request_has_a_deadline_too() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let server = FakeApiServer::start().await.unwrap();
    let cluster = server.cluster();
    let mut config = kube::Config::new(server.url().parse().unwrap());
    config.default_namespace = "default".into();
    let client =
        event_exporter_kube::client::with_deadline(config, Duration::from_millis(300)).unwrap();
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), "default");
    for how in [
        Misbehavior::Hang,
        Misbehavior::HalfBody,
        Misbehavior::Drip(Duration::from_millis(50)),
    ] {
        cluster.misbehave(
            "GET",
            "/api/v1/namespaces/default/configmaps",
            None,
            how.clone(),
        );
        let started = std::time::Instant::now();
        let err = api.get_opt("checkpoint").await.unwrap_err();
        assert!(
            err.to_string().contains("did not answer within 300ms"),
            "{how:?}: {err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{how:?}");
        cluster.behave();
    }
    assert!(api.get_opt("checkpoint").await.unwrap().is_none());
    // A watch's body streams for as long as the watch lasts: the deadline is only its answer.
    let mut stream = Box::pin(watch::watch_stream(
        client,
        &WatchSettings {
            timeout_seconds: Some(2),
            ..WatchSettings::default()
        },
        String::new(),
    ));
    assert!(matches!(
        next_meaningful(&mut stream).await,
        Ok(WatchStep::ListDone)
    ));
    tokio::time::sleep(Duration::from_millis(600)).await;
    cluster.create_event("default", event("late")).unwrap();
    let item = next_meaningful(&mut stream).await;
    assert!(matches!(item, Ok(WatchStep::Applied(_))), "{item:?}");
}
