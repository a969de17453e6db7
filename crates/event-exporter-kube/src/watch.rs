//! The watch on core/v1 Events: one kube-runtime [`watcher()`] per stream (all events, or one
//! per `watchReasons` entry as a `reason=` field selector), merged, with the watcher's
//! default backoff between errors.
//!
//! Objects are read leniently ([`WatchedEvent`]): an object that is valid JSON but not a valid
//! Event (a wrong field type, a missing `involvedObject`) arrives as
//! [`WatchedEvent::Malformed`] instead of failing the stream. A typed watcher would re-watch
//! from the same resourceVersion, receive the same object again, and never get past it.
//!
//! No object is cached: the stream hands each update over and forgets it.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use kube::{Api, Client};
use serde::{Deserialize, Deserializer};

/// One watched object: an Event, or what could be read of one that is not valid.
#[derive(Debug, Clone)]
pub enum WatchedEvent {
    /// A valid Event.
    Event(Box<CoreEvent>),
    /// Valid JSON that is not a valid Event.
    Malformed {
        /// Its metadata, as far as it could be read.
        metadata: Box<ObjectMeta>,
        /// Why it is not an Event.
        error: Arc<str>,
    },
}

impl<'de> Deserialize<'de> for WatchedEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        // What a log line about a malformed object needs, taken before the value is consumed
        // (the whole metadata, managedFields included, would be a copy per event).
        let field = |name: &str| {
            value
                .get("metadata")
                .and_then(|m| m.get(name))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let brief = ObjectMeta {
            name: field("name"),
            namespace: field("namespace"),
            uid: field("uid"),
            resource_version: field("resourceVersion"),
            ..ObjectMeta::default()
        };
        match CoreEvent::deserialize(value) {
            Ok(event) => Ok(Self::Event(Box::new(event))),
            Err(error) => Ok(Self::Malformed {
                metadata: Box::new(brief),
                error: error.to_string().into(),
            }),
        }
    }
}

impl k8s_openapi::Resource for WatchedEvent {
    const API_VERSION: &'static str = <CoreEvent as k8s_openapi::Resource>::API_VERSION;
    const GROUP: &'static str = <CoreEvent as k8s_openapi::Resource>::GROUP;
    const KIND: &'static str = <CoreEvent as k8s_openapi::Resource>::KIND;
    const VERSION: &'static str = <CoreEvent as k8s_openapi::Resource>::VERSION;
    const URL_PATH_SEGMENT: &'static str = <CoreEvent as k8s_openapi::Resource>::URL_PATH_SEGMENT;
    type Scope = <CoreEvent as k8s_openapi::Resource>::Scope;
}

impl k8s_openapi::Metadata for WatchedEvent {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::Event(e) => &e.metadata,
            Self::Malformed { metadata, .. } => metadata,
        }
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Self::Event(e) => &mut e.metadata,
            Self::Malformed { metadata, .. } => metadata,
        }
    }
}

/// What to watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSettings {
    /// Only this namespace (`None`: all namespaces).
    pub namespace: Option<String>,
    /// Only these reasons, one stream each (`watchReasons`); empty: every event.
    pub reasons: Vec<String>,
    /// The watch request's `timeoutSeconds` (`None`: kube's 290 s).
    pub timeout_seconds: Option<u32>,
}

impl WatchSettings {
    /// The field selector of each stream, in stream order: `[""]` for one stream of every
    /// event, else `reason=<r>` per reason (duplicates removed). These are also the streams'
    /// keys in the checkpoint.
    pub fn selectors(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for reason in &self.reasons {
            let sel = format!("reason={}", escape_selector_value(reason.trim()));
            if !reason.trim().is_empty() && !out.contains(&sel) {
                out.push(sel);
            }
        }
        if out.is_empty() {
            out.push(String::new());
        }
        out
    }
}

/// A field selector value with `\`, `,` and `=` escaped (as apimachinery's
/// `fields.EscapeValue`), so a reason cannot change the selector's meaning.
fn escape_selector_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One item of the merged watch: which stream, and what the watcher said.
pub type WatchItem = (usize, Result<watcher::Event<WatchedEvent>, watcher::Error>);

/// The merged watch streams (see [`WatchSettings::selectors`] for their order). Errors are
/// items; after one, the stream that failed waits (kube's default backoff: 800 ms doubling
/// to 30 s, with jitter) and then recovers on its own: it re-watches from its last
/// resourceVersion, or relists after a 410.
pub fn event_stream(
    client: Client,
    settings: &WatchSettings,
) -> impl Stream<Item = WatchItem> + Send + use<> {
    let api: Api<WatchedEvent> = match &settings.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let streams = settings
        .selectors()
        .into_iter()
        .enumerate()
        .map(|(index, selector)| {
            let mut config = watcher::Config::default();
            if !selector.is_empty() {
                config = config.fields(&selector);
            }
            config.timeout = settings.timeout_seconds;
            watcher(api.clone(), config)
                .default_backoff()
                .map(move |item| (index, item))
                .boxed()
        });
    futures::stream::select_all(streams)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_per_reason() {
        let s = WatchSettings::default();
        assert_eq!(s.selectors(), vec![String::new()]);
        let s = WatchSettings {
            reasons: vec![
                "Upgrading".into(),
                " ".into(),
                "Upgrading".into(),
                "X".into(),
            ],
            ..Default::default()
        };
        assert_eq!(s.selectors(), vec!["reason=Upgrading", "reason=X"]);
        let s = WatchSettings {
            reasons: vec![r"a,b=c\d".into()],
            ..Default::default()
        };
        assert_eq!(s.selectors(), vec![r"reason=a\,b\=c\\d"]);
    }

    #[test]
    fn malformed_objects_are_items_not_errors() {
        let ok: WatchedEvent = serde_json::from_str(
            r#"{"metadata":{"name":"a","uid":"u1","resourceVersion":"5"},"involvedObject":{},"count":2}"#,
        )
        .unwrap();
        assert!(matches!(ok, WatchedEvent::Event(e) if e.count == Some(2)));
        let bad: WatchedEvent = serde_json::from_str(
            r#"{"metadata":{"name":"b","resourceVersion":"6"},"involvedObject":{},"count":"many"}"#,
        )
        .unwrap();
        match bad {
            WatchedEvent::Malformed { metadata, error } => {
                assert_eq!(metadata.resource_version.as_deref(), Some("6"));
                assert!(error.contains("invalid type"), "{error}");
            }
            WatchedEvent::Event(_) => panic!("accepted a string count"),
        }
    }
}
