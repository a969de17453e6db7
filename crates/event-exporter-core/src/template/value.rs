//! Runtime values: a small enum that borrows from the event, with Go's printing, truth and
//! JSON rules.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;

use k8s_openapi::api::core::v1::{EventSeries, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::gotime::GoTime;
use super::limits::{Bound, MAX_OUTPUT, check_depth, check_len};
use crate::event::Event;
use crate::event_json;

/// Go integer types the templates meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IntKind {
    Int,
    Int32,
    Int64,
}

impl IntKind {
    fn name(self) -> &'static str {
        match self {
            IntKind::Int => "int",
            IntKind::Int32 => "int32",
            IntKind::Int64 => "int64",
        }
    }
}

/// Which Go time type a time value has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeKind {
    /// `metav1.Time`.
    Meta,
    /// `metav1.MicroTime`.
    Micro,
    /// `time.Time`.
    Std,
}

/// Element type of a list, for type names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListKind {
    /// `[]interface {}`
    Iface,
    /// `[]string`
    Str,
}

/// A Go struct inside the event.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Obj<'a> {
    /// `main.EnhancedEvent`.
    Event(Event<'a>),
    /// The embedded `v1.Event`.
    CoreEvent(Event<'a>),
    /// `metav1.TypeMeta` (always empty on events).
    TypeMeta,
    /// `metav1.ObjectMeta`.
    ObjectMeta(&'a ObjectMeta),
    /// `v1.EventSource` (absent reads as the zero struct).
    Source(Option<&'a EventSource>),
    /// `main.EnhancedObjectReference`.
    Involved(Event<'a>),
    /// `v1.ObjectReference`.
    Reference(&'a ObjectReference),
    /// `v1.EventSeries`.
    Series(&'a EventSeries),
    /// `metav1.OwnerReference`.
    OwnerRef(&'a OwnerReference),
}

/// A slice borrowed from the event.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Slice<'a> {
    /// `[]metav1.OwnerReference`.
    OwnerRefs(&'a [OwnerReference]),
    /// `[]string`.
    Strs(&'a [String]),
    /// `[]metav1.ManagedFieldsEntry` (only its length is modelled).
    ManagedFields(usize),
}

/// A shared, mutable `map[string]interface{}` (sprig's `set` mutates in place).
///
/// A dict never contains itself: `set` and `merge` refuse to store a value that contains the
/// dict they change (see `sprig::contains_dict`), so values are trees with shared branches and
/// everything that walks them ends.
pub(crate) type DictRef<'a> = Rc<RefCell<Map<'a>>>;

/// The entries of a dict. Dropping one never recurses (see [`tear_down`]): a template may nest
/// values as deep as it likes by mutation, and the stack must not pay for it.
#[derive(Debug, Default)]
pub(crate) struct Map<'a>(pub(crate) BTreeMap<String, Value<'a>>);

/// The elements of a list; dropped without recursion, as [`Map`].
#[derive(Debug, Default)]
pub(crate) struct Items<'a>(pub(crate) Vec<Value<'a>>);

impl<'a> std::ops::Deref for Map<'a> {
    type Target = BTreeMap<String, Value<'a>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Map<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<'a> std::ops::Deref for Items<'a> {
    type Target = Vec<Value<'a>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// Whether `v` is a list or a dict built by the template (what can hold other values).
pub(crate) fn is_container(v: &Value<'_>) -> bool {
    matches!(v, Value::List(..) | Value::Dict(_))
}

/// Drops `stack` and every list or dict only it holds, one at a time: a container whose last
/// handle is dropped gives its elements to the stack instead of dropping them itself.
fn tear_down(mut stack: Vec<Value<'_>>) {
    while let Some(v) = stack.pop() {
        match v {
            Value::List(items, _) => {
                if let Ok(mut items) = Rc::try_unwrap(items) {
                    stack.append(&mut items.0);
                }
            }
            Value::Dict(map) => {
                if let Ok(map) = Rc::try_unwrap(map) {
                    let mut map = map.into_inner();
                    stack.extend(std::mem::take(&mut map.0).into_values());
                }
            }
            _ => {}
        }
    }
}

impl Drop for Map<'_> {
    fn drop(&mut self) {
        if self.0.values().any(is_container) {
            tear_down(std::mem::take(&mut self.0).into_values().collect());
        }
    }
}

impl Drop for Items<'_> {
    fn drop(&mut self) {
        if self.0.iter().any(is_container) {
            tear_down(std::mem::take(&mut self.0));
        }
    }
}

/// A new dict holding `entries`.
pub(crate) fn new_dict<'a>(entries: BTreeMap<String, Value<'a>>) -> DictRef<'a> {
    Rc::new(RefCell::new(Map(entries)))
}

/// A template value.
#[derive(Clone, Debug)]
pub(crate) enum Value<'a> {
    /// Go's invalid `reflect.Value` (a missing map key): prints `<no value>`.
    Missing,
    /// An untyped nil.
    Nil,
    Bool(bool),
    Int(i64, IntKind),
    Float(f64),
    Str(&'a str),
    String(Rc<str>),
    Time(GoTime, TimeKind),
    /// `map[string]string`; `None` is a nil map.
    StrMap(Option<&'a BTreeMap<String, String>>),
    /// A slice of the event; `None` is a nil slice.
    Slice(Option<Slice<'a>>),
    List(Rc<Items<'a>>, ListKind),
    Dict(DictRef<'a>),
    /// A struct of the event. `ptr`: the value is a pointer to it. `addr`: it was reached
    /// through a pointer (Go then prints it with its pointer `String()` method).
    Obj {
        obj: Obj<'a>,
        ptr: bool,
        addr: bool,
    },
    /// A nil pointer of the named Go type.
    NilPtr(&'static str),
}

impl<'a> Value<'a> {
    /// An owned string value.
    pub(crate) fn string(s: String) -> Self {
        Value::String(Rc::from(s))
    }

    /// A list value of `items`.
    pub(crate) fn list(items: Vec<Value<'a>>, kind: ListKind) -> Self {
        Value::List(Rc::new(Items(items)), kind)
    }

    /// A dict value of `entries`.
    pub(crate) fn dict(entries: BTreeMap<String, Value<'a>>) -> Self {
        Value::Dict(new_dict(entries))
    }

    /// What building this value costs a render's step budget (see
    /// [`MAX_STEPS`](super::limits::MAX_STEPS)): one step per element, and per 16 bytes of the
    /// strings made for it (its keys, and the strings only it holds: `splitList` made them; a
    /// string shared with another value was paid for when it was made).
    pub(crate) fn weight(&self) -> u64 {
        fn made(v: &Value<'_>) -> u64 {
            match v {
                Value::String(s) if Rc::strong_count(s) == 1 => (s.len() / 16) as u64,
                _ => 0,
            }
        }
        match self {
            Value::String(s) => (s.len() / 16) as u64,
            Value::List(l, _) => l.iter().map(|v| 1 + made(v)).sum(),
            Value::Dict(d) => d
                .borrow()
                .iter()
                .map(|(k, v)| 1 + (k.len() / 16) as u64 + made(v))
                .sum(),
            _ => 0,
        }
    }

    /// What reading this string costs a function given it (one step per 16 bytes: a scan, a
    /// hash, a copy); nothing for other values (a function that walks a list pays per element
    /// as it does).
    pub(crate) fn scan_weight(&self) -> u64 {
        self.as_str().map_or(0, |s| (s.len() / 16) as u64)
    }

    /// Element `i` of a list-like value, without copying the others.
    pub(crate) fn list_item(&self, i: usize) -> Option<Value<'a>> {
        match self {
            Value::List(l, _) => l.get(i).cloned(),
            Value::Slice(Some(Slice::OwnerRefs(r))) => {
                r.get(i).map(|o| Value::obj(Obj::OwnerRef(o)))
            }
            Value::Slice(Some(Slice::Strs(r))) => r.get(i).map(|s| Value::Str(s)),
            _ => None,
        }
    }

    /// The string, if the value is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A struct value reached through the event pointer.
    pub(crate) fn obj(obj: Obj<'a>) -> Self {
        Value::Obj {
            obj,
            ptr: false,
            addr: true,
        }
    }

    /// As passed through an `interface{}` parameter: a missing value becomes nil and a struct
    /// loses its addressability.
    pub(crate) fn into_iface(self) -> Self {
        match self {
            Value::Missing => Value::Nil,
            Value::Obj { obj, ptr, .. } => Value::Obj {
                obj,
                ptr,
                addr: false,
            },
            v => v,
        }
    }

    /// Go's type name, as `%T` and error messages print it.
    pub(crate) fn type_name(&self) -> String {
        match self {
            Value::Missing | Value::Nil => "<nil>".to_owned(),
            Value::Bool(_) => "bool".to_owned(),
            Value::Int(_, k) => k.name().to_owned(),
            Value::Float(_) => "float64".to_owned(),
            Value::Str(_) | Value::String(_) => "string".to_owned(),
            Value::Time(_, TimeKind::Meta) => "v1.Time".to_owned(),
            Value::Time(_, TimeKind::Micro) => "v1.MicroTime".to_owned(),
            Value::Time(_, TimeKind::Std) => "time.Time".to_owned(),
            Value::StrMap(_) => "map[string]string".to_owned(),
            Value::Slice(s) => match s {
                Some(Slice::OwnerRefs(_)) | None => "[]v1.OwnerReference".to_owned(),
                Some(Slice::Strs(_)) => "[]string".to_owned(),
                Some(Slice::ManagedFields(_)) => "[]v1.ManagedFieldsEntry".to_owned(),
            },
            Value::List(_, ListKind::Iface) => "[]interface {}".to_owned(),
            Value::List(_, ListKind::Str) => "[]string".to_owned(),
            Value::Dict(_) => "map[string]interface {}".to_owned(),
            Value::Obj { obj, ptr, .. } => {
                let n = obj_type_name(obj);
                if *ptr { format!("*{n}") } else { n.to_owned() }
            }
            Value::NilPtr(n) => (*n).to_owned(),
        }
    }

    /// Go's `isTrue` (text/template truth).
    pub(crate) fn truth(&self) -> bool {
        match self {
            Value::Missing | Value::Nil | Value::NilPtr(_) => false,
            Value::Bool(b) => *b,
            Value::Int(i, _) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::String(s) => !s.is_empty(),
            Value::StrMap(m) => m.is_some_and(|m| !m.is_empty()),
            Value::Slice(_) | Value::List(..) | Value::Dict(_) => self.len().unwrap_or(0) > 0,
            Value::Time(..) | Value::Obj { .. } => true,
        }
    }

    /// sprig's `empty`.
    pub(crate) fn is_empty(&self) -> bool {
        !self.truth()
    }

    /// `len`, for the kinds that have one.
    pub(crate) fn len(&self) -> Option<usize> {
        Some(match self {
            Value::Str(s) => s.len(),
            Value::String(s) => s.len(),
            Value::StrMap(m) => m.map_or(0, BTreeMap::len),
            Value::Slice(None) => 0,
            Value::Slice(Some(Slice::OwnerRefs(r))) => r.len(),
            Value::Slice(Some(Slice::Strs(r))) => r.len(),
            Value::Slice(Some(Slice::ManagedFields(n))) => *n,
            Value::List(l, _) => l.len(),
            Value::Dict(d) => d.borrow().len(),
            _ => return None,
        })
    }

    /// The elements of a list-like value.
    pub(crate) fn list_items(&self) -> Option<Vec<Value<'a>>> {
        Some(match self {
            Value::List(l, _) => l.0.clone(),
            Value::Slice(None) => Vec::new(),
            Value::Slice(Some(Slice::OwnerRefs(r))) => {
                r.iter().map(|o| Value::obj(Obj::OwnerRef(o))).collect()
            }
            Value::Slice(Some(Slice::Strs(r))) => r.iter().map(|s| Value::Str(s)).collect(),
            Value::Slice(Some(Slice::ManagedFields(_))) => Vec::new(),
            _ => return None,
        })
    }

    /// Whether the value is a list-like (slice) value.
    pub(crate) fn is_list(&self) -> bool {
        matches!(self, Value::List(..) | Value::Slice(_))
    }

    /// sprig's `strval`: strings as they are, Stringers through `String()`, else `%v`.
    pub(crate) fn strval(&self) -> Result<String, Bound> {
        Ok(match self {
            Value::Str(s) => (*s).to_owned(),
            Value::String(s) => s.to_string(),
            _ => {
                let mut s = String::new();
                fmt_v(self, &mut s, 0)?;
                s
            }
        })
    }

    /// Appends the value as the template engine prints an action's result.
    pub(crate) fn print_template(&self, out: &mut String) -> Result<(), Bound> {
        match self {
            Value::Str(s) => out.push_str(s),
            Value::String(s) => out.push_str(s),
            Value::Missing => out.push_str("<no value>"),
            Value::NilPtr(t) => out.push_str(nil_ptr_string(t)),
            Value::Obj { obj, ptr, addr } if *ptr || *addr => {
                if !gogo_string(obj, out) {
                    fmt_v(self, out, 0)?;
                }
            }
            _ => fmt_v(self, out, 0)?,
        }
        check_len(out)
    }

    /// The value as `encoding/json` would marshal it, as a JSON value (for comparisons; see
    /// [`write_json`] for the text).
    pub(crate) fn to_json(&self) -> Result<serde_json::Value, Bound> {
        let mut budget = MAX_OUTPUT;
        self.to_json_in(0, &mut budget)
    }

    fn to_json_in(&self, depth: usize, budget: &mut usize) -> Result<serde_json::Value, Bound> {
        use serde_json::Value as J;
        check_depth(depth)?;
        let spend = |budget: &mut usize, n: usize| {
            *budget = budget.checked_sub(n + 1).ok_or(Bound::Size)?;
            Ok::<(), Bound>(())
        };
        spend(budget, self.as_str().map_or(0, str::len))?;
        Ok(match self {
            Value::Missing | Value::Nil | Value::NilPtr(_) => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i, _) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String((*s).to_owned()),
            Value::String(s) => J::String(s.to_string()),
            Value::Time(t, TimeKind::Meta) => event_json::time_json(*t),
            Value::Time(t, TimeKind::Micro) => event_json::micro_time_json(*t),
            Value::Time(t, TimeKind::Std) => {
                J::String(t.format("2006-01-02T15:04:05.999999999Z07:00"))
            }
            Value::StrMap(None) => J::Null,
            Value::StrMap(Some(m)) => event_json::str_map_json(m),
            Value::Slice(None) => J::Null,
            Value::Slice(Some(Slice::OwnerRefs(r))) => event_json::owner_refs_json(r),
            Value::Slice(Some(Slice::Strs(r))) => {
                J::Array(r.iter().map(|s| J::String(s.clone())).collect())
            }
            Value::Slice(Some(Slice::ManagedFields(_))) => J::Array(Vec::new()),
            Value::List(l, _) => J::Array(
                l.iter()
                    .map(|v| v.to_json_in(depth + 1, budget))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Dict(d) => {
                let mut out = serde_json::Map::new();
                for (k, v) in d.borrow().iter() {
                    spend(budget, k.len())?;
                    out.insert(k.clone(), v.to_json_in(depth + 1, budget)?);
                }
                J::Object(out)
            }
            Value::Obj { obj, .. } => obj_json(obj),
        })
    }

    /// A value from parsed JSON (`fromJson`).
    pub(crate) fn from_json(v: &serde_json::Value) -> Value<'a> {
        use serde_json::Value as J;
        match v {
            J::Null => Value::Nil,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            J::String(s) => Value::string(s.clone()),
            J::Array(a) => Value::list(a.iter().map(Value::from_json).collect(), ListKind::Iface),
            J::Object(o) => Value::dict(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// Writes `v` as Go's `encoding/json` does (`json.Marshal`, or `json.MarshalIndent(v, "",
/// "  ")` when `pretty`), stopping at the render bounds. `depth` is the indentation level.
pub(crate) fn write_json(
    v: &Value<'_>,
    out: &mut String,
    pretty: bool,
    depth: usize,
) -> Result<(), Bound> {
    use crate::gojson;
    check_depth(depth)?;
    let indent = |out: &mut String, depth: usize| {
        if pretty {
            out.push('\n');
            for _ in 0..depth {
                out.push_str("  ");
            }
        }
    };
    match v {
        Value::List(..) | Value::Slice(Some(Slice::Strs(_))) => {
            let items = v.list_items().unwrap_or_default();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                write_json(item, out, pretty, depth + 1)?;
            }
            indent(out, depth);
            out.push(']');
        }
        Value::Dict(d) => {
            let d = d.borrow();
            if d.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            // A BTreeMap iterates in the byte order Go sorts map keys in.
            for (i, (k, item)) in d.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                gojson::write_string(k, out);
                out.push(':');
                if pretty {
                    out.push(' ');
                }
                write_json(item, out, pretty, depth + 1)?;
            }
            indent(out, depth);
            out.push('}');
        }
        Value::Str(_) | Value::String(_) => gojson::write_string(v.as_str().unwrap_or(""), out),
        // Event objects, times and scalars: bounded by the event itself.
        other => {
            let json = other.to_json()?;
            if pretty {
                gojson::write_pretty_at(&json, out, depth);
            } else {
                gojson::write_compact(&json, out);
            }
        }
    }
    check_len(out)
}

pub(crate) fn obj_type_name(obj: &Obj<'_>) -> &'static str {
    match obj {
        Obj::Event(_) => "main.EnhancedEvent",
        Obj::CoreEvent(_) => "v1.Event",
        Obj::TypeMeta => "v1.TypeMeta",
        Obj::ObjectMeta(_) => "v1.ObjectMeta",
        Obj::Source(_) => "v1.EventSource",
        Obj::Involved(_) => "main.EnhancedObjectReference",
        Obj::Reference(_) => "v1.ObjectReference",
        Obj::Series(_) => "v1.EventSeries",
        Obj::OwnerRef(_) => "v1.OwnerReference",
    }
}

fn obj_json(obj: &Obj<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    match obj {
        Obj::Event(e) => event_json::to_go_json(*e),
        Obj::CoreEvent(e) => event_json::core_event_json(*e),
        Obj::TypeMeta => J::Object(serde_json::Map::new()),
        Obj::ObjectMeta(m) => event_json::object_meta_json(m),
        Obj::Source(s) => event_json::source_json(*s),
        Obj::Involved(e) => event_json::involved_object_json(*e),
        Obj::Reference(r) => J::Object(event_json::object_ref_map(r)),
        Obj::Series(s) => event_json::series_json(s),
        Obj::OwnerRef(r) => event_json::owner_ref_json(r),
    }
}

fn o(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

/// How Go prints a nil pointer: the generated protobuf `String()` of the k8s types says
/// `nil`; other pointers print as `<nil>`.
fn nil_ptr_string(type_name: &str) -> &'static str {
    match type_name {
        "*v1.EventSeries" | "*v1.ObjectReference" => "nil",
        _ => "<nil>",
    }
}

/// The fields of a struct in Go declaration order, for `%v`.
pub(crate) fn struct_fields<'a>(obj: &Obj<'a>) -> Vec<Value<'a>> {
    let t = |x: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        Value::Time(GoTime::from_opt(x.as_ref().map(|t| t.0)), TimeKind::Meta)
    };
    let s = |x: &'a Option<String>| Value::Str(x.as_deref().unwrap_or(""));
    match *obj {
        Obj::Event(e) => vec![
            Value::obj(Obj::CoreEvent(e)),
            Value::Str(e.cluster_name()),
            Value::obj(Obj::Involved(e)),
        ],
        Obj::CoreEvent(e) => {
            let r = e.raw();
            vec![
                Value::obj(Obj::TypeMeta),
                Value::obj(Obj::ObjectMeta(&r.metadata)),
                Value::obj(Obj::Reference(&r.involved_object)),
                s(&r.reason),
                s(&r.message),
                Value::obj(Obj::Source(r.source.as_ref())),
                t(&r.first_timestamp),
                t(&r.last_timestamp),
                Value::Int(i64::from(r.count.unwrap_or(0)), IntKind::Int32),
                s(&r.type_),
                Value::Time(
                    GoTime::from_opt(r.event_time.as_ref().map(|t| t.0)),
                    TimeKind::Micro,
                ),
                r.series
                    .as_ref()
                    .map_or(Value::NilPtr("*v1.EventSeries"), |x| Value::Obj {
                        obj: Obj::Series(x),
                        ptr: true,
                        addr: false,
                    }),
                s(&r.action),
                r.related
                    .as_ref()
                    .map_or(Value::NilPtr("*v1.ObjectReference"), |x| Value::Obj {
                        obj: Obj::Reference(x),
                        ptr: true,
                        addr: false,
                    }),
                s(&r.reporting_component),
                s(&r.reporting_instance),
            ]
        }
        Obj::TypeMeta => vec![Value::Str(""), Value::Str("")],
        Obj::ObjectMeta(m) => vec![
            s(&m.name),
            s(&m.generate_name),
            s(&m.namespace),
            s(&m.self_link),
            s(&m.uid),
            s(&m.resource_version),
            Value::Int(m.generation.unwrap_or(0), IntKind::Int64),
            t(&m.creation_timestamp),
            match &m.deletion_timestamp {
                Some(x) => Value::Time(GoTime::from_timestamp(x.0), TimeKind::Meta),
                None => Value::NilPtr("*v1.Time"),
            },
            match m.deletion_grace_period_seconds {
                Some(x) => Value::Int(x, IntKind::Int64),
                None => Value::NilPtr("*int64"),
            },
            Value::StrMap(m.labels.as_ref()),
            Value::StrMap(m.annotations.as_ref()),
            Value::Slice(m.owner_references.as_deref().map(Slice::OwnerRefs)),
            Value::Slice(m.finalizers.as_deref().map(Slice::Strs)),
            Value::Slice(
                m.managed_fields
                    .as_ref()
                    .map(|v| Slice::ManagedFields(v.len())),
            ),
        ],
        Obj::Source(src) => vec![
            Value::Str(src.map_or("", |x| o(&x.component))),
            Value::Str(src.map_or("", |x| o(&x.host))),
        ],
        Obj::Involved(e) => {
            let en = e.enrichment();
            vec![
                Value::obj(Obj::Reference(&e.raw().involved_object)),
                Value::StrMap(en.labels.as_ref()),
                Value::StrMap(en.annotations.as_ref()),
                Value::Slice(en.owner_references.as_deref().map(Slice::OwnerRefs)),
                Value::Bool(en.deleted),
            ]
        }
        Obj::Reference(r) => vec![
            s(&r.kind),
            s(&r.namespace),
            s(&r.name),
            s(&r.uid),
            s(&r.api_version),
            s(&r.resource_version),
            s(&r.field_path),
        ],
        Obj::Series(x) => vec![
            Value::Int(i64::from(x.count.unwrap_or(0)), IntKind::Int32),
            Value::Time(
                GoTime::from_opt(x.last_observed_time.as_ref().map(|t| t.0)),
                TimeKind::Micro,
            ),
        ],
        Obj::OwnerRef(r) => vec![
            Value::Str(&r.api_version),
            Value::Str(&r.kind),
            Value::Str(&r.name),
            Value::Str(&r.uid),
            r.controller.map_or(Value::NilPtr("*bool"), Value::Bool),
            r.block_owner_deletion
                .map_or(Value::NilPtr("*bool"), Value::Bool),
        ],
    }
}

/// The generated protobuf `String()` of the k8s types (what Go prints for an addressable
/// struct or a pointer). Returns false for types without one.
fn gogo_string(obj: &Obj<'_>, out: &mut String) -> bool {
    match obj {
        Obj::Source(src) => {
            let _ = write!(
                out,
                "&EventSource{{Component:{},Host:{},}}",
                src.map_or("", |x| o(&x.component)),
                src.map_or("", |x| o(&x.host))
            );
        }
        Obj::Reference(r) => obj_ref_gogo(r, out),
        Obj::Involved(e) => obj_ref_gogo(&e.raw().involved_object, out),
        Obj::Series(x) => {
            let _ = write!(
                out,
                "&EventSeries{{Count:{},LastObservedTime:{},}}",
                x.count.unwrap_or(0),
                GoTime::from_opt(x.last_observed_time.as_ref().map(|t| t.0)).go_string()
            );
        }
        Obj::OwnerRef(r) => {
            let b = |v: Option<bool>| v.map_or("nil".to_owned(), |b| format!("*{b}"));
            let _ = write!(
                out,
                "&OwnerReference{{Kind:{},Name:{},UID:{},APIVersion:{},Controller:{},BlockOwnerDeletion:{},}}",
                r.kind,
                r.name,
                r.uid,
                r.api_version,
                b(r.controller),
                b(r.block_owner_deletion)
            );
        }
        _ => return false,
    }
    true
}

fn obj_ref_gogo(r: &ObjectReference, out: &mut String) {
    let _ = write!(
        out,
        "&ObjectReference{{Kind:{},Namespace:{},Name:{},UID:{},APIVersion:{},ResourceVersion:{},FieldPath:{},}}",
        o(&r.kind),
        o(&r.namespace),
        o(&r.name),
        o(&r.uid),
        o(&r.api_version),
        o(&r.resource_version),
        o(&r.field_path)
    );
}

/// A float64 as `%v` prints it (`strconv.FormatFloat(f, 'g', -1, 64)`).
pub(crate) fn fmt_float_v(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    // strconv's shortest %g: exponent form when exp < -4 || exp >= 6.
    if !(-4..6).contains(&exp) {
        write_exp(mant, exp, out);
    } else {
        let _ = write!(out, "{f}");
    }
}

fn write_exp(mant: &str, exp: i32, out: &mut String) {
    out.push_str(mant);
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    let _ = write!(out, "{a}");
}

/// Go's `fmt` `%v` of a value (depth > 0 inside containers).
pub(crate) fn fmt_v(v: &Value<'_>, out: &mut String, depth: usize) -> Result<(), Bound> {
    check_depth(depth)?;
    match v {
        Value::Missing => out.push_str("<no value>"),
        Value::Nil => out.push_str("<nil>"),
        Value::NilPtr(t) => out.push_str(nil_ptr_string(t)),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i, _) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => fmt_float_v(*f, out),
        Value::Str(s) => out.push_str(s),
        Value::String(s) => out.push_str(s),
        Value::Time(t, _) => t.format_into("2006-01-02 15:04:05.999999999 -0700 MST", out),
        Value::StrMap(m) => {
            out.push_str("map[");
            if let Some(m) = m {
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    out.push_str(v);
                }
            }
            out.push(']');
        }
        Value::Dict(d) => {
            out.push_str("map[");
            for (i, (k, v)) in d.borrow().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                fmt_v(v, out, depth + 1)?;
                check_len(out)?;
            }
            out.push(']');
        }
        Value::List(..) | Value::Slice(_) => {
            out.push('[');
            for (i, item) in v.list_items().unwrap_or_default().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_v(item, out, depth + 1)?;
                check_len(out)?;
            }
            out.push(']');
        }
        Value::Obj { obj, ptr, .. } => {
            if *ptr {
                if depth > 0 {
                    out.push_str("0xc000010000");
                    return Ok(());
                }
                if gogo_string(obj, out) {
                    return check_len(out);
                }
                out.push('&');
            }
            out.push('{');
            for (i, f) in struct_fields(obj).iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                match f {
                    // Pointers inside structs print as addresses.
                    Value::Obj { ptr: true, .. } => out.push_str("0xc000010000"),
                    _ => fmt_v(f, out, depth + 1)?,
                }
            }
            out.push('}');
        }
    }
    check_len(out)
}
