//! Leader election with a coordination.k8s.io/v1 Lease, with client-go's semantics (kube-rs
//! has no elector of its own).
//!
//! * A candidate GETs the Lease; on 404 it creates one naming itself (409 `AlreadyExists`: it
//!   lost the race and tries again later).
//! * A Lease held by someone else is left alone while it is valid. Validity is judged by the
//!   **local** clock: the instant this process last *observed a change* of the record, plus
//!   its `leaseDurationSeconds` (never the remote `renewTime`, so clock skew does not matter).
//! * Otherwise (expired, no holder, or already ours) the candidate PUTs the Lease with the GET's
//!   `resourceVersion`, keeping `acquireTime`/`leaseTransitions` when it already held it and
//!   starting a new term (`acquireTime = now`, `leaseTransitions + 1`) when not. A 409 means
//!   someone else wrote first: GET again and re-evaluate.
//! * The leader renews every `retry_period`; if it cannot renew within `renew_deadline` of its
//!   last renewal, or sees another holder, it stops being leader ([`Leadership::lost`]).
//! * [`Leadership::release`] clears `holderIdentity` (client-go's `ReleaseOnCancel`), so a
//!   standby takes over at its next retry instead of waiting for the Lease to expire.
//!
//! All local time is [`tokio::time::Instant`], so tests can run on tokio's paused clock.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// client-go's `JitterFactor`: `renew_deadline` must exceed this many `retry_period`s.
const JITTER_FACTOR: f64 = 1.2;

/// How many GET/PUT rounds one attempt makes when its PUTs keep conflicting.
const CONFLICT_ROUNDS: u32 = 3;

/// Leader election failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// A setting that must be given is empty.
    #[error("{lease}: {field} must not be empty")]
    MissingSetting {
        /// `lease NAMESPACE/NAME`.
        lease: String,
        /// `namespace`, `name` or `identity`.
        field: &'static str,
    },
    /// A duration that must be positive is zero.
    #[error("{lease}: {field} must be greater than zero")]
    NotPositive {
        /// `lease NAMESPACE/NAME`.
        lease: String,
        /// `lease_duration`, `renew_deadline` or `retry_period`.
        field: &'static str,
    },
    /// `lease_duration` must be greater than `renew_deadline`.
    #[error(
        "{lease}: the lease duration ({lease_duration:?}) must be greater than the renew deadline ({renew_deadline:?})"
    )]
    LeaseDurationTooShort {
        /// `lease NAMESPACE/NAME`.
        lease: String,
        /// The lease duration.
        lease_duration: Duration,
        /// The renew deadline.
        renew_deadline: Duration,
    },
    /// `renew_deadline` must be greater than 1.2 × `retry_period`.
    #[error(
        "{lease}: the renew deadline ({renew_deadline:?}) must be greater than 1.2 × the retry period ({retry_period:?})"
    )]
    RenewDeadlineTooShort {
        /// `lease NAMESPACE/NAME`.
        lease: String,
        /// The renew deadline.
        renew_deadline: Duration,
        /// The retry period.
        retry_period: Duration,
    },
    /// The apiserver refused a request or could not be reached (releasing the Lease).
    #[error("{lease}: {source}")]
    Api {
        /// `lease NAMESPACE/NAME`.
        lease: String,
        /// The cause.
        source: kube::Error,
    },
    /// Releasing kept conflicting with other writers.
    #[error("{lease}: releasing still conflicted with other writers after {attempts} attempts")]
    ReleaseConflict {
        /// `lease NAMESPACE/NAME`.
        lease: String,
        /// How many rounds were made.
        attempts: u32,
    },
    /// The background renewal task panicked.
    #[error("{lease}: the renewal task failed: {source}")]
    RenewTask {
        /// `lease NAMESPACE/NAME`.
        lease: String,
        /// The cause.
        source: tokio::task::JoinError,
    },
}

