//! Which watch updates are new occurrences: the exporter's answer to "never miss, never
//! repeat" without an informer cache.
//!
//! Kubernetes records a repeated event by updating the same Event object: the legacy recorder
//! PATCHes `count` (and `lastTimestamp`), the new one `series.count`. A watch therefore sees
//! one object many times: at every relist (start-up, a 410, a list error) as `InitApply`, and
//! at every update as `Apply`. An occurrence is identified by the object's uid and its
//! occurrence number ([`occurrences`]); the [`OccurrenceFilter`] decides, for each update,
//! whether that occurrence is one the exporter has not handled yet.
//!
//! It remembers two things, both bounded:
//! - **the recent occurrences** it has let through, as `uid → occurrence number`, in a map of
//!   fixed capacity that forgets the least recently updated entries first ([`SeenMap`]); and
//! - **a resourceVersion threshold per watch stream**: every object whose
//!   `metadata.resourceVersion` is at or below it has been handled. It starts from the
//!   checkpoint and moves forward with the updates this process has decided on.
//!
//! The decision for an update of object `uid` at occurrence `n` and resourceVersion `rv`:
//! 0. During a relist, `uid` is among the checkpoint's pending occurrences with an occurrence
//!    `≤ n` (exported before the restart, never finished): new, whatever its `rv`.
//! 1. During a relist, `rv ≤` the stream's threshold, or `rv` is one the checkpoint records
//!    as handled by a list that a stop interrupted: already handled.
//! 2. `uid` is remembered with an occurrence `≥ n`: a duplicate (a relist, or an update that is
//!    not a new occurrence: labels, a final series PATCH).
//! 3. `uid` is remembered with a smaller occurrence: new.
//! 4. During the first list of a stream the checkpoint knows nothing about (the very first
//!    start), an occurrence older than `maxEventAgeSeconds` is too old: upstream's meaning.
//!    The cut-off is fixed when the first start begins and kept in the checkpoint until that
//!    list has been handled ([`with_cutoffs`](OccurrenceFilter::with_cutoffs)), so a restart
//!    before then neither drops what happened meanwhile nor applies a later cut-off.
//! 5. Otherwise: new.
//!
//! Once a stream has listed, it has a threshold even when the list was empty (0: everything
//! after it is new), so a restart never applies the first start's age rule to it again.
//!
//! resourceVersions are compared as integers (etcd revisions, which is what every apiserver
//! backed by etcd serves); an object whose resourceVersion is not an integer skips rule 3.
//!
//! What it cannot tell apart: an update that is not a new occurrence, of an object that is
//! neither remembered nor at or below the threshold (it changed while the exporter was away,
//! or it was forgotten under heavy churn), is exported once more. Deliveries carry
//! [`DeliveryId`](event_exporter_core::sink::DeliveryId) (uid/occurrence) for receivers that
//! want to deduplicate that rare case themselves.

use std::collections::{BTreeSet, HashMap};

use event_exporter_core::{Event, ReceiverId};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::progress::Owed;

/// An event object's identity: its uid as 128 bits (a UUID's own bits; any other uid hashed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UidKey(pub u128);

impl UidKey {
    /// The key of `uid`.
    pub fn of(uid: &str) -> Self {
        Self(parse_uuid(uid).unwrap_or_else(|| fnv128(uid.as_bytes())))
    }

    /// As 32 lowercase hex digits (the checkpoint's spelling).
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    /// Parses [`to_hex`](Self::to_hex)'s spelling (a hyphenated UUID is accepted too).
    pub fn from_hex(text: &str) -> Option<Self> {
        parse_uuid(text).map(Self)
    }
}

/// A UUID (with or without hyphens) as its 128 bits.
fn parse_uuid(text: &str) -> Option<u128> {
    let mut value: u128 = 0;
    let mut digits = 0;
    for b in text.bytes() {
        if b == b'-' {
            continue;
        }
        let d = (b as char).to_digit(16)?;
        value = (value << 4) | u128::from(d);
        digits += 1;
    }
    (digits == 32).then_some(value)
}

/// FNV-1a, 128-bit: stable across builds and platforms (the key is persisted).
fn fnv128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
}

/// An event's occurrence number ([`Event::occurrence`], at least 1: a first occurrence carries
/// no count in the new API).
pub fn occurrences(event: &CoreEvent) -> u32 {
    let n = Event::unenriched(event).occurrence().unwrap_or(1);
    u32::try_from(n).unwrap_or(0).max(1)
}

