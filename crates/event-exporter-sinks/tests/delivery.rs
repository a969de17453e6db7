//! The delivery machinery: retries on tokio's paused clock, isolation between receivers,
//! drop-oldest queues, ordered delivery, and shutdown deadlines.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use event_exporter_core::sink::{Delivery, RenderError, Request, SendError, Sink};
use event_exporter_core::{Config, EnrichedEvent, Event, Router};
use event_exporter_sinks::delivery::{DispatchOptions, Dispatcher, RetryPolicy, StatsSnapshot};
use tokio::time::Instant;

/// A sink that answers from a script and records what it was sent, and when.
#[derive(Debug)]
struct Scripted {
    name: String,
    script: Mutex<VecDeque<Result<(), SendError>>>,
    stall: Option<Duration>,
    seen: Mutex<Vec<(String, Instant)>>,
}

impl Scripted {
    fn new(name: &str, script: Vec<Result<(), SendError>>, stall: Option<Duration>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            script: Mutex::new(script.into()),
            stall,
            seen: Mutex::new(Vec::new()),
        })
    }
    fn seen(&self) -> Vec<(String, Instant)> {
        self.seen.lock().unwrap().clone()
    }
}

/// Lets the test keep a handle on a sink the dispatcher owns.
#[derive(Debug)]
struct Shared(Arc<Scripted>);

#[async_trait]
impl Sink for Shared {
    fn name(&self) -> &str {
        &self.0.name
    }
    fn kind(&self) -> &'static str {
        "scripted"
    }
    fn render(&self, _: Event<'_>) -> Result<Vec<Request>, RenderError> {
        Ok(Vec::new())
    }
    async fn send(&self, d: &Delivery) -> Result<(), SendError> {
        self.0
            .seen
            .lock()
            .unwrap()
            .push((d.id.uid.clone(), Instant::now()));
        if let Some(stall) = self.0.stall {
            tokio::time::sleep(stall).await;
        }
        self.0.script.lock().unwrap().pop_front().unwrap_or(Ok(()))
    }
}

fn router(names: &[&str]) -> Router {
    // Every event goes to every receiver listed, in order.
    let matches: String = names
        .iter()
        .map(|n| format!("  - receiver: {n}\n"))
        .collect();
    let cfg = Config::from_yaml(&format!("route:\n  match:\n{matches}")).unwrap();
    Router::compile(&cfg.route, names).unwrap()
}

fn event(uid: &str) -> Arc<EnrichedEvent> {
    Arc::new(
        EnrichedEvent::from_json_str(&format!(
            r#"{{"metadata":{{"uid":"{uid}"}},"involvedObject":{{"kind":"Pod"}},"count":1}}"#
        ))
        .unwrap(),
    )
}

fn options(capacity: usize) -> DispatchOptions {
    DispatchOptions {
        queue_capacity: capacity,
        retry: RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            max_elapsed: Duration::from_secs(60),
        },
    }
}

