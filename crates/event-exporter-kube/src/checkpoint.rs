//! The checkpoint: how far delivery has got, persisted so that a restart (or the next leader)
//! resumes without losing or repeating events.
//!
//! A [`Checkpoint`] records (see [`progress`](crate::progress)), per watch stream (keyed by its
//! field selector), the resourceVersion up to which every update has been handled; the
//! **pending** occurrences (`uid → occurrence`) at or below it that were not finished, which a
//! restart sends; the **recent** occurrences that finished, which a restart does not send again
//! (those a list under way finished above the resourceVersion among them); and, while a
//! stream's first list is under way, its first-start age cut-off. It is small: a few hundred
//! kilobytes at most (pending occurrences are bounded by the receivers' queues), whatever the
//! number of events in the cluster.
//!
//! Stores: a ConfigMap key (in a cluster; see [`ConfigMapCheckpointStore`]) or a file
//! ([`FileCheckpointStore`]). Saving replaces the stored checkpoint when it is the one the
//! writer last loaded or wrote ([`Checkpoint::based_on`]), and otherwise merges with it
//! ([`Checkpoint::merge`]): a replica that lost its Lease and writes late cannot undo the new
//! leader's progress, nor make it forget what is pending.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::configmap::{ConfigMapError, ConfigMapKey};
use event_exporter_core::ReceiverId;

use crate::occurrence::UidKey;
use crate::progress::{Owed, ProgressSnapshot};

/// The checkpoint format's version.
/// Version 2 added `pending` and `firstStart`; a version 1 checkpoint reads as one with neither.
pub const FORMAT_VERSION: u32 = 2;

/// Recently handled occurrences a checkpoint keeps at most.
pub const MAX_RECENT: usize = 4096;

/// How far delivery has got.
///
/// Unknown fields are ignored and a newer `version` is read for the fields this version knows,
/// so that rolling back an upgrade does not lose the checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// The format's version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// Per stream (field selector, `""` for all events): the resourceVersion up to which every
    /// update was handled.
    #[serde(default)]
    pub streams: BTreeMap<String, String>,
    /// Recently handled occurrences: uid key (32 hex digits) → occurrence number.
    #[serde(default)]
    pub recent: BTreeMap<String, u32>,
    /// Occurrences not finished (their stream's resourceVersion may cover them): uid key → the
    /// occurrence and the receivers that owe it. A restart sends them to those receivers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending: BTreeMap<String, PendingOccurrence>,
    /// Per stream with a list under way: the resourceVersions of the objects it exported and
    /// finished (`"1200-1250,1262"`). A restart's relist skips them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub list_handled: BTreeMap<String, String>,
    /// Per stream whose first list is not handled yet: the first start's age cut-off (Unix ms;
    /// older events are not exported), so that a restart keeps it instead of starting over.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub first_start: BTreeMap<String, i64>,
    /// When it was written (RFC 3339), for people reading it.
    #[serde(default)]
    pub updated: String,
    /// Who wrote it (the leader identity), for people reading it.
    #[serde(default)]
    pub writer: String,
    /// The [`stamp`](Self::stamp) of the stored checkpoint this one supersedes (the one its
    /// writer loaded or last wrote): saving replaces that one, and merges with any other.
    #[serde(skip)]
    pub based_on: Option<String>,
}

/// An occurrence a checkpoint records as not finished.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingOccurrence {
    /// The occurrence number.
    pub occurrence: u32,
    /// The receivers (by name) that had not finished it; empty: every receiver it is routed to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receivers: Vec<String>,
}

impl PendingOccurrence {
    /// Records `entry` for uid key `key` in `map`, combined with what it holds for that key.
    fn add(map: &mut BTreeMap<String, PendingOccurrence>, key: String, entry: &PendingOccurrence) {
        match map.get_mut(&key) {
            Some(held) => held.absorb(entry),
            None => {
                map.insert(key, entry.clone());
            }
        }
    }

    /// Combined with `other` (the same object): the greater occurrence — the one a restart
    /// finds, resent to every receiver that owed either — and every receiver either names.
    fn absorb(&mut self, other: &PendingOccurrence) {
        self.occurrence = self.occurrence.max(other.occurrence);
        if self.receivers.is_empty() || other.receivers.is_empty() {
            self.receivers.clear();
        } else {
            for r in &other.receivers {
                if !self.receivers.contains(r) {
                    self.receivers.push(r.clone());
                }
            }
        }
    }
}