/// Which Lease, who we are, and the election's timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This process's identity, written to `holderIdentity`; unique per replica.
    pub identity: String,
    /// How long a Lease stays valid without renewal (written as whole seconds, rounded up).
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up leadership.
    pub renew_deadline: Duration,
    /// How often candidates try to acquire and the leader renews.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// Lease `namespace/name` for `identity`, with client-go's usual timing: 15s lease, 10s
    /// renew deadline, 2s retry period.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// `lease NAMESPACE/NAME`, for errors and logs.
    pub fn describe(&self) -> String {
        format!("lease {}/{}", self.namespace, self.name)
    }

    /// Checks that names are given and that `lease_duration > renew_deadline > 1.2 ×
    /// retry_period > 0`.
    pub fn validate(&self) -> Result<(), LeaderError> {
        let lease = || self.describe();
        for (field, value) in [
            ("namespace", &self.namespace),
            ("name", &self.name),
            ("identity", &self.identity),
        ] {
            if value.trim().is_empty() {
                return Err(LeaderError::MissingSetting {
                    lease: lease(),
                    field,
                });
            }
        }
        for (field, value) in [
            ("lease_duration", self.lease_duration),
            ("renew_deadline", self.renew_deadline),
            ("retry_period", self.retry_period),
        ] {
            if value.is_zero() {
                return Err(LeaderError::NotPositive {
                    lease: lease(),
                    field,
                });
            }
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(LeaderError::LeaseDurationTooShort {
                lease: lease(),
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
            });
        }
        if self.renew_deadline.as_secs_f64() <= JITTER_FACTOR * self.retry_period.as_secs_f64() {
            return Err(LeaderError::RenewDeadlineTooShort {
                lease: lease(),
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
            });
        }
        Ok(())
    }

    /// `leaseDurationSeconds`: the lease duration in whole seconds, rounded up.
    fn lease_duration_seconds(&self) -> i32 {
        let nanos = self.lease_duration.as_nanos();
        let secs = nanos.div_ceil(1_000_000_000).max(1);
        i32::try_from(secs).unwrap_or(i32::MAX)
    }
}

/// This process's identity: `$POD_NAME` when set (unique per replica), else
/// `<hostname>-<pid>` so that two processes on one host differ.
pub fn default_identity() -> String {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok());
    identity_from(std::env::var("POD_NAME").ok(), hostname, std::process::id())
}

fn identity_from(pod_name: Option<String>, hostname: Option<String>, pid: u32) -> String {
    if let Some(pod) = pod_name.as_deref().map(str::trim)
        && !pod.is_empty()
    {
        return pod.to_owned();
    }
    let hostname = hostname
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .unwrap_or("unknown");
    format!("{hostname}-{pid}")
}

/// The election-relevant part of a Lease's spec (client-go's `LeaderElectionRecord`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Record {
    holder: String,
    lease_duration_seconds: i32,
    acquire_time: Option<Timestamp>,
    renew_time: Option<Timestamp>,
    transitions: i32,
}

impl Record {
    fn from_lease(lease: &Lease) -> Self {
        let Some(spec) = lease.spec.as_ref() else {
            return Self::default();
        };
        Self {
            holder: spec.holder_identity.clone().unwrap_or_default(),
            lease_duration_seconds: spec.lease_duration_seconds.unwrap_or(0),
            acquire_time: spec.acquire_time.as_ref().map(|t| t.0),
            renew_time: spec.renew_time.as_ref().map(|t| t.0),
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }

    /// `lease` with this record in its spec (other spec fields and the metadata, including
    /// the resourceVersion, kept).
    fn apply(&self, mut lease: Lease) -> Lease {
        let spec = lease.spec.get_or_insert_with(Default::default);
        spec.holder_identity = Some(self.holder.clone());
        spec.lease_duration_seconds = Some(self.lease_duration_seconds);
        spec.acquire_time = self.acquire_time.map(MicroTime);
        spec.renew_time = self.renew_time.map(MicroTime);
        spec.lease_transitions = Some(self.transitions);
        lease
    }

    /// Whether the record, last seen to change at `observed_at`, is still valid at `now`.
    fn valid_at(&self, observed_at: Instant, now: Instant) -> bool {
        let duration = Duration::from_secs(u64::try_from(self.lease_duration_seconds).unwrap_or(0));
        observed_at + duration > now
    }
}

/// What a candidate does about a Lease it has observed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// Someone else holds a valid Lease: leave it.
    Wait,
    /// Write this record (acquire or renew).
    Write(Record),
}

