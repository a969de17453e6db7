//! The shared cluster state: objects, the RV counter, watch history and watchers, hooks.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::event;
use crate::selector::{FieldVocab, Selectors};
use crate::status::{ResourceRef, Status};
use crate::util::{hex_decode, hex_encode, lock, merge_patch, now_time, random_suffix};
use crate::{Options, RecordedRequest};

/// How many undelivered messages a watcher may lag behind before its stream is closed.
const WATCH_BUFFER: usize = 1 << 18;

/// A served resource type (one group/version/plural).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourceType {
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) plural: String,
    pub(crate) singular: String,
    pub(crate) kind: String,
    pub(crate) namespaced: bool,
    pub(crate) short_names: Vec<String>,
}

type StoreKey = (String, String);
type ObjKey = (String, String);

impl ResourceType {
    fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        ResourceType {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            kind: kind.into(),
            namespaced,
            short_names: Vec::new(),
        }
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// `v1` or `group/version`.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether this is (a view of) the event storage.
    pub(crate) fn is_event(&self) -> bool {
        self.plural == "events" && (self.group.is_empty() || self.group == "events.k8s.io")
    }

    /// Whether this is the events.k8s.io/v1 view.
    pub(crate) fn is_events_v1(&self) -> bool {
        self.plural == "events" && self.group == "events.k8s.io"
    }

    fn store_key(&self) -> StoreKey {
        if self.is_event() {
            (String::new(), "events".into())
        } else {
            (self.group.clone(), self.plural.clone())
        }
    }

    pub(crate) fn res_ref(&self) -> ResourceRef<'_> {
        ResourceRef {
            plural: &self.plural,
            group: &self.group,
        }
    }

    pub(crate) fn field_vocab(&self) -> FieldVocab {
        if self.is_events_v1() {
            FieldVocab::EventsV1
        } else if self.is_event() {
            FieldVocab::CoreEvent
        } else {
            FieldVocab::Generic
        }
    }

    /// Render a stored object in this view; `with_type` adds kind/apiVersion.
    pub(crate) fn render(&self, stored: &Value, with_type: bool) -> Value {
        let mut v = if self.is_events_v1() {
            event::to_v1(stored)
        } else {
            stored.clone()
        };
        if with_type && let Value::Object(m) = &mut v {
            m.insert("kind".into(), Value::String(self.kind.clone()));
            m.insert("apiVersion".into(), Value::String(self.api_version()));
        }
        v
    }

    /// Serialize a stored object in this view into `buf`, with kind/apiVersion first if `with_type`.
    pub(crate) fn write_json(&self, buf: &mut Vec<u8>, stored: &Value, with_type: bool) {
        let converted;
        let obj = if self.is_events_v1() {
            converted = event::to_v1(stored);
            &converted
        } else {
            stored
        };
        if !with_type {
            let _ = serde_json::to_writer(&mut *buf, obj);
            return;
        }
        buf.extend_from_slice(b"{\"kind\":");
        let _ = serde_json::to_writer(&mut *buf, &self.kind);
        buf.extend_from_slice(b",\"apiVersion\":");
        let _ = serde_json::to_writer(&mut *buf, &self.api_version());
        let body_start = buf.len();
        let _ = serde_json::to_writer(&mut *buf, obj);
        // `obj` serialized as `{…}`: replace its leading `{` by `,` (or drop `{}` entirely).
        if buf.len() - body_start <= 2 || buf[body_start] != b'{' {
            buf.truncate(body_start);
            buf.push(b'}');
        } else {
            buf[body_start] = b',';
        }
    }
}

