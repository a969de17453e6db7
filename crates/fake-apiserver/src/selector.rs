//! Field and label selectors.

use serde_json::Value;

use crate::status::Status;

/// Which field-selector vocabulary applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldVocab {
    /// core/v1 events (§6).
    CoreEvent,
    /// events.k8s.io/v1 events (§6); mapped onto the stored core fields.
    EventsV1,
    /// Everything else: only `metadata.name` and `metadata.namespace`.
    Generic,
}

#[derive(Clone, Debug)]
struct FieldReq {
    /// The core (storage) field name.
    field: &'static str,
    value: String,
    negate: bool,
}

/// A parsed field selector.
#[derive(Clone, Debug, Default)]
pub(crate) struct FieldSelector {
    reqs: Vec<FieldReq>,
}

const CORE_EVENT_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

fn map_key(vocab: FieldVocab, key: &str) -> Result<&'static str, Status> {
    match vocab {
        FieldVocab::CoreEvent => CORE_EVENT_FIELDS
            .iter()
            .find(|k| **k == key)
            .copied()
            .ok_or_else(|| Status::bad_request(format!("field label not supported: {key}"))),
        FieldVocab::EventsV1 => {
            let core = match key {
                "metadata.name" => "metadata.name",
                "metadata.namespace" => "metadata.namespace",
                "reason" => "reason",
                "type" => "type",
                "source" => "source",
                "reportingController" => "reportingComponent",
                "regarding.kind" => "involvedObject.kind",
                "regarding.namespace" => "involvedObject.namespace",
                "regarding.name" => "involvedObject.name",
                "regarding.uid" => "involvedObject.uid",
                "regarding.apiVersion" => "involvedObject.apiVersion",
                "regarding.resourceVersion" => "involvedObject.resourceVersion",
                "regarding.fieldPath" => "involvedObject.fieldPath",
                _ => {
                    return Err(Status::bad_request(format!(
                        "field label not supported: {key}"
                    )));
                }
            };
            Ok(core)
        }
        FieldVocab::Generic => match key {
            "metadata.name" => Ok("metadata.name"),
            "metadata.namespace" => Ok("metadata.namespace"),
            _ => Err(Status::bad_request(format!(
                "\"{key}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
            ))),
        },
    }
}

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = obj;
    for p in path {
        match cur.get(p) {
            Some(v) => cur = v,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

fn field_value<'a>(obj: &'a Value, field: &str) -> &'a str {
    match field {
        "source" => {
            let c = str_at(obj, &["source", "component"]);
            if c.is_empty() {
                str_at(obj, &["reportingComponent"])
            } else {
                c
            }
        }
        other => {
            let parts: Vec<&str> = other.split('.').collect();
            str_at(obj, &parts)
        }
    }
}

impl FieldSelector {
    /// Parse `key=value,key!=value,…`.
    pub(crate) fn parse(s: &str, vocab: FieldVocab) -> Result<FieldSelector, Status> {
        let mut reqs = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (key, value, negate) = if let Some((k, v)) = term.split_once("!=") {
                (k, v, true)
            } else if let Some((k, v)) = term.split_once("==") {
                (k, v, false)
            } else if let Some((k, v)) = term.split_once('=') {
                (k, v, false)
            } else {
                return Err(Status::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                )));
            };
            let field = map_key(vocab, key.trim())?;
            reqs.push(FieldReq {
                field,
                value: value.trim().to_string(),
                negate,
            });
        }
        Ok(FieldSelector { reqs })
    }

    /// Whether the selector is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether the (stored) object matches.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.reqs
            .iter()
            .all(|r| (field_value(obj, r.field) == r.value) != r.negate)
    }
}

#[derive(Clone, Debug)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`).
#[derive(Clone, Debug, Default)]
pub(crate) struct LabelSelector {
    reqs: Vec<LabelReq>,
}

/// Split on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

impl LabelSelector {
    /// Parse a label selector.
    pub(crate) fn parse(s: &str) -> Result<LabelSelector, Status> {
        let bad = |t: &str| Status::bad_request(format!("unable to parse requirement: {t}"));
        let mut reqs = Vec::new();
        for term in split_top(s)
            .into_iter()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let req = if let Some((k, v)) = term.split_once("!=") {
                LabelReq::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = term.split_once("==") {
                LabelReq::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = term.split_once('=') {
                LabelReq::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, rest)) = term.split_once(" notin ") {
                LabelReq::NotIn(k.trim().into(), parse_set(rest).ok_or_else(|| bad(term))?)
            } else if let Some((k, rest)) = term.split_once(" in ") {
                LabelReq::In(k.trim().into(), parse_set(rest).ok_or_else(|| bad(term))?)
            } else if let Some(k) = term.strip_prefix('!') {
                LabelReq::NotExists(k.trim().into())
            } else if term.contains(|c: char| c.is_whitespace() || c == '(' || c == ')') {
                return Err(bad(term));
            } else {
                LabelReq::Exists(term.into())
            };
            reqs.push(req);
        }
        Ok(LabelSelector { reqs })
    }

    /// Whether the selector is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether the object's `metadata.labels` match.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let labels = obj.get("metadata").and_then(|m| m.get("labels"));
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.reqs.iter().all(|r| match r {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
        })
    }
}

/// Field + label selector together.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selectors {
    pub(crate) field: FieldSelector,
    pub(crate) label: LabelSelector,
}

impl Selectors {
    /// Whether the stored object matches both selectors.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        (self.field.is_empty() || self.field.matches(obj))
            && (self.label.is_empty() || self.label.matches(obj))
    }

    /// Whether both selectors are empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.field.is_empty() && self.label.is_empty()
    }
}
