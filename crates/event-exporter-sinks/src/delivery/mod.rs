//! Delivery: every receiver gets its own bounded queue and an ordered worker that sends with
//! retries, so a slow or dead receiver never holds back the others or the input.
//!
//! - [`Dispatcher::dispatch`] routes an event and queues one delivery per receiver reached
//!   (twice if reached twice). It never waits: a full queue drops its oldest delivery, counted.
//! - Each worker sends its receiver's deliveries one at a time, in order (so a Slack thread's
//!   messages arrive in order), retrying per [`RetryPolicy`]; a delivery it gives up on is
//!   logged once at warn and counted.
//! - [`Dispatcher::shutdown`] stops intake and lets the queues drain within a deadline; what
//!   is left is counted as dropped.
//!
//! Outcomes are counted per receiver in [`ReceiverStats`] (sent, retried, failed, dropped),
//! ready for a metrics endpoint.

pub mod config;
pub mod queue;
pub mod retry;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use event_exporter_core::sink::{Delivery, ReceiptBoard, SendError, Sink};
use event_exporter_core::{EnrichedEvent, ReceiverId, Router};
use futures::FutureExt;
use smallvec::SmallVec;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{DeliveryConfig, DeliverySettings, parse_duration};
pub use queue::{DeliveryQueue, Pushed};
pub use retry::{Decision, RetryPolicy};

/// Per-receiver outcome counters.
#[derive(Debug, Default)]
pub struct ReceiverStats {
    sent: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    /// 1 while the worker holds a delivery it has not finished with.
    in_flight: AtomicU64,
}

/// A point-in-time copy of [`ReceiverStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Deliveries that succeeded.
    pub sent: u64,
    /// Attempts that failed and were retried.
    pub retried: u64,
    /// Deliveries given up (permanent error, or retries exhausted).
    pub failed: u64,
    /// Deliveries dropped unsent (queue full, or left at shutdown).
    pub dropped: u64,
}

impl ReceiverStats {
    /// A snapshot of the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            sent: self.sent.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Internal delivery events: each logs and counts in this one place. What a failure says is
/// logged as an excerpt with the receiver's secrets masked and control characters escaped
/// (see [`event_exporter_core::redact`]); what the receiver answered only at debug.
mod events {
    use super::*;
    use event_exporter_core::redact::Secrets;

    /// How much of an error message a log line keeps.
    const MESSAGE: usize = 300;

    pub(super) fn sent(stats: &ReceiverStats) {
        stats.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// The error's message, and its response body, fit for a log line.
    fn describe(error: &SendError, secrets: &Secrets) -> (String, String) {
        let message = secrets.excerpt(&error.to_string(), MESSAGE);
        let body = error
            .body()
            .map(|b| secrets.excerpt(b, MESSAGE))
            .unwrap_or_default();
        (message, body)
    }

    pub(super) fn retrying(
        stats: &ReceiverStats,
        sink: &dyn Sink,
        delivery: &Delivery,
        error: &SendError,
        wait: Duration,
    ) {
        stats.retried.fetch_add(1, Ordering::Relaxed);
        if tracing::enabled!(tracing::Level::DEBUG) {
            let (error, response) = describe(error, sink.secrets());
            tracing::debug!(receiver = sink.name(), delivery = %delivery.id, %error, %response, ?wait, "delivery failed; retrying");
        }
    }

    /// A shortage of this process (no file descriptor left): retried as long as it lasts,
    /// said at warn once per delivery.
    pub(super) fn short_of_resources(
        stats: &ReceiverStats,
        sink: &dyn Sink,
        delivery: &Delivery,
        error: &SendError,
        wait: Duration,
        first: bool,
    ) {
        stats.retried.fetch_add(1, Ordering::Relaxed);
        let (error, _) = describe(error, sink.secrets());
        if first {
            tracing::warn!(receiver = sink.name(), delivery = %delivery.id, %error, ?wait, "this process is short of file descriptors; retrying the delivery until it is not (it is not given up for this)");
        } else {
            tracing::debug!(receiver = sink.name(), delivery = %delivery.id, %error, ?wait, "still short of file descriptors; retrying");
        }
    }

    pub(super) fn given_up(
        stats: &ReceiverStats,
        sink: &dyn Sink,
        delivery: &Delivery,
        error: &SendError,
        attempts: u32,
    ) {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        let (message, response) = describe(error, sink.secrets());
        tracing::warn!(receiver = sink.name(), delivery = %delivery.id, attempts, error = %message, "delivery given up");
        if !response.is_empty() {
            tracing::debug!(receiver = sink.name(), delivery = %delivery.id, %response, "what the receiver answered");
        }
    }

    pub(super) fn dropped(
        stats: &ReceiverStats,
        receiver: &str,
        delivery: &Delivery,
        why: &'static str,
    ) {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(receiver, delivery = %delivery.id, why, "delivery dropped");
    }
}

/// Delivery tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchOptions {
    /// Deliveries each receiver's queue holds before dropping the oldest.
    pub queue_capacity: usize,
    /// The retry policy for every receiver.
    pub retry: RetryPolicy,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 1024,
            retry: RetryPolicy::default(),
        }
    }
}