fn plural_for(kind: &str) -> String {
    let builtin = [
        ("Pod", "pods"),
        ("Node", "nodes"),
        ("Namespace", "namespaces"),
        ("ConfigMap", "configmaps"),
        ("Secret", "secrets"),
        ("Service", "services"),
        ("Endpoints", "endpoints"),
        ("Deployment", "deployments"),
        ("ReplicaSet", "replicasets"),
        ("StatefulSet", "statefulsets"),
        ("DaemonSet", "daemonsets"),
        ("Lease", "leases"),
        ("Event", "events"),
        ("Ingress", "ingresses"),
    ];
    if let Some((_, p)) = builtin.iter().find(|(k, _)| *k == kind) {
        return (*p).to_string();
    }
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with('s') || lower.ends_with('x') || lower.ends_with("ch") {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

fn builtin_types() -> Vec<Arc<ResourceType>> {
    vec![
        ResourceType::new("", "v1", "events", "Event", true).short(&["ev"]),
        ResourceType::new("", "v1", "namespaces", "Namespace", false).short(&["ns"]),
        ResourceType::new("", "v1", "nodes", "Node", false).short(&["no"]),
        ResourceType::new("", "v1", "pods", "Pod", true).short(&["po"]),
        ResourceType::new("", "v1", "configmaps", "ConfigMap", true).short(&["cm"]),
        ResourceType::new("", "v1", "services", "Service", true).short(&["svc"]),
        ResourceType::new("", "v1", "secrets", "Secret", true),
        ResourceType::new("events.k8s.io", "v1", "events", "Event", true).short(&["ev"]),
        ResourceType::new("coordination.k8s.io", "v1", "leases", "Lease", true),
        ResourceType::new("apps", "v1", "deployments", "Deployment", true).short(&["deploy"]),
        ResourceType::new("apps", "v1", "replicasets", "ReplicaSet", true).short(&["rs"]),
        ResourceType::new("apps", "v1", "statefulsets", "StatefulSet", true).short(&["sts"]),
        ResourceType::new("apps", "v1", "daemonsets", "DaemonSet", true).short(&["ds"]),
    ]
    .into_iter()
    .map(Arc::new)
    .collect()
}

/// The kind of a recorded change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One entry of the watch history.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub(crate) rv: u64,
    pub(crate) kind: ChangeKind,
    /// The new state (for `Deleted`: the last state, with the deletion RV).
    pub(crate) obj: Arc<Value>,
    /// The previous state (for selector transitions).
    pub(crate) prev: Option<Arc<Value>>,
}

/// A message to one watch stream.
#[derive(Clone, Debug)]
pub(crate) enum WatchMsg {
    /// A live or replayed change.
    Change(Change),
    /// A synthetic `ADDED` for the initial state.
    Synthetic(Arc<Value>),
    /// A `BOOKMARK` at this RV; `true` = annotated `k8s.io/initial-events-end`.
    Bookmark(u64, bool),
    /// A raw line (already `\n`-terminated).
    Raw(Bytes),
    /// An `ERROR` event with this status, then the end of the stream.
    Fatal(Status),
}

struct WatcherSlot {
    tx: mpsc::Sender<WatchMsg>,
    namespace: Option<String>,
    bookmarks: bool,
    cut: Arc<AtomicBool>,
}

#[derive(Default)]
struct TypeStore {
    items: BTreeMap<ObjKey, Arc<Value>>,
    history: VecDeque<Change>,
    /// Every change with `rv > oldest` is in `history`.
    oldest: u64,
    watchers: Vec<WatcherSlot>,
}

impl TypeStore {
    fn push(&mut self, change: Change, window: usize) {
        let ns = change
            .obj
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or("");
        self.watchers.retain(|w| {
            if w.namespace.as_deref().is_some_and(|n| n != ns) {
                return !w.tx.is_closed();
            }
            w.tx.try_send(WatchMsg::Change(change.clone())).is_ok()
        });
        if window == 0 {
            self.oldest = change.rv;
            return;
        }
        self.history.push_back(change);
        while self.history.len() > window {
            if let Some(c) = self.history.pop_front() {
                self.oldest = c.rv;
            }
        }
    }
}

struct Failure {
    method: String,
    prefix: String,
    status: u16,
    retry_after: Option<u32>,
    remaining: usize,
}

/// How the server misbehaves on the requests [`Cluster::misbehave`] names: the hostile or hung
/// API servers a client must survive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misbehavior {
    /// Accept the request and never answer it (the connection stays open).
    Hang,
    /// Answer with the status line, the headers and half of the body, then nothing more (the
    /// connection stays open). A watch sends half of a line.
    HalfBody,
    /// Send the body one byte per interval. A watch drips bytes that never end a line.
    Drip(std::time::Duration),
    /// Answer a watch with `200 OK` and an empty body, at once.
    EmptyWatch,
    /// Answer with this status and `bytes` of an HTML page (not a Status, not JSON): what a
    /// proxy in front of the API server sends when it fails.
    Garbage {
        /// The status code.
        status: u16,
        /// The body's size.
        bytes: usize,
    },
}

#[derive(Clone, Debug)]
struct Misbehaving {
    method: String,
    prefix: String,
    watch: Option<bool>,
    how: Misbehavior,
}

pub(crate) struct State {
    rv: u64,
    types: HashMap<StoreKey, TypeStore>,
    registry: Vec<Arc<ResourceType>>,
    ttl_queue: VecDeque<(Instant, ObjKey, u64)>,
    failures: Vec<Failure>,
    misbehaving: Vec<Misbehaving>,
    forbidden: HashSet<(String, String)>,
    requests: Vec<RecordedRequest>,
    continue_generation: u64,
}