/// A checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("checkpoint file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The stored checkpoint is not one this version can read.
    #[error("checkpoint {store}: unreadable ({message}); it will be replaced at the next save")]
    Corrupt {
        /// Which store.
        store: String,
        /// What is wrong.
        message: String,
    },
    /// The ConfigMap could not be read or written.
    #[error("checkpoint: {0}")]
    ConfigMap(#[from] ConfigMapError),
    /// Saving took too long (the API server is slow or unreachable).
    #[error("checkpoint {store}: saving took longer than {after:?}")]
    Timeout {
        /// Which store.
        store: String,
        /// The bound.
        after: std::time::Duration,
    },
}

impl Checkpoint {
    /// Parses a stored checkpoint.
    pub fn parse(text: &str, store: &str) -> Result<Self, CheckpointError> {
        let cp: Self = serde_json::from_str(text).map_err(|e| CheckpointError::Corrupt {
            store: store.to_owned(),
            message: e.to_string(),
        })?;
        if cp.version == 0 {
            return Err(CheckpointError::Corrupt {
                store: store.to_owned(),
                message: "no format version".to_owned(),
            });
        }
        if cp.version > FORMAT_VERSION {
            tracing::warn!(
                store,
                version = cp.version,
                "checkpoint written by a newer version: reading the fields this version knows"
            );
        }
        for (selector, rv) in &cp.streams {
            if rv.parse::<u64>().is_err() {
                return Err(CheckpointError::Corrupt {
                    store: store.to_owned(),
                    message: format!("stream {selector:?}: resourceVersion {rv:?} is not a number"),
                });
            }
        }
        let bad = |field: &str, key: &str| CheckpointError::Corrupt {
            store: store.to_owned(),
            message: format!("{field}: {key:?} is not a uid key"),
        };
        if let Some(k) = cp.recent.keys().find(|k| UidKey::from_hex(k).is_none()) {
            return Err(bad("recent", k));
        }
        if let Some(k) = cp.pending.keys().find(|k| UidKey::from_hex(k).is_none()) {
            return Err(bad("pending", k));
        }
        for (selector, ranges) in &cp.list_handled {
            if decode_ranges(ranges).is_none() {
                // Only an optimisation of the next relist: without it, what that list had
                // delivered is delivered again; nothing is lost.
                tracing::warn!(
                    store,
                    selector,
                    "checkpoint: listHandled is unreadable; ignoring it"
                );
            }
        }
        Ok(cp)
    }

    /// The checkpoint of `snapshot`, for streams named `selectors` and receivers named
    /// `receivers` (in config order).
    pub fn from_progress(
        selectors: &[String],
        snapshot: &ProgressSnapshot,
        receivers: &[String],
        writer: &str,
    ) -> Self {
        let streams = selectors
            .iter()
            .zip(&snapshot.watermarks)
            .filter_map(|(sel, w)| w.map(|rv| (sel.clone(), rv.to_string())))
            .collect();
        let skip = snapshot.recent.len().saturating_sub(MAX_RECENT);
        let mut recent = BTreeMap::new();
        for (k, n) in &snapshot.recent[skip..] {
            let e = recent.entry(k.to_hex()).or_insert(*n);
            *e = (*e).max(*n);
        }
        let mut pending: BTreeMap<String, PendingOccurrence> = BTreeMap::new();
        for ((k, n), owed) in &snapshot.pending {
            let entry = PendingOccurrence {
                occurrence: *n,
                receivers: owed
                    .iter()
                    .filter_map(|id| receivers.get(id.index()).cloned())
                    .collect(),
            };
            PendingOccurrence::add(&mut pending, k.to_hex(), &entry);
        }
        let list_handled = within_budget(
            selectors
                .iter()
                .zip(&snapshot.list_handled)
                .filter(|(_, rvs)| !rvs.is_empty())
                .map(|(sel, rvs)| (sel.clone(), rvs.clone()))
                .collect(),
        );
        let first_start = selectors
            .iter()
            .zip(&snapshot.cutoffs)
            .zip(&snapshot.watermarks)
            .filter_map(|((sel, cut), mark)| match (cut, mark) {
                (Some(cut), None) => Some((sel.clone(), *cut)),
                _ => None,
            })
            .collect();
        Self {
            version: FORMAT_VERSION,
            streams,
            recent,
            pending,
            list_handled,
            first_start,
            updated: jiff::Timestamp::now().to_string(),
            writer: writer.to_owned(),
            based_on: None,
        }
    }