struct Receiver {
    name: String,
    queue: Arc<DeliveryQueue>,
    stats: Arc<ReceiverStats>,
    worker: JoinHandle<()>,
    /// Bumped by [`Dispatcher::discard_queued`]: the worker abandons the delivery in hand.
    halt: watch::Sender<u64>,
    /// Its queue stayed full for a whole patience (see [`Dispatcher::dispatch_patiently`]).
    congested: std::sync::atomic::AtomicBool,
}

/// A dispatcher dropped without [`Dispatcher::shutdown`] (its owner's task aborted, a lost
/// leadership unwinding) stops its workers: nothing is delivered on behalf of an owner that is
/// gone. What was queued is abandoned, as in a crash.
impl Drop for Receiver {
    fn drop(&mut self) {
        self.queue.close();
        self.worker.abort();
        // The queue outlives us when an observer holds it: release what it held.
        drop(self.queue.drain());
    }
}

/// What [`Dispatcher::dispatch_tracked`] dispatched: the receivers reached, in routing order,
/// and the board their deliveries mark finished (slot `i` is `receivers[i]`'s).
#[derive(Debug)]
pub struct Tracked {
    /// One slot per delivery.
    pub board: Arc<ReceiptBoard>,
    /// The receiver of each slot.
    pub receivers: SmallVec<[ReceiverId; 8]>,
}

/// Reads a [`Dispatcher`]'s per-receiver counters and queue depths from anywhere.
#[derive(Debug, Clone)]
pub struct DispatchObserver {
    receivers: Vec<(String, Arc<ReceiverStats>, Arc<DeliveryQueue>)>,
}

impl DispatchObserver {
    /// Per receiver, in config order: its name, counters and deliveries waiting.
    pub fn samples(&self) -> impl Iterator<Item = (&str, StatsSnapshot, usize)> + '_ {
        self.receivers
            .iter()
            .map(|(name, stats, queue)| (name.as_str(), stats.snapshot(), queue.len()))
    }
}

