//! Involved-object enrichment: what upstream's `GetObject` and its LRU do.
//!
//! For each event the [`Enricher`] looks up the involved object and reports its labels,
//! annotations and ownerReferences, or that it is gone ([`ObjectEnrichment::deleted`]).
//!
//! * **Cache.** Results are kept in an LRU of [`EnrichSettings::cache_size`] entries keyed by
//!   (apiVersion, kind, namespace, name). An entry expires after [`EnrichSettings::cache_ttl`]
//!   so that label changes are eventually seen; a "not found" after at most
//!   [`NOT_FOUND_TTL`] (a StatefulSet pod comes back under the same name), a failed lookup
//!   after at most [`ERROR_TTL`] (a missing RBAC rule must not turn every event into a
//!   request). Concurrent lookups of the same uncached object share one request.
//! * **Discovery.** apiVersion + kind are resolved to a resource (plural, scope) with one
//!   discovery cache: the resource list of a group/version (`/api/v1`, `/apis/{group}/{version}`)
//!   is fetched once and kept; concurrent lookups of an uncached group/version wait for the
//!   same request. A kind the list does not have is looked for again after
//!   [`UNKNOWN_KIND_REFRESH`] (a CRD installed later); a failed discovery is retried after
//!   [`DISCOVERY_RETRY`].
//! * **Bounds.** At most [`EnrichSettings::concurrency`] lookups run at once, and a caller
//!   never waits longer than [`EnrichSettings::timeout`] (queueing, discovery and the GET
//!   included); on timeout the enrichment is empty, and uncached objects of that API
//!   group/version are not looked up for [`EnrichSettings::slow_api_pause`] ([`Lookup::Skipped`]):
//!   a slow API server costs the event stream one timeout per pause, not one per event.
//! * **Failures** never fail the event: they are counted ([`Lookup::Error`]), logged at warn
//!   at most once a minute per kind and reason (debug otherwise), and give an empty enrichment.
//!
//! [`rate_limited_client`] builds the client with upstream's `kubeQPS`/`kubeBurst` token
//! bucket in front of every request.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use event_exporter_core::ObjectEnrichment;
use event_exporter_core::config::RouteConfig;
use event_exporter_core::pattern::Pattern;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::metrics::{Lookup, Metrics};

/// The longest a "not found" result is cached (less when [`EnrichSettings::cache_ttl`] is).
pub const NOT_FOUND_TTL: Duration = Duration::from_secs(30);
/// The longest a failed lookup is remembered as an empty enrichment.
pub const ERROR_TTL: Duration = Duration::from_secs(10);
/// How long a group/version's resource list is trusted for a kind it does not list.
pub const UNKNOWN_KIND_REFRESH: Duration = Duration::from_secs(300);
/// How long after a failed discovery request it is tried again.
pub const DISCOVERY_RETRY: Duration = Duration::from_secs(30);
/// The shortest interval between two warnings for the same kind and reason.
const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// Upstream's default `kubeQPS`.
pub const DEFAULT_QPS: f32 = 5.0;
/// Upstream's default `kubeBurst`.
pub const DEFAULT_BURST: u32 = 10;

/// Why an involved object could not be looked up, or a client not built.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// The kube client could not be built from the config.
    #[error("cannot build the Kubernetes client")]
    Client(#[source] Box<kube::Error>),
    /// The group/version's resource list could not be fetched.
    #[error("discovery of {api_version} failed")]
    Discovery {
        /// The apiVersion whose resources were asked for.
        api_version: String,
        /// The request's error (shared by every lookup until the retry).
        #[source]
        source: Arc<kube::Error>,
    },
    /// The group/version does not serve the kind.
    #[error("the API serves no kind {kind} in {api_version}")]
    UnknownKind {
        /// The involved object's apiVersion.
        api_version: String,
        /// The involved object's kind.
        kind: String,
    },
    /// A namespaced kind's involved object has no namespace.
    #[error("{kind} {name} is namespaced but the event names no namespace")]
    MissingNamespace {
        /// The involved object's kind.
        kind: String,
        /// The involved object's name.
        name: String,
    },
    /// The GET of the object failed.
    #[error("get {kind} {namespace}/{name} failed")]
    Get {
        /// The involved object's kind.
        kind: String,
        /// The involved object's namespace (empty for cluster-scoped kinds).
        namespace: String,
        /// The involved object's name.
        name: String,
        /// The request's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The lookup took longer than [`EnrichSettings::timeout`].
    #[error("lookup of {kind} {namespace}/{name} timed out after {timeout:?}")]
    Timeout {
        /// The involved object's kind.
        kind: String,
        /// The involved object's namespace.
        namespace: String,
        /// The involved object's name.
        name: String,
        /// The bound that was exceeded.
        timeout: Duration,
    },
}

impl EnrichError {
    /// A low-cardinality name for the kind of failure (for log rate limiting).
    pub fn reason(&self) -> &'static str {
        fn api(err: &kube::Error) -> &'static str {
            match err {
                kube::Error::Api(status) => match status.code {
                    401 => "unauthorized",
                    403 => "forbidden",
                    404 => "not_found",
                    429 => "throttled",
                    500..=599 => "server_error",
                    _ => "api_error",
                },
                _ => "transport",
            }
        }
        match self {
            Self::Client(_) => "client",
            Self::Discovery { source, .. } => api(source),
            Self::UnknownKind { .. } => "unknown_kind",
            Self::MissingNamespace { .. } => "missing_namespace",
            Self::Get { source, .. } => api(source),
            Self::Timeout { .. } => "timeout",
        }
    }
}