struct Inner {
    state: Mutex<State>,
    options: Options,
}

/// A handle to the shared cluster state (cheap to clone; all methods are synchronous).
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("resource_version", &self.resource_version())
            .finish_non_exhaustive()
    }
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum WatchStart {
    /// Synthetic ADDED for the current state, then live.
    Current,
    /// Streaming list: synthetic ADDED, then (if bookmarks) the annotated bookmark, then live.
    InitialEvents,
    /// Replay history after this RV, then live.
    From(u64),
}

/// The result of registering a watch.
pub(crate) struct WatchRegistration {
    pub(crate) initial: VecDeque<WatchMsg>,
    pub(crate) rx: mpsc::Receiver<WatchMsg>,
    pub(crate) cut: Arc<AtomicBool>,
}

/// One page of a list.
pub(crate) struct ListPage {
    pub(crate) rv: u64,
    pub(crate) items: Vec<Arc<Value>>,
    pub(crate) continue_token: Option<String>,
}

/// How a PATCH body is interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// JSON merge patch (also used for strategic merge patch).
    Merge,
    /// Server-side apply, approximated as a merge patch that creates missing objects.
    Apply,
}

fn obj_key(ns: Option<&str>, name: &str) -> ObjKey {
    (ns.unwrap_or("").to_string(), name.to_string())
}