/// Routes events to per-receiver queues and runs the workers that deliver them. Dropped
/// without [`shutdown`](Self::shutdown), it stops the workers and abandons what was queued.
pub struct Dispatcher {
    router: Router,
    receivers: Vec<Receiver>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field(
                "receivers",
                &self.receivers.iter().map(|r| &r.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

async fn work(
    sink: Arc<dyn Sink>,
    queue: Arc<DeliveryQueue>,
    stats: Arc<ReceiverStats>,
    policy: RetryPolicy,
    mut halt: watch::Receiver<u64>,
) {
    while let Some(delivery) = queue.pop().await {
        stats.in_flight.store(1, Ordering::Relaxed);
        halt.borrow_and_update();
        // A discard (a lost Lease, a shutdown) abandons the delivery in hand too: its attempt
        // or its wait for the next one is cut short, and nothing more is sent for it.
        let halted = tokio::select! {
            biased;
            _ = halt.changed() => true,
            () = attempts(&*sink, &delivery, &stats, &policy) => false,
        };
        if halted {
            events::dropped(&stats, sink.name(), &delivery, "discarded in flight");
        }
        stats.in_flight.store(0, Ordering::Relaxed);
    }
}

/// How long a delivery waits out this process being short of file descriptors.
const MAX_SHORTAGE: Duration = Duration::from_secs(3600);

/// Sends `delivery`, retrying as `policy` says, until it is sent or given up.
async fn attempts(
    sink: &dyn Sink,
    delivery: &Delivery,
    stats: &ReceiverStats,
    policy: &RetryPolicy,
) {
    let started = tokio::time::Instant::now();
    let mut failures = 0u32;
    // Time spent waiting out this process's own shortages: not the delivery's time.
    let mut short = (0u32, Duration::ZERO);
    loop {
        // A sink that panics fails this delivery, not the receiver: later deliveries are
        // still sent, and every one is accounted for.
        let attempt = std::panic::AssertUnwindSafe(sink.send(delivery))
            .catch_unwind()
            .await;
        let result = attempt.unwrap_or_else(|_| Err(SendError::permanent("the sink panicked")));
        match result {
            Ok(()) => {
                events::sent(stats);
                return;
            }
            // A shortage of this process: waited out, for up to an hour (what is short for
            // longer is not coming back by itself, and `run` must end).
            Err(error) if error.is_local() && short.1 < MAX_SHORTAGE => {
                short.0 += 1;
                let wait = policy.backoff(short.0, jitter());
                events::short_of_resources(stats, sink, delivery, &error, wait, short.0 == 1);
                tokio::time::sleep(wait).await;
                short.1 += wait;
            }
            Err(error) => {
                failures += 1;
                let elapsed = started.elapsed().saturating_sub(short.1);
                match policy.decide(&error, failures, elapsed, jitter()) {
                    Decision::RetryAfter(wait) => {
                        events::retrying(stats, sink, delivery, &error, wait);
                        tokio::time::sleep(wait).await;
                    }
                    Decision::GiveUp => {
                        events::given_up(stats, sink, delivery, &error, failures);
                        return;
                    }
                }
            }
        }
    }
}

/// A jitter draw in `[0, 1)` from the clock's low bits: enough to spread retries (of deliveries,
/// of the watch) apart so that clients recovering from one outage do not retry in lockstep; no
/// generator state to share. Not a source of randomness for anything else.
pub fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // Mix the bits so consecutive calls differ in the high bits too.
    let mixed = nanos.wrapping_mul(2_654_435_761);
    f64::from(mixed) / (f64::from(u32::MAX) + 1.0)
}

impl Dispatcher {
    /// Starts one worker per sink (on the current tokio runtime), every receiver with the same
    /// `options`. `sinks` are indexed like the router's receivers.
    pub fn start(router: Router, sinks: Vec<Box<dyn Sink>>, options: DispatchOptions) -> Self {
        Self::start_each(router, sinks.into_iter().map(|s| (s, options)).collect())
    }

    /// Starts one worker per receiver, each with its own options (from its `delivery:` block,
    /// see [`crate::build_receivers`]).
    pub fn start_each(router: Router, receivers: Vec<crate::BuiltReceiver>) -> Self {
        let receivers = receivers
            .into_iter()
            .map(|(sink, options)| {
                let sink: Arc<dyn Sink> = Arc::from(sink);
                let queue = Arc::new(DeliveryQueue::new(options.queue_capacity));
                let stats = Arc::new(ReceiverStats::default());
                let (halt, halted) = watch::channel(0);
                let worker = tokio::spawn(work(
                    Arc::clone(&sink),
                    Arc::clone(&queue),
                    Arc::clone(&stats),
                    options.retry,
                    halted,
                ));
                Receiver {
                    name: sink.name().to_owned(),
                    queue,
                    stats,
                    worker,
                    halt,
                    congested: std::sync::atomic::AtomicBool::new(false),
                }
            })
            .collect();
        Self { router, receivers }
    }

    /// Routes `event` and queues a delivery for every receiver reached; returns how many.
    pub fn dispatch(&self, event: Arc<EnrichedEvent>) -> usize {
        let mut queued = 0;
        self.router.route(&event.view(), |id| {
            let Some(receiver) = self.receivers.get(id.index()) else {
                return;
            };
            queued += 1;
            match receiver.queue.push(Delivery::new(Arc::clone(&event))) {
                Pushed::Queued => {}
                Pushed::DroppedOldest(old) => {
                    events::dropped(&receiver.stats, &receiver.name, &old, "queue full")
                }
                Pushed::Closed(d) => {
                    events::dropped(&receiver.stats, &receiver.name, &d, "shutting down")
                }
            }
        });
        queued
    }

    /// Like [`dispatch`](Self::dispatch), but a full queue first waits up to `patience` for
    /// room, so a burst larger than a queue is delivered rather than dropped. A receiver whose
    /// queue stays full that long is *congested* (its worker is stuck, retrying a dead
    /// endpoint): until its queue has drained to half, it drops its oldest deliveries at once
    /// (counted, and logged once per episode), so a stuck receiver holds the others back by
    /// one `patience` at most. Await it to completion (see [`DeliveryQueue::push_within`]).
    pub async fn dispatch_patiently(&self, event: Arc<EnrichedEvent>, patience: Duration) -> usize {
        let reached = self.reached(&event);
        for id in &reached {
            self.push_patiently(*id, Delivery::new(Arc::clone(&event)), patience)
                .await;
        }
        reached.len()
    }

    /// [`dispatch_patiently`](Self::dispatch_patiently) for a caller that tracks when each
    /// delivery is finished (sent, given up, or dropped): every delivery carries a receipt of
    /// the returned board, one slot per receiver in the returned list (in routing order).
    /// `only`, when given, restricts the receivers to those in it (a resend of deliveries that
    /// did not finish before a restart).
    pub async fn dispatch_tracked(
        &self,
        event: Arc<EnrichedEvent>,
        patience: Duration,
        only: Option<&[ReceiverId]>,
    ) -> Tracked {
        let mut reached = self.reached(&event);
        if let Some(only) = only {
            reached.retain(|id| only.contains(id));
        }
        let board = ReceiptBoard::new(reached.len());
        for (slot, id) in reached.iter().enumerate() {
            let delivery = Delivery::with_receipt(Arc::clone(&event), board.receipt(slot));
            self.push_patiently(*id, delivery, patience).await;
        }
        Tracked {
            board,
            receivers: reached,
        }
    }

    async fn push_patiently(&self, id: ReceiverId, delivery: Delivery, patience: Duration) {
        let Some(r) = self.receivers.get(id.index()) else {
            return;
        };
        let congested = r.congested.load(Ordering::Relaxed);
        let pushed = if congested && r.queue.len() > r.queue.capacity() / 2 {
            r.queue.push(delivery)
        } else {
            if congested {
                r.congested.store(false, Ordering::Relaxed);
                tracing::info!(receiver = %r.name, "queue drained: no longer dropping");
            }
            let pushed = r.queue.push_within(delivery, patience).await;
            if matches!(pushed, Pushed::DroppedOldest(_)) {
                r.congested.store(true, Ordering::Relaxed);
                tracing::warn!(
                    receiver = %r.name,
                    ?patience,
                    "queue full: dropping its oldest deliveries until it drains to half"
                );
            }
            pushed
        };
        match pushed {
            Pushed::Queued => {}
            Pushed::DroppedOldest(old) => events::dropped(&r.stats, &r.name, &old, "queue full"),
            Pushed::Closed(d) => events::dropped(&r.stats, &r.name, &d, "shutting down"),
        }
    }

    /// Like [`dispatch`](Self::dispatch), but waits for room in full queues instead of dropping:
    /// for replays, where every event must be delivered. Deliveries to a closed queue are
    /// counted as dropped.
    pub async fn dispatch_wait(&self, event: Arc<EnrichedEvent>) -> usize {
        let reached = self.reached(&event);
        for id in &reached {
            if let Some(receiver) = self.receivers.get(id.index())
                && let Err(d) = receiver
                    .queue
                    .push_wait(Delivery::new(Arc::clone(&event)))
                    .await
            {
                events::dropped(&receiver.stats, &receiver.name, &d, "shutting down");
            }
        }
        reached.len()
    }

    /// The receivers `event` is routed to, in routing order, collected before any await: on the
    /// stack for up to 8 (no allocation per event), on the heap beyond.
    fn reached(&self, event: &EnrichedEvent) -> SmallVec<[ReceiverId; 8]> {
        let mut reached = SmallVec::new();
        self.router.route(&event.view(), |id| reached.push(id));
        reached
    }

    /// Counters per receiver, in config order.
    pub fn stats(&self) -> Vec<(&str, StatsSnapshot)> {
        self.receivers
            .iter()
            .map(|r| (r.name.as_str(), r.stats.snapshot()))
            .collect()
    }

    /// A cheap handle that reads every receiver's counters and queue depth while the
    /// dispatcher runs (for a metrics endpoint living on another task).
    pub fn observer(&self) -> DispatchObserver {
        DispatchObserver {
            receivers: self
                .receivers
                .iter()
                .map(|r| (r.name.clone(), Arc::clone(&r.stats), Arc::clone(&r.queue)))
                .collect(),
        }
    }

    /// Drops every queued delivery (counted as dropped, with `why`), and the one each worker
    /// has in hand (its attempt is cut short, its retries abandoned; counted as dropped by the
    /// worker), keeping the dispatcher running: for a replica that lost its Lease, whose
    /// deliveries are now the new leader's to make, and for a shutdown once the checkpoint is
    /// saved. Returns how many queued deliveries were dropped.
    pub fn discard_queued(&self, why: &'static str) -> usize {
        let mut dropped = 0;
        for r in &self.receivers {
            for d in &r.queue.drain() {
                events::dropped(&r.stats, &r.name, d, why);
                dropped += 1;
            }
            // And the one in hand: its attempt or retry wait ends now.
            r.halt
                .send_modify(|generation| *generation = generation.wrapping_add(1));
        }
        dropped
    }

    /// Deliveries waiting, per receiver.
    pub fn queue_depths(&self) -> Vec<(&str, usize)> {
        self.receivers
            .iter()
            .map(|r| (r.name.as_str(), r.queue.len()))
            .collect()
    }

    /// Stops intake and waits up to `deadline` for every queue to drain. Workers still busy
    /// then are stopped and what they had left is counted as dropped. Returns the final
    /// counters per receiver.
    pub async fn shutdown(self, deadline: Duration) -> Vec<(String, StatsSnapshot)> {
        self.shutdown_when(tokio::time::sleep(deadline)).await
    }

    /// Like [`shutdown`](Self::shutdown), with the deadline given as a future: the drain is
    /// cut short when `deadline` completes (e.g. a signal, then a grace period).
    pub async fn shutdown_when(
        self,
        deadline: impl std::future::Future<Output = ()>,
    ) -> Vec<(String, StatsSnapshot)> {
        for r in &self.receivers {
            r.queue.close();
        }
        let mut receivers = self.receivers;
        {
            let all_done = futures::future::join_all(receivers.iter_mut().map(|r| &mut r.worker));
            tokio::select! {
                _ = all_done => {}
                () = deadline => {}
            }
        }
        let mut out = Vec::with_capacity(receivers.len());
        for mut r in receivers {
            if !r.worker.is_finished() {
                r.worker.abort();
                // Abort takes effect at the worker's next await: wait for it, so nothing it
                // does afterwards can change the counts below.
                let _ = (&mut r.worker).await;
            }
            for d in &r.queue.drain() {
                events::dropped(&r.stats, &r.name, d, "shutdown deadline");
            }
            if r.stats.in_flight.swap(0, Ordering::Relaxed) == 1 {
                r.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(receiver = %r.name, "delivery in flight dropped at the shutdown deadline");
            }
            out.push((std::mem::take(&mut r.name), r.stats.snapshot()));
        }
        out
    }
}