/// How involved objects are looked up (upstream: `cacheSize`, `omitLookup`).
#[derive(Clone, Debug, PartialEq)]
pub struct EnrichSettings {
    /// LRU entries (upstream `cacheSize`); 0 means the default, 1024.
    pub cache_size: usize,
    /// Never look objects up (upstream `omitLookup`): every enrichment is empty.
    pub omit_lookup: bool,
    /// Lookups running at once; 0 means the default, 16.
    pub concurrency: usize,
    /// The longest a caller waits for one lookup; zero means the default, 5 s.
    pub timeout: Duration,
    /// How long a found object's facts are reused; zero means the default, 5 min (upstream's
    /// LRU never expires; this bound lets label changes show). `Duration::MAX` never expires.
    pub cache_ttl: Duration,
    /// After a lookup times out, uncached objects of the same API group/version are not looked
    /// up for this long (their events go out without enrichment, counted as skipped): an API
    /// server that has become slow costs the event stream one timeout per pause, not one per
    /// event. Zero means the default, 30 s.
    pub slow_api_pause: Duration,
}

impl Default for EnrichSettings {
    fn default() -> Self {
        Self {
            cache_size: 1024,
            omit_lookup: false,
            concurrency: 16,
            timeout: Duration::from_secs(5),
            cache_ttl: Duration::from_secs(300),
            slow_api_pause: Duration::from_secs(30),
        }
    }
}

impl EnrichSettings {
    fn normalized(self) -> Self {
        let d = Self::default();
        Self {
            cache_size: if self.cache_size == 0 {
                d.cache_size
            } else {
                self.cache_size
            },
            omit_lookup: self.omit_lookup,
            concurrency: if self.concurrency == 0 {
                d.concurrency
            } else {
                self.concurrency
            },
            timeout: if self.timeout.is_zero() {
                d.timeout
            } else {
                self.timeout
            },
            slow_api_pause: if self.slow_api_pause.is_zero() {
                d.slow_api_pause
            } else {
                self.slow_api_pause
            },
            cache_ttl: if self.cache_ttl.is_zero() {
                d.cache_ttl
            } else {
                self.cache_ttl
            },
        }
    }
}

/// Which involved-object kinds are looked up.
#[derive(Clone)]
pub struct KindFilter {
    /// `None`: every kind.
    patterns: Option<Arc<[Pattern]>>,
}

impl std::fmt::Debug for KindFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.patterns {
            None => f.write_str("KindFilter(all)"),
            Some(p) => f
                .debug_list()
                .entries(p.iter().map(Pattern::source))
                .finish(),
        }
    }
}

