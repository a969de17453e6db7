//! The enriched event as upstream's `json.Marshal(EnhancedEvent)` shapes it.
//!
//! Go's `encoding/json` applies `omitempty` per field: strings and numbers are dropped when
//! zero, nil pointers, maps and slices when nil or empty, but struct-typed fields (`source`,
//! `metadata.creationTimestamp`, `firstTimestamp`, `lastTimestamp`, `eventTime`) are always
//! written — zero times as `null`. This module reproduces that shape so webhook bodies and
//! `toJson .` agree with upstream.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EventSeries, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::{Map, Value};

use crate::event::Event;
use crate::template::gotime::GoTime;

/// The event as a JSON value of upstream's `EnhancedEvent` shape.
pub fn to_go_json(event: Event<'_>) -> Value {
    let mut m = core_event_map(event);
    m.insert("involvedObject".to_owned(), involved_object_json(event));
    m.insert(
        "clusterName".to_owned(),
        Value::String(event.cluster_name().to_owned()),
    );
    Value::Object(m)
}

fn put_str(m: &mut Map<String, Value>, key: &str, v: &Option<String>) {
    if let Some(s) = v.as_deref().filter(|s| !s.is_empty()) {
        m.insert(key.to_owned(), Value::String(s.to_owned()));
    }
}

fn put_map(m: &mut Map<String, Value>, key: &str, v: Option<&BTreeMap<String, String>>) {
    if let Some(map) = v.filter(|map| !map.is_empty()) {
        m.insert(key.to_owned(), str_map_json(map));
    }
}