async fn settle() {
    // Let spawned workers run until they block.
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_backoff_then_delivered_once() {
    let sink = Scripted::new(
        "a",
        vec![
            Err(SendError::retryable("reset")),
            Err(SendError::retryable("HTTP 503")),
            Ok(()),
        ],
        None,
    );
    let d = Dispatcher::start(
        router(&["a"]),
        vec![Box::new(Shared(sink.clone()))],
        options(8),
    );
    assert_eq!(d.dispatch(event("e1")), 1);
    let stats = d.shutdown(Duration::from_secs(120)).await;
    assert_eq!(
        stats[0].1,
        StatsSnapshot {
            sent: 1,
            retried: 2,
            failed: 0,
            dropped: 0
        }
    );
    let seen = sink.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|(uid, _)| uid == "e1"));
    // Equal-jitter exponential backoff: 0.5–1 s, then 1–2 s.
    let first = seen[1].1 - seen[0].1;
    let second = seen[2].1 - seen[1].1;
    assert!(
        first >= Duration::from_millis(500) && first <= Duration::from_secs(1),
        "{first:?}"
    );
    assert!(
        second >= Duration::from_secs(1) && second <= Duration::from_secs(2),
        "{second:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let limited = SendError::Transport {
        message: "HTTP 429".into(),
        retryable: true,
        retry_after: Some(Duration::from_secs(7)),
        status: Some(429),
        body: None,
    };
    let sink = Scripted::new("a", vec![Err(limited), Ok(())], None);
    let d = Dispatcher::start(
        router(&["a"]),
        vec![Box::new(Shared(sink.clone()))],
        options(8),
    );
    d.dispatch(event("e1"));
    d.shutdown(Duration::from_secs(120)).await;
    let seen = sink.seen();
    assert_eq!(seen[1].1 - seen[0].1, Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_and_exhausted_retries_are_counted_not_retried_forever() {
    let sink = Scripted::new(
        "a",
        vec![
            Err(SendError::permanent("HTTP 400")),
            Err(SendError::retryable("down")),
            Err(SendError::retryable("down")),
            Err(SendError::retryable("down")),
            Err(SendError::retryable("down")),
        ],
        None,
    );
    let d = Dispatcher::start(
        router(&["a"]),
        vec![Box::new(Shared(sink.clone()))],
        options(8),
    );
    d.dispatch(event("bad"));
    d.dispatch(event("flaky"));
    let stats = d.shutdown(Duration::from_secs(600)).await;
    assert_eq!(
        stats[0].1,
        StatsSnapshot {
            sent: 0,
            retried: 3,
            failed: 2,
            dropped: 0
        }
    );
    assert_eq!(sink.seen().len(), 1 + 4);
}

#[tokio::test(start_paused = true)]
async fn a_stuck_receiver_neither_blocks_others_nor_grows_without_bound() {
    let stuck = Scripted::new("stuck", vec![], Some(Duration::from_secs(3600)));
    let fast = Scripted::new("fast", vec![], None);
    let d = Dispatcher::start(
        router(&["stuck", "fast"]),
        vec![
            Box::new(Shared(stuck.clone())),
            Box::new(Shared(fast.clone())),
        ],
        options(3),
    );
    for i in 0..10 {
        d.dispatch(event(&format!("e{i}")));
        settle().await;
    }
    // The fast receiver got everything, in order, while the stuck one still holds e0.
    let fast_seen: Vec<String> = fast.seen().into_iter().map(|(u, _)| u).collect();
    assert_eq!(
        fast_seen,
        (0..10).map(|i| format!("e{i}")).collect::<Vec<_>>()
    );
    assert_eq!(stuck.seen().len(), 1);
    assert_eq!(d.queue_depths()[0], ("stuck", 3));
    // e1..e6 were pushed out of the 3-slot queue by newer events.
    assert_eq!(d.stats()[0].1.dropped, 6);
    // At the shutdown deadline the 3 queued and the 1 in flight are counted as dropped.
    let stats = d.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        stats[0].1,
        StatsSnapshot {
            sent: 0,
            retried: 0,
            failed: 0,
            dropped: 10
        }
    );
    assert_eq!(
        stats[1].1,
        StatsSnapshot {
            sent: 10,
            retried: 0,
            failed: 0,
            dropped: 0
        }
    );
}

#[tokio::test(start_paused = true)]
async fn patient_dispatch_absorbs_bursts_and_cuts_a_stuck_receiver_loose_once() {
    // "slow" takes 10 ms per delivery: a burst of 20 into a 3-slot queue waits for room and
    // loses nothing. "stuck" never finishes: the first event waits one patience for it, then
    // it drops its oldest at once until it drains.
    let slow = Scripted::new("slow", vec![], Some(Duration::from_millis(10)));
    let stuck = Scripted::new("stuck", vec![], Some(Duration::from_secs(3600)));
    let d = Dispatcher::start(
        router(&["slow", "stuck"]),
        vec![
            Box::new(Shared(slow.clone())),
            Box::new(Shared(stuck.clone())),
        ],
        options(3),
    );
    let patience = Duration::from_millis(500);
    let started = Instant::now();
    let mut waited = Vec::new();
    for i in 0..20 {
        let before = Instant::now();
        assert_eq!(
            d.dispatch_patiently(event(&format!("e{i}")), patience)
                .await,
            2
        );
        waited.push(before.elapsed());
    }
    // Exactly one dispatch waited out the whole patience (the one that found "stuck" full).
    assert_eq!(
        waited.iter().filter(|w| **w >= patience).count(),
        1,
        "{waited:?}"
    );
    assert!(started.elapsed() < patience * 2, "{:?}", started.elapsed());
    let stats = d.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stats[0].1.sent, 20, "the burst was delivered in full");
    assert_eq!(stats[0].1.dropped, 0);
    // The stuck receiver: 1 in flight + 3 queued held, 16 dropped (all counted).
    assert_eq!(stats[1].1.dropped, 20);
    assert_eq!(stats[1].1.sent, 0);
}