impl KindFilter {
    /// The kinds the rules name: every non-empty `kind` of a match or drop rule anywhere in the
    /// route tree, compiled as routing compiles it. When the rules name no kind at all, every
    /// kind is looked up (the seed fork's behaviour). A kind pattern that does not compile
    /// (the config check rejects those) also means every kind.
    ///
    /// Note the consequence: when some rule names a kind, a rule that matches on `labels` or
    /// `annotations` without naming a kind sees them only for the named kinds.
    pub fn from_route(route: &RouteConfig) -> Self {
        fn collect<'a>(route: &'a RouteConfig, out: &mut Vec<&'a str>) {
            for rule in route.match_.iter().chain(&route.drop) {
                if !rule.kind.is_empty() && !out.contains(&rule.kind.as_str()) {
                    out.push(&rule.kind);
                }
            }
            for sub in &route.routes {
                collect(sub, out);
            }
        }
        let mut kinds = Vec::new();
        collect(route, &mut kinds);
        if kinds.is_empty() {
            return Self::all();
        }
        let mut patterns = Vec::with_capacity(kinds.len());
        for kind in kinds {
            match Pattern::compile(kind) {
                Ok((pattern, _)) => patterns.push(pattern),
                Err(err) => {
                    tracing::warn!(error = %err, "kind pattern does not compile; looking up every kind");
                    return Self::all();
                }
            }
        }
        Self {
            patterns: Some(patterns.into()),
        }
    }

    /// Every kind.
    pub fn all() -> Self {
        Self { patterns: None }
    }

    /// Whether objects of `kind` are looked up.
    pub fn wants(&self, kind: &str) -> bool {
        match &self.patterns {
            None => true,
            Some(patterns) => patterns.iter().any(|p| p.is_match(kind)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The LRU, keyed by (apiVersion, kind, namespace, name) and looked up without allocating.

#[derive(Clone, Debug, PartialEq, Eq)]
struct ObjectKey {
    api_version: String,
    kind: String,
    namespace: String,
    name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct KeyRef<'a> {
    api_version: &'a str,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
}

impl KeyRef<'_> {
    fn to_owned_key(self) -> ObjectKey {
        ObjectKey {
            api_version: self.api_version.to_owned(),
            kind: self.kind.to_owned(),
            namespace: self.namespace.to_owned(),
            name: self.name.to_owned(),
        }
    }

    fn hash_parts<H: Hasher>(self, state: &mut H) {
        self.api_version.hash(state);
        self.kind.hash(state);
        self.namespace.hash(state);
        self.name.hash(state);
    }
}

/// Lets a map keyed by [`ObjectKey`] be searched with a borrowed [`KeyRef`].
trait AsKeyRef {
    fn key_ref(&self) -> KeyRef<'_>;
}

impl AsKeyRef for ObjectKey {
    fn key_ref(&self) -> KeyRef<'_> {
        KeyRef {
            api_version: &self.api_version,
            kind: &self.kind,
            namespace: &self.namespace,
            name: &self.name,
        }
    }
}

impl AsKeyRef for KeyRef<'_> {
    fn key_ref(&self) -> KeyRef<'_> {
        *self
    }
}

impl Hash for ObjectKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key_ref().hash_parts(state);
    }
}

impl Hash for dyn AsKeyRef + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key_ref().hash_parts(state);
    }
}

impl PartialEq for dyn AsKeyRef + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.key_ref() == other.key_ref()
    }
}

impl Eq for dyn AsKeyRef + '_ {}

impl<'a> Borrow<dyn AsKeyRef + 'a> for ObjectKey {
    fn borrow(&self) -> &(dyn AsKeyRef + 'a) {
        self
    }
}

const NIL: usize = usize::MAX;

struct Node {
    key: ObjectKey,
    value: ObjectEnrichment,
    expires: Instant,
    prev: usize,
    next: usize,
}

/// A least-recently-used map with per-entry expiry. Expired entries are not removed eagerly;
/// they are overwritten by the next insert of their key or evicted as the oldest.
struct Lru {
    capacity: usize,
    map: HashMap<ObjectKey, usize>,
    nodes: Vec<Node>,
    /// Most recently used.
    head: usize,
    /// Least recently used.
    tail: usize,
}