/// An object's `metadata.resourceVersion` as an integer, when it is one.
pub fn resource_version(metadata: &ObjectMeta) -> Option<u64> {
    metadata.resource_version.as_deref()?.parse().ok()
}

/// Recently let-through occurrences, `uid → occurrence`, at most `capacity` entries: when
/// full, the least recently updated quarter is forgotten at once (amortised O(1) per insert,
/// memory bounded by the capacity, never by the cluster's event count).
#[derive(Debug)]
pub struct SeenMap {
    entries: HashMap<UidKey, Seen>,
    capacity: usize,
    clock: u64,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    occurrence: u32,
    touched: u64,
}

impl SeenMap {
    /// An empty map holding at most `capacity` entries (at least 16).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(16),
            clock: 0,
        }
    }

    /// The remembered occurrence of `uid`.
    pub fn get(&self, uid: UidKey) -> Option<u32> {
        self.entries.get(&uid).map(|s| s.occurrence)
    }

    /// Remembers `uid` at `occurrence` (never lowering a remembered occurrence).
    pub fn insert(&mut self, uid: UidKey, occurrence: u32) {
        self.clock += 1;
        let touched = self.clock;
        let entry = self.entries.entry(uid).or_insert(Seen {
            occurrence,
            touched,
        });
        entry.occurrence = entry.occurrence.max(occurrence);
        entry.touched = touched;
        if self.entries.len() > self.capacity {
            self.evict();
        }
    }

    /// Forgets `uid` (its object was deleted).
    pub fn remove(&mut self, uid: UidKey) {
        self.entries.remove(&uid);
    }

    /// How many entries are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets the least recently updated quarter.
    fn evict(&mut self) {
        let mut ages: Vec<u64> = self.entries.values().map(|s| s.touched).collect();
        let cut = ages.len() / 4;
        let (_, cutoff, _) = ages.select_nth_unstable(cut);
        let cutoff = *cutoff;
        self.entries.retain(|_, s| s.touched > cutoff);
    }
}

/// Where an update comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A (re)list: `InitApply`.
    Listing,
    /// The live watch: `Apply`.
    Watching,
}

/// The filter's answer for one update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A new occurrence: export it.
    New,
    /// An occurrence exported before a restart that some receivers had not finished: export
    /// it to those (empty: to every receiver it is routed to).
    Resend(Vec<ReceiverId>),
    /// An occurrence already let through (or an update that is not an occurrence).
    Duplicate,
    /// At or below the stream's resourceVersion threshold: handled before.
    Handled,
    /// Older than `maxEventAgeSeconds` at the first start.
    TooOld,
}

impl Verdict {
    /// Whether the update is exported.
    pub fn is_new(&self) -> bool {
        matches!(self, Verdict::New | Verdict::Resend(_))
    }
}

/// Per watch stream state.
#[derive(Debug, Clone, Default)]
struct Stream {
    /// Objects at or below this resourceVersion were handled.
    threshold: Option<u64>,
    /// The greatest resourceVersion of the list under way (applied at its end: a list is not
    /// in resourceVersion order).
    listing_max: Option<u64>,
    /// No checkpoint and no completed list yet: the first start's age rule applies.
    first_start: bool,
    /// The first start's age cut-off (Unix ms), when fixed; else `now - max age`.
    cutoff: Option<i64>,
    /// A list of it completed since the filter was made.
    listed: bool,
    /// Handled by an interrupted list before the restart (until this stream's list ends).
    list_handled: BTreeSet<u64>,
}

/// Decides which updates are new occurrences (see the module docs).
#[derive(Debug)]
pub struct OccurrenceFilter {
    seen: SeenMap,
    streams: Vec<Stream>,
    max_age_ms: i64,
    /// The checkpoint's pending occurrences not relisted yet, with the receivers that owe them.
    pending: HashMap<UidKey, (u32, Vec<ReceiverId>)>,
}