/// client-go's `tryAcquireOrRenew` decision, as a pure function: `observed` was last seen to
/// change at `observed_at` (local clock), it is `now` (local) and `wall` (for the record).
fn decide(
    observed: &Record,
    observed_at: Instant,
    now: Instant,
    wall: Timestamp,
    me: &str,
    lease_duration_seconds: i32,
) -> Decision {
    let mine = observed.holder == me;
    if !observed.holder.is_empty() && !mine && observed.valid_at(observed_at, now) {
        return Decision::Wait;
    }
    let (acquire_time, transitions) = if mine {
        (observed.acquire_time, observed.transitions)
    } else {
        (Some(wall), observed.transitions.saturating_add(1))
    };
    Decision::Write(Record {
        holder: me.to_owned(),
        lease_duration_seconds,
        acquire_time,
        renew_time: Some(wall),
        transitions,
    })
}

/// Now, at the Lease's MicroTime precision (so what we write is what we read back).
fn wall_now() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// How one acquire-or-renew attempt ended.
#[derive(Debug)]
enum Attempt {
    /// We hold the Lease (just written).
    Held,
    /// Someone else holds a valid Lease.
    HeldByOther(String),
    /// Other writers kept winning the races; try again later.
    Contended,
}

/// One candidate's view of the Lease.
struct Elector {
    api: Api<Lease>,
    settings: LeaseSettings,
    /// The last Lease object read or written (its resourceVersion is the next PUT's).
    lease: Option<Lease>,
    /// The last record observed and the local instant it was seen to change.
    observed: Option<(Record, Instant)>,
}

impl Elector {
    fn new(api: Api<Lease>, settings: LeaseSettings) -> Self {
        Self {
            api,
            settings,
            lease: None,
            observed: None,
        }
    }

    fn me(&self) -> &str {
        &self.settings.identity
    }

    /// Remembers a Lease read from the server; the observation instant moves only when the
    /// record changed.
    fn observe(&mut self, lease: Lease, now: Instant) {
        let record = Record::from_lease(&lease);
        if self
            .observed
            .as_ref()
            .is_none_or(|(seen, _)| *seen != record)
        {
            self.observed = Some((record, now));
        }
        self.lease = Some(lease);
    }

    /// Remembers a Lease we wrote.
    fn wrote(&mut self, lease: Lease, record: Record) {
        self.observed = Some((record, Instant::now()));
        self.lease = Some(lease);
    }

    /// client-go's `tryAcquireOrRenew`.
    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let pp = PostParams::default();
        // Fast path: we hold a valid Lease, renew it with the resourceVersion we know.
        if let (Some(lease), Some((record, at))) = (&self.lease, &self.observed)
            && record.holder == self.settings.identity
            && record.valid_at(*at, Instant::now())
        {
            let next = Record {
                lease_duration_seconds: self.settings.lease_duration_seconds(),
                renew_time: Some(wall_now()),
                ..record.clone()
            };
            match self
                .api
                .replace(&self.settings.name, &pp, &next.apply(lease.clone()))
                .await
            {
                Ok(stored) => {
                    self.wrote(stored, next);
                    return Ok(Attempt::Held);
                }
                Err(e) => tracing::debug!(
                    lease = %self.settings.describe(),
                    error = %crate::brief(&e),
                    "renewing the lease optimistically failed; reading it again"
                ),
            }
        }
        for _ in 0..CONFLICT_ROUNDS {
            let Some(lease) = self.api.get_opt(&self.settings.name).await? else {
                return self.create().await;
            };
            let now = Instant::now();
            self.observe(lease.clone(), now);
            let Some((record, at)) = &self.observed else {
                continue;
            };
            let next = match decide(
                record,
                *at,
                now,
                wall_now(),
                self.me(),
                self.settings.lease_duration_seconds(),
            ) {
                Decision::Wait => return Ok(Attempt::HeldByOther(record.holder.clone())),
                Decision::Write(next) => next,
            };
            match self
                .api
                .replace(&self.settings.name, &pp, &next.apply(lease))
                .await
            {
                Ok(stored) => {
                    self.wrote(stored, next);
                    return Ok(Attempt::Held);
                }
                Err(e) if status_code(&e) == Some(409) => {
                    tracing::debug!(
                        lease = %self.settings.describe(),
                        "the lease changed under us; reading it again"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Attempt::Contended)
    }

    /// Creates the Lease naming us.
    async fn create(&mut self) -> Result<Attempt, kube::Error> {
        let wall = wall_now();
        let record = Record {
            holder: self.me().to_owned(),
            lease_duration_seconds: self.settings.lease_duration_seconds(),
            acquire_time: Some(wall),
            renew_time: Some(wall),
            transitions: 0,
        };
        let lease = record.apply(Lease {
            metadata: ObjectMeta {
                name: Some(self.settings.name.clone()),
                namespace: Some(self.settings.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: None,
        });
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(stored) => {
                self.wrote(stored, record);
                Ok(Attempt::Held)
            }
            // AlreadyExists: another candidate created it first.
            Err(e) if status_code(&e) == Some(409) => Ok(Attempt::Contended),
            Err(e) => Err(e),
        }
    }

    /// Clears `holderIdentity` if we still hold the Lease (client-go's `ReleaseOnCancel`).
    async fn release(&mut self) -> Result<bool, LeaderError> {
        let api_error = |source| LeaderError::Api {
            lease: self.settings.describe(),
            source,
        };
        for _ in 0..CONFLICT_ROUNDS {
            let Some(lease) = self.lease.clone() else {
                return Ok(false);
            };
            let record = Record::from_lease(&lease);
            if record.holder != self.settings.identity {
                return Ok(false);
            }
            let wall = wall_now();
            let released = Record {
                holder: String::new(),
                lease_duration_seconds: 1,
                acquire_time: Some(wall),
                renew_time: Some(wall),
                transitions: record.transitions,
            };
            match self
                .api
                .replace(
                    &self.settings.name,
                    &PostParams::default(),
                    &released.apply(lease),
                )
                .await
            {
                Ok(stored) => {
                    self.wrote(stored, released);
                    return Ok(true);
                }
                Err(e) if status_code(&e) == Some(409) => {
                    // Perhaps our last renewal landed after all: look at the current version.
                    self.lease = self
                        .api
                        .get_opt(&self.settings.name)
                        .await
                        .map_err(api_error)?;
                }
                Err(e) if status_code(&e) == Some(404) => return Ok(false),
                Err(e) => return Err(api_error(e)),
            }
        }
        Err(LeaderError::ReleaseConflict {
            lease: self.settings.describe(),
            attempts: CONFLICT_ROUNDS,
        })
    }
}

/// Campaigns for one Lease.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl LeaderElector {
    /// An elector for `settings.namespace/settings.name`. Does no I/O.
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
        }
    }

