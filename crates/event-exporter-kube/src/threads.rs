//! The Slack thread store backed by a ConfigMap, in the seed fork's format: key `threads`, a
//! JSON object threadKey → `{"Timestamp": "…", "ChannelID": "…"}` (what
//! [`FileThreadStore`](event_exporter_sinks::slack::FileThreadStore) writes to its file).
//!
//! The map is read on first use and cached. Every change is a read-modify-write of the
//! ConfigMap ([`ConfigMapKey::update`]) that applies just this one change to the freshly read
//! map, so two replicas writing at once keep each other's threads. The cache is not refreshed
//! from other writers between changes: only the leader delivers, and it re-reads on every write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use event_exporter_sinks::slack::{ThreadInfo, ThreadStore, ThreadStoreError, ThreadStoreProvider};
use tokio::sync::Mutex;

use crate::configmap::{ConfigMapError, ConfigMapKey};

/// The ConfigMap key the threads map is kept under (the seed fork's).
pub const THREADS_KEY: &str = "threads";

type Threads = BTreeMap<String, ThreadInfo>;

/// Open Slack threads kept in a ConfigMap.
#[derive(Debug)]
pub struct ConfigMapThreadStore {
    key: ConfigMapKey,
    threads: Mutex<Option<Threads>>,
    /// Whether a corrupt stored value was already logged (every delivery would log it again).
    warned_corrupt: AtomicBool,
}

/// Parses a stored threads map; absent or blank is empty.
fn parse(value: Option<&str>) -> Result<Threads, serde_json::Error> {
    match value {
        None => Ok(Threads::new()),
        Some(text) if text.trim().is_empty() => Ok(Threads::new()),
        Some(text) => serde_json::from_str(text),
    }
}

impl ConfigMapThreadStore {
    /// The store in key [`THREADS_KEY`] of ConfigMap `namespace/name`. Does no I/O.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self::with_key(ConfigMapKey::new(client, namespace, name, THREADS_KEY))
    }

    /// The store in `key`.
    pub fn with_key(key: ConfigMapKey) -> Self {
        Self {
            key,
            threads: Mutex::new(None),
            warned_corrupt: AtomicBool::new(false),
        }
    }

    fn backend(&self, e: ConfigMapError) -> ThreadStoreError {
        ThreadStoreError::Backend {
            store: self.key.describe(),
            source: Box::new(e),
        }
    }

    fn corrupt(&self, source: serde_json::Error) -> ThreadStoreError {
        ThreadStoreError::Corrupt {
            path: self.key.describe(),
            source,
        }
    }

    /// Applies `change` to the stored map (re-read on every attempt) and caches the result.
    /// A corrupt stored value is replaced by a map holding just this change.
    async fn modify(
        &self,
        change: impl Fn(&mut Threads) -> bool + Send + Sync,
    ) -> Result<(), ThreadStoreError> {
        let mut cache = self.threads.lock().await;
        let mut stored: Option<Threads> = None;
        let mut failure: Option<serde_json::Error> = None;
        let result = self
            .key
            .update(|current| {
                failure = None;
                let mut threads = match parse(current) {
                    Ok(threads) => threads,
                    Err(e) => {
                        failure = Some(e);
                        Threads::new()
                    }
                };
                let changed = change(&mut threads);
                let text = if changed || failure.is_some() {
                    // A map of strings always serialises.
                    serde_json::to_string(&threads).ok()
                } else {
                    None
                };
                stored = Some(threads);
                text
            })
            .await;
        if let Some(e) = &failure {
            tracing::warn!(
                store = %self.key.describe(),
                error = %crate::brief(&e),
                "slack thread store: the stored threads map was not valid JSON; replaced it"
            );
        }
        result.map_err(|e| self.backend(e))?;
        if failure.is_some() {
            self.warned_corrupt.store(false, Ordering::Relaxed);
        }
        if stored.is_some() {
            *cache = stored;
        }
        Ok(())
    }
}

#[async_trait]
impl ThreadStore for ConfigMapThreadStore {
    async fn get(&self, key: &str) -> Result<Option<ThreadInfo>, ThreadStoreError> {
        let mut cache = self.threads.lock().await;
        if let Some(threads) = cache.as_ref() {
            return Ok(threads.get(key).cloned());
        }
        let value = self.key.read().await.map_err(|e| self.backend(e))?;
        let threads = parse(value.as_deref()).map_err(|e| {
            if !self.warned_corrupt.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    store = %self.key.describe(),
                    error = %crate::brief(&e),
                    "slack thread store: the stored threads map is not valid JSON; the next new thread replaces it"
                );
            }
            self.corrupt(e)
        })?;
        let found = threads.get(key).cloned();
        *cache = Some(threads);
        Ok(found)
    }

    async fn set(&self, key: &str, info: ThreadInfo) -> Result<(), ThreadStoreError> {
        self.modify(|threads| threads.insert(key.to_owned(), info.clone()).as_ref() != Some(&info))
            .await
    }

    async fn remove(&self, key: &str) -> Result<(), ThreadStoreError> {
        self.modify(|threads| threads.remove(key).is_some()).await
    }
}

/// Provides [`ConfigMapThreadStore`]s to the Slack sink for `cache: {name, namespace}`; pass
/// it as [`BuildEnv::thread_stores`](event_exporter_sinks::BuildEnv::thread_stores).
#[derive(Clone)]
pub struct ConfigMapThreadStores {
    client: kube::Client,
}

impl ConfigMapThreadStores {
    /// Stores reached through `client`.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

impl std::fmt::Debug for ConfigMapThreadStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigMapThreadStores")
            .finish_non_exhaustive()
    }
}

impl ThreadStoreProvider for ConfigMapThreadStores {
    fn configmap(&self, namespace: &str, name: &str) -> Arc<dyn ThreadStore> {
        Arc::new(ConfigMapThreadStore::new(
            self.client.clone(),
            namespace,
            name,
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_seed_format_parses_and_blank_is_empty() {
        let threads = parse(Some(r#"{"key":{"Timestamp":"1.2","ChannelID":"C1"}}"#)).unwrap();
        assert_eq!(
            threads.get("key"),
            Some(&ThreadInfo {
                ts: "1.2".into(),
                channel_id: "C1".into()
            })
        );
        assert!(parse(None).unwrap().is_empty());
        assert!(parse(Some(" \n")).unwrap().is_empty());
        assert!(parse(Some("not json")).is_err());
    }
}
