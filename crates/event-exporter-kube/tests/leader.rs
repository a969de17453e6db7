//! Lease leader election against the fake apiserver on loopback, in real time with short
//! durations (1s lease, 600ms renew deadline, 200ms retry period): one leader at a time, a
//! prompt hand-over on release, loss on failed renewals or a foreign holder, and takeover only
//! once a silent holder's Lease has expired.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use event_exporter_kube::leader::{LeaderElector, LeaseSettings};
use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};
use tokio::time::{Instant, timeout};

const NS: &str = "monitoring";
const LEASE: &str = "event-exporter";

fn client(server: &FakeApiServer) -> kube::Client {
    let mut config = kube::Config::new(server.url().parse().unwrap());
    config.default_namespace = NS.into();
    kube::Client::try_from(config).unwrap()
}

fn elector(server: &FakeApiServer, identity: &str) -> LeaderElector {
    let mut settings = LeaseSettings::new(NS, LEASE, identity);
    settings.lease_duration = Duration::from_secs(1);
    settings.renew_deadline = Duration::from_millis(600);
    settings.retry_period = Duration::from_millis(200);
    LeaderElector::new(client(server), settings)
}

fn lease(server: &FakeApiServer) -> Value {
    server
        .cluster()
        .get_object("coordination.k8s.io/v1", "Lease", Some(NS), LEASE)
        .unwrap()
}

#[tokio::test]
async fn the_first_candidate_creates_the_lease() {
    let server = FakeApiServer::start().await.unwrap();
    let mut leadership = timeout(Duration::from_secs(2), elector(&server, "a").acquire())
        .await
        .unwrap()
        .unwrap();
    assert!(leadership.is_leader());
    let spec = lease(&server)["spec"].clone();
    assert_eq!(spec["holderIdentity"], "a");
    assert_eq!(spec["leaseDurationSeconds"], 1);
    assert_eq!(spec["leaseTransitions"], 0);
    let acquired = spec["acquireTime"].as_str().unwrap().to_owned();
    // MicroTime: six fractional digits.
    assert_eq!(
        acquired.len(),
        "2024-05-01T12:00:00.000000Z".len(),
        "{acquired}"
    );
    // It keeps renewing: renewTime moves, the term stays.
    let first_renew = spec["renewTime"].clone();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let spec = lease(&server)["spec"].clone();
    assert_ne!(spec["renewTime"], first_renew);
    assert_eq!(spec["acquireTime"], acquired.as_str());
    assert_eq!(spec["leaseTransitions"], 0);
    assert!(leadership.is_leader());
    assert!(
        timeout(Duration::from_millis(100), leadership.lost())
            .await
            .is_err(),
        "not lost"
    );
    leadership.release().await.unwrap();
}

#[tokio::test]
async fn two_candidates_one_leader_and_release_hands_over_at_once() {
    let server = FakeApiServer::start().await.unwrap();
    let a = elector(&server, "a");
    let b = elector(&server, "b");
    let (first, second) = {
        let mut ta = tokio::spawn(async move { a.acquire().await.map(|l| ("a", l)) });
        let mut tb = tokio::spawn(async move { b.acquire().await.map(|l| ("b", l)) });
        tokio::select! {
            r = &mut ta => (r.unwrap().unwrap(), tb),
            r = &mut tb => (r.unwrap().unwrap(), ta),
        }
    };
    let (winner, leadership) = first;
    assert_eq!(lease(&server)["spec"]["holderIdentity"], winner);
    // The other stays a candidate while the leader renews, well past the lease duration.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(!second.is_finished(), "two leaders at once");
    assert!(leadership.is_leader());
    assert_eq!(lease(&server)["spec"]["holderIdentity"], winner);

    let released = Instant::now();
    leadership.release().await.unwrap();
    let (other, standby) = timeout(Duration::from_millis(800), second)
        .await
        .expect("the standby takes a released lease at its next retry, not after expiry")
        .unwrap()
        .unwrap();
    assert!(released.elapsed() < Duration::from_millis(800));
    assert_ne!(other, winner);
    let spec = lease(&server)["spec"].clone();
    assert_eq!(spec["holderIdentity"], other);
    assert_eq!(
        spec["leaseTransitions"], 1,
        "created (0), released (kept), taken (+1)"
    );
    standby.release().await.unwrap();
    assert_eq!(lease(&server)["spec"]["holderIdentity"], "");
}

