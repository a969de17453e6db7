//! Optimistic-concurrency access to one key of a ConfigMap.
//!
//! [`ConfigMapKey::update`] is a read-modify-write loop: GET the ConfigMap, apply the change to
//! the key's current value, PUT it back with the GET's `metadata.resourceVersion`. A `409
//! Conflict` means another writer got there first: the loop reads again and re-applies the
//! change to the fresh value, so two writers never lose each other's updates. Other keys,
//! labels and annotations of the ConfigMap are left as they are.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

/// The most bytes a ConfigMap's data may hold once changed. The apiserver refuses objects over
/// 1 MiB; this leaves room for the metadata.
pub const MAX_DATA_BYTES: usize = 1_000_000;

/// How many read-modify-write rounds [`ConfigMapKey::update`] makes before giving up on
/// conflicts.
pub const MAX_ATTEMPTS: u32 = 8;

/// The pause before re-reading after losing race number `attempt`: growing, and jittered so
/// that writers who collided do not collide again in lockstep.
fn conflict_backoff(attempt: u32) -> Duration {
    use std::hash::BuildHasher;
    // A randomly seeded hash is random enough for jitter and needs no extra dependency.
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let base_ms = 5 * u64::from(attempt);
    Duration::from_millis(base_ms / 2 + random % (base_ms + 1))
}

/// Reading or writing a ConfigMap key failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigMapError {
    /// The apiserver refused a request or could not be reached.
    #[error("{target}: {source}")]
    Api {
        /// `configmap NAMESPACE/NAME key KEY`.
        target: String,
        /// The cause.
        source: kube::Error,
    },
    /// Other writers kept changing the ConfigMap between our read and our write.
    #[error("{target}: still conflicting with other writers after {attempts} attempts")]
    Conflict {
        /// `configmap NAMESPACE/NAME key KEY`.
        target: String,
        /// How many rounds were made.
        attempts: u32,
    },
    /// The new value would make the ConfigMap larger than the apiserver accepts.
    #[error(
        "{target}: a value of {value_bytes} bytes would make the ConfigMap's data {data_bytes} bytes, over the limit of {limit} bytes"
    )]
    TooLarge {
        /// `configmap NAMESPACE/NAME key KEY`.
        target: String,
        /// The size of the new value.
        value_bytes: usize,
        /// The size of all keys and values once changed.
        data_bytes: usize,
        /// [`MAX_DATA_BYTES`].
        limit: usize,
    },
}

/// One key of one ConfigMap, read and written with optimistic concurrency.
#[derive(Clone)]
pub struct ConfigMapKey {
    api: Api<ConfigMap>,
    namespace: String,
    name: String,
    key: String,
}

impl std::fmt::Debug for ConfigMapKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigMapKey")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// How a write attempt ended.
enum Written {
    /// Stored, or nothing to store.
    Done,
    /// Someone else changed or created the ConfigMap first: read again.
    Raced,
}

impl ConfigMapKey {
    /// Key `key` of ConfigMap `namespace/name`. Does no I/O.
    pub fn new(client: Client, namespace: &str, name: &str, key: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            key: key.to_owned(),
        }
    }

    /// `configmap NAMESPACE/NAME key KEY`, for errors and logs.
    pub fn describe(&self) -> String {
        format!(
            "configmap {}/{} key {}",
            self.namespace, self.name, self.key
        )
    }

    fn api_error(&self, source: kube::Error) -> ConfigMapError {
        ConfigMapError::Api {
            target: self.describe(),
            source,
        }
    }

    /// The key's value; `None` when the ConfigMap or the key does not exist.
    pub async fn read(&self) -> Result<Option<String>, ConfigMapError> {
        let cm = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.api_error(e))?;
        Ok(cm
            .and_then(|cm| cm.data)
            .and_then(|mut d| d.remove(&self.key)))
    }

    /// Read-modify-write: `change` gets the current value (`None` if absent) and returns the
    /// new value (`None`, or the value unchanged, leaves the ConfigMap alone: no write).
    ///
    /// A missing ConfigMap is created (if another writer creates it first, the change is
    /// applied to theirs). A write that loses a race re-reads and calls `change` again, up to
    /// [`MAX_ATTEMPTS`] rounds; then [`ConfigMapError::Conflict`].
    pub async fn update<F>(&self, mut change: F) -> Result<(), ConfigMapError>
    where
        F: FnMut(Option<&str>) -> Option<String> + Send,
    {
        for attempt in 1..=MAX_ATTEMPTS {
            let current = self
                .api
                .get_opt(&self.name)
                .await
                .map_err(|e| self.api_error(e))?;
            let written = match current {
                None => self.create(&mut change).await?,
                Some(cm) => self.replace(cm, &mut change).await?,
            };
            match written {
                Written::Done => return Ok(()),
                Written::Raced => {
                    tracing::debug!(
                        target_cm = %self.describe(),
                        attempt,
                        "configmap changed by another writer; reading it again"
                    );
                    if attempt < MAX_ATTEMPTS {
                        tokio::time::sleep(conflict_backoff(attempt)).await;
                    }
                }
            }
        }
        Err(ConfigMapError::Conflict {
            target: self.describe(),
            attempts: MAX_ATTEMPTS,
        })
    }

    async fn create<F>(&self, change: &mut F) -> Result<Written, ConfigMapError>
    where
        F: FnMut(Option<&str>) -> Option<String> + Send,
    {
        let Some(value) = change(None) else {
            return Ok(Written::Done);
        };
        let data = BTreeMap::from([(self.key.clone(), value)]);
        self.check_size(&data, None)?;
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            data: Some(data),
            ..ConfigMap::default()
        };
        match self.api.create(&PostParams::default(), &cm).await {
            Ok(_) => Ok(Written::Done),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Written::Raced),
            Err(e) => Err(self.api_error(e)),
        }
    }

    async fn replace<F>(&self, mut cm: ConfigMap, change: &mut F) -> Result<Written, ConfigMapError>
    where
        F: FnMut(Option<&str>) -> Option<String> + Send,
    {
        let old = cm.data.as_ref().and_then(|d| d.get(&self.key));
        let Some(value) = change(old.map(String::as_str)) else {
            return Ok(Written::Done);
        };
        if old == Some(&value) {
            return Ok(Written::Done);
        }
        let data = cm.data.get_or_insert_with(BTreeMap::new);
        data.insert(self.key.clone(), value);
        self.check_size(data, cm.binary_data.as_ref())?;
        // `cm` still carries the GET's resourceVersion: the PUT fails with 409 if anyone
        // wrote in between.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &cm)
            .await
        {
            Ok(_) => Ok(Written::Done),
            // 409: a newer version exists; 404: deleted since the GET (it will be created).
            Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => {
                Ok(Written::Raced)
            }
            Err(e) => Err(self.api_error(e)),
        }
    }

    fn check_size(
        &self,
        data: &BTreeMap<String, String>,
        binary: Option<&BTreeMap<String, k8s_openapi::ByteString>>,
    ) -> Result<(), ConfigMapError> {
        let data_bytes = data.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
            + binary
                .into_iter()
                .flatten()
                .map(|(k, v)| k.len() + v.0.len())
                .sum::<usize>();
        if data_bytes > MAX_DATA_BYTES {
            return Err(ConfigMapError::TooLarge {
                target: self.describe(),
                value_bytes: data.get(&self.key).map_or(0, String::len),
                data_bytes,
                limit: MAX_DATA_BYTES,
            });
        }
        Ok(())
    }
}