impl OccurrenceFilter {
    /// A filter for `thresholds.len()` watch streams. `thresholds[i]` is stream `i`'s
    /// checkpointed resourceVersion (`None`: the checkpoint knows nothing about it, so its
    /// first list applies `max_event_age_ms`); `recent` are the checkpoint's recently handled
    /// occurrences; `capacity` bounds what is remembered.
    pub fn new(
        thresholds: &[Option<u64>],
        recent: impl IntoIterator<Item = (UidKey, u32)>,
        capacity: usize,
        max_event_age_ms: i64,
    ) -> Self {
        let mut seen = SeenMap::new(capacity);
        for (uid, n) in recent {
            seen.insert(uid, n);
        }
        Self {
            seen,
            streams: thresholds
                .iter()
                .map(|t| Stream {
                    threshold: *t,
                    listing_max: None,
                    first_start: t.is_none(),
                    cutoff: None,
                    listed: false,
                    list_handled: BTreeSet::new(),
                })
                .collect(),
            max_age_ms: max_event_age_ms,
            pending: HashMap::new(),
        }
    }

    /// Fixes the first-start age cut-offs (Unix ms) of the streams without a threshold.
    #[must_use]
    pub fn with_cutoffs(mut self, cutoffs: &[Option<i64>]) -> Self {
        for (state, cut) in self.streams.iter_mut().zip(cutoffs) {
            state.cutoff = *cut;
        }
        self
    }

    /// The resourceVersions each stream's interrupted list had handled before a restart.
    #[must_use]
    pub fn with_list_handled(mut self, handled: Vec<BTreeSet<u64>>) -> Self {
        for (state, h) in self.streams.iter_mut().zip(handled) {
            state.list_handled = h;
        }
        self
    }

    /// The checkpoint's pending occurrences (exported before a restart, not finished by the
    /// receivers listed): resent to those receivers at the relist.
    #[must_use]
    pub fn with_pending(mut self, pending: impl IntoIterator<Item = Owed>) -> Self {
        self.pending
            .extend(pending.into_iter().map(|((uid, n), owed)| (uid, (n, owed))));
        self
    }

    /// Decides on one update of stream `stream`, `now_ms` being the wall clock (Unix ms).
    pub fn decide(
        &mut self,
        stream: usize,
        phase: Phase,
        event: &CoreEvent,
        now_ms: i64,
    ) -> Verdict {
        let uid = UidKey::of(event.metadata.uid.as_deref().unwrap_or_default());
        let n = occurrences(event);
        let rv = resource_version(&event.metadata);
        let max_age_ms = self.max_age_ms;
        let Some(state) = self.streams.get_mut(stream) else {
            return Verdict::New;
        };
        match phase {
            Phase::Listing => {
                if let Some(rv) = rv {
                    state.listing_max = Some(state.listing_max.map_or(rv, |m| m.max(rv)));
                }
            }
            Phase::Watching => {
                if let Some(rv) = rv {
                    state.threshold = Some(state.threshold.map_or(rv, |t| t.max(rv)));
                }
            }
        }
        if phase == Phase::Listing
            && let Some((p, owed)) = self.pending.remove(&uid)
            && p <= n
        {
            self.seen.insert(uid, n);
            return if p == n {
                Verdict::Resend(owed)
            } else {
                // A later occurrence since: new to everyone.
                Verdict::New
            };
        }
        if phase == Phase::Listing
            && let Some(rv) = rv
            && (state.threshold.is_some_and(|t| rv <= t) || state.list_handled.contains(&rv))
        {
            return Verdict::Handled;
        }
        if let Some(known) = self.seen.get(uid) {
            if known >= n {
                return Verdict::Duplicate;
            }
            self.seen.insert(uid, n);
            return Verdict::New;
        }
        if phase == Phase::Listing
            && state.first_start
            && Event::unenriched(event)
                .occurred_at_ms()
                .is_some_and(|at| match state.cutoff {
                    Some(cutoff) => at < cutoff,
                    None => now_ms.saturating_sub(at) > max_age_ms,
                })
        {
            return Verdict::TooOld;
        }
        self.seen.insert(uid, n);
        Verdict::New
    }

    /// A list of stream `stream` is complete (`InitDone`): its objects count as handled from
    /// now on, and the first start's age rule no longer applies. Returns the stream's
    /// threshold: the watermark to reach once what the list exported is delivered.
    pub fn listed(&mut self, stream: usize) -> Option<u64> {
        let state = self.streams.get_mut(stream)?;
        let max = state.listing_max.take().unwrap_or(0);
        state.threshold = Some(state.threshold.map_or(max, |t| t.max(max)));
        state.first_start = false;
        state.cutoff = None;
        state.listed = true;
        state.list_handled = BTreeSet::new();
        let threshold = state.threshold;
        if self.streams.iter().all(|s| s.listed) {
            // Every stream has listed: what is still pending is gone from the cluster.
            self.pending.clear();
        }
        threshold
    }