#[tokio::test]
async fn failing_renewals_lose_leadership_within_the_renew_deadline() {
    let server = FakeApiServer::start().await.unwrap();
    let mut leadership = elector(&server, "a").acquire().await.unwrap();
    server
        .cluster()
        .fail_next("PUT", "/apis/coordination.k8s.io", 500, None, 100);
    let started = Instant::now();
    timeout(Duration::from_secs(2), leadership.lost())
        .await
        .expect("leadership is lost when renewals keep failing");
    assert!(!leadership.is_leader());
    // Last renewal + retry period + renew deadline at most (plus scheduling slack).
    assert!(
        started.elapsed() < Duration::from_millis(1_000),
        "{:?}",
        started.elapsed()
    );
    // Nothing to release any more: no write.
    leadership.release().await.unwrap();
    assert_eq!(lease(&server)["spec"]["holderIdentity"], "a");
}

#[tokio::test]
async fn a_foreign_holder_ends_leadership() {
    let server = FakeApiServer::start().await.unwrap();
    let mut leadership = elector(&server, "a").acquire().await.unwrap();
    let mut taken = lease(&server);
    taken["spec"]["holderIdentity"] = json!("intruder");
    taken["spec"]["leaseDurationSeconds"] = json!(30);
    server.cluster().put_object(taken);
    timeout(Duration::from_secs(2), leadership.lost())
        .await
        .expect("another holder took the lease");
    assert!(!leadership.is_leader());
    leadership.release().await.unwrap();
    assert_eq!(
        lease(&server)["spec"]["holderIdentity"],
        "intruder",
        "release leaves someone else's lease alone"
    );
}

#[tokio::test]
async fn a_silent_holder_is_replaced_only_after_the_lease_expires() {
    let server = FakeApiServer::start().await.unwrap();
    let leadership = elector(&server, "a").acquire().await.unwrap();
    // The holder stops renewing without releasing (a crashed or partitioned replica).
    drop(leadership);
    let started = Instant::now();
    let b = timeout(Duration::from_secs(3), elector(&server, "b").acquire())
        .await
        .unwrap()
        .unwrap();
    let waited = started.elapsed();
    // b first sees a's last record now and must wait a full lease duration (1s) from then.
    assert!(
        waited >= Duration::from_millis(950),
        "took over after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(1_800),
        "took over after {waited:?}"
    );
    let spec = lease(&server)["spec"].clone();
    assert_eq!(spec["holderIdentity"], "b");
    assert_eq!(spec["leaseTransitions"], 1);
    b.release().await.unwrap();
}

#[tokio::test]
async fn api_errors_while_campaigning_are_retried() {
    let server = FakeApiServer::start().await.unwrap();
    server
        .cluster()
        .fail_next("*", "/apis/coordination.k8s.io", 503, None, 3);
    let leadership = timeout(Duration::from_secs(3), elector(&server, "a").acquire())
        .await
        .unwrap()
        .unwrap();
    assert!(leadership.is_leader());
    leadership.release().await.unwrap();
}

#[tokio::test]
async fn invalid_settings_are_refused() {
    let server = FakeApiServer::start().await.unwrap();
    let mut settings = LeaseSettings::new(NS, LEASE, "a");
    settings.renew_deadline = settings.lease_duration;
    let err = LeaderElector::new(client(&server), settings)
        .acquire()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("lease monitoring/event-exporter"),
        "{err}"
    );
}