impl Lru {
    fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            map: HashMap::with_capacity(capacity.min(4096)),
            nodes: Vec::with_capacity(capacity.min(4096)),
            head: NIL,
            tail: NIL,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.nodes[i].prev, self.nodes[i].next);
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next].prev = prev;
        }
    }

    fn push_front(&mut self, i: usize) {
        self.nodes[i].prev = NIL;
        self.nodes[i].next = self.head;
        if self.head != NIL {
            self.nodes[self.head].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    fn get(&mut self, key: KeyRef<'_>, now: Instant) -> Option<&ObjectEnrichment> {
        let i = *self.map.get(&key as &dyn AsKeyRef)?;
        if self.nodes[i].expires <= now {
            return None;
        }
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
        Some(&self.nodes[i].value)
    }

    fn insert(&mut self, key: KeyRef<'_>, value: ObjectEnrichment, expires: Instant) {
        if let Some(&i) = self.map.get(&key as &dyn AsKeyRef) {
            self.nodes[i].value = value;
            self.nodes[i].expires = expires;
            if self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return;
        }
        let owned = key.to_owned_key();
        let i = if self.nodes.len() < self.capacity {
            self.nodes.push(Node {
                key: owned.clone(),
                value,
                expires,
                prev: NIL,
                next: NIL,
            });
            self.nodes.len() - 1
        } else {
            let i = self.tail;
            self.unlink(i);
            let old = std::mem::replace(
                &mut self.nodes[i],
                Node {
                    key: owned.clone(),
                    value,
                    expires,
                    prev: NIL,
                    next: NIL,
                },
            );
            self.map.remove(&old.key);
            i
        };
        self.map.insert(owned, i);
        self.push_front(i);
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery cache.

#[derive(Debug)]
struct Resource {
    kind: String,
    namespaced: bool,
    api_resource: ApiResource,
}

struct GvResources {
    fetched: Instant,
    outcome: Result<Vec<Arc<Resource>>, Arc<kube::Error>>,
}

/// One group/version's resources; the async mutex makes concurrent first lookups share one
/// discovery request.
type GvSlot = tokio::sync::Mutex<Option<GvResources>>;

// ---------------------------------------------------------------------------------------------
// The enricher.

/// Looks up involved objects; cheap to clone (the state is shared).
#[derive(Clone)]
pub struct Enricher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Enricher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enricher")
            .field("settings", &self.inner.settings)
            .field("kinds", &self.inner.kinds)
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: kube::Client,
    settings: EnrichSettings,
    kinds: KindFilter,
    metrics: Arc<Metrics>,
    discovery: Mutex<HashMap<String, Arc<GvSlot>>>,
    cache: Mutex<Lru>,
    inflight: Mutex<HashMap<ObjectKey, Arc<OnceCell<ObjectEnrichment>>>>,
    permits: Semaphore,
    warned: Mutex<HashMap<(String, &'static str), Instant>>,
    /// apiVersion → until when its uncached lookups are skipped (a lookup timed out).
    paused: Mutex<HashMap<String, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every guarded structure stays consistent across a panic (no invariant spans an await or
    // a user callback), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes an in-flight entry when its lookup ends, also when the caller is cancelled.
struct InflightGuard<'a> {
    inner: &'a Inner,
    key: ObjectKey,
    cell: Arc<OnceCell<ObjectEnrichment>>,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        let mut inflight = lock(&self.inner.inflight);
        if inflight
            .get(&self.key)
            .is_some_and(|c| Arc::ptr_eq(c, &self.cell))
        {
            inflight.remove(&self.key);
        }
    }
}

impl Enricher {
    /// An enricher using `client` (see [`rate_limited_client`]); zero settings take their
    /// defaults. Looks up only objects whose kind `kinds` wants.
    pub fn new(
        client: kube::Client,
        settings: EnrichSettings,
        kinds: KindFilter,
        metrics: Arc<Metrics>,
    ) -> Self {
        let settings = settings.normalized();
        Self {
            inner: Arc::new(Inner {
                client,
                cache: Mutex::new(Lru::new(settings.cache_size)),
                permits: Semaphore::new(settings.concurrency),
                settings,
                kinds,
                metrics,
                discovery: Mutex::new(HashMap::new()),
                inflight: Mutex::new(HashMap::new()),
                warned: Mutex::new(HashMap::new()),
                paused: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The enrichment for `event`'s involved object. Never fails: a failed lookup is logged,
    /// counted and gives an empty enrichment; a missing object gives `deleted: true`. With
    /// `omit_lookup`, a kind the filter does not want, or an involved object without kind or
    /// name, the enrichment is empty and nothing is requested.
    pub async fn enrich(&self, event: &Event) -> ObjectEnrichment {
        let inner = &*self.inner;
        if inner.settings.omit_lookup {
            return ObjectEnrichment::default();
        }
        let obj = &event.involved_object;
        let kind = obj.kind.as_deref().unwrap_or_default();
        let name = obj.name.as_deref().unwrap_or_default();
        if kind.is_empty() || name.is_empty() || !inner.kinds.wants(kind) {
            return ObjectEnrichment::default();
        }
        let api_version = match obj.api_version.as_deref() {
            None | Some("") => "v1",
            Some(v) => v,
        };
        let key = KeyRef {
            api_version,
            kind,
            namespace: obj.namespace.as_deref().unwrap_or_default(),
            name,
        };
        if let Some(hit) = lock(&inner.cache).get(key, Instant::now()) {
            inner.metrics.enrichment_lookup(Lookup::Hit);
            return hit.clone();
        }
        if inner.is_paused(api_version) {
            inner.metrics.enrichment_lookup(Lookup::Skipped);
            return ObjectEnrichment::default();
        }

        let guard = {
            let mut inflight = lock(&inner.inflight);
            // A lookup of this object may have finished since the check above (its result is
            // cached before its in-flight entry goes).
            if let Some(hit) = lock(&inner.cache).get(key, Instant::now()) {
                inner.metrics.enrichment_lookup(Lookup::Hit);
                return hit.clone();
            }
            let cell = match inflight.get(&key as &dyn AsKeyRef) {
                Some(cell) => Arc::clone(cell),
                None => {
                    let cell = Arc::new(OnceCell::new());
                    inflight.insert(key.to_owned_key(), Arc::clone(&cell));
                    cell
                }
            };
            InflightGuard {
                inner,
                key: key.to_owned_key(),
                cell,
            }
        };
        let mut fetched_here = false;
        let lookup = guard.cell.get_or_init(|| {
            fetched_here = true;
            inner.fetch(key)
        });
        let result = tokio::time::timeout(inner.settings.timeout, lookup)
            .await
            .cloned();
        drop(guard);
        match result {
            Ok(enrichment) => {
                if !fetched_here {
                    // Joined a request of the same object already in flight.
                    inner.metrics.enrichment_lookup(Lookup::Hit);
                }
                enrichment
            }
            Err(_elapsed) => {
                inner.metrics.enrichment_lookup(Lookup::Error);
                inner.pause(api_version);
                inner.report(
                    key,
                    &EnrichError::Timeout {
                        kind: kind.to_owned(),
                        namespace: key.namespace.to_owned(),
                        name: name.to_owned(),
                        timeout: inner.settings.timeout,
                    },
                );
                ObjectEnrichment::default()
            }
        }
    }
}

impl Inner {
    /// Requests the object (a cache miss) and caches the outcome.
    async fn fetch(&self, key: KeyRef<'_>) -> ObjectEnrichment {
        self.metrics.enrichment_lookup(Lookup::Miss);
        let Ok(_permit) = self.permits.acquire().await else {
            // The semaphore is never closed.
            return ObjectEnrichment::default();
        };
        let (enrichment, ttl) = match self.get(key).await {
            Ok(Some(object)) => {
                let meta = object.metadata;
                let enrichment = ObjectEnrichment {
                    labels: meta.labels,
                    annotations: meta.annotations,
                    owner_references: meta.owner_references,
                    deleted: false,
                };
                (enrichment, self.settings.cache_ttl)
            }
            Ok(None) => {
                self.metrics.enrichment_lookup(Lookup::NotFound);
                tracing::debug!(
                    kind = key.kind,
                    namespace = key.namespace,
                    name = key.name,
                    "involved object not found"
                );
                let enrichment = ObjectEnrichment {
                    deleted: true,
                    ..ObjectEnrichment::default()
                };
                (enrichment, self.settings.cache_ttl.min(NOT_FOUND_TTL))
            }
            Err(err) => {
                self.metrics.enrichment_lookup(Lookup::Error);
                self.report(key, &err);
                (
                    ObjectEnrichment::default(),
                    self.settings.cache_ttl.min(ERROR_TTL),
                )
            }
        };
        let now = Instant::now();
        let expires = now
            .checked_add(ttl)
            .unwrap_or(now + Duration::from_secs(365 * 86_400));
        lock(&self.cache).insert(key, enrichment.clone(), expires);
        enrichment
    }

    async fn get(&self, key: KeyRef<'_>) -> Result<Option<DynamicObject>, EnrichError> {
        let resource = self.resolve(key.api_version, key.kind).await?;
        let api: Api<DynamicObject> = if resource.namespaced {
            if key.namespace.is_empty() {
                return Err(EnrichError::MissingNamespace {
                    kind: key.kind.to_owned(),
                    name: key.name.to_owned(),
                });
            }
            Api::namespaced_with(self.client.clone(), key.namespace, &resource.api_resource)
        } else {
            Api::all_with(self.client.clone(), &resource.api_resource)
        };
        api.get_opt(key.name)
            .await
            .map_err(|source| EnrichError::Get {
                kind: key.kind.to_owned(),
                namespace: if resource.namespaced {
                    key.namespace.to_owned()
                } else {
                    String::new()
                },
                name: key.name.to_owned(),
                source: Box::new(source),
            })
    }

    /// The resource serving `kind` in `api_version`, from the discovery cache.
    async fn resolve(&self, api_version: &str, kind: &str) -> Result<Arc<Resource>, EnrichError> {
        let slot = {
            let mut map = lock(&self.discovery);
            match map.get(api_version) {
                Some(slot) => Arc::clone(slot),
                None => {
                    let slot = Arc::new(GvSlot::new(None));
                    map.insert(api_version.to_owned(), Arc::clone(&slot));
                    slot
                }
            }
        };
        let mut cached = slot.lock().await;
        let now = Instant::now();
        let stale = match cached.as_ref() {
            None => true,
            Some(gv) => match &gv.outcome {
                Ok(list) => {
                    !list.iter().any(|r| r.kind == kind)
                        && now.saturating_duration_since(gv.fetched) >= UNKNOWN_KIND_REFRESH
                }
                Err(_) => now.saturating_duration_since(gv.fetched) >= DISCOVERY_RETRY,
            },
        };
        if stale {
            let outcome = self.discover(api_version).await;
            *cached = Some(GvResources {
                fetched: Instant::now(),
                outcome,
            });
        }
        match cached.as_ref().map(|gv| &gv.outcome) {
            Some(Ok(list)) => list
                .iter()
                .find(|r| r.kind == kind)
                .cloned()
                .ok_or_else(|| EnrichError::UnknownKind {
                    api_version: api_version.to_owned(),
                    kind: kind.to_owned(),
                }),
            Some(Err(source)) => Err(EnrichError::Discovery {
                api_version: api_version.to_owned(),
                source: Arc::clone(source),
            }),
            // Just filled in above.
            None => Err(EnrichError::UnknownKind {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
            }),
        }
    }

    /// Fetches one group/version's resource list. A group/version the server does not serve
    /// (404) is an empty list.
    async fn discover(&self, api_version: &str) -> Result<Vec<Arc<Resource>>, Arc<kube::Error>> {
        tracing::debug!(api_version, "discovering resources");
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let list = if group.is_empty() {
            self.client.list_core_api_resources(version).await
        } else {
            self.client.list_api_group_resources(api_version).await
        };
        let list = match list {
            Ok(list) => list,
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(Vec::new()),
            Err(err) => return Err(Arc::new(err)),
        };
        Ok(list
            .resources
            .into_iter()
            // Subresources (`pods/status`) carry their parent's kind.
            .filter(|r| !r.name.contains('/'))
            .map(|r| {
                let gvk = GroupVersionKind::gvk(group, version, &r.kind);
                Arc::new(Resource {
                    api_resource: ApiResource::from_gvk_with_plural(&gvk, &r.name),
                    namespaced: r.namespaced,
                    kind: r.kind,
                })
            })
            .collect())
    }

    /// Logs a failed lookup: warn at most once per [`WARN_INTERVAL`] per kind and reason.
    /// Whether lookups of `api_version` are paused (a recent lookup of it timed out).
    fn is_paused(&self, api_version: &str) -> bool {
        let mut paused = lock(&self.paused);
        match paused.get(api_version) {
            Some(until) if Instant::now() < *until => true,
            Some(_) => {
                paused.remove(api_version);
                false
            }
            None => false,
        }
    }

    /// A lookup of `api_version` timed out: skip its uncached lookups for a while (logged once
    /// per pause).
    fn pause(&self, api_version: &str) {
        let pause = self.settings.slow_api_pause;
        let until = Instant::now() + pause;
        let started = {
            let mut paused = lock(&self.paused);
            let was = paused.insert(api_version.to_owned(), until);
            was.is_none_or(|w| w <= Instant::now())
        };
        if started {
            tracing::warn!(
                api_version,
                ?pause,
                "involved-object lookups are timing out: objects of this API group/version not \
                 in the cache go out without enrichment for a while"
            );
        }
    }

    fn report(&self, key: KeyRef<'_>, err: &EnrichError) {
        let reason = err.reason();
        let now = Instant::now();
        let loud = {
            let mut warned = lock(&self.warned);
            let last = warned
                .iter_mut()
                .find(|((kind, r), _)| kind == key.kind && *r == reason)
                .map(|(_, at)| at);
            match last {
                Some(at) if now.saturating_duration_since(*at) < WARN_INTERVAL => false,
                Some(at) => {
                    *at = now;
                    true
                }
                None => {
                    warned.insert((key.kind.to_owned(), reason), now);
                    true
                }
            }
        };
        let error = &err as &dyn std::error::Error;
        if loud {
            tracing::warn!(
                kind = key.kind,
                reason,
                error = %ErrorChain(error),
                "involved-object lookup failed; the event goes out without enrichment"
            );
        } else {
            tracing::debug!(kind = key.kind, reason, error = %ErrorChain(error), "involved-object lookup failed");
        }
    }
}

/// Displays an error with its sources.
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Client-side rate limit.

/// A token bucket: `burst` requests at once, then one every `1/qps`. Kept as the theoretical
/// arrival time of the next request (GCRA), so it needs no refill arithmetic.
#[derive(Debug)]
struct TokenBucket {
    interval: Duration,
    /// How far ahead of now the schedule may run: `(burst - 1) * interval`.
    tolerance: Duration,
    next: Option<Instant>,
}

impl TokenBucket {
    fn new(qps: f32, burst: u32) -> Self {
        // At least one request every ~17 minutes: a tinier rate is a typo, and its interval
        // would not fit a Duration.
        let qps = if qps.is_finite() && qps > 0.0 {
            qps.max(0.001)
        } else {
            DEFAULT_QPS
        };
        let burst = if burst == 0 { DEFAULT_BURST } else { burst };
        let interval = Duration::from_secs_f64(1.0 / f64::from(qps));
        Self {
            interval,
            tolerance: interval.saturating_mul(burst - 1),
            next: None,
        }
    }

    /// Takes a token at `now`, or says when one will be available.
    fn try_acquire(&mut self, now: Instant) -> Result<(), Instant> {
        let next = self.next.map_or(now, |next| next.max(now));
        let ahead = next - now;
        if ahead > self.tolerance {
            return Err(next - self.tolerance);
        }
        self.next = Some(next + self.interval);
        Ok(())
    }
}

/// A [`tower_layer::Layer`] that puts a [`RateLimit`] token bucket in front of a service.
#[derive(Clone, Copy, Debug)]
pub struct RateLimitLayer {
    qps: f32,
    burst: u32,
}

impl RateLimitLayer {
    /// `qps` requests per second on average, `burst` at once; 0 (or a non-finite `qps`) takes
    /// upstream's defaults [`DEFAULT_QPS`] and [`DEFAULT_BURST`].
    pub fn new(qps: f32, burst: u32) -> Self {
        Self { qps, burst }
    }
}

impl<S> tower_layer::Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            bucket: TokenBucket::new(self.qps, self.burst),
            sleep: None,
            has_token: false,
        }
    }
}

/// A service that takes a token from a bucket before each request is sent (in `poll_ready`).
/// A long-lived watch request takes one token like any other. Time is [`tokio::time`].
///
/// In [`rate_limited_client`] it is the outermost layer, so the retries kube's own retry layer
/// makes (429/503/504) do not take tokens of their own.
pub struct RateLimit<S> {
    inner: S,
    bucket: TokenBucket,
    sleep: Option<Pin<Box<Sleep>>>,
    has_token: bool,
}

impl<S> std::fmt::Debug for RateLimit<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("bucket", &self.bucket)
            .field("has_token", &self.has_token)
            .finish_non_exhaustive()
    }
}

impl<S, R> tower_service::Service<R> for RateLimit<S>
where
    S: tower_service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        while !self.has_token {
            match self.bucket.try_acquire(Instant::now()) {
                Ok(()) => self.has_token = true,
                Err(at) => {
                    let sleep = match &mut self.sleep {
                        Some(sleep) => {
                            sleep.as_mut().reset(at);
                            sleep
                        }
                        None => self.sleep.insert(Box::pin(tokio::time::sleep_until(at))),
                    };
                    ready!(sleep.as_mut().poll(cx));
                }
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.has_token = false;
        self.inner.call(req)
    }
}

/// A kube client for `config` whose every request first takes a token from a bucket of
/// `burst` tokens refilled at `qps` per second (upstream `kubeQPS`/`kubeBurst`; 0 means 5 and
/// 10), and then has [`crate::client::DEFAULT_DEADLINE`] to be answered (the wait for a token
/// is not part of it). Must be called inside a tokio runtime.
pub fn rate_limited_client(
    config: kube::Config,
    qps: f32,
    burst: u32,
) -> Result<kube::Client, EnrichError> {
    let builder = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| EnrichError::Client(Box::new(e)))?;
    Ok(builder
        .with_layer(&crate::client::DeadlineLayer::new(
            crate::client::DEFAULT_DEADLINE,
        ))
        .with_layer(&RateLimitLayer::new(qps, burst))
        .build())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::future::poll_fn;
    use tower_layer::Layer as _;
    use tower_service::Service as _;

    fn key<'a>(name: &'a str) -> KeyRef<'a> {
        KeyRef {
            api_version: "v1",
            kind: "Pod",
            namespace: "default",
            name,
        }
    }

    fn value(tag: &str) -> ObjectEnrichment {
        ObjectEnrichment {
            labels: Some([("tag".to_owned(), tag.to_owned())].into()),
            ..ObjectEnrichment::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn lru_evicts_least_recently_used() {
        let far = Instant::now() + Duration::from_secs(3600);
        let now = Instant::now();
        let mut lru = Lru::new(2);
        lru.insert(key("a"), value("a"), far);
        lru.insert(key("b"), value("b"), far);
        assert_eq!(lru.get(key("a"), now), Some(&value("a"))); // a is now the most recent
        lru.insert(key("c"), value("c"), far); // evicts b
        assert_eq!(lru.len(), 2);
        assert!(lru.get(key("b"), now).is_none());
        assert_eq!(lru.get(key("a"), now), Some(&value("a")));
        assert_eq!(lru.get(key("c"), now), Some(&value("c")));
        lru.insert(key("a"), value("a2"), far); // update in place, no eviction
        assert_eq!(lru.len(), 2);
        lru.insert(key("d"), value("d"), far); // evicts c (a was refreshed)
        assert!(lru.get(key("c"), now).is_none());
        assert_eq!(lru.get(key("a"), now), Some(&value("a2")));
        assert_eq!(lru.get(key("d"), now), Some(&value("d")));
    }

    #[tokio::test(start_paused = true)]
    async fn lru_entries_expire() {
        let mut lru = Lru::new(4);
        let t0 = Instant::now();
        lru.insert(key("a"), value("a"), t0 + Duration::from_secs(10));
        assert!(lru.get(key("a"), t0 + Duration::from_secs(9)).is_some());
        assert!(lru.get(key("a"), t0 + Duration::from_secs(10)).is_none());
        lru.insert(key("a"), value("a"), t0 + Duration::from_secs(20));
        assert!(lru.get(key("a"), t0 + Duration::from_secs(15)).is_some());
        assert_eq!(lru.len(), 1);
    }

    #[test]
    fn keys_with_shifted_parts_differ() {
        let mut lru = Lru::new(4);
        let now = Instant::now();
        let far = now + Duration::from_secs(60);
        let a = KeyRef {
            api_version: "v1",
            kind: "Pod",
            namespace: "ab",
            name: "c",
        };
        let b = KeyRef {
            api_version: "v1",
            kind: "Pod",
            namespace: "a",
            name: "bc",
        };
        lru.insert(a, value("a"), far);
        assert!(lru.get(b, now).is_none());
        assert!(lru.get(a, now).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_bursts_then_spaces_requests() {
        let mut bucket = TokenBucket::new(5.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(bucket.try_acquire(t0), Ok(()));
        }
        assert_eq!(bucket.try_acquire(t0), Err(t0 + Duration::from_millis(200)));
        assert_eq!(bucket.try_acquire(t0 + Duration::from_millis(200)), Ok(()));
        assert!(bucket.try_acquire(t0 + Duration::from_millis(200)).is_err());
        // Idle time refills up to the burst, not beyond.
        let later = t0 + Duration::from_secs(10);
        for _ in 0..3 {
            assert_eq!(bucket.try_acquire(later), Ok(()));
        }
        assert!(bucket.try_acquire(later).is_err());
    }

    #[test]
    fn bucket_defaults() {
        let b = TokenBucket::new(0.0, 0);
        assert_eq!(b.interval, Duration::from_millis(200));
        assert_eq!(b.tolerance, Duration::from_millis(1800));
    }

    /// A service that answers immediately with the time it was called.
    struct Clock;

    impl tower_service::Service<()> for Clock {
        type Response = Instant;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Instant, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, (): ()) -> Self::Future {
            std::future::ready(Ok(Instant::now()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn service_waits_for_tokens() {
        let mut svc = RateLimitLayer::new(10.0, 4).layer(Clock);
        let t0 = Instant::now();
        let mut times = Vec::new();
        for _ in 0..7 {
            poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
            times.push(svc.call(()).await.unwrap() - t0);
        }
        let ms = |n| Duration::from_millis(n);
        assert_eq!(
            times,
            [ms(0), ms(0), ms(0), ms(0), ms(100), ms(200), ms(300)]
        );
    }

    #[test]
    fn kind_filter_from_routes() {
        let route: RouteConfig = serde_yaml_ng_free_route();
        let filter = KindFilter::from_route(&route);
        assert!(filter.wants("Pod"));
        assert!(filter.wants("Node"));
        assert!(filter.wants("Cluster")); // a sub-route's drop rule, regex "^Clust"
        assert!(!filter.wants("Deployment"));
        assert!(KindFilter::from_route(&RouteConfig::default()).wants("Anything"));
        assert!(KindFilter::all().wants("Deployment"));
    }

    fn serde_yaml_ng_free_route() -> RouteConfig {
        use event_exporter_core::config::RuleConfig;
        let rule = |kind: &str| RuleConfig {
            kind: kind.to_owned(),
            ..RuleConfig::default()
        };
        RouteConfig {
            match_: vec![rule("Pod"), rule("")],
            drop: vec![rule("Node")],
            routes: vec![RouteConfig {
                drop: vec![rule("^Clust")],
                ..RouteConfig::default()
            }],
        }
    }
}
