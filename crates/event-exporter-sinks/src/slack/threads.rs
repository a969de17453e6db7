//! Where the Slack sink remembers open threads: threadKey → the parent message's channel and ts.
//!
//! The stored format is the seed fork's (`{"<threadKey>": {"Timestamp": "…", "ChannelID": "…"}}`,
//! the `threads` key of its ConfigMap), so a migrating user keeps their open threads. This
//! module has the in-memory and file stores; the ConfigMap store lives with the cluster runtime.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// A thread's parent message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadInfo {
    /// The parent message's `ts`.
    #[serde(rename = "Timestamp")]
    pub ts: String,
    /// The channel ID the parent was posted in.
    #[serde(rename = "ChannelID")]
    pub channel_id: String,
}

/// A thread store failed.
#[derive(Debug, thiserror::Error)]
pub enum ThreadStoreError {
    /// Reading or writing the file failed.
    #[error("thread store {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The stored document is not a threads map.
    #[error("thread store {path}: not a threads map: {source}")]
    Corrupt {
        /// Where.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// The store's backend (the cluster's API, for the ConfigMap store) failed.
    #[error("thread store {store}: {source}")]
    Backend {
        /// Which store (`configmap NAMESPACE/NAME key KEY`).
        store: String,
        /// The cause.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Open threads, by thread key.
#[async_trait]
pub trait ThreadStore: Send + Sync + std::fmt::Debug {
    /// The thread for `key`, if one is open.
    async fn get(&self, key: &str) -> Result<Option<ThreadInfo>, ThreadStoreError>;
    /// Remembers the thread for `key`.
    async fn set(&self, key: &str, info: ThreadInfo) -> Result<(), ThreadStoreError>;
    /// Forgets the thread for `key`.
    async fn remove(&self, key: &str) -> Result<(), ThreadStoreError>;
}

/// Makes the thread stores that live outside this crate: the cluster runtime provides
/// ConfigMap-backed ones for `cache: {name, namespace}`. Without a provider, such a cache is
/// kept in memory.
pub trait ThreadStoreProvider: Send + Sync + std::fmt::Debug {
    /// The store kept in ConfigMap `namespace/name` (the seed fork's format). Must do no I/O:
    /// it is called while the configuration is being validated.
    fn configmap(&self, namespace: &str, name: &str) -> Arc<dyn ThreadStore>;
}

/// Threads kept in memory: lost on restart.
#[derive(Debug, Default)]
pub struct MemoryThreadStore {
    threads: Mutex<BTreeMap<String, ThreadInfo>>,
}

#[async_trait]
impl ThreadStore for MemoryThreadStore {
    async fn get(&self, key: &str) -> Result<Option<ThreadInfo>, ThreadStoreError> {
        Ok(self.threads.lock().await.get(key).cloned())
    }
    async fn set(&self, key: &str, info: ThreadInfo) -> Result<(), ThreadStoreError> {
        self.threads.lock().await.insert(key.to_owned(), info);
        Ok(())
    }
    async fn remove(&self, key: &str) -> Result<(), ThreadStoreError> {
        self.threads.lock().await.remove(key);
        Ok(())
    }
}

/// Threads kept in a JSON file (the seed fork's format), rewritten atomically on every change.
/// The file is read on first use, so building the sink does no I/O.
#[derive(Debug)]
pub struct FileThreadStore {
    path: PathBuf,
    threads: Mutex<Option<BTreeMap<String, ThreadInfo>>>,
}

impl FileThreadStore {
    /// A store backed by `path` (created when first written).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            threads: Mutex::new(None),
        }
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    async fn load(&self) -> Result<BTreeMap<String, ThreadInfo>, ThreadStoreError> {
        match tokio::fs::read_to_string(&self.path).await {
            Ok(text) if text.trim().is_empty() => Ok(BTreeMap::new()),
            Ok(text) => serde_json::from_str(&text).map_err(|source| ThreadStoreError::Corrupt {
                path: self.name(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(ThreadStoreError::Io {
                path: self.name(),
                source,
            }),
        }
    }

    async fn save(&self, threads: &BTreeMap<String, ThreadInfo>) -> Result<(), ThreadStoreError> {
        let io = |source| ThreadStoreError::Io {
            path: self.name(),
            source,
        };
        let text = serde_json::to_string(threads).map_err(|source| ThreadStoreError::Corrupt {
            path: self.name(),
            source,
        })?;
        crate::state::replace_file(&self.path, text.as_bytes())
            .await
            .map_err(io)
    }

    async fn with<T>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, ThreadInfo>) -> (T, bool),
    ) -> Result<T, ThreadStoreError> {
        let mut guard = self.threads.lock().await;
        if guard.is_none() {
            *guard = Some(self.load().await?);
        }
        let threads = guard.get_or_insert_with(BTreeMap::new);
        // Change a copy and keep it only once it is on disk: after a failed save, memory and
        // file still agree, and a retry writes again.
        let mut next = threads.clone();
        let (out, changed) = change(&mut next);
        if changed {
            self.save(&next).await?;
            *threads = next;
        }
        Ok(out)
    }
}

#[async_trait]
impl ThreadStore for FileThreadStore {
    async fn get(&self, key: &str) -> Result<Option<ThreadInfo>, ThreadStoreError> {
        self.with(|t| (t.get(key).cloned(), false)).await
    }
    async fn set(&self, key: &str, info: ThreadInfo) -> Result<(), ThreadStoreError> {
        self.with(|t| {
            (
                (),
                t.insert(key.to_owned(), info.clone()).as_ref() != Some(&info),
            )
        })
        .await
    }
    async fn remove(&self, key: &str) -> Result<(), ThreadStoreError> {
        self.with(|t| ((), t.remove(key).is_some())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(ts: &str) -> ThreadInfo {
        ThreadInfo {
            ts: ts.into(),
            channel_id: "C1".into(),
        }
    }

    #[tokio::test]
    async fn file_store_round_trips_in_the_seed_format() {
        let dir = std::env::temp_dir().join(format!("ee-threads-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("threads.json");
        // A file written by the seed fork's ConfigMap cache.
        std::fs::write(
            &path,
            r#"{"ns/c/v2":{"Timestamp":"1.000100","ChannelID":"C9"}}"#,
        )
        .unwrap();
        let store = FileThreadStore::new(&path);
        assert_eq!(
            store.get("ns/c/v2").await.unwrap(),
            Some(ThreadInfo {
                ts: "1.000100".into(),
                channel_id: "C9".into()
            })
        );
        store.set("k", info("2.0")).await.unwrap();
        store.remove("ns/c/v2").await.unwrap();
        let reopened = FileThreadStore::new(&path);
        assert_eq!(reopened.get("k").await.unwrap(), Some(info("2.0")));
        assert_eq!(reopened.get("ns/c/v2").await.unwrap(), None);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"k":{"Timestamp":"2.0","ChannelID":"C1"}}"#
        );
        std::fs::write(&path, "not json").unwrap();
        assert!(matches!(
            FileThreadStore::new(&path).get("k").await,
            Err(ThreadStoreError::Corrupt { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_failed_save_is_not_remembered_as_done() {
        let dir = std::env::temp_dir().join(format!("ee-threads-fail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A name the file system takes, but not with the temporary file's prefix and suffix
        // around it: every save fails.
        let path = dir.join("t".repeat(240));
        let store = FileThreadStore::new(&path);
        assert!(store.set("k", info("1")).await.is_err());
        assert_eq!(
            store.get("k").await.unwrap(),
            None,
            "memory agrees with the file"
        );
        assert!(!path.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn memory_store() {
        let store = MemoryThreadStore::default();
        assert_eq!(store.get("a").await.unwrap(), None);
        store.set("a", info("1")).await.unwrap();
        assert_eq!(store.get("a").await.unwrap(), Some(info("1")));
        store.remove("a").await.unwrap();
        assert_eq!(store.get("a").await.unwrap(), None);
    }
}