    /// What identifies this checkpoint as written: its writer and time.
    pub fn stamp(&self) -> String {
        format!("{} {}", self.writer, self.updated)
    }

    /// Whether `self` records the same progress as `other` (the writer and time aside).
    pub fn same_progress(&self, other: &Checkpoint) -> bool {
        self.streams == other.streams
            && self.recent == other.recent
            && self.pending == other.pending
            && self.list_handled == other.list_handled
            && self.first_start == other.first_start
    }

    /// Each of `selectors`' list-handled resourceVersions.
    pub fn list_handled(&self, selectors: &[String]) -> Vec<BTreeSet<u64>> {
        selectors
            .iter()
            .map(|s| {
                self.list_handled
                    .get(s)
                    .and_then(|r| decode_ranges(r))
                    .unwrap_or_default()
            })
            .collect()
    }

    /// The pending occurrences, for receivers named `receivers` (in config order): each with
    /// the receivers that owe it (empty: all it is routed to). An occurrence only receivers no
    /// longer configured owe is left out.
    pub fn pending_for(&self, receivers: &[String]) -> Vec<Owed> {
        self.pending
            .iter()
            .filter_map(|(k, p)| {
                let key = UidKey::from_hex(k)?;
                let owed: Vec<ReceiverId> = p
                    .receivers
                    .iter()
                    .filter_map(|name| receivers.iter().position(|r| r == name))
                    .filter_map(|i| u32::try_from(i).ok().map(ReceiverId))
                    .collect();
                if owed.is_empty() && !p.receivers.is_empty() {
                    return None;
                }
                Some(((key, p.occurrence), owed))
            })
            .collect()
    }

    /// Each of `selectors`' first-start cut-off (`None` when there is none).
    pub fn cutoffs(&self, selectors: &[String]) -> Vec<Option<i64>> {
        selectors
            .iter()
            .map(|s| self.first_start.get(s).copied())
            .collect()
    }

    /// Each of `selectors`' watermark (`None` for a stream it doesn't know).
    pub fn watermarks(&self, selectors: &[String]) -> Vec<Option<u64>> {
        selectors
            .iter()
            .map(|s| self.streams.get(s).and_then(|rv| rv.parse().ok()))
            .collect()
    }

    /// The recently handled occurrences.
    pub fn recent(&self) -> impl Iterator<Item = (UidKey, u32)> + '_ {
        self.recent
            .iter()
            .filter_map(|(k, n)| UidKey::from_hex(k).map(|k| (k, *n)))
    }

    /// `self` saved over the stored `other`: `self` when it supersedes `other` (its
    /// [`based_on`](Self::based_on) is `other`'s stamp). Otherwise — `other` was written by
    /// someone else meanwhile — the two combined: each stream's resourceVersion the greater,
    /// pending occurrences the union (the smaller number), recent ones the union (the greater
    /// number) trimmed to [`MAX_RECENT`] (dropping `other`'s first), first-start cut-offs
    /// `self`'s, else `other`'s, for streams without a resourceVersion.
    pub fn merge(mut self, other: &Checkpoint) -> Self {
        if self.based_on.as_deref() == Some(other.stamp().as_str()) {
            return self;
        }
        for (k, p) in &other.pending {
            PendingOccurrence::add(&mut self.pending, k.clone(), p);
        }
        for (sel, cut) in &other.first_start {
            self.first_start.entry(sel.clone()).or_insert(*cut);
        }
        if !other.list_handled.is_empty() {
            let mut union: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
            for (sel, ranges) in self.list_handled.iter().chain(&other.list_handled) {
                union
                    .entry(sel.clone())
                    .or_default()
                    .extend(decode_ranges(ranges).unwrap_or_default());
            }
            self.list_handled = within_budget(
                union
                    .into_iter()
                    .map(|(sel, rvs)| (sel, rvs.into_iter().collect()))
                    .collect(),
            );
        }
        for (sel, rv) in &other.streams {
            let theirs = rv.parse::<u64>().unwrap_or(0);
            match self.streams.get(sel).and_then(|r| r.parse::<u64>().ok()) {
                Some(ours) if ours >= theirs => {}
                _ => {
                    self.streams.insert(sel.clone(), rv.clone());
                }
            }
        }
        for (k, n) in &other.recent {
            if let Some(ours) = self.recent.get_mut(k) {
                *ours = (*ours).max(*n);
            } else if self.recent.len() < MAX_RECENT {
                self.recent.insert(k.clone(), *n);
            }
        }
        let streams = &self.streams;
        self.first_start.retain(|sel, _| !streams.contains_key(sel));
        self
    }
}