    /// A list of stream `stream` starts over (`Init`).
    pub fn relisting(&mut self, stream: usize) {
        if let Some(state) = self.streams.get_mut(stream) {
            state.listing_max = None;
        }
    }

    /// The object was deleted (TTL expiry, mostly): forget it.
    pub fn deleted(&mut self, event: &CoreEvent) {
        self.seen.remove(UidKey::of(
            event.metadata.uid.as_deref().unwrap_or_default(),
        ));
    }

    /// How many occurrences are remembered.
    pub fn remembered(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::EventSeries;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    const NOW: i64 = 1_800_000_000_000;

    fn ev(uid: &str, rv: u64, count: i32, age_s: i64) -> CoreEvent {
        CoreEvent {
            metadata: ObjectMeta {
                uid: Some(uid.to_owned()),
                resource_version: Some(rv.to_string()),
                ..Default::default()
            },
            count: Some(count),
            last_timestamp: Some(Time(
                jiff::Timestamp::from_millisecond(NOW - age_s * 1000).unwrap(),
            )),
            ..Default::default()
        }
    }

    #[test]
    fn pending_occurrences_are_new_at_the_relist_whatever_their_resource_version() {
        let mut f = OccurrenceFilter::new(&[Some(100)], [(UidKey::of("p"), 1)], 100, 5_000)
            .with_pending([
                ((UidKey::of("p"), 2), vec![ReceiverId(1)]),
                ((UidKey::of("r"), 1), vec![]),
            ]);
        f.relisting(0);
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("p", 50, 2, 0), NOW),
            Verdict::Resend(vec![ReceiverId(1)])
        );
        // Repeated since the restart: a new occurrence, for everyone.
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("r", 150, 2, 0), NOW),
            Verdict::New
        );
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("q", 60, 1, 0), NOW),
            Verdict::Handled
        );
        // Once: a second relist finds it handled.
        f.relisting(0);
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("p", 50, 2, 0), NOW),
            Verdict::Handled
        );
    }

    #[test]
    fn what_an_interrupted_list_handled_is_skipped_until_the_list_ends() {
        let mut f = OccurrenceFilter::new(&[Some(100)], [], 100, 5_000)
            .with_list_handled(vec![BTreeSet::from([150, 170])]);
        f.relisting(0);
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("a", 150, 1, 0), NOW),
            Verdict::Handled
        );
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("b", 160, 1, 0), NOW),
            Verdict::New
        );
        // Changed since: a new version, decided as any other.
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("c", 171, 2, 0), NOW),
            Verdict::New
        );
        assert_eq!(f.listed(0), Some(171));
    }

    #[test]
    fn a_fixed_first_start_cut_off_replaces_now_minus_max_age() {
        let mut f =
            OccurrenceFilter::new(&[None], [], 100, 5_000).with_cutoffs(&[Some(NOW - 60_000)]);
        // 30 s old: older than the 5 s max age, younger than the cut-off fixed a minute ago.
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("a", 1, 1, 30), NOW),
            Verdict::New
        );
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("b", 2, 1, 90), NOW),
            Verdict::TooOld
        );
    }

    #[test]
    fn uid_keys_round_trip_and_hash_non_uuids() {
        let k = UidKey::of("0f9b6a4e-3c2d-4b1a-9e8f-7a6b5c4d3e2f");
        assert_eq!(k.to_hex(), "0f9b6a4e3c2d4b1a9e8f7a6b5c4d3e2f");
        assert_eq!(UidKey::from_hex(&k.to_hex()), Some(k));
        assert_ne!(UidKey::of("a"), UidKey::of("b"));
        assert_eq!(UidKey::of("a"), UidKey::of("a"));
    }

    #[test]
    fn occurrence_numbers() {
        let mut e = ev("u", 1, 3, 0);
        assert_eq!(occurrences(&e), 3);
        e.series = Some(EventSeries {
            count: Some(7),
            ..Default::default()
        });
        assert_eq!(occurrences(&e), 7);
        e.series = None;
        e.count = None;
        assert_eq!(occurrences(&e), 1);
    }

    #[test]
    fn first_start_applies_the_age_rule_to_the_first_list_only() {
        let mut f = OccurrenceFilter::new(&[None], [], 100, 5_000);
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("a", 10, 1, 60), NOW),
            Verdict::TooOld
        );
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("b", 11, 1, 1), NOW),
            Verdict::New
        );
        f.listed(0);
        // Live: an old occurrence time does not matter any more.
        assert_eq!(
            f.decide(0, Phase::Watching, &ev("c", 12, 1, 3600), NOW),
            Verdict::New
        );
    }

    #[test]
    fn repeats_are_new_other_updates_are_not() {
        let mut f = OccurrenceFilter::new(&[Some(5)], [], 100, 5_000);
        assert!(
            f.decide(0, Phase::Watching, &ev("a", 10, 1, 0), NOW)
                .is_new()
        );
        // A label change: same count.
        assert_eq!(
            f.decide(0, Phase::Watching, &ev("a", 11, 1, 0), NOW),
            Verdict::Duplicate
        );
        assert!(
            f.decide(0, Phase::Watching, &ev("a", 12, 2, 0), NOW)
                .is_new()
        );
    }

    #[test]
    fn relists_deliver_only_what_changed_since_the_threshold() {
        // Restart: the checkpoint says rv 100 was handled.
        let mut f = OccurrenceFilter::new(&[Some(100)], [(UidKey::of("c"), 2)], 100, 5_000);
        f.relisting(0);
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("a", 90, 4, 9999), NOW),
            Verdict::Handled
        );
        // Created while the exporter was down, however old its timestamps look.
        assert!(
            f.decide(0, Phase::Listing, &ev("b", 130, 1, 9999), NOW)
                .is_new()
        );
        // Delivered (out of order) before the restart: remembered.
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("c", 120, 2, 0), NOW),
            Verdict::Duplicate
        );
        f.listed(0);
        // Live updates move the threshold; a relist (410) then skips what was seen.
        assert!(
            f.decide(0, Phase::Watching, &ev("d", 140, 1, 0), NOW)
                .is_new()
        );
        f.relisting(0);
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("d", 140, 1, 0), NOW),
            Verdict::Handled
        );
        // Remembered, and changed since without a new occurrence (a label).
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("d", 145, 1, 0), NOW),
            Verdict::Duplicate
        );
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("e", 135, 1, 0), NOW),
            Verdict::Handled
        );
        // A repeat that happened during the 410 gap.
        assert!(
            f.decide(0, Phase::Listing, &ev("a", 150, 5, 0), NOW)
                .is_new()
        );
        f.listed(0);
    }

    #[test]
    fn an_empty_first_list_still_ends_the_first_start() {
        let mut f = OccurrenceFilter::new(&[None], [], 100, 5_000);
        assert_eq!(f.listed(0), Some(0), "a threshold to checkpoint");
        // A restart from that checkpoint: what is listed now was created since, however old
        // its timestamps look.
        let mut f = OccurrenceFilter::new(&[Some(0)], [], 100, 5_000);
        assert!(
            f.decide(0, Phase::Listing, &ev("a", 7, 1, 9999), NOW)
                .is_new()
        );
    }

    #[test]
    fn a_list_is_not_in_resource_version_order() {
        let mut f = OccurrenceFilter::new(&[Some(100)], [], 100, 5_000);
        f.relisting(0);
        assert!(
            f.decide(0, Phase::Listing, &ev("x", 300, 1, 0), NOW)
                .is_new()
        );
        // Lower than an item seen earlier in the same list, above the threshold: still new.
        assert!(
            f.decide(0, Phase::Listing, &ev("y", 200, 1, 0), NOW)
                .is_new()
        );
        f.listed(0);
        f.relisting(0);
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("z", 250, 1, 0), NOW),
            Verdict::Handled
        );
    }

    #[test]
    fn streams_have_their_own_thresholds() {
        let mut f = OccurrenceFilter::new(&[Some(100), None], [], 100, 5_000);
        assert_eq!(
            f.decide(0, Phase::Listing, &ev("a", 50, 1, 9999), NOW),
            Verdict::Handled
        );
        assert_eq!(
            f.decide(1, Phase::Listing, &ev("b", 50, 1, 9999), NOW),
            Verdict::TooOld
        );
    }

    #[test]
    fn the_seen_map_stays_bounded_and_keeps_recent_entries() {
        let mut m = SeenMap::new(100);
        for i in 0..10_000u128 {
            m.insert(UidKey(i), 1);
            assert!(m.len() <= 100);
        }
        assert_eq!(m.get(UidKey(9_999)), Some(1));
        assert_eq!(m.get(UidKey(0)), None);
        m.insert(UidKey(9_999), 0);
        assert_eq!(m.get(UidKey(9_999)), Some(1), "never lowered");
    }
}
