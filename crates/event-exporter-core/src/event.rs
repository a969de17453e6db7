//! The event model: an owned [`EnrichedEvent`] and the borrowed [`Event`] view that routing and
//! rendering read through.
//!
//! The exporter enriches a `core/v1` Event with facts about its involved object (labels,
//! annotations, ownerReferences, whether it was deleted) and with the cluster name. Upstream
//! (`kubernetes-event-exporter`) models this as `EnhancedEvent`; its JSON shape is the core/v1
//! Event's fields plus `clusterName`, with the enrichment inlined into `involvedObject`. Events
//! files (`events.jsonl`, `kubectl get events -o json`) use that shape.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde::{Deserialize, Serialize};

/// What the exporter learns about an event's involved object by looking it up.
///
/// `None` maps are kept apart from empty ones, as Go keeps `nil` apart from `{}`: templates
/// render `toJson` of a missing map as `null`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectEnrichment {
    /// The involved object's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// The involved object's annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The involved object's owner references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_references: Option<Vec<OwnerReference>>,
    /// Whether the involved object was gone when it was looked up.
    #[serde(default)]
    pub deleted: bool,
}

/// An owned event with its enrichment: what the watcher or an events file produces.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnrichedEvent {
    /// The Kubernetes event as the API served it.
    pub event: CoreEvent,
    /// What the exporter learned about the involved object.
    pub enrichment: ObjectEnrichment,
    /// The cluster name the exporter is configured with (`clusterName`); shared, so stamping it
    /// on every watched event is a reference count, not a copy.
    pub cluster_name: Arc<str>,
}

/// Why an event document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventParseError {
    /// The text is not JSON, or not an object of the Event shape.
    #[error("not a Kubernetes Event: {0}")]
    Json(#[from] serde_json::Error),
}

impl EnrichedEvent {
    /// Reads one event from a JSON value in upstream's `EnhancedEvent` shape (a plain `core/v1`
    /// Event is fine too: its enrichment is then empty).
    pub fn from_json_value(value: &serde_json::Value) -> Result<Self, EventParseError> {
        let event = CoreEvent::deserialize(value)?;
        let enrichment = match value.get("involvedObject") {
            Some(obj) => ObjectEnrichment::deserialize(obj)?,
            None => ObjectEnrichment::default(),
        };
        let cluster_name = value
            .get("clusterName")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .into();
        Ok(Self {
            event,
            enrichment,
            cluster_name,
        })
    }

    /// Reads one event from JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, EventParseError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        Self::from_json_value(&value)
    }

    /// The borrowed view that matching and rendering use.
    pub fn view(&self) -> Event<'_> {
        Event::new(&self.event, &self.enrichment, &self.cluster_name)
    }
}

/// A borrowed, `Copy` view over an event and its enrichment.
///
/// Routing and rendering read every field through this view; nothing is cloned. Absent optional
/// fields read as `""` (or `0`), as Go's zero values do.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    event: &'a CoreEvent,
    enrichment: &'a ObjectEnrichment,
    cluster_name: &'a str,
}

