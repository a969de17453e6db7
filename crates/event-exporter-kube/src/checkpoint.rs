//! The checkpoint: how far delivery has got, persisted so that a restart (or the next leader)
//! resumes without losing or repeating events.
//!
//! A [`Checkpoint`] records, per watch stream (keyed by its field selector), the
//! resourceVersion up to which every update has been handled, plus recently handled
//! occurrences (`uid → occurrence`) that finished ahead of that watermark. It is small: a
//! few hundred kilobytes at most, whatever the number of events in the cluster.
//!
//! Stores: a ConfigMap key (in a cluster; see [`ConfigMapCheckpointStore`]) or a file
//! ([`FileCheckpointStore`]). Saving merges with what is stored ([`Checkpoint::merge`]): a
//! watermark never moves back, so a replica that lost its Lease and writes late cannot undo
//! the new leader's progress.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::configmap::{ConfigMapError, ConfigMapKey};
use crate::occurrence::UidKey;
use crate::progress::ProgressSnapshot;

/// The checkpoint format's version.
pub const FORMAT_VERSION: u32 = 1;

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
    /// When it was written (RFC 3339), for people reading it.
    #[serde(default)]
    pub updated: String,
    /// Who wrote it (the leader identity), for people reading it.
    #[serde(default)]
    pub writer: String,
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
        if let Some(bad) = cp.recent.keys().find(|k| UidKey::from_hex(k).is_none()) {
            return Err(CheckpointError::Corrupt {
                store: store.to_owned(),
                message: format!("recent: {bad:?} is not a uid key"),
            });
        }
        Ok(cp)
    }

    /// The checkpoint of `snapshot`, for streams named `selectors`.
    pub fn from_progress(selectors: &[String], snapshot: &ProgressSnapshot, writer: &str) -> Self {
        let streams = selectors
            .iter()
            .zip(&snapshot.watermarks)
            .filter_map(|(sel, w)| w.map(|rv| (sel.clone(), rv.to_string())))
            .collect();
        let skip = snapshot.recent.len().saturating_sub(MAX_RECENT);
        let recent = snapshot.recent[skip..]
            .iter()
            .map(|(k, n)| (k.to_hex(), *n))
            .collect();
        Self {
            version: FORMAT_VERSION,
            streams,
            recent,
            updated: jiff::Timestamp::now().to_string(),
            writer: writer.to_owned(),
        }
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

    /// `self` combined with `other`: each watermark the greater, occurrences the union (the
    /// greater number), `recent` trimmed to [`MAX_RECENT`] (dropping `other`'s first).
    pub fn merge(mut self, other: &Checkpoint) -> Self {
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
        self
    }
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
    fn a_newer_format_is_read_for_what_this_version_knows() {
        let cp =
            Checkpoint::parse(r#"{"version":2,"streams":{"":"9"},"future":[1]}"#, "x").unwrap();
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