    /// The settings this elector campaigns with.
    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    /// Waits until this process holds the Lease (trying every `retry_period`; API errors are
    /// logged at warn and retried, never fatal), then returns a [`Leadership`] that keeps
    /// renewing it in a background task. Fails only on invalid settings.
    pub async fn acquire(&self) -> Result<Leadership, LeaderError> {
        self.settings.validate()?;
        let settings = &self.settings;
        let mut elector = Elector::new(self.api.clone(), settings.clone());
        let mut waiting_for: Option<String> = None;
        loop {
            let started = Instant::now();
            // A hung request must not stall the campaign.
            match tokio::time::timeout(settings.renew_deadline, elector.try_acquire_or_renew())
                .await
            {
                Ok(Ok(Attempt::Held)) => {
                    tracing::info!(
                        lease = %settings.describe(),
                        identity = %settings.identity,
                        "leadership acquired"
                    );
                    return Ok(Leadership::start(elector, started));
                }
                Ok(Ok(Attempt::HeldByOther(holder))) => {
                    if waiting_for.as_ref() != Some(&holder) {
                        tracing::debug!(
                            lease = %settings.describe(),
                            %holder,
                            "the lease is held by another replica; standing by"
                        );
                        waiting_for = Some(holder);
                    }
                }
                Ok(Ok(Attempt::Contended)) => tracing::debug!(
                    lease = %settings.describe(),
                    "lost a race for the lease; trying again"
                ),
                Ok(Err(e)) => tracing::warn!(
                    lease = %settings.describe(),
                    error = %crate::brief(&e),
                    "leader election: could not read or write the lease; trying again"
                ),
                Err(_) => tracing::warn!(
                    lease = %settings.describe(),
                    timeout = ?settings.renew_deadline,
                    "leader election: the apiserver did not answer in time; trying again"
                ),
            }
            tokio::time::sleep(settings.retry_period).await;
        }
    }
}

/// Holding the Lease. Dropping it stops renewing without releasing (the Lease then expires
/// after its duration); [`Leadership::release`] hands it over at once.
#[derive(Debug)]
pub struct Leadership {
    lease: String,
    leader: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Elector>>,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("settings", &self.settings)
            .field("observed", &self.observed)
            .finish_non_exhaustive()
    }
}