fn opt_str(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

impl<'a> Event<'a> {
    /// A view over parts that may be owned in different places (the watcher keeps the event,
    /// the enrichment cache keeps the enrichment).
    pub fn new(
        event: &'a CoreEvent,
        enrichment: &'a ObjectEnrichment,
        cluster_name: &'a str,
    ) -> Self {
        Self {
            event,
            enrichment,
            cluster_name,
        }
    }

    /// A view over an event that has not been enriched (yet), with no cluster name: what the
    /// watch decides on before looking anything up.
    pub fn unenriched(event: &'a CoreEvent) -> Self {
        static NONE: ObjectEnrichment = ObjectEnrichment {
            labels: None,
            annotations: None,
            owner_references: None,
            deleted: false,
        };
        Self::new(event, &NONE, "")
    }

    /// The underlying Kubernetes event.
    pub fn raw(&self) -> &'a CoreEvent {
        self.event
    }

    /// The involved object's enrichment.
    pub fn enrichment(&self) -> &'a ObjectEnrichment {
        self.enrichment
    }

    /// The configured cluster name.
    pub fn cluster_name(&self) -> &'a str {
        self.cluster_name
    }

    /// `message`.
    pub fn message(&self) -> &'a str {
        opt_str(&self.event.message)
    }

    /// `involvedObject.apiVersion`.
    pub fn api_version(&self) -> &'a str {
        opt_str(&self.event.involved_object.api_version)
    }

    /// `involvedObject.kind`.
    pub fn kind(&self) -> &'a str {
        opt_str(&self.event.involved_object.kind)
    }

    /// `involvedObject.name`.
    pub fn object_name(&self) -> &'a str {
        opt_str(&self.event.involved_object.name)
    }

    /// `involvedObject.namespace`.
    pub fn object_namespace(&self) -> &'a str {
        opt_str(&self.event.involved_object.namespace)
    }

    /// The event's own `metadata.namespace` (what rules' `namespace` matches).
    pub fn namespace(&self) -> &'a str {
        opt_str(&self.event.metadata.namespace)
    }

    /// The event's own `metadata.name`.
    pub fn name(&self) -> &'a str {
        opt_str(&self.event.metadata.name)
    }

    /// The event's own `metadata.uid`.
    pub fn uid(&self) -> &'a str {
        opt_str(&self.event.metadata.uid)
    }

    /// `reason`.
    pub fn reason(&self) -> &'a str {
        opt_str(&self.event.reason)
    }

    /// `type` (`Normal`, `Warning`).
    pub fn type_(&self) -> &'a str {
        opt_str(&self.event.type_)
    }

    /// `source.component`.
    pub fn component(&self) -> &'a str {
        self.event
            .source
            .as_ref()
            .map_or("", |s| opt_str(&s.component))
    }

    /// `source.host`.
    pub fn host(&self) -> &'a str {
        self.event.source.as_ref().map_or("", |s| opt_str(&s.host))
    }

    /// `count` (0 when absent, as Go's zero value).
    pub fn count(&self) -> i32 {
        self.event.count.unwrap_or(0)
    }

    /// Which occurrence this is: `series.count` (the events.k8s.io way), else `count`; `None`
    /// when the event carries neither (a first occurrence in the new API).
    pub fn occurrence(&self) -> Option<i32> {
        self.event
            .series
            .as_ref()
            .and_then(|s| s.count)
            .or(self.event.count)
    }

    /// When this occurrence happened, in Unix milliseconds: `series.lastObservedTime`, else
    /// `lastTimestamp`, else `eventTime`, else `firstTimestamp`, else the event's creation time.
    /// `None` when the event carries no time at all.
    pub fn occurred_at_ms(&self) -> Option<i64> {
        let raw = self.event;
        raw.series
            .as_ref()
            .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
            .or_else(|| raw.last_timestamp.as_ref().map(|t| t.0))
            .or_else(|| raw.event_time.as_ref().map(|t| t.0))
            .or_else(|| raw.first_timestamp.as_ref().map(|t| t.0))
            .or_else(|| raw.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .map(|ts| ts.as_millisecond())
    }

    /// A label of the involved object.
    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.enrichment
            .labels
            .as_ref()
            .and_then(|m| m.get(key))
            .map(String::as_str)
    }

    /// An annotation of the involved object.
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.enrichment
            .annotations
            .as_ref()
            .and_then(|m| m.get(key))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_enhanced_event_shape() {
        let text = r#"{"metadata":{"name":"a.1","namespace":"ns1","uid":"u1"},
            "involvedObject":{"kind":"Pod","name":"a","apiVersion":"v1",
              "labels":{"team":"data"},"annotations":{"x/y":"z"},"deleted":true},
            "reason":"BackOff","message":"m","source":{"component":"kubelet","host":"h"},
            "count":3,"type":"Warning","clusterName":"prod"}"#;
        let ev = EnrichedEvent::from_json_str(text).unwrap();
        let v = ev.view();
        assert_eq!(v.kind(), "Pod");
        assert_eq!(v.namespace(), "ns1");
        assert_eq!(v.label("team"), Some("data"));
        assert_eq!(v.annotation("x/y"), Some("z"));
        assert_eq!(v.label("nope"), None);
        assert!(v.enrichment().deleted);
        assert_eq!(v.count(), 3);
        assert_eq!(v.component(), "kubelet");
        assert_eq!(v.cluster_name(), "prod");
        assert_eq!(v.occurred_at_ms(), None);
    }

    #[test]
    fn occurrence_time_prefers_the_latest_observation() {
        let ev = EnrichedEvent::from_json_str(
            r#"{"metadata":{"creationTimestamp":"2026-11-23T10:00:00Z"},"involvedObject":{},
                "firstTimestamp":"2026-11-23T10:00:01Z","lastTimestamp":"2026-11-23T10:00:02Z"}"#,
        )
        .unwrap();
        assert_eq!(ev.view().occurred_at_ms(), Some(1_795_428_002_000));
        let series = EnrichedEvent::from_json_str(
            r#"{"metadata":{},"involvedObject":{},"eventTime":"2026-11-23T10:00:00.500000Z",
                "series":{"count":3,"lastObservedTime":"2026-11-23T10:05:00.250000Z"}}"#,
        )
        .unwrap();
        assert_eq!(series.view().occurred_at_ms(), Some(1_795_428_300_250));
    }

    #[test]
    fn missing_fields_read_as_zero_values() {
        let ev = EnrichedEvent::from_json_str(r#"{"metadata":{},"involvedObject":{}}"#).unwrap();
        let v = ev.view();
        assert_eq!(v.message(), "");
        assert_eq!(v.host(), "");
        assert_eq!(v.count(), 0);
        assert_eq!(v.enrichment().labels, None);
    }

    #[test]
    fn rejects_non_event() {
        assert!(EnrichedEvent::from_json_str("[1,2]").is_err());
        assert!(EnrichedEvent::from_json_str("{not json").is_err());
    }
}