fn meta_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn rv_of(obj: &Value) -> u64 {
    obj.get("metadata")
        .and_then(|m| m.get("resourceVersion"))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn metadata_mut(obj: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let m = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    match m {
        Value::Object(m) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

fn into_map(obj: Value) -> Result<Map<String, Value>, Status> {
    match obj {
        Value::Object(mut m) => {
            m.remove("kind");
            m.remove("apiVersion");
            Ok(m)
        }
        _ => Err(Status::bad_request(
            "the request body must be a JSON object",
        )),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    ns: String,
    name: String,
    g: u64,
}

impl Cluster {
    /// A fresh, empty cluster with these options. (Background tasks — TTL expiry and periodic
    /// bookmarks — are run by [`crate::FakeApiServer`], not by this handle.)
    pub fn new(options: Options) -> Cluster {
        Cluster {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    rv: 1,
                    types: HashMap::new(),
                    registry: builtin_types(),
                    ttl_queue: VecDeque::new(),
                    failures: Vec::new(),
                    misbehaving: Vec::new(),
                    forbidden: HashSet::new(),
                    requests: Vec::new(),
                    continue_generation: 0,
                }),
                options,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    /// The options this cluster was created with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    pub(crate) fn core_events() -> ResourceType {
        ResourceType::new("", "v1", "events", "Event", true).short(&["ev"])
    }

    // ----- resource-type registry -----

    pub(crate) fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.state()
            .registry
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .map(|t| (**t).clone())
    }

    fn lookup_kind(
        state: &mut State,
        api_version: &str,
        kind: &str,
        namespaced: bool,
    ) -> ResourceType {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        if let Some(t) = state
            .registry
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
        {
            return (**t).clone();
        }
        let t = ResourceType::new(group, version, &plural_for(kind), kind, namespaced);
        state.registry.push(Arc::new(t.clone()));
        t
    }

    /// All served resource types, grouped for discovery.
    pub(crate) fn registry(&self) -> Vec<Arc<ResourceType>> {
        self.state().registry.clone()
    }

    // ----- hooks -----

    /// The next `times` requests whose method matches `method` (case-insensitive; `"*"` matches any)
    /// and whose path starts with `path_prefix` get `status` with a proper Status body (429 gets a
    /// `Retry-After` header and `details.retryAfterSeconds` when `retry_after_seconds` is set).
    pub fn fail_next(
        &self,
        method: &str,
        path_prefix: &str,
        status: u16,
        retry_after_seconds: Option<u32>,
        times: usize,
    ) {
        if times == 0 {
            return;
        }
        self.state().failures.push(Failure {
            method: method.to_string(),
            prefix: path_prefix.to_string(),
            status,
            retry_after: retry_after_seconds,
            remaining: times,
        });
    }

    pub(crate) fn take_failure(&self, method: &str, path: &str) -> Option<Status> {
        let mut st = self.state();
        let idx = st.failures.iter().position(|f| {
            (f.method == "*" || f.method.eq_ignore_ascii_case(method))
                && path.starts_with(&f.prefix)
        })?;
        let f = &mut st.failures[idx];
        f.remaining -= 1;
        let status = Status::for_code(f.status, f.retry_after);
        if f.remaining == 0 {
            st.failures.remove(idx);
        }
        Some(status)
    }

    /// From now on, requests whose method matches `method` (case-insensitive; `"*"` matches
    /// any), whose path starts with `path_prefix` and that are watches (`watch: Some(true)`),
    /// not watches (`Some(false)`) or either (`None`) are answered as `how` says, until
    /// [`Cluster::behave`]. The first matching rule applies.
    pub fn misbehave(
        &self,
        method: &str,
        path_prefix: &str,
        watch: Option<bool>,
        how: Misbehavior,
    ) {
        self.state().misbehaving.push(Misbehaving {
            method: method.to_string(),
            prefix: path_prefix.to_string(),
            watch,
            how,
        });
    }

    /// Undo every [`Cluster::misbehave`]: requests from now on are answered properly.
    pub fn behave(&self) {
        self.state().misbehaving.clear();
    }

    pub(crate) fn misbehavior(&self, method: &str, path: &str, watch: bool) -> Option<Misbehavior> {
        self.state()
            .misbehaving
            .iter()
            .find(|m| {
                (m.method == "*" || m.method.eq_ignore_ascii_case(method))
                    && path.starts_with(&m.prefix)
                    && m.watch.is_none_or(|w| w == watch)
            })
            .map(|m| m.how.clone())
    }

    /// Subsequent requests with `verb` (`list`, `watch`, `get`, `create`, `update`, `patch`,
    /// `delete`) on the plural `resource` get a 403 Forbidden Status.
    pub fn forbid(&self, verb: &str, resource: &str) {
        self.state()
            .forbidden
            .insert((verb.to_string(), resource.to_string()));
    }

    /// Undo [`Cluster::forbid`].
    pub fn allow(&self, verb: &str, resource: &str) {
        self.state()
            .forbidden
            .remove(&(verb.to_string(), resource.to_string()));
    }

    pub(crate) fn is_forbidden(&self, verb: &str, resource: &str) -> bool {
        self.state()
            .forbidden
            .contains(&(verb.to_string(), resource.to_string()))
    }

    pub(crate) fn record_request(&self, req: RecordedRequest) {
        self.state().requests.push(req);
    }

    /// Every request seen, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        self.state().requests.clear();
    }

    /// Make every `continue` token issued so far expired (HTTP 410 on use).
    pub fn expire_continue_tokens(&self) {
        self.state().continue_generation += 1;
    }

    /// The current global resource version.
    pub fn resource_version(&self) -> u64 {
        self.state().rv
    }

    /// Forget all watch history: any watch from an RV older than the current one gets the 410
    /// `ERROR` event.
    pub fn compact(&self) {
        let mut st = self.state();
        let rv = st.rv;
        for store in st.types.values_mut() {
            store.history.clear();
            store.oldest = rv;
        }
    }

    /// Compact (see [`Cluster::compact`]) and make every open watch stream end with the 410
    /// `ERROR` event (`too old resource version`), as the apiserver does when a watcher falls out
    /// of its window. Clients must relist.
    pub fn expire_watches(&self) {
        let mut st = self.state();
        let rv = st.rv;
        for store in st.types.values_mut() {
            store.history.clear();
            store.oldest = rv;
            for w in store.watchers.drain(..) {
                let _ =
                    w.tx.try_send(WatchMsg::Fatal(Status::too_old(rv.saturating_sub(1), rv)));
            }
        }
    }

    /// Abruptly end every open watch stream (the connection is dropped without the final chunk).
    pub fn cut_watches(&self) {
        let mut st = self.state();
        for store in st.types.values_mut() {
            for w in store.watchers.drain(..) {
                w.cut.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Send a `BOOKMARK` at the current RV to every watcher that allowed bookmarks.
    pub fn send_bookmark(&self) {
        let mut st = self.state();
        let rv = st.rv;
        for store in st.types.values_mut() {
            store
                .watchers
                .retain(|w| !w.bookmarks || w.tx.try_send(WatchMsg::Bookmark(rv, false)).is_ok());
        }
    }

    /// Write a raw line (a `\n` is appended if missing) into every open watch stream.
    pub fn inject_watch_line(&self, line: &str) {
        let mut l = line.to_string();
        if !l.ends_with('\n') {
            l.push('\n');
        }
        let bytes = Bytes::from(l);
        let mut st = self.state();
        for store in st.types.values_mut() {
            store
                .watchers
                .retain(|w| w.tx.try_send(WatchMsg::Raw(bytes.clone())).is_ok());
        }
    }

    /// The number of open watch streams.
    pub fn watchers_len(&self) -> usize {
        let st = self.state();
        st.types
            .values()
            .map(|s| s.watchers.iter().filter(|w| !w.tx.is_closed()).count())
            .sum()
    }

    // ----- events -----

    /// Create an event (same semantics as `POST /api/v1/namespaces/{ns}/events`); returns the
    /// stored object as the 201 body would.
    pub fn create_event(
        &self,
        namespace: &str,
        event: serde_json::Value,
    ) -> Result<serde_json::Value, Status> {
        let rt = Cluster::core_events();
        let stored = self.create(&rt, Some(namespace), event, None)?;
        Ok(rt.render(&stored, true))
    }

    /// JSON-merge-patch an event; watchers get `MODIFIED`.
    pub fn patch_event(
        &self,
        namespace: &str,
        name: &str,
        merge_patch: serde_json::Value,
    ) -> Result<serde_json::Value, Status> {
        let rt = Cluster::core_events();
        let stored = self.patch(&rt, Some(namespace), name, &merge_patch, PatchKind::Merge)?;
        Ok(rt.render(&stored, true))
    }

    /// Delete an event; watchers get `DELETED`.
    pub fn delete_event(&self, namespace: &str, name: &str) -> Result<(), Status> {
        self.delete(&Cluster::core_events(), Some(namespace), name)
            .map(|_| ())
    }

    /// The number of stored events.
    pub fn events_len(&self) -> usize {
        self.state()
            .types
            .get(&(String::new(), "events".to_string()))
            .map_or(0, |s| s.items.len())
    }

    // ----- generic objects -----

    /// Store or replace any object by apiVersion + kind + namespace + name, setting
    /// uid/creationTimestamp if missing and a fresh resourceVersion. Its type becomes discoverable.
    /// Returns the stored object (with kind/apiVersion).
    pub fn put_object(&self, object: serde_json::Value) -> serde_json::Value {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("v1")
            .to_string();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("Unknown")
            .to_string();
        let Ok(mut map) = into_map(object) else {
            return Value::Null;
        };
        let ns = meta_str(&map, "namespace").map(str::to_string);
        let name = meta_str(&map, "name")
            .map(str::to_string)
            .unwrap_or_else(|| format!("object-{}", random_suffix()));
        let opts = &self.inner.options;
        let mut st = self.state();
        let rt = Cluster::lookup_kind(&mut st, &api_version, &kind, ns.is_some());
        let ns = if rt.namespaced {
            Some(ns.unwrap_or_else(|| "default".to_string()))
        } else {
            None
        };
        {
            let meta = metadata_mut(&mut map);
            meta.insert("name".into(), Value::String(name.clone()));
            match &ns {
                Some(ns) => meta.insert("namespace".into(), Value::String(ns.clone())),
                None => meta.remove("namespace"),
            };
        }
        let key = obj_key(ns.as_deref(), &name);
        let existing = st
            .types
            .get(&rt.store_key())
            .and_then(|s| s.items.get(&key).cloned());
        let stored = match existing {
            Some(prev) => st.replace(opts, &rt, key, map, prev, false),
            None => st.insert_new(opts, &rt, key, map),
        };
        rt.render(&stored, true)
    }

    /// Delete any object; `true` if it existed.
    pub fn delete_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let rt = {
            let st = self.state();
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            st.registry
                .iter()
                .find(|t| t.group == group && t.version == version && t.kind == kind)
                .map(|t| (**t).clone())
        };
        rt.is_some_and(|rt| {
            let ns = if rt.namespaced { namespace } else { None };
            self.delete(&rt, ns, name).is_ok()
        })
    }

    /// Get any object (with kind/apiVersion).
    pub fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<serde_json::Value> {
        let st = self.state();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let rt = st
            .registry
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)?;
        let ns = if rt.namespaced { namespace } else { None };
        let obj = st
            .types
            .get(&rt.store_key())?
            .items
            .get(&obj_key(ns, name))?;
        Some(rt.render(obj, true))
    }

    // ----- REST operations (stored form in, stored form out) -----

    pub(crate) fn get(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Arc<Value>, Status> {
        self.state()
            .types
            .get(&rt.store_key())
            .and_then(|s| s.items.get(&obj_key(ns, name)).cloned())
            .ok_or_else(|| Status::not_found(rt.res_ref(), name))
    }

    /// Create. `v1_body`: the original events.k8s.io/v1 body if created through that API
    /// (`obj` is then already converted to core form).
    pub(crate) fn create(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        obj: Value,
        v1_body: Option<&Value>,
    ) -> Result<Arc<Value>, Status> {
        let mut map = into_map(obj)?;
        let ns = self.check_namespace(rt, ns, &mut map)?;
        let name = match meta_str(&map, "name") {
            Some(n) => n.to_string(),
            None => match meta_str(&map, "generateName") {
                Some(g) => format!("{g}{}", random_suffix()),
                None => {
                    return Err(Status::invalid(
                        &rt.kind,
                        rt.res_ref(),
                        "",
                        "metadata.name",
                        "Required value: name or generateName is required",
                    ));
                }
            },
        };
        metadata_mut(&mut map).insert("name".into(), Value::String(name.clone()));
        if rt.is_event() {
            event::validate_create(&map, ns.as_deref().unwrap_or(""), &name, v1_body)?;
        }
        let key = obj_key(ns.as_deref(), &name);
        let mut st = self.state();
        if st
            .types
            .get(&rt.store_key())
            .is_some_and(|s| s.items.contains_key(&key))
        {
            return Err(Status::already_exists(rt.res_ref(), &name));
        }
        Ok(st.insert_new(&self.inner.options, rt, key, map))
    }

    fn check_namespace(
        &self,
        rt: &ResourceType,
        url_ns: Option<&str>,
        map: &mut Map<String, Value>,
    ) -> Result<Option<String>, Status> {
        if !rt.namespaced {
            metadata_mut(map).remove("namespace");
            return Ok(None);
        }
        let body_ns = meta_str(map, "namespace").map(str::to_string);
        let ns = match (url_ns, body_ns) {
            (Some(u), Some(b)) if u != b => {
                return Err(Status::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (Some(u), _) => u.to_string(),
            (None, Some(b)) => b,
            (None, None) => "default".to_string(),
        };
        metadata_mut(map).insert("namespace".into(), Value::String(ns.clone()));
        Ok(Some(ns))
    }

    /// PUT. Events allow unconditional updates and create-on-update; others require an RV.
    /// Returns the stored object and whether it was created.
    pub(crate) fn update(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        obj: Value,
    ) -> Result<(Arc<Value>, bool), Status> {
        let mut map = into_map(obj)?;
        let ns = self.check_namespace(rt, ns, &mut map)?;
        if let Some(body_name) = meta_str(&map, "name")
            && body_name != name
        {
            return Err(Status::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        metadata_mut(&mut map).insert("name".into(), Value::String(name.to_string()));
        let given_rv = meta_str(&map, "resourceVersion").map(str::to_string);
        let key = obj_key(ns.as_deref(), name);
        let opts = &self.inner.options;
        let mut st = self.state();
        let existing = st
            .types
            .get(&rt.store_key())
            .and_then(|s| s.items.get(&key).cloned());
        let Some(prev) = existing else {
            if rt.is_event() {
                drop(st);
                let mut body = Value::Object(map);
                if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                return self
                    .create(rt, ns.as_deref(), body, None)
                    .map(|o| (o, true));
            }
            return Err(Status::not_found(rt.res_ref(), name));
        };
        match given_rv {
            Some(rv) if rv.parse::<u64>().ok() != Some(rv_of(&prev)) => {
                return Err(Status::conflict(rt.res_ref(), name));
            }
            None if !rt.is_event() => {
                return Err(Status::invalid(
                    &rt.kind,
                    rt.res_ref(),
                    name,
                    "metadata.resourceVersion",
                    "Invalid value: 0: must be specified for an update",
                ));
            }
            _ => {}
        }
        Ok((st.replace(opts, rt, key, map, prev, true), false))
    }

    /// PATCH (merge semantics). RV-checked only if the patch carries `metadata.resourceVersion`.
    pub(crate) fn patch(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
        kind: PatchKind,
    ) -> Result<Arc<Value>, Status> {
        if !patch.is_object() {
            return Err(Status::bad_request("the patch must be a JSON object"));
        }
        let ns = if rt.namespaced { ns } else { None };
        let key = obj_key(ns, name);
        let opts = &self.inner.options;
        let mut st = self.state();
        let existing = st
            .types
            .get(&rt.store_key())
            .and_then(|s| s.items.get(&key).cloned());
        let Some(prev) = existing else {
            if kind == PatchKind::Apply {
                drop(st);
                let mut body = patch.clone();
                merge_patch(
                    &mut body,
                    &serde_json::json!({"metadata": {"name": name, "resourceVersion": null}}),
                );
                let body = if rt.is_events_v1() {
                    event::from_v1(body)
                } else {
                    body
                };
                return self.create(rt, ns, body, None);
            }
            return Err(Status::not_found(rt.res_ref(), name));
        };
        if let Some(rv) = patch
            .get("metadata")
            .and_then(|m| m.get("resourceVersion"))
            .and_then(Value::as_str)
            && rv.parse::<u64>().ok() != Some(rv_of(&prev))
        {
            return Err(Status::conflict(rt.res_ref(), name));
        }
        let mut view = rt.render(&prev, false);
        merge_patch(&mut view, patch);
        let patched = if rt.is_events_v1() {
            event::from_v1(view)
        } else {
            view
        };
        let mut map = into_map(patched)?;
        // name, namespace, uid and creationTimestamp are immutable.
        if let Some(pm) = prev.get("metadata").and_then(Value::as_object) {
            let meta = metadata_mut(&mut map);
            for k in ["name", "namespace", "uid", "creationTimestamp"] {
                match pm.get(k) {
                    Some(v) => meta.insert(k.into(), v.clone()),
                    None => meta.remove(k),
                };
            }
        }
        Ok(st.replace(opts, rt, key, map, prev, true))
    }

    /// DELETE; returns the last state (with the deletion RV).
    pub(crate) fn delete(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Arc<Value>, Status> {
        let window = self.inner.options.watch_window;
        let mut st = self.state();
        st.remove(rt, &obj_key(ns, name), window)
            .ok_or_else(|| Status::not_found(rt.res_ref(), name))
    }

    /// One page of a list. `after`: the continue token.
    pub(crate) fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        selectors: &Selectors,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<ListPage, Status> {
        let st = self.state();
        let (snapshot_rv, start) = match continue_token {
            Some(tok) => {
                let parsed: ContinueToken = hex_decode(tok)
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .ok_or_else(|| {
                        Status::bad_request(format!("continue key is not valid: {tok}"))
                    })?;
                if parsed.g < st.continue_generation {
                    let fresh = ContinueToken {
                        rv: st.rv,
                        g: st.continue_generation,
                        ..parsed
                    };
                    return Err(Status::expired_continue(Some(encode_token(&fresh))));
                }
                (parsed.rv, Bound::Excluded((parsed.ns, parsed.name)))
            }
            None => match ns {
                Some(ns) => (st.rv, Bound::Included((ns.to_string(), String::new()))),
                None => (st.rv, Bound::Unbounded),
            },
        };
        let mut items = Vec::new();
        let mut last: Option<&ObjKey> = None;
        let mut more = false;
        if let Some(store) = st.types.get(&rt.store_key()) {
            let limit = limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
            // Scan at most a bounded number of non-matching items per page (like the real
            // apiserver, a page may hold fewer than `limit` items with a continue token).
            let scan_budget = limit.saturating_mul(8).max(10_000);
            for (scanned, (k, v)) in store.items.range((start, Bound::Unbounded)).enumerate() {
                if ns.is_some_and(|n| n != k.0) {
                    break;
                }
                if items.len() >= limit || scanned >= scan_budget {
                    more = true;
                    break;
                }
                last = Some(k);
                if selectors.matches(v) {
                    items.push(v.clone());
                }
            }
        }
        let continue_token = match (more, last) {
            (true, Some(k)) => Some(encode_token(&ContinueToken {
                rv: snapshot_rv,
                ns: k.0.clone(),
                name: k.1.clone(),
                g: st.continue_generation,
            })),
            _ => None,
        };
        Ok(ListPage {
            rv: snapshot_rv,
            items,
            continue_token,
        })
    }

    /// Register a watch. `Err(Status)` is the 410 to report inside the stream.
    pub(crate) fn watch(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        start: WatchStart,
        bookmarks: bool,
    ) -> Result<WatchRegistration, Status> {
        let mut st = self.state();
        let rv = st.rv;
        let store = st.types.entry(rt.store_key()).or_default();
        let mut initial = VecDeque::new();
        match start {
            WatchStart::Current | WatchStart::InitialEvents => {
                let range = match ns {
                    Some(ns) => store.items.range((
                        Bound::Included((ns.to_string(), String::new())),
                        Bound::Unbounded,
                    )),
                    None => store.items.range::<ObjKey, _>(..),
                };
                for (k, v) in range {
                    if ns.is_some_and(|n| n != k.0) {
                        break;
                    }
                    initial.push_back(WatchMsg::Synthetic(v.clone()));
                }
                if matches!(start, WatchStart::InitialEvents) && bookmarks {
                    initial.push_back(WatchMsg::Bookmark(rv, true));
                }
            }
            WatchStart::From(from) => {
                if from < store.oldest {
                    return Err(Status::too_old(from, store.oldest));
                }
                let idx = store.history.partition_point(|c| c.rv <= from);
                initial.extend(store.history.range(idx..).cloned().map(WatchMsg::Change));
            }
        }
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let cut = Arc::new(AtomicBool::new(false));
        store.watchers.push(WatcherSlot {
            tx,
            namespace: ns.map(str::to_string),
            bookmarks,
            cut: cut.clone(),
        });
        Ok(WatchRegistration { initial, rx, cut })
    }

    /// Delete events whose TTL has passed. Returns how many were deleted.
    pub(crate) fn expire_events(&self, now: Instant) -> usize {
        let window = self.inner.options.watch_window;
        let rt = Cluster::core_events();
        let mut st = self.state();
        let mut n = 0;
        while let Some((deadline, _, _)) = st.ttl_queue.front() {
            if *deadline > now {
                break;
            }
            let Some((_, key, rv)) = st.ttl_queue.pop_front() else {
                break;
            };
            let current = st
                .types
                .get(&rt.store_key())
                .and_then(|s| s.items.get(&key))
                .map(|o| rv_of(o));
            if current == Some(rv) {
                st.remove(&rt, &key, window);
                n += 1;
            }
        }
        n
    }
}

fn encode_token(t: &ContinueToken) -> String {
    hex_encode(&serde_json::to_vec(t).unwrap_or_default())
}

impl State {
    fn insert_new(
        &mut self,
        opts: &Options,
        rt: &ResourceType,
        key: ObjKey,
        map: Map<String, Value>,
    ) -> Arc<Value> {
        self.commit(opts, rt, key, map, None)
    }

    fn replace(
        &mut self,
        opts: &Options,
        rt: &ResourceType,
        key: ObjKey,
        mut map: Map<String, Value>,
        prev: Arc<Value>,
        keep_identity: bool,
    ) -> Arc<Value> {
        let meta = metadata_mut(&mut map);
        if let Some(pm) = prev.get("metadata").and_then(Value::as_object) {
            for k in ["uid", "creationTimestamp"] {
                let missing = meta.get(k).is_none_or(|v| v.is_null() || v == "");
                if (keep_identity || missing)
                    && let Some(v) = pm.get(k)
                {
                    meta.insert(k.into(), v.clone());
                }
            }
        }
        self.commit(opts, rt, key, map, Some(prev))
    }

    /// Stores `map` under `key` as a new version: a fresh resourceVersion, a uid and
    /// creationTimestamp when missing, the event normalisation and TTL, and the change for
    /// watchers (ADDED without `prev`, MODIFIED with it).
    fn commit(
        &mut self,
        opts: &Options,
        rt: &ResourceType,
        key: ObjKey,
        mut map: Map<String, Value>,
        prev: Option<Arc<Value>>,
    ) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        let meta = metadata_mut(&mut map);
        if meta
            .get("uid")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            meta.insert(
                "uid".into(),
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
        }
        if meta.get("creationTimestamp").is_none_or(Value::is_null) {
            meta.insert("creationTimestamp".into(), Value::String(now_time()));
        }
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        if rt.is_event() {
            event::normalize_core(&mut map);
            self.ttl_queue
                .push_back((Instant::now() + opts.event_ttl, key.clone(), rv));
        }
        let obj = Arc::new(Value::Object(map));
        let store = self.types.entry(rt.store_key()).or_default();
        store.items.insert(key, obj.clone());
        let kind = if prev.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        store.push(
            Change {
                rv,
                kind,
                obj: obj.clone(),
                prev,
            },
            opts.watch_window,
        );
        obj
    }

    fn remove(&mut self, rt: &ResourceType, key: &ObjKey, window: usize) -> Option<Arc<Value>> {
        let store = self.types.get_mut(&rt.store_key())?;
        let prev = store.items.remove(key)?;
        self.rv += 1;
        let rv = self.rv;
        let mut last = (*prev).clone();
        if let Value::Object(m) = &mut last {
            metadata_mut(m).insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let last = Arc::new(last);
        store.push(
            Change {
                rv,
                kind: ChangeKind::Deleted,
                obj: last.clone(),
                prev: Some(prev),
            },
            window,
        );
        Some(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(plural_for("Cluster"), "clusters");
        assert_eq!(plural_for("NetworkPolicy"), "networkpolicies");
        assert_eq!(plural_for("Ingress"), "ingresses");
        assert_eq!(plural_for("Gateway"), "gateways");
        assert_eq!(plural_for("Pod"), "pods");
    }

    #[test]
    fn write_json_puts_type_first() {
        let rt = Cluster::core_events();
        let mut buf = Vec::new();
        rt.write_json(&mut buf, &serde_json::json!({"a": 1}), true);
        assert_eq!(buf, br#"{"kind":"Event","apiVersion":"v1","a":1}"#);
        buf.clear();
        rt.write_json(&mut buf, &serde_json::json!({}), true);
        assert_eq!(buf, br#"{"kind":"Event","apiVersion":"v1"}"#);
    }
}