/// The most text all streams' `listHandled` may take in a checkpoint: with the recent list
/// (4096 × ~40 bytes) and what is pending (bounded by the queues) it stays under the 1 MB a
/// ConfigMap holds.
pub const LIST_HANDLED_BUDGET: usize = 300_000;

/// Per stream, sorted resourceVersions encoded by [`encode_ranges`], the largest ones dropped
/// until each stream holds at most [`MAX_LIST_HANDLED`](crate::progress::MAX_LIST_HANDLED) and
/// all fit in [`LIST_HANDLED_BUDGET`] (a dropped one is delivered again after a restart in the
/// middle of that list: nothing is lost).
fn within_budget(mut streams: Vec<(String, Vec<u64>)>) -> BTreeMap<String, String> {
    for (_, rvs) in &mut streams {
        rvs.truncate(crate::progress::MAX_LIST_HANDLED);
    }
    loop {
        let encoded: Vec<(String, String)> = streams
            .iter()
            .map(|(sel, rvs)| (sel.clone(), encode_ranges(rvs)))
            .collect();
        let size: usize = encoded.iter().map(|(s, e)| s.len() + e.len()).sum();
        if size <= LIST_HANDLED_BUDGET {
            return encoded.into_iter().filter(|(_, e)| !e.is_empty()).collect();
        }
        // Shrink the longest by a tenth and try again.
        let Some((_, longest)) = streams.iter_mut().max_by_key(|(_, rvs)| rvs.len()) else {
            return BTreeMap::new();
        };
        let keep = longest.len() - longest.len().div_ceil(10);
        longest.truncate(keep);
    }
}

/// Sorted resourceVersions as runs, each written as its start's distance from the previous
/// run's end (the first: from 0), then `+` and the run's length minus one when it is longer
/// than one: `[100, 101, 102, 110, 115, 116]` → `"100+2,8,5+1"`. Dense or sparse, it takes a
/// few bytes per resourceVersion.
fn encode_ranges(sorted: &[u64]) -> String {
    let mut out = String::new();
    let mut prev = 0u64;
    let mut i = 0;
    while let Some(&start) = sorted.get(i) {
        let mut end = start;
        while let Some(&next) = sorted.get(i + 1)
            && Some(next) == end.checked_add(1)
        {
            i += 1;
            end = next;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&start.saturating_sub(prev).to_string());
        if end > start {
            out.push('+');
            out.push_str(&(end - start).to_string());
        }
        prev = end;
        i += 1;
    }
    out
}

/// [`encode_ranges`]' text back (`None` if it is not such a text, or holds more than a
/// stream keeps).
fn decode_ranges(text: &str) -> Option<BTreeSet<u64>> {
    let max = crate::progress::MAX_LIST_HANDLED as u64;
    let mut set = BTreeSet::new();
    let mut prev = 0u64;
    let mut count = 0u64;
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (delta, extra) = match part.split_once('+') {
            Some((d, l)) => (d.parse::<u64>().ok()?, l.parse::<u64>().ok()?),
            None => (part.parse::<u64>().ok()?, 0),
        };
        if !set.is_empty() && delta == 0 {
            return None;
        }
        count = count.checked_add(extra)?.checked_add(1)?;
        if count > max {
            return None;
        }
        let start = prev.checked_add(delta)?;
        let end = start.checked_add(extra)?;
        set.extend(start..=end);
        prev = end;
    }
    Some(set)
}

/// Where a checkpoint is kept.
#[async_trait]
pub trait CheckpointStore: Send + Sync + std::fmt::Debug {
    /// The stored checkpoint (`None` if there is none yet).
    async fn load(&self) -> Result<Option<Checkpoint>, CheckpointError>;
    /// Stores `checkpoint`, merged with what is stored.
    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError>;
    /// Where (for logs).
    fn describe(&self) -> String;
}