impl Leadership {
    fn start(elector: Elector, renewed_at: Instant) -> Self {
        let lease = elector.settings.describe();
        let (tx, leader) = watch::channel(true);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(renew(elector, renewed_at, tx, stopped));
        Self {
            lease,
            leader,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Whether this process is (still) the leader.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Completes when leadership is lost: the Lease could not be renewed within
    /// `renew_deadline`, or another holder took it. Cancel-safe.
    pub async fn lost(&mut self) {
        // An error means the renewal task is gone: not leader any more either.
        let _ = self.leader.wait_for(|leader| !*leader).await;
    }

    /// Stops renewing and releases the Lease (clears `holderIdentity`) so that a standby
    /// takes over at once. Nothing is written if leadership was already lost.
    pub async fn release(mut self) -> Result<(), LeaderError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        let mut elector = task.await.map_err(|source| LeaderError::RenewTask {
            lease: self.lease.clone(),
            source,
        })?;
        if !*self.leader.borrow() {
            return Ok(());
        }
        if elector.release().await? {
            tracing::info!(
                lease = %self.lease,
                identity = %elector.settings.identity,
                "leadership released"
            );
        }
        Ok(())
    }
}

/// The leader's renewal loop: renew every `retry_period`; give up leadership when no renewal
/// succeeds within `renew_deadline` of the last one, or another holder shows up. Returns the
/// elector when stopped (for [`Leadership::release`]) or when leadership is lost.
async fn renew(
    mut elector: Elector,
    mut renewed_at: Instant,
    leader: watch::Sender<bool>,
    mut stop: oneshot::Receiver<()>,
) -> Elector {
    let settings = elector.settings.clone();
    let lease = settings.describe();
    loop {
        let stopped = tokio::select! {
            _ = &mut stop => true,
            () = tokio::time::sleep_until(renewed_at + settings.retry_period) => false,
        };
        if stopped {
            return elector;
        }
        let deadline = renewed_at + settings.renew_deadline;
        let renewed = loop {
            let started = Instant::now();
            let attempt = tokio::select! {
                _ = &mut stop => None,
                r = tokio::time::timeout_at(deadline, elector.try_acquire_or_renew()) => Some(r),
            };
            let Some(attempt) = attempt else {
                return elector;
            };
            match attempt {
                Ok(Ok(Attempt::Held)) => break Some(started),
                Ok(Ok(Attempt::HeldByOther(holder))) => {
                    tracing::info!(%lease, %holder, "leadership lost: another replica holds the lease");
                    break None;
                }
                Ok(Ok(Attempt::Contended)) => tracing::debug!(
                    %lease,
                    "renewing the lease lost a race; trying again"
                ),
                Ok(Err(e)) => tracing::warn!(
                    %lease,
                    error = %crate::brief(&e),
                    "could not renew the lease; trying again"
                ),
                Err(_) => {
                    tracing::warn!(%lease, "leadership lost: could not renew the lease within the renew deadline");
                    break None;
                }
            }
            let next = (Instant::now() + settings.retry_period).min(deadline);
            let stopped = tokio::select! {
                _ = &mut stop => true,
                () = tokio::time::sleep_until(next) => false,
            };
            if stopped {
                return elector;
            }
            if Instant::now() >= deadline {
                tracing::warn!(%lease, "leadership lost: could not renew the lease within the renew deadline");
                break None;
            }
        };
        match renewed {
            Some(at) => {
                tracing::debug!(%lease, "lease renewed");
                renewed_at = at;
            }
            None => {
                // No longer the holder in our view either, so a later release writes nothing.
                elector.observed = None;
                elector.lease = None;
                leader.send_replace(false);
                return elector;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(holder: &str, transitions: i32) -> Record {
        Record {
            holder: holder.into(),
            lease_duration_seconds: 15,
            acquire_time: Some(Timestamp::from_second(1_000).unwrap()),
            renew_time: Some(Timestamp::from_second(1_010).unwrap()),
            transitions,
        }
    }

    fn wall() -> Timestamp {
        Timestamp::from_second(2_000).unwrap()
    }

    #[test]
    fn another_holders_valid_lease_is_left_alone_until_it_expires_locally() {
        let t0 = Instant::now();
        let other = record("b", 3);
        assert_eq!(
            decide(&other, t0, t0 + Duration::from_secs(14), wall(), "a", 15),
            Decision::Wait
        );
        // Expired by our clock (whatever its renewTime says): take it, new term.
        assert_eq!(
            decide(&other, t0, t0 + Duration::from_secs(15), wall(), "a", 15),
            Decision::Write(Record {
                holder: "a".into(),
                lease_duration_seconds: 15,
                acquire_time: Some(wall()),
                renew_time: Some(wall()),
                transitions: 4,
            })
        );
    }

    #[test]
    fn an_empty_holder_is_taken_at_once() {
        let t0 = Instant::now();
        let released = Record {
            holder: String::new(),
            lease_duration_seconds: 1,
            ..record("", 2)
        };
        let Decision::Write(next) = decide(&released, t0, t0, wall(), "a", 15) else {
            panic!("should take a released lease");
        };
        assert_eq!((next.holder.as_str(), next.transitions), ("a", 3));
    }

    #[test]
    fn renewing_keeps_the_term() {
        let t0 = Instant::now();
        let mine = record("a", 5);
        assert_eq!(
            decide(&mine, t0, t0 + Duration::from_secs(100), wall(), "a", 15),
            Decision::Write(Record {
                holder: "a".into(),
                lease_duration_seconds: 15,
                acquire_time: mine.acquire_time,
                renew_time: Some(wall()),
                transitions: 5,
            })
        );
    }

    #[test]
    fn a_missing_duration_counts_as_expired() {
        let t0 = Instant::now();
        let odd = Record {
            lease_duration_seconds: 0,
            ..record("b", 0)
        };
        assert!(matches!(
            decide(&odd, t0, t0, wall(), "a", 15),
            Decision::Write(_)
        ));
    }

    #[test]
    fn records_round_trip_through_a_lease() {
        let r = Record {
            renew_time: Some(Timestamp::from_microsecond(1_714_564_990_123_456).unwrap()),
            ..record("a", 7)
        };
        let lease = r.apply(Lease::default());
        assert_eq!(Record::from_lease(&lease), r);
        let json = serde_json::to_value(&lease).unwrap();
        assert_eq!(json["spec"]["renewTime"], "2024-05-01T12:03:10.123456Z");
        assert_eq!(json["spec"]["holderIdentity"], "a");
        assert_eq!(json["spec"]["leaseTransitions"], 7);
        assert_eq!(Record::from_lease(&Lease::default()), Record::default());
    }

    #[test]
    fn settings_are_validated_like_client_go() {
        let ok = LeaseSettings::new("ns", "lock", "me");
        ok.validate().unwrap();
        assert_eq!(ok.lease_duration_seconds(), 15);
        let mut s = ok.clone();
        s.renew_deadline = Duration::from_secs(15);
        assert!(matches!(
            s.validate(),
            Err(LeaderError::LeaseDurationTooShort { .. })
        ));
        let mut s = ok.clone();
        s.retry_period = Duration::from_secs(9);
        assert!(matches!(
            s.validate(),
            Err(LeaderError::RenewDeadlineTooShort { .. })
        ));
        let mut s = ok.clone();
        s.identity = " ".into();
        assert!(matches!(
            s.validate(),
            Err(LeaderError::MissingSetting {
                field: "identity",
                ..
            })
        ));
        let mut s = ok.clone();
        s.retry_period = Duration::ZERO;
        assert!(matches!(s.validate(), Err(LeaderError::NotPositive { .. })));
        let mut s = ok;
        s.lease_duration = Duration::from_millis(1_200);
        s.renew_deadline = Duration::from_millis(600);
        s.retry_period = Duration::from_millis(200);
        s.validate().unwrap();
        assert_eq!(s.lease_duration_seconds(), 2, "rounded up to whole seconds");
    }

    #[test]
    fn identity_prefers_the_pod_name_then_hostname_and_pid() {
        assert_eq!(
            identity_from(Some("exporter-7d9f-abcde".into()), Some("node1".into()), 42),
            "exporter-7d9f-abcde"
        );
        assert_eq!(
            identity_from(Some("".into()), Some("node1\n".into()), 42),
            "node1-42"
        );
        assert_eq!(identity_from(None, None, 7), "unknown-7");
        assert_eq!(identity_from(None, Some(" ".into()), 7), "unknown-7");
        assert!(
            default_identity().ends_with(&format!("-{}", std::process::id()))
                || std::env::var("POD_NAME").is_ok()
        );
    }
}