#[tokio::test(start_paused = true)]
async fn a_receiver_reached_twice_gets_two_deliveries_in_order() {
    let sink = Scripted::new("a", vec![], None);
    let d = Dispatcher::start(
        router(&["a", "a"]),
        vec![Box::new(Shared(sink.clone()))],
        options(16),
    );
    for i in 0..3 {
        assert_eq!(d.dispatch(event(&format!("e{i}"))), 2);
    }
    let stats = d.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stats[0].1.sent, 6);
    let seen: Vec<String> = sink.seen().into_iter().map(|(u, _)| u).collect();
    assert_eq!(seen, ["e0", "e0", "e1", "e1", "e2", "e2"]);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_dispatcher_stops_its_workers_like_a_crash() {
    // Each send takes 10 s: one is in flight, four wait in the queue.
    let slow = Scripted::new("slow", vec![], Some(Duration::from_secs(10)));
    let d = Dispatcher::start(
        router(&["slow"]),
        vec![Box::new(Shared(slow.clone()))],
        options(8),
    );
    for i in 0..5 {
        d.dispatch(event(&format!("e{i}")));
    }
    settle().await;
    assert_eq!(slow.seen().len(), 1, "e0 in flight");
    // The owner goes away without a shutdown (its task aborted).
    drop(d);
    tokio::time::sleep(Duration::from_secs(120)).await;
    settle().await;
    // Nothing more was sent on its behalf, and the worker is gone (the sink is no longer shared
    // with it).
    assert_eq!(slow.seen().len(), 1);
    assert_eq!(
        Arc::strong_count(&slow),
        1,
        "the worker still holds the sink"
    );
}

#[tokio::test(start_paused = true)]
async fn discarding_abandons_the_delivery_in_hand_and_its_retries() {
    // e0 keeps failing (retried with backoff); e1 waits in the queue.
    let failing: Vec<Result<(), SendError>> =
        (0..100).map(|_| Err(SendError::retryable("503"))).collect();
    let flaky = Scripted::new("flaky", failing, None);
    let d = Dispatcher::start(
        router(&["flaky"]),
        vec![Box::new(Shared(flaky.clone()))],
        options(8),
    );
    d.dispatch(event("e0"));
    d.dispatch(event("e1"));
    settle().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    settle().await;
    let before = flaky.seen().len();
    assert!(before >= 2, "e0 was retried: {before}");
    assert_eq!(d.discard_queued("leadership lost"), 1, "e1 was queued");
    settle().await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    settle().await;
    assert_eq!(flaky.seen().len(), before, "sent after the discard");
    let stats = d.shutdown(Duration::from_secs(1)).await;
    assert_eq!(stats[0].1.dropped, 2, "e1 queued and e0 in hand");
    assert_eq!(stats[0].1.sent, 0);
}

#[tokio::test(start_paused = true)]
async fn running_short_of_descriptors_never_uses_up_a_delivery() {
    // Twenty attempts fail for want of a file descriptor (more than the 4 attempts and the
    // minute the policy allows), two for the receiver's own reasons: the delivery is still
    // sent, and the receiver's failures alone count against it.
    let mut script: Vec<Result<(), SendError>> = (0..20)
        .map(|_| {
            Err(SendError::Local(
                "connect: Too many open files (os error 24)".into(),
            ))
        })
        .collect();
    script.push(Err(SendError::retryable("HTTP 503")));
    script.push(Err(SendError::retryable("HTTP 503")));
    let sink = Scripted::new("a", script, None);
    let d = Dispatcher::start(
        router(&["a"]),
        vec![Box::new(Shared(sink.clone()))],
        options(8),
    );
    d.dispatch(event("short"));
    let stats = d.shutdown(Duration::from_secs(3600)).await;
    assert_eq!(
        stats[0].1,
        StatsSnapshot {
            sent: 1,
            retried: 22,
            failed: 0,
            dropped: 0
        }
    );
    assert_eq!(sink.seen().len(), 23);
}

#[test]
fn a_descriptor_shortage_is_recognised_in_an_error_chain() {
    use event_exporter_core::sink::out_of_descriptors;
    #[derive(Debug)]
    struct Wrapper(std::io::Error);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("tcp connect error")
        }
    }
    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    assert!(out_of_descriptors(&Wrapper(
        std::io::Error::from_raw_os_error(24)
    )));
    assert!(out_of_descriptors(&std::io::Error::from_raw_os_error(23)));
    assert!(!out_of_descriptors(&Wrapper(
        std::io::Error::from_raw_os_error(111)
    )));
}