/// A checkpoint in a JSON file, replaced atomically (write to a temporary file, rename).
#[derive(Debug, Clone)]
pub struct FileCheckpointStore {
    path: PathBuf,
}

impl FileCheckpointStore {
    /// A store at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    async fn read(&self) -> Result<Option<String>, CheckpointError> {
        match tokio::fs::read_to_string(&self.path).await {
            Ok(text) if text.trim().is_empty() => Ok(None),
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CheckpointError::Io {
                path: self.describe(),
                source,
            }),
        }
    }
}

#[async_trait]
impl CheckpointStore for FileCheckpointStore {
    async fn load(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        match self.read().await? {
            Some(text) => Checkpoint::parse(&text, &self.describe()).map(Some),
            None => Ok(None),
        }
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: self.describe(),
            source,
        };
        // A corrupt or missing file is simply replaced.
        let merged = match self.read().await? {
            Some(text) => match Checkpoint::parse(&text, &self.describe()) {
                Ok(stored) => checkpoint.clone().merge(&stored),
                Err(_) => checkpoint.clone(),
            },
            None => checkpoint.clone(),
        };
        let text = serde_json::to_string_pretty(&merged).map_err(|e| CheckpointError::Corrupt {
            store: self.describe(),
            message: e.to_string(),
        })?;
        event_exporter_sinks::state::replace_file(&self.path, text.as_bytes())
            .await
            .map_err(io)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// The ConfigMap key a checkpoint is kept under.
pub const CONFIGMAP_KEY: &str = "checkpoint";

/// A checkpoint in a ConfigMap (key [`CONFIGMAP_KEY`]); writes are read-modify-write with the
/// ConfigMap's resourceVersion, retried on conflict, merging with what is stored.
#[derive(Debug, Clone)]
pub struct ConfigMapCheckpointStore {
    key: ConfigMapKey,
}

impl ConfigMapCheckpointStore {
    /// A store in ConfigMap `namespace/name`.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            key: ConfigMapKey::new(client, namespace, name, CONFIGMAP_KEY),
        }
    }
}