pub(crate) fn str_map_json(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// A `metav1.Time` as JSON: RFC 3339 seconds in UTC, `null` when zero.
pub(crate) fn time_json(t: GoTime) -> Value {
    if t.is_zero() {
        Value::Null
    } else {
        Value::String(t.format("2006-01-02T15:04:05Z07:00"))
    }
}

/// A `metav1.MicroTime` as JSON: RFC 3339 with microseconds in UTC, `null` when zero.
pub(crate) fn micro_time_json(t: GoTime) -> Value {
    if t.is_zero() {
        Value::Null
    } else {
        Value::String(t.format("2006-01-02T15:04:05.000000Z07:00"))
    }
}

/// The embedded core/v1 Event's fields (without `involvedObject`).
pub(crate) fn core_event_map(event: Event<'_>) -> Map<String, Value> {
    let raw = event.raw();
    let mut m = Map::new();
    m.insert("metadata".to_owned(), object_meta_json(&raw.metadata));
    put_str(&mut m, "reason", &raw.reason);
    put_str(&mut m, "message", &raw.message);
    m.insert("source".to_owned(), source_json(raw.source.as_ref()));
    m.insert(
        "firstTimestamp".to_owned(),
        time_json(GoTime::from_opt(raw.first_timestamp.as_ref().map(|t| t.0))),
    );
    m.insert(
        "lastTimestamp".to_owned(),
        time_json(GoTime::from_opt(raw.last_timestamp.as_ref().map(|t| t.0))),
    );
    // The reference writes `count` even when it is 0 (every line of events.jsonl has it).
    m.insert("count".to_owned(), Value::from(raw.count.unwrap_or(0)));
    put_str(&mut m, "type", &raw.type_);
    m.insert(
        "eventTime".to_owned(),
        micro_time_json(GoTime::from_opt(raw.event_time.as_ref().map(|t| t.0))),
    );
    if let Some(s) = &raw.series {
        m.insert("series".to_owned(), series_json(s));
    }
    put_str(&mut m, "action", &raw.action);
    if let Some(r) = &raw.related {
        m.insert("related".to_owned(), Value::Object(object_ref_map(r)));
    }
    m.insert(
        "reportingComponent".to_owned(),
        Value::String(raw.reporting_component.clone().unwrap_or_default()),
    );
    m.insert(
        "reportingInstance".to_owned(),
        Value::String(raw.reporting_instance.clone().unwrap_or_default()),
    );
    m
}

/// The core/v1 Event alone (`.Event` in templates).
pub(crate) fn core_event_json(event: Event<'_>) -> Value {
    let mut m = core_event_map(event);
    m.insert(
        "involvedObject".to_owned(),
        Value::Object(object_ref_map(&event.raw().involved_object)),
    );
    Value::Object(m)
}

/// `metav1.ObjectMeta`.
pub(crate) fn object_meta_json(meta: &ObjectMeta) -> Value {
    let mut m = Map::new();
    put_str(&mut m, "name", &meta.name);
    put_str(&mut m, "generateName", &meta.generate_name);
    put_str(&mut m, "namespace", &meta.namespace);
    put_str(&mut m, "selfLink", &meta.self_link);
    put_str(&mut m, "uid", &meta.uid);
    put_str(&mut m, "resourceVersion", &meta.resource_version);
    if let Some(g) = meta.generation.filter(|g| *g != 0) {
        m.insert("generation".to_owned(), Value::from(g));
    }
    m.insert(
        "creationTimestamp".to_owned(),
        time_json(GoTime::from_opt(
            meta.creation_timestamp.as_ref().map(|t| t.0),
        )),
    );
    if let Some(t) = &meta.deletion_timestamp {
        m.insert(
            "deletionTimestamp".to_owned(),
            time_json(GoTime::from_timestamp(t.0)),
        );
    }
    if let Some(s) = meta.deletion_grace_period_seconds {
        m.insert("deletionGracePeriodSeconds".to_owned(), Value::from(s));
    }
    put_map(&mut m, "labels", meta.labels.as_ref());
    put_map(&mut m, "annotations", meta.annotations.as_ref());
    if let Some(refs) = meta.owner_references.as_ref().filter(|r| !r.is_empty()) {
        m.insert("ownerReferences".to_owned(), owner_refs_json(refs));
    }
    if let Some(f) = meta.finalizers.as_ref().filter(|f| !f.is_empty()) {
        m.insert(
            "finalizers".to_owned(),
            Value::Array(f.iter().map(|s| Value::String(s.clone())).collect()),
        );
    }
    if let Some(mf) = meta.managed_fields.as_ref().filter(|f| !f.is_empty()) {
        m.insert(
            "managedFields".to_owned(),
            serde_json::to_value(mf).unwrap_or(Value::Null),
        );
    }
    Value::Object(m)
}

/// `core/v1.EventSource` (both fields omitempty; always an object).
pub(crate) fn source_json(source: Option<&EventSource>) -> Value {
    let mut m = Map::new();
    if let Some(s) = source {
        put_str(&mut m, "component", &s.component);
        put_str(&mut m, "host", &s.host);
    }
    Value::Object(m)
}

/// `core/v1.EventSeries`.
pub(crate) fn series_json(s: &EventSeries) -> Value {
    let mut m = Map::new();
    if let Some(c) = s.count.filter(|c| *c != 0) {
        m.insert("count".to_owned(), Value::from(c));
    }
    m.insert(
        "lastObservedTime".to_owned(),
        micro_time_json(GoTime::from_opt(s.last_observed_time.as_ref().map(|t| t.0))),
    );
    Value::Object(m)
}

/// `core/v1.ObjectReference` fields (all omitempty).
pub(crate) fn object_ref_map(r: &ObjectReference) -> Map<String, Value> {
    let mut m = Map::new();
    put_str(&mut m, "kind", &r.kind);
    put_str(&mut m, "namespace", &r.namespace);
    put_str(&mut m, "name", &r.name);
    put_str(&mut m, "uid", &r.uid);
    put_str(&mut m, "apiVersion", &r.api_version);
    put_str(&mut m, "resourceVersion", &r.resource_version);
    put_str(&mut m, "fieldPath", &r.field_path);
    m
}

/// `metav1.OwnerReference`.
pub(crate) fn owner_ref_json(r: &OwnerReference) -> Value {
    let mut m = Map::new();
    m.insert(
        "apiVersion".to_owned(),
        Value::String(r.api_version.clone()),
    );
    m.insert("kind".to_owned(), Value::String(r.kind.clone()));
    m.insert("name".to_owned(), Value::String(r.name.clone()));
    m.insert("uid".to_owned(), Value::String(r.uid.clone()));
    if let Some(c) = r.controller {
        m.insert("controller".to_owned(), Value::Bool(c));
    }
    if let Some(b) = r.block_owner_deletion {
        m.insert("blockOwnerDeletion".to_owned(), Value::Bool(b));
    }
    Value::Object(m)
}

pub(crate) fn owner_refs_json(refs: &[OwnerReference]) -> Value {
    Value::Array(refs.iter().map(owner_ref_json).collect())
}

/// upstream's `EnhancedObjectReference`: the involved object plus its enrichment.
pub(crate) fn involved_object_json(event: Event<'_>) -> Value {
    let mut m = object_ref_map(&event.raw().involved_object);
    let e = event.enrichment();
    put_map(&mut m, "labels", e.labels.as_ref());
    put_map(&mut m, "annotations", e.annotations.as_ref());
    if let Some(refs) = e.owner_references.as_ref().filter(|r| !r.is_empty()) {
        m.insert("ownerReferences".to_owned(), owner_refs_json(refs));
    }
    m.insert("deleted".to_owned(), Value::Bool(e.deleted));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EnrichedEvent;

    #[test]
    fn minimal_event_shape() {
        let ev =
            EnrichedEvent::from_json_str(r#"{"metadata":{},"involvedObject":{}}"#).expect("event");
        let v = to_go_json(ev.view());
        assert_eq!(
            v,
            serde_json::json!({
                "metadata": {"creationTimestamp": null},
                "involvedObject": {"deleted": false},
                "source": {},
                "firstTimestamp": null,
                "lastTimestamp": null,
                "eventTime": null,
                "count": 0,
                "reportingComponent": "",
                "reportingInstance": "",
                "clusterName": ""
            })
        );
    }
}
