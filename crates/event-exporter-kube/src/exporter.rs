//! The running exporter: watch → occurrence filter → enrichment → routing and delivery, with
//! the checkpoint saved as delivery progresses, under a Lease when leader election is on.
//!
//! ```text
//!  watch streams ──► reader task ──► bounded channel ──► filter (sync) ──► enrichment
//!  (kube watcher,     (never waits      (8192)            (occurrence)     (bounded
//!   per selector)      on lookups)                                          concurrency,
//!                                                                          in order)
//!        ──► Dispatcher (per-receiver queues, retries) ──► Progress ──► checkpoint store
//! ```
//!
//! Guarantees (see [`crate::occurrence`] and [`crate::progress`] for the details):
//! - An occurrence is exported once: relists (start-up, 410, list errors) deliver only what
//!   the checkpoint and the filter do not know as handled.
//! - Nothing is lost across a restart or a hand-over: the checkpoint's watermark only moves
//!   past an occurrence once every receiver it was routed to has finished with it. At
//!   shutdown, what is still being delivered when the grace period ends stays behind the
//!   watermark and is delivered after the restart.
//! - A failing receiver is retried and counted without holding back the others (its queue
//!   drops its oldest delivery when full, counted as dropped).
//! - Memory does not grow with the number of events in the cluster: no object cache; the
//!   filter remembers a bounded number of occurrences.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use event_exporter_core::{EnrichedEvent, ReceiverId, Router};
use event_exporter_sinks::BuiltReceiver;
use event_exporter_sinks::delivery::{DispatchObserver, Dispatcher, StatsSnapshot};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use tokio::sync::mpsc;

use crate::checkpoint::{Checkpoint, CheckpointStore, MAX_RECENT};
use crate::enrich::Enricher;
use crate::leader::{LeaderElector, Leadership};
use crate::metrics::{Discard, Metrics, ReceiverSample};
use crate::occurrence::{self, OccurrenceFilter, Phase, UidKey, Verdict};
use crate::progress::{Progress, Resume};
use crate::server::{Health, MetricsSource};
use crate::watch::{self, WatchError, WatchItem, WatchSettings, WatchStep, WatchedEvent};

/// How the exporter runs.
#[derive(Debug, Clone)]
pub struct ExporterSettings {
    /// What to watch.
    pub watch: WatchSettings,
    /// `maxEventAgeSeconds`: at the first start (no checkpoint), older events are not exported.
    pub max_event_age: Duration,
    /// `clusterName`, stamped on every event.
    pub cluster_name: Arc<str>,
    /// How often the checkpoint is saved while running.
    pub checkpoint_interval: Duration,
    /// Occurrences the filter remembers at most.
    pub remembered_occurrences: usize,
    /// Enrichment lookups in flight at most.
    pub enrich_concurrency: usize,
    /// After a stop, how long deliveries under way may still take.
    pub shutdown_grace: Duration,
    /// How long an event waits for room in a full receiver queue before that receiver drops
    /// its oldest delivery (see [`Dispatcher::dispatch_tracked`]).
    pub queue_patience: Duration,
    /// This process's identity (the Lease holder; the checkpoint's writer).
    pub identity: String,
}

impl Default for ExporterSettings {
    fn default() -> Self {
        Self {
            watch: WatchSettings::default(),
            max_event_age: Duration::from_secs(5),
            cluster_name: Arc::default(),
            checkpoint_interval: Duration::from_secs(5),
            remembered_occurrences: 65_536,
            enrich_concurrency: 16,
            shutdown_grace: Duration::from_secs(25),
            queue_patience: Duration::from_secs(1),
            identity: String::new(),
        }
    }
}

/// Why the exporter stopped running.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    /// Leader election failed for good (a bad Lease setting).
    #[error("leader election: {0}")]
    Leader(#[from] crate::leader::LeaderError),
    /// The watch stopped for good (its reader task ended).
    #[error("the event watch ended unexpectedly")]
    WatchEnded,
}