#[async_trait]
impl CheckpointStore for ConfigMapCheckpointStore {
    async fn load(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        match self.key.read().await? {
            Some(text) if !text.trim().is_empty() => {
                Checkpoint::parse(&text, &self.describe()).map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let describe = self.describe();
        let mut failed = None;
        self.key
            .update(|stored| {
                failed = None;
                let merged = match stored.map(|text| Checkpoint::parse(text, &describe)) {
                    Some(Ok(stored)) => checkpoint.clone().merge(&stored),
                    _ => checkpoint.clone(),
                };
                match serde_json::to_string(&merged) {
                    Ok(text) if stored != Some(text.as_str()) => Some(text),
                    Ok(_) => None,
                    Err(e) => {
                        failed = Some(e.to_string());
                        None
                    }
                }
            })
            .await?;
        match failed {
            Some(message) => Err(CheckpointError::Corrupt {
                store: describe,
                message,
            }),
            None => Ok(()),
        }
    }

    fn describe(&self) -> String {
        self.key.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(streams: &[(&str, u64)], recent: &[(u128, u32)]) -> Checkpoint {
        Checkpoint {
            version: FORMAT_VERSION,
            streams: streams
                .iter()
                .map(|(s, rv)| ((*s).to_owned(), rv.to_string()))
                .collect(),
            recent: recent
                .iter()
                .map(|(k, n)| (UidKey(*k).to_hex(), *n))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn merging_never_moves_a_watermark_back() {
        let ours = cp(&[("", 10), ("reason=A", 5)], &[(1, 2)]);
        let stored = cp(&[("", 20), ("reason=B", 7)], &[(1, 3), (2, 1)]);
        let m = ours.merge(&stored);
        assert_eq!(
            m.watermarks(&["".into(), "reason=A".into(), "reason=B".into()]),
            vec![Some(20), Some(5), Some(7)]
        );
        assert_eq!(
            m.recent().collect::<Vec<_>>(),
            vec![(UidKey(1), 3), (UidKey(2), 1)]
        );
    }

    #[test]
    fn a_save_replaces_what_it_supersedes_and_merges_with_anything_else() {
        let names = ["hook".to_owned(), "slack".to_owned()];
        let pending = |n: u32, r: &[&str]| PendingOccurrence {
            occurrence: n,
            receivers: r.iter().map(|s| (*s).to_owned()).collect(),
        };
        let mut stored = cp(&[("", 20)], &[(1, 1)]);
        stored
            .pending
            .insert(UidKey(9).to_hex(), pending(1, &["slack"]));
        stored.first_start.insert("reason=A".into(), 5);
        stored.writer = "a".into();
        stored.updated = "t1".into();
        // The writer's own next save: what was pending has finished.
        let mut ours = cp(&[("", 30)], &[(9, 1)]);
        ours.based_on = Some(stored.stamp());
        assert_eq!(ours.clone().merge(&stored), ours);
        // A late writer that never saw `stored` forgets nothing of it.
        let mut late = cp(&[("", 10)], &[]);
        late.pending.insert(UidKey(3).to_hex(), pending(2, &[]));
        late.pending
            .insert(UidKey(9).to_hex(), pending(1, &["hook"]));
        late.based_on = Some("someone else".into());
        let m = late.merge(&stored);
        assert_eq!(m.watermarks(&[String::new()]), vec![Some(20)]);
        assert_eq!(
            m.pending_for(&names),
            vec![
                ((UidKey(3), 2), vec![]),
                ((UidKey(9), 1), vec![ReceiverId(0), ReceiverId(1)])
            ]
        );
        // A receiver no longer configured owes nothing.
        assert_eq!(
            stored.pending_for(&["hook".to_owned()]),
            vec![],
            "only `slack` owed it"
        );
        assert_eq!(m.recent().collect::<Vec<_>>(), vec![(UidKey(1), 1)]);
        assert_eq!(m.cutoffs(&["reason=A".into()]), vec![Some(5)]);
    }

    #[test]
    fn list_handled_resource_versions_are_stored_as_runs() {
        let rvs = [100, 101, 102, 110, 115, 116];
        assert_eq!(encode_ranges(&rvs), "100+2,8,5+1");
        let back: Vec<u64> = decode_ranges("100+2,8,5+1").unwrap().into_iter().collect();
        assert_eq!(back, rvs);
        assert_eq!(encode_ranges(&[]), "");
        for bad in ["a", "1,0", "1+", "0+999999999", "-3"] {
            assert_eq!(decode_ranges(bad), None, "{bad}");
        }
        let snapshot = ProgressSnapshot {
            watermarks: vec![Some(2)],
            list_handled: vec![rvs.to_vec()],
            ..Default::default()
        };
        let cp = Checkpoint::from_progress(&[String::new()], &snapshot, &[], "w");
        let text = serde_json::to_string(&cp).unwrap();
        assert!(
            text.contains(r#""listHandled":{"":"100+2,8,5+1"}"#),
            "{text}"
        );
        let back = Checkpoint::parse(&text, "x").unwrap();
        assert_eq!(
            back.list_handled(&[String::new()]),
            vec![BTreeSet::from(rvs)]
        );
    }

    #[test]
    fn list_handled_stays_within_its_budget_even_sparse_and_merged() {
        // The worst case: as many sparse 9-digit resourceVersions as a stream keeps, in two
        // writers' checkpoints.
        let max = crate::progress::MAX_LIST_HANDLED as u64;
        let sparse = |from: u64| -> Vec<u64> { (0..max).map(|i| from + i * 7_919).collect() };
        let ours = ProgressSnapshot {
            watermarks: vec![Some(1)],
            list_handled: vec![sparse(100_000_000)],
            ..Default::default()
        };
        let theirs = ProgressSnapshot {
            list_handled: vec![sparse(100_000_003)],
            ..ours.clone()
        };
        let a = Checkpoint::from_progress(&[String::new()], &ours, &[], "a");
        let b = Checkpoint::from_progress(&[String::new()], &theirs, &[], "b");
        let size = |cp: &Checkpoint| cp.list_handled.values().map(String::len).sum::<usize>();
        assert!(size(&a) <= LIST_HANDLED_BUDGET, "{}", size(&a));
        let merged = a.merge(&b);
        assert!(size(&merged) <= LIST_HANDLED_BUDGET, "{}", size(&merged));
        // And it loads back.
        let text = serde_json::to_string(&merged).unwrap();
        let back = Checkpoint::parse(&text, "x").unwrap();
        assert!(!back.list_handled(&[String::new()])[0].is_empty());
    }

    #[test]
    fn an_unreadable_list_handled_is_ignored_not_a_first_start() {
        let cp = Checkpoint::parse(
            r#"{"version":2,"streams":{"":"9"},"listHandled":{"":"1,0"}}"#,
            "x",
        )
        .unwrap();
        assert_eq!(cp.watermarks(&[String::new()]), vec![Some(9)]);
        assert_eq!(cp.list_handled(&[String::new()]), vec![BTreeSet::new()]);
    }

    #[test]
    fn two_pending_occurrences_of_one_object_become_the_later_one_owed_by_either_receiver() {
        let snapshot = ProgressSnapshot {
            watermarks: vec![Some(50)],
            pending: vec![
                ((UidKey(1), 3), vec![ReceiverId(0)]),
                ((UidKey(1), 4), vec![ReceiverId(1)]),
            ],
            ..Default::default()
        };
        let names = ["r1".to_owned(), "r2".to_owned()];
        let cp = Checkpoint::from_progress(&[String::new()], &snapshot, &names, "w");
        assert_eq!(
            cp.pending_for(&names),
            vec![((UidKey(1), 4), vec![ReceiverId(0), ReceiverId(1)])]
        );
    }

    #[test]
    fn a_version_1_checkpoint_has_nothing_pending() {
        let cp = Checkpoint::parse(
            r#"{"version":1,"streams":{"":"9"},"recent":{"0000000000000000000000000000000a":2}}"#,
            "x",
        )
        .unwrap();
        assert_eq!(cp.watermarks(&[String::new()]), vec![Some(9)]);
        assert_eq!(cp.pending_for(&[]), vec![]);
        assert_eq!(cp.recent().collect::<Vec<_>>(), vec![(UidKey(10), 2)]);
    }

    #[test]
    fn a_newer_format_is_read_for_what_this_version_knows() {
        let cp =
            Checkpoint::parse(r#"{"version":3,"streams":{"":"9"},"future":[1]}"#, "x").unwrap();
        assert_eq!(cp.watermarks(&[String::new()]), vec![Some(9)]);
    }

    #[test]
    fn merging_raises_known_occurrences_even_when_full() {
        let full: Vec<(u128, u32)> = (0..MAX_RECENT as u128).map(|k| (k, 2)).collect();
        let ours = cp(&[], &full);
        let m = ours.merge(&cp(&[], &[(5, 9), (u128::MAX, 1)]));
        assert_eq!(m.recent.len(), MAX_RECENT);
        assert_eq!(m.recent[&UidKey(5).to_hex()], 9);
    }

    #[test]
    fn corrupt_checkpoints_are_named_errors() {
        for text in [
            "{",
            r#"{"streams":{}}"#,
            r#"{"version":1,"streams":{"":"abc"}}"#,
            r#"{"version":1,"recent":{"zz":1}}"#,
            r#"{"version":2,"pending":{"zz":{"occurrence":1}}}"#,
        ] {
            let err = Checkpoint::parse(text, "cm x/y").unwrap_err();
            assert!(
                err.to_string().starts_with("checkpoint cm x/y: unreadable"),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn file_store_round_trips_and_replaces_a_corrupt_file() {
        let dir = std::env::temp_dir().join(format!("ee-cp-{}", std::process::id()));
        let path = dir.join("sub/cp.json");
        let store = FileCheckpointStore::new(&path);
        assert_eq!(store.load().await.unwrap(), None);
        let first = cp(&[("", 10)], &[(7, 1)]);
        store.save(&first).await.unwrap();
        assert_eq!(store.load().await.unwrap().unwrap().streams, first.streams);
        // A late writer with an older watermark does not move it back.
        store.save(&cp(&[("", 4)], &[])).await.unwrap();
        assert_eq!(
            store
                .load()
                .await
                .unwrap()
                .unwrap()
                .watermarks(&[String::new()]),
            vec![Some(10)]
        );
        std::fs::write(&path, "garbage").unwrap();
        assert!(matches!(
            store.load().await,
            Err(CheckpointError::Corrupt { .. })
        ));
        store.save(&first).await.unwrap();
        assert!(store.load().await.unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
