//! Event specifics: core/v1 normalisation, the events.k8s.io/v1 view (§7) and create validation.

use serde_json::{Map, Value};

use crate::status::{ResourceRef, Status};

const CORE_EVENTS: ResourceRef<'static> = ResourceRef {
    plural: "events",
    group: "",
};
const V1_EVENTS: ResourceRef<'static> = ResourceRef {
    plural: "events",
    group: "events.k8s.io",
};

/// Fill in the fields the real apiserver always serializes for a core/v1 Event.
pub(crate) fn normalize_core(obj: &mut Map<String, Value>) {
    for key in ["reportingComponent", "reportingInstance"] {
        if !obj.get(key).is_some_and(Value::is_string) {
            obj.insert(key.to_string(), Value::String(String::new()));
        }
    }
    for key in ["eventTime", "firstTimestamp", "lastTimestamp"] {
        obj.entry(key).or_insert(Value::Null);
    }
    for key in ["source", "involvedObject"] {
        if !obj.get(key).is_some_and(Value::is_object) {
            obj.insert(key.to_string(), Value::Object(Map::new()));
        }
    }
    if obj.get("count").and_then(Value::as_i64) == Some(0) {
        obj.remove("count");
    }
}

fn non_empty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Object(m) => !m.is_empty(),
        Value::Number(n) => n.as_i64() != Some(0),
        _ => true,
    }
}

/// Stored (core) event → events.k8s.io/v1 JSON (without kind/apiVersion).
pub(crate) fn to_v1(core: &Value) -> Value {
    let mut out = Map::new();
    let Some(c) = core.as_object() else {
        return Value::Object(out);
    };
    if let Some(m) = c.get("metadata") {
        out.insert("metadata".into(), m.clone());
    }
    out.insert(
        "eventTime".into(),
        c.get("eventTime").cloned().unwrap_or(Value::Null),
    );
    for key in [
        "series",
        "action",
        "related",
        "reportingInstance",
        "reason",
        "type",
    ] {
        if let Some(v) = c.get(key).filter(|v| non_empty(v)) {
            out.insert(key.into(), v.clone());
        }
    }
    for (from, to) in [
        ("involvedObject", "regarding"),
        ("message", "note"),
        ("source", "deprecatedSource"),
        ("firstTimestamp", "deprecatedFirstTimestamp"),
        ("lastTimestamp", "deprecatedLastTimestamp"),
        ("count", "deprecatedCount"),
        ("reportingComponent", "reportingController"),
    ] {
        if let Some(v) = c.get(from).filter(|v| non_empty(v)) {
            out.insert(to.into(), v.clone());
        }
    }
    if !out.contains_key("regarding") {
        out.insert("regarding".into(), Value::Object(Map::new()));
    }
    Value::Object(out)
}

/// events.k8s.io/v1 JSON → stored (core) form (kind/apiVersion dropped).
pub(crate) fn from_v1(v1: Value) -> Value {
    let Value::Object(mut m) = v1 else {
        return v1;
    };
    m.remove("kind");
    m.remove("apiVersion");
    for (from, to) in [
        ("regarding", "involvedObject"),
        ("note", "message"),
        ("deprecatedSource", "source"),
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
        ("reportingController", "reportingComponent"),
    ] {
        match m.remove(from) {
            Some(v) => {
                m.insert(to.into(), v);
            }
            None => {
                m.remove(to);
            }
        }
    }
    Value::Object(m)
}

fn str_field<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Validate a core-form event for create (§7). `via_v1`: created through events.k8s.io/v1
/// (`original` is then the v1 body, checked for the extra rules).
pub(crate) fn validate_create(
    core: &Map<String, Value>,
    namespace: &str,
    name: &str,
    original_v1: Option<&Value>,
) -> Result<(), Status> {
    let res = if original_v1.is_some() {
        V1_EVENTS
    } else {
        CORE_EVENTS
    };
    let invalid = |field: &str, detail: String| Status::invalid("Event", res, name, field, &detail);
    if let Some(v1) = original_v1 {
        if v1.get("eventTime").is_none_or(Value::is_null) {
            return Err(invalid("eventTime", "Required value".into()));
        }
        let ty = v1.get("type").and_then(Value::as_str).unwrap_or("");
        if ty != "Normal" && ty != "Warning" {
            return Err(invalid(
                "type",
                format!("Unsupported value: \"{ty}\": supported values: \"Normal\", \"Warning\""),
            ));
        }
        for key in [
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount",
        ] {
            if v1.get(key).is_some_and(non_empty) {
                return Err(invalid(key, "Invalid value: needs to be unset".into()));
            }
        }
        if let Some(series) = v1.get("series").filter(|s| !s.is_null()) {
            if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
                return Err(invalid(
                    "series.count",
                    "Invalid value: should be at least 2".into(),
                ));
            }
            if series.get("lastObservedTime").is_none_or(Value::is_null) {
                return Err(invalid("series.lastObservedTime", "Required value".into()));
            }
        }
    }
    let new_style = core.get("eventTime").is_some_and(|v| !v.is_null());
    if new_style {
        let ctl_field = if original_v1.is_some() {
            "reportingController"
        } else {
            "reportingComponent"
        };
        for (key, field) in [
            ("reportingComponent", ctl_field),
            ("reportingInstance", "reportingInstance"),
            ("action", "action"),
            ("reason", "reason"),
        ] {
            if str_field(core, key).is_empty() {
                return Err(invalid(field, "Required value".into()));
            }
        }
        let note_field = if original_v1.is_some() {
            "note"
        } else {
            "message"
        };
        if str_field(core, "message").len() > 1024 {
            return Err(invalid(
                note_field,
                "Too long: may not be more than 1024 bytes".into(),
            ));
        }
    } else {
        let io_ns = core
            .get("involvedObject")
            .and_then(|o| o.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let ok = if io_ns.is_empty() {
            namespace.is_empty() || namespace == "default"
        } else {
            io_ns == namespace
        };
        if !ok {
            return Err(invalid(
                "involvedObject.namespace",
                format!("Invalid value: \"{io_ns}\": does not match event.namespace"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn v1_view_round_trip() {
        let mut core = json!({
            "metadata": {"name": "a", "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"},
            "message": "hi", "reason": "R", "type": "Normal", "count": 3,
            "source": {"component": "kubelet"},
            "firstTimestamp": "2024-05-01T12:00:00Z", "lastTimestamp": "2024-05-01T12:00:00Z"
        });
        normalize_core(core.as_object_mut().unwrap());
        let v1 = to_v1(&core);
        assert_eq!(v1["eventTime"], Value::Null);
        assert_eq!(v1["note"], "hi");
        assert_eq!(v1["deprecatedCount"], 3);
        assert_eq!(v1["regarding"]["kind"], "Pod");
        assert!(v1.get("reportingController").is_none());
        let mut back = from_v1(v1);
        normalize_core(back.as_object_mut().unwrap());
        assert_eq!(back, core);
    }

    #[test]
    fn legacy_namespace_rule() {
        let ev = json!({"involvedObject": {"namespace": "other"}});
        let err = validate_create(ev.as_object().unwrap(), "ns", "x", None).unwrap_err();
        assert_eq!(err.code, 422);
        let ev = json!({"involvedObject": {}});
        assert!(validate_create(ev.as_object().unwrap(), "default", "x", None).is_ok());
        assert!(validate_create(ev.as_object().unwrap(), "kube-system", "x", None).is_err());
    }
}