/// What a run did, per receiver.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Final counters per receiver, in config order.
    pub receivers: Vec<(String, StatsSnapshot)>,
}

/// The exporter: built from its parts, then [`run`](Self::run).
pub struct Exporter {
    client: kube::Client,
    router: Router,
    receivers: Vec<BuiltReceiver>,
    enricher: Option<Enricher>,
    checkpoint: Option<Arc<dyn CheckpointStore>>,
    elector: Option<LeaderElector>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    settings: ExporterSettings,
    observer_cell: Arc<std::sync::OnceLock<DispatchObserver>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("settings", &self.settings)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

/// Live metrics: the exporter's counters plus every receiver's.
#[derive(Debug, Clone)]
pub struct LiveMetrics {
    metrics: Arc<Metrics>,
    observer: Arc<std::sync::OnceLock<DispatchObserver>>,
}

impl MetricsSource for LiveMetrics {
    fn render(&self) -> String {
        let samples: Vec<ReceiverSample<'_>> = self
            .observer
            .get()
            .map(|o| {
                o.samples()
                    .map(|(name, s, depth)| ReceiverSample {
                        name,
                        sent: s.sent,
                        retried: s.retried,
                        failed: s.failed,
                        dropped: s.dropped,
                        queue_depth: depth,
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.metrics.render(&samples)
    }
}

/// One step of the pipeline, in watch order.
enum Step {
    /// Export this occurrence (after enrichment).
    Export {
        stream: usize,
        rv: Option<u64>,
        /// During a list: the object's resourceVersion (`rv` is then `None`).
        list_rv: Option<u64>,
        key: (UidKey, u32),
        event: Box<CoreEvent>,
        /// Only to these receivers (a resend after a restart).
        only: Option<Vec<ReceiverId>>,
    },
    /// An update that needs no delivery.
    Skip { stream: usize, rv: Option<u64> },
    /// A list finished.
    Listed { stream: usize, rv: Option<u64> },
}

/// What a step became once enriched.
enum Ready {
    Export {
        stream: usize,
        rv: Option<u64>,
        list_rv: Option<u64>,
        key: (UidKey, u32),
        event: Arc<EnrichedEvent>,
        only: Option<Vec<ReceiverId>>,
    },
    Skip {
        stream: usize,
        rv: Option<u64>,
    },
    Listed {
        stream: usize,
        rv: Option<u64>,
    },
}

/// What the export loop does next.
enum Next {
    End(TermEnd),
    Save,
    Handle(Option<Ready>),
}

/// Why a term of leadership ended.
enum TermEnd {
    Stopped,
    LostLeadership,
    /// The watch reader ended (it never does on its own: a panic).
    WatchEnded,
}

/// Watch items the reader hands over at once, at most.
const READER_BATCH: usize = 128;

/// Batches the reader may be ahead of the pipeline (so at most `READER_BATCH ×
/// READER_BATCHES` decoded events wait in memory while lookups or a full queue hold it back).
const READER_BATCHES: usize = 8;

/// How long one checkpoint save may take before it is given up (and retried at the next tick).
const SAVE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long releasing the Lease at shutdown may take.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

impl Exporter {
    /// An exporter over `client` delivering to `receivers` (indexed like `router`'s).
    pub fn new(
        client: kube::Client,
        router: Router,
        receivers: Vec<BuiltReceiver>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        settings: ExporterSettings,
    ) -> Self {
        Self {
            client,
            router,
            receivers,
            enricher: None,
            checkpoint: None,
            elector: None,
            metrics,
            health,
            settings,
            observer_cell: Arc::default(),
        }
    }

    /// Looks up involved objects with `enricher` (none: events are exported as they are).
    pub fn with_enricher(mut self, enricher: Enricher) -> Self {
        self.enricher = Some(enricher);
        self
    }

    /// Saves progress in `store` and resumes from it.
    pub fn with_checkpoint(mut self, store: Arc<dyn CheckpointStore>) -> Self {
        self.checkpoint = Some(store);
        self
    }

    /// Exports only while holding the Lease of `elector`.
    pub fn with_leader_election(mut self, elector: LeaderElector) -> Self {
        self.elector = Some(elector);
        self
    }

    /// A metrics source for the operations server; it includes the receivers' counters once
    /// [`run`](Self::run) has started them.
    pub fn metrics_source(&self) -> LiveMetrics {
        LiveMetrics {
            metrics: Arc::clone(&self.metrics),
            observer: Arc::clone(&self.observer_cell),
        }
    }

    /// Runs until `stop` completes: watches (as leader, when leader election is on), exports,
    /// and at the end stops watching, lets deliveries finish within the grace period, saves
    /// the checkpoint and releases the Lease.
    pub async fn run(
        self,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<RunSummary, ExporterError> {
        let Exporter {
            client,
            router,
            receivers,
            enricher,
            checkpoint,
            elector,
            metrics,
            health,
            settings,
            observer_cell,
        } = self;
        let dispatcher = Dispatcher::start_each(router, receivers);
        let _ = observer_cell.set(dispatcher.observer());
        let receiver_names: Vec<String> = dispatcher
            .stats()
            .into_iter()
            .map(|(name, _)| name.to_owned())
            .collect();
        let term = Term {
            client: &client,
            dispatcher: &dispatcher,
            receiver_names: &receiver_names,
            enricher: enricher.as_ref(),
            checkpoint: checkpoint.as_deref(),
            metrics: &metrics,
            health: &health,
            settings: &settings,
        };
        let mut stop = pin!(stop);
        let outcome = match &elector {
            None => {
                metrics.set_leader(true);
                term.lead(stop.as_mut(), None).await
            }
            Some(elector) => loop {
                health.set_standby(true);
                metrics.set_leader(false);
                let leadership = tokio::select! {
                    () = stop.as_mut() => break TermEnd::Stopped,
                    acquired = elector.acquire() => match acquired {
                        Ok(l) => l,
                        Err(e) => {
                            dispatcher.shutdown(Duration::ZERO).await;
                            return Err(e.into());
                        }
                    },
                };
                health.set_standby(false);
                metrics.set_leader(true);
                match term.lead(stop.as_mut(), Some(leadership)).await {
                    TermEnd::LostLeadership => {
                        tracing::warn!("leadership lost: stopped exporting; waiting to lead again");
                    }
                    end => break end,
                }
            },
        };
        metrics.set_leader(false);
        // What is still queued was left behind the checkpoint's watermark: stop it.
        let receivers = dispatcher.shutdown(Duration::from_millis(100)).await;
        match outcome {
            TermEnd::WatchEnded => Err(ExporterError::WatchEnded),
            TermEnd::Stopped | TermEnd::LostLeadership => Ok(RunSummary { receivers }),
        }
    }
}

/// What one term of exporting borrows.
struct Term<'a> {
    client: &'a kube::Client,
    dispatcher: &'a Dispatcher,
    /// In config order: what a checkpoint names pending receivers by.
    receiver_names: &'a [String],
    enricher: Option<&'a Enricher>,
    checkpoint: Option<&'a dyn CheckpointStore>,
    metrics: &'a Metrics,
    health: &'a Health,
    settings: &'a ExporterSettings,
}

impl Term<'_> {
    /// Loads the checkpoint, retrying API failures until it is read or `stop` completes. A
    /// corrupt checkpoint is reported and treated as none (it is replaced at the next save).
    async fn load_checkpoint(
        &self,
        mut stop: std::pin::Pin<&mut (impl Future<Output = ()> + Send + ?Sized)>,
    ) -> Option<Option<Checkpoint>> {
        let Some(store) = self.checkpoint else {
            return Some(None);
        };
        let mut wait = Duration::from_millis(500);
        loop {
            match store.load().await {
                Ok(cp) => {
                    if cp.is_none() {
                        tracing::info!(store = %store.describe(), "no checkpoint yet: first start (maxEventAgeSeconds applies)");
                    }
                    return Some(cp);
                }
                Err(e @ crate::checkpoint::CheckpointError::Corrupt { .. }) => {
                    self.metrics.checkpoint_error();
                    tracing::error!(error = %crate::brief(&e), "starting as on a first start");
                    return Some(None);
                }
                Err(e) => {
                    self.metrics.checkpoint_error();
                    tracing::warn!(error = %crate::brief(&e), retry_in = ?wait, "cannot read the checkpoint; retrying");
                }
            }
            tokio::select! {
                () = stop.as_mut() => return None,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }

    async fn save(
        &self,
        selectors: &[String],
        progress: &mut Progress,
        last: &mut Option<Checkpoint>,
    ) {
        let Some(store) = self.checkpoint else { return };
        let snapshot = progress.snapshot();
        let mut cp = Checkpoint::from_progress(
            selectors,
            &snapshot,
            self.receiver_names,
            &self.settings.identity,
        );
        // It supersedes what this term loaded or last wrote (see `Checkpoint::merge`).
        cp.based_on = last.as_ref().map(Checkpoint::stamp);
        let unchanged = last.as_ref().is_some_and(|l| l.same_progress(&cp));
        if unchanged {
            return;
        }
        let saved = tokio::time::timeout(SAVE_TIMEOUT, store.save(&cp))
            .await
            .unwrap_or_else(|_| {
                Err(crate::checkpoint::CheckpointError::Timeout {
                    store: store.describe(),
                    after: SAVE_TIMEOUT,
                })
            });
        match saved {
            Ok(()) => {
                self.metrics.checkpoint_written();
                if let Some(rv) = snapshot.watermarks.iter().flatten().min() {
                    self.metrics.set_checkpoint_rv(*rv);
                }
                self.metrics
                    .set_checkpoint_pending(u64::try_from(cp.pending.len()).unwrap_or(u64::MAX));
                *last = Some(cp);
            }
            Err(e) => {
                self.metrics.checkpoint_error();
                tracing::warn!(error = %crate::brief(&e), "cannot save the checkpoint; will retry");
            }
        }
    }

    /// One term: export until `stop` or the loss of `leadership`.
    async fn lead(
        &self,
        mut stop: std::pin::Pin<&mut (impl Future<Output = ()> + Send + ?Sized)>,
        mut leadership: Option<Leadership>,
    ) -> TermEnd {
        let loaded = {
            let lost = lost_or_never(leadership.as_mut());
            tokio::select! {
                cp = self.load_checkpoint(stop.as_mut()) => cp,
                () = lost => return TermEnd::LostLeadership,
            }
        };
        let Some(cp) = loaded else {
            release(leadership).await;
            return TermEnd::Stopped;
        };
        let selectors = self.settings.watch.selectors();
        let watermarks = cp
            .as_ref()
            .map_or_else(|| vec![None; selectors.len()], |c| c.watermarks(&selectors));
        let recent: Vec<(UidKey, u32)> = cp
            .as_ref()
            .map(|c| c.recent().collect())
            .unwrap_or_default();
        let pending = cp
            .as_ref()
            .map(|c| c.pending_for(self.receiver_names))
            .unwrap_or_default();
        // A stream the checkpoint has no resourceVersion for starts with upstream's age rule,
        // its cut-off fixed now (or kept from a first start that was interrupted).
        let max_age_ms = i64::try_from(self.settings.max_event_age.as_millis()).unwrap_or(i64::MAX);
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let stored_cutoffs = cp
            .as_ref()
            .map_or_else(|| vec![None; selectors.len()], |c| c.cutoffs(&selectors));
        let cutoffs: Vec<Option<i64>> = watermarks
            .iter()
            .zip(stored_cutoffs)
            .map(|(mark, stored)| match mark {
                Some(_) => None,
                None => Some(stored.unwrap_or_else(|| now_ms.saturating_sub(max_age_ms))),
            })
            .collect();
        let filter = OccurrenceFilter::new(
            &watermarks,
            recent.iter().copied(),
            self.settings.remembered_occurrences,
            max_age_ms,
        );
        let list_handled = cp
            .as_ref()
            .map(|c| c.list_handled(&selectors))
            .unwrap_or_default();
        let mut filter = filter
            .with_cutoffs(&cutoffs)
            .with_pending(pending.iter().cloned())
            .with_list_handled(list_handled.clone());
        let mut progress = Progress::new(
            Resume {
                marks: watermarks,
                cutoffs,
                pending,
                list_handled,
                recent,
            },
            MAX_RECENT,
        );
        let mut last_saved = cp;

        // The reader task keeps reading the watch whatever the pipeline is doing.
        // Items travel in batches of what the watch has already decoded: one wake-up of the
        // pipeline per batch, not per event.
        let (tx, rx) = mpsc::channel::<Vec<WatchItem>>(READER_BATCHES);
        let stream = watch::event_stream(self.client.clone(), &self.settings.watch);
        let reader = tokio::spawn(async move {
            let mut stream = pin!(stream);
            while let Some(item) = stream.next().await {
                let mut batch = Vec::with_capacity(READER_BATCH);
                batch.push(item);
                while batch.len() < READER_BATCH {
                    match stream.next().now_or_never() {
                        Some(Some(item)) => batch.push(item),
                        _ => break,
                    }
                }
                if tx.send(batch).await.is_err() {
                    break;
                }
            }
        });

        let mut streams = vec![StreamState::default(); selectors.len()];
        let metrics = self.metrics;
        let health = self.health;
        let items = tokio_stream_from(rx).flat_map(futures::stream::iter);
        let steps = items.filter_map(|(stream, item)| {
            let step = decide(&mut filter, &mut streams, metrics, health, stream, item);
            futures::future::ready(step)
        });
        let enricher = self.enricher;
        let cluster_name = &self.settings.cluster_name;
        let ready = steps
            .map(|step| async move {
                match step {
                    Step::Export {
                        stream,
                        rv,
                        list_rv,
                        key,
                        event,
                        only,
                    } => {
                        let enrichment = match enricher {
                            Some(e) => e.enrich(&event).await,
                            None => Default::default(),
                        };
                        Ready::Export {
                            stream,
                            rv,
                            list_rv,
                            key,
                            only,
                            event: Arc::new(EnrichedEvent {
                                event: *event,
                                enrichment,
                                cluster_name: Arc::clone(cluster_name),
                            }),
                        }
                    }
                    Step::Skip { stream, rv } => Ready::Skip { stream, rv },
                    Step::Listed { stream, rv } => Ready::Listed { stream, rv },
                }
            })
            .buffered(self.settings.enrich_concurrency.max(1));
        let mut ready = Box::pin(ready);
        let mut ticker = tokio::time::interval(self.settings.checkpoint_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut handled: u32 = 0;
        let end = loop {
            let next = {
                let lost = lost_or_never(leadership.as_mut());
                tokio::select! {
                    biased;
                    () = stop.as_mut() => Next::End(TermEnd::Stopped),
                    () = lost => Next::End(TermEnd::LostLeadership),
                    _ = ticker.tick() => Next::Save,
                    item = ready.next() => Next::Handle(item),
                }
            };
            // The work itself races the loss of the Lease: a replica that is no longer the
            // leader neither dispatches nor saves another thing.
            let lost = lost_or_never(leadership.as_mut());
            match next {
                Next::End(end) => break end,
                // A stop cuts a periodic save short: the final save follows.
                Next::Save => tokio::select! {
                    biased;
                    () = lost => break TermEnd::LostLeadership,
                    () = stop.as_mut() => break TermEnd::Stopped,
                    () = self.save(&selectors, &mut progress, &mut last_saved) => {}
                },
                Next::Handle(None) => {
                    tracing::error!("the event watch ended; stopping");
                    break TermEnd::WatchEnded;
                }
                Next::Handle(Some(item)) => {
                    tokio::select! {
                        biased;
                        () = lost => break TermEnd::LostLeadership,
                        () = self.deliver(item, &mut progress) => {}
                    }
                    handled = handled.wrapping_add(1);
                    if handled.is_multiple_of(1024) {
                        progress.advance();
                    }
                }
            }
        };
        reader.abort();
        drop(ready);
        // Let deliveries under way finish, then save: what is still pending is recorded and
        // delivered after a restart rather than lost. Losing the Lease meanwhile ends that: the
        // deliveries are the new leader's now.
        let end = match end {
            TermEnd::LostLeadership => end,
            _ => {
                let lost = lost_or_never(leadership.as_mut());
                tokio::select! {
                    biased;
                    () = lost => TermEnd::LostLeadership,
                    () = self.drain(&mut progress) => end,
                }
            }
        };
        if matches!(end, TermEnd::LostLeadership) {
            // The new leader owns the checkpoint and resumes from it: what is still queued here
            // is its to deliver. Drop it, and save nothing (a save now could move the watermark
            // past deliveries just dropped).
            self.metrics.set_leader(false);
            let dropped = self.dispatcher.discard_queued("leadership lost");
            tracing::warn!(dropped, "leadership lost: queued deliveries dropped");
            return end;
        }
        {
            let lost = lost_or_never(leadership.as_mut());
            tokio::select! {
                biased;
                () = lost => {
                    self.metrics.set_leader(false);
                    let dropped = self.dispatcher.discard_queued("leadership lost");
                    tracing::warn!(dropped, "leadership lost while stopping: nothing saved");
                    return TermEnd::LostLeadership;
                }
                () = self.save(&selectors, &mut progress, &mut last_saved) => {}
            }
        }
        // Nothing is sent once the Lease is released: neither what is queued nor what a worker
        // has in hand.
        self.dispatcher.discard_queued("shutdown deadline");
        release(leadership).await;
        end
    }

    /// Waits up to the shutdown grace for the deliveries under way to finish.
    async fn drain(&self, progress: &mut Progress) {
        let now = tokio::time::Instant::now();
        let deadline = now
            .checked_add(self.settings.shutdown_grace)
            .unwrap_or(now + Duration::from_secs(3600));
        loop {
            progress.advance();
            if progress.pending() == 0 || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if progress.pending() > 0 {
            tracing::warn!(
                pending = progress.pending(),
                "grace period over with deliveries under way; they will be sent again after a restart"
            );
        }
    }

    async fn deliver(&self, item: Ready, progress: &mut Progress) {
        match item {
            Ready::Skip { stream, rv } => progress.skipped(stream, rv),
            Ready::Listed { stream, rv } => progress.listed(stream, rv),
            Ready::Export {
                stream,
                rv,
                list_rv,
                key,
                event,
                only,
            } => {
                let tracked = self
                    .dispatcher
                    .dispatch_tracked(event, self.settings.queue_patience, only.as_deref())
                    .await;
                if tracked.receivers.is_empty() {
                    self.metrics.event_discarded(Discard::NoRoute);
                    progress.skipped(stream, rv);
                } else {
                    self.metrics.event_exported();
                    progress.exported(stream, rv, list_rv, key, tracked.board, tracked.receivers);
                }
            }
        }
    }
}

/// Completes when `leadership` is lost; never without one.
async fn lost_or_never(leadership: Option<&mut Leadership>) {
    match leadership {
        Some(l) => l.lost().await,
        None => std::future::pending().await,
    }
}

async fn release(leadership: Option<Leadership>) {
    let Some(l) = leadership else { return };
    match tokio::time::timeout(RELEASE_TIMEOUT, l.release()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::brief(&e), "could not release the Lease; the next leader waits for it to expire");
        }
        Err(_) => {
            tracing::warn!("releasing the Lease timed out; the next leader waits for it to expire")
        }
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// What the pipeline knows of one watch stream.
#[derive(Debug, Clone, Copy, Default)]
struct StreamState {
    /// It has listed in this term.
    listed: bool,
    /// It failed, and has not shown since that it works again.
    failing: bool,
}

/// Tells [`Health`] that `stream` works, if it was failing (a call per recovery, not per
/// event).
fn recovered(streams: &mut [StreamState], health: &Health, stream: usize) {
    if let Some(s) = streams.get_mut(stream)
        && s.failing
    {
        s.failing = false;
        health.watch_recovered(stream);
    }
}

/// The filter's part of the pipeline: one watch item → at most one step.
fn decide(
    filter: &mut OccurrenceFilter,
    streams: &mut [StreamState],
    metrics: &Metrics,
    health: &Health,
    stream: usize,
    item: Result<WatchStep, WatchError>,
) -> Option<Step> {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let (phase, object) = match item {
        Err(error) => {
            metrics.watch_error();
            if let Some(s) = streams.get_mut(stream)
                && !s.failing
            {
                s.failing = true;
                health.watch_failed(stream);
            }
            if error.is_expired() {
                tracing::info!(stream, "{error}");
            } else {
                tracing::warn!(stream, %error, "watch failed; retrying with backoff");
            }
            return None;
        }
        Ok(WatchStep::Relist) => {
            if streams.get(stream).is_some_and(|s| s.listed) {
                metrics.watch_restart();
            }
            filter.relisting(stream);
            return None;
        }
        Ok(WatchStep::ListDone) => {
            if let Some(s) = streams.get_mut(stream) {
                s.listed = true;
            }
            // A completed list is not recovery: a server that answers every list and then a
            // 410 never streams. An update, or a watch that stays open, is.
            if streams.iter().all(|s| s.listed) {
                health.watch_established();
            }
            let rv = filter.listed(stream);
            return Some(Step::Listed { stream, rv });
        }
        Ok(WatchStep::Recovered) => {
            recovered(streams, health, stream);
            return None;
        }
        Ok(WatchStep::Deleted(WatchedEvent::Event(event))) => {
            recovered(streams, health, stream);
            filter.deleted(&event);
            return None;
        }
        Ok(WatchStep::Deleted(WatchedEvent::Malformed { .. })) => {
            recovered(streams, health, stream);
            return None;
        }
        Ok(WatchStep::Listed(object)) => (Phase::Listing, object),
        Ok(WatchStep::Applied(object)) => {
            recovered(streams, health, stream);
            (Phase::Watching, object)
        }
    };
    metrics.event_received();
    let event = match object {
        WatchedEvent::Event(event) => event,
        WatchedEvent::Malformed { metadata, error } => {
            metrics.event_discarded(Discard::Malformed);
            tracing::warn!(
                namespace = metadata.namespace.as_deref().unwrap_or_default(),
                name = metadata.name.as_deref().unwrap_or_default(),
                error = %crate::brief(&error),
                "skipping an object that is not a valid Event"
            );
            let rv = occurrence::resource_version(&metadata);
            return Some(Step::Skip {
                stream,
                rv: (phase == Phase::Watching).then_some(rv).flatten(),
            });
        }
    };
    let (rv, list_rv) = match phase {
        Phase::Listing => (None, occurrence::resource_version(&event.metadata)),
        Phase::Watching => (occurrence::resource_version(&event.metadata), None),
    };
    let verdict = filter.decide(stream, phase, &event, now_ms);
    match verdict {
        Verdict::New | Verdict::Resend(_) => {
            let key = (
                UidKey::of(event.metadata.uid.as_deref().unwrap_or_default()),
                occurrence::occurrences(&event),
            );
            let only = match verdict {
                Verdict::Resend(owed) if !owed.is_empty() => Some(owed),
                _ => None,
            };
            Some(Step::Export {
                stream,
                rv,
                list_rv,
                key,
                event,
                only,
            })
        }
        Verdict::Duplicate | Verdict::Handled => {
            metrics.event_discarded(Discard::Duplicate);
            Some(Step::Skip { stream, rv })
        }
        Verdict::TooOld => {
            metrics.event_discarded(Discard::TooOld);
            Some(Step::Skip { stream, rv })
        }
    }
}
