//! The Go type model of upstream's `EnhancedEvent`: which fields and methods each struct has
//! (checked when a template is parsed) and how to read them from an [`Event`] (at render time,
//! through a precomputed [`Member`], never by name).

use super::gotime::{GoTime, month_name, weekday_name};
use super::value::{IntKind, Obj, Slice, TimeKind, Value};
use crate::event::Event;

/// A statically known Go type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Event,
    CoreEvent,
    TypeMeta,
    ObjectMeta,
    Source,
    InvObj,
    ObjRef,
    Series,
    OwnerRef,
    Time,
    MicroTime,
    StdTime,
    Str,
    Int32,
    Int64,
    Int,
    Bool,
    StrMap,
    OwnerRefs,
    Strs,
    ManagedFields,
    /// Not known at parse time.
    Unknown,
}

impl Ty {
    /// Go's name of the type, as error messages print it.
    pub(crate) fn go_name(self) -> &'static str {
        match self {
            Ty::Event => "*main.EnhancedEvent",
            Ty::CoreEvent => "v1.Event",
            Ty::TypeMeta => "v1.TypeMeta",
            Ty::ObjectMeta => "v1.ObjectMeta",
            Ty::Source => "v1.EventSource",
            Ty::InvObj => "main.EnhancedObjectReference",
            Ty::ObjRef => "v1.ObjectReference",
            Ty::Series => "*v1.EventSeries",
            Ty::OwnerRef => "v1.OwnerReference",
            Ty::Time => "v1.Time",
            Ty::MicroTime => "v1.MicroTime",
            Ty::StdTime => "time.Time",
            Ty::Str => "string",
            Ty::Int32 => "int32",
            Ty::Int64 => "int64",
            Ty::Int => "int",
            Ty::Bool => "bool",
            Ty::StrMap => "map[string]string",
            Ty::OwnerRefs => "[]v1.OwnerReference",
            Ty::Strs => "[]string",
            Ty::ManagedFields => "[]v1.ManagedFieldsEntry",
            Ty::Unknown => "interface {}",
        }
    }

    /// The element type when ranging over a value of this type.
    pub(crate) fn elem(self) -> Ty {
        match self {
            Ty::StrMap | Ty::Strs => Ty::Str,
            Ty::OwnerRefs => Ty::OwnerRef,
            _ => Ty::Unknown,
        }
    }
}

macro_rules! members {
    ($($name:ident),* $(,)?) => {
        /// A field or method name of the event's Go types.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[allow(clippy::upper_case_acronyms, non_camel_case_types)]
        pub(crate) enum Member { $($name),* }

        impl Member {
            /// The member of that Go name.
            pub(crate) fn from_name(name: &str) -> Option<Member> {
                match name {
                    $(stringify!($name) => Some(Member::$name),)*
                    _ => None,
                }
            }
        }
    };
}

members!(
    // EnhancedEvent
    Event,
    ClusterName,
    InvolvedObject,
    GetTimestampMs,
    GetTimestampISO8601,
    GetDeliveryID,
    // v1.Event
    TypeMeta,
    ObjectMeta,
    Reason,
    Message,
    Source,
    FirstTimestamp,
    LastTimestamp,
    Count,
    Type,
    EventTime,
    Series,
    Action,
    Related,
    ReportingController,
    ReportingInstance,
    // TypeMeta
    Kind,
    APIVersion,
    // ObjectMeta
    Name,
    GenerateName,
    Namespace,
    SelfLink,
    UID,
    ResourceVersion,
    Generation,
    CreationTimestamp,
    DeletionTimestamp,
    DeletionGracePeriodSeconds,
    Labels,
    Annotations,
    OwnerReferences,
    Finalizers,
    ManagedFields,
    GetName,
    GetNamespace,
    GetUID,
    GetLabels,
    GetAnnotations,
    GetResourceVersion,
    GetGenerateName,
    // EventSource
    Component,
    Host,
    // (Enhanced)ObjectReference
    ObjectReference,
    FieldPath,
    Deleted,
    // EventSeries
    LastObservedTime,
    // OwnerReference
    Controller,
    BlockOwnerDeletion,
    // time.Time methods
    Format,
    Unix,
    UnixMilli,
    UnixMicro,
    UnixNano,
    String,
    IsZero,
    UTC,
    Local,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Nanosecond,
    Weekday,
    YearDay,
);

/// Number of arguments a method takes, `None` for fields.
pub(crate) fn method_arity(m: Member) -> Option<usize> {
    use Member as M;
    match m {
        M::Format => Some(1),
        M::GetTimestampMs
        | M::GetTimestampISO8601
        | M::GetDeliveryID
        | M::GetName
        | M::GetNamespace
        | M::GetUID
        | M::GetLabels
        | M::GetAnnotations
        | M::GetResourceVersion
        | M::GetGenerateName
        | M::Unix
        | M::UnixMilli
        | M::UnixMicro
        | M::UnixNano
        | M::String
        | M::IsZero
        | M::UTC
        | M::Local
        | M::Year
        | M::Month
        | M::Day
        | M::Hour
        | M::Minute
        | M::Second
        | M::Nanosecond
        | M::Weekday
        | M::YearDay => Some(0),
        _ => None,
    }
}

fn object_meta_member(m: Member) -> Option<Ty> {
    use Member as M;
    Some(match m {
        M::Name
        | M::GenerateName
        | M::Namespace
        | M::SelfLink
        | M::UID
        | M::ResourceVersion
        | M::GetName
        | M::GetNamespace
        | M::GetUID
        | M::GetResourceVersion
        | M::GetGenerateName => Ty::Str,
        M::Generation | M::DeletionGracePeriodSeconds => Ty::Int64,
        M::CreationTimestamp | M::DeletionTimestamp => Ty::Time,
        M::Labels | M::Annotations | M::GetLabels | M::GetAnnotations => Ty::StrMap,
        M::OwnerReferences => Ty::OwnerRefs,
        M::Finalizers => Ty::Strs,
        M::ManagedFields => Ty::ManagedFields,
        _ => return None,
    })
}

fn core_event_member(m: Member) -> Option<Ty> {
    use Member as M;
    Some(match m {
        M::TypeMeta => Ty::TypeMeta,
        M::ObjectMeta => Ty::ObjectMeta,
        M::Kind | M::APIVersion => Ty::Str,
        M::InvolvedObject => Ty::ObjRef,
        M::Reason
        | M::Message
        | M::Type
        | M::Action
        | M::ReportingController
        | M::ReportingInstance => Ty::Str,
        M::Source => Ty::Source,
        M::FirstTimestamp | M::LastTimestamp => Ty::Time,
        M::Count => Ty::Int32,
        M::EventTime => Ty::MicroTime,
        M::Series => Ty::Series,
        M::Related => Ty::ObjRef,
        _ => return object_meta_member(m),
    })
}

fn object_ref_member(m: Member) -> Option<Ty> {
    use Member as M;
    match m {
        M::Kind
        | M::Namespace
        | M::Name
        | M::UID
        | M::APIVersion
        | M::ResourceVersion
        | M::FieldPath => Some(Ty::Str),
        _ => None,
    }
}

fn time_member(m: Member) -> Option<Ty> {
    use Member as M;
    Some(match m {
        M::Format | M::String | M::Month | M::Weekday => Ty::Str,
        M::Unix | M::UnixMilli | M::UnixMicro | M::UnixNano => Ty::Int64,
        M::IsZero => Ty::Bool,
        M::UTC | M::Local => Ty::StdTime,
        M::Year | M::Day | M::Hour | M::Minute | M::Second | M::Nanosecond | M::YearDay => Ty::Int,
        _ => return None,
    })
}

/// The type of member `m` of a value of static type `ty`: `Some(Ok(t))` when it exists,
/// `Some(Err(()))` when it provably does not, `None` when it cannot be known.
pub(crate) fn static_member(ty: Ty, m: Option<Member>) -> Option<Result<Ty, ()>> {
    use Member as M;
    let found = match ty {
        Ty::Unknown => return None,
        Ty::StrMap => return Some(Ok(Ty::Unknown)),
        _ => {
            let m = match m {
                Some(m) => m,
                None => return Some(Err(())),
            };
            match ty {
                Ty::Event => match m {
                    M::Event => Some(Ty::CoreEvent),
                    M::ClusterName | M::GetTimestampISO8601 | M::GetDeliveryID => Some(Ty::Str),
                    M::InvolvedObject => Some(Ty::InvObj),
                    M::GetTimestampMs => Some(Ty::Int64),
                    _ => core_event_member(m),
                },
                Ty::CoreEvent => core_event_member(m),
                Ty::TypeMeta => match m {
                    M::Kind | M::APIVersion => Some(Ty::Str),
                    _ => None,
                },
                Ty::ObjectMeta => object_meta_member(m),
                Ty::Source => match m {
                    M::Component | M::Host => Some(Ty::Str),
                    _ => None,
                },
                Ty::InvObj => match m {
                    M::ObjectReference => Some(Ty::ObjRef),
                    M::Labels | M::Annotations => Some(Ty::StrMap),
                    M::OwnerReferences => Some(Ty::OwnerRefs),
                    M::Deleted => Some(Ty::Bool),
                    _ => object_ref_member(m),
                },
                Ty::ObjRef => object_ref_member(m),
                Ty::Series => match m {
                    M::Count => Some(Ty::Int32),
                    M::LastObservedTime => Some(Ty::MicroTime),
                    _ => None,
                },
                Ty::OwnerRef => match m {
                    M::APIVersion | M::Kind | M::Name | M::UID => Some(Ty::Str),
                    M::Controller | M::BlockOwnerDeletion => Some(Ty::Bool),
                    _ => None,
                },
                Ty::Time | Ty::MicroTime | Ty::StdTime => time_member(m),
                _ => None,
            }
        }
    };
    Some(found.ok_or(()))
}

fn s(x: &Option<String>) -> Value<'_> {
    Value::Str(x.as_deref().unwrap_or(""))
}

fn meta_time<'a>(x: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Value<'a> {
    Value::Time(GoTime::from_opt(x.as_ref().map(|t| t.0)), TimeKind::Meta)
}

fn object_meta_value<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    m: Member,
) -> Option<Value<'a>> {
    use Member as M;
    Some(match m {
        M::Name | M::GetName => s(&meta.name),
        M::GenerateName | M::GetGenerateName => s(&meta.generate_name),
        M::Namespace | M::GetNamespace => s(&meta.namespace),
        M::SelfLink => s(&meta.self_link),
        M::UID | M::GetUID => s(&meta.uid),
        M::ResourceVersion | M::GetResourceVersion => s(&meta.resource_version),
        M::Generation => Value::Int(meta.generation.unwrap_or(0), IntKind::Int64),
        M::CreationTimestamp => meta_time(&meta.creation_timestamp),
        M::DeletionTimestamp => match &meta.deletion_timestamp {
            Some(t) => Value::Time(GoTime::from_timestamp(t.0), TimeKind::Meta),
            None => Value::NilPtr("*v1.Time"),
        },
        M::DeletionGracePeriodSeconds => match meta.deletion_grace_period_seconds {
            Some(x) => Value::Int(x, IntKind::Int64),
            None => Value::NilPtr("*int64"),
        },
        M::Labels | M::GetLabels => Value::StrMap(meta.labels.as_ref()),
        M::Annotations | M::GetAnnotations => Value::StrMap(meta.annotations.as_ref()),
        M::OwnerReferences => Value::Slice(meta.owner_references.as_deref().map(Slice::OwnerRefs)),
        M::Finalizers => Value::Slice(meta.finalizers.as_deref().map(Slice::Strs)),
        M::ManagedFields => Value::Slice(
            meta.managed_fields
                .as_ref()
                .map(|v| Slice::ManagedFields(v.len())),
        ),
        _ => return None,
    })
}

fn first_or_event_time(e: Event<'_>) -> GoTime {
    let raw = e.raw();
    let t = GoTime::from_opt(raw.first_timestamp.as_ref().map(|t| t.0));
    if t.is_zero() {
        GoTime::from_opt(raw.event_time.as_ref().map(|t| t.0))
    } else {
        t
    }
}

fn core_event_value<'a>(e: Event<'a>, m: Member) -> Option<Value<'a>> {
    use Member as M;
    let r = e.raw();
    Some(match m {
        M::TypeMeta => Value::obj(Obj::TypeMeta),
        M::ObjectMeta => Value::obj(Obj::ObjectMeta(&r.metadata)),
        M::Kind | M::APIVersion => Value::Str(""),
        M::InvolvedObject => Value::obj(Obj::Reference(&r.involved_object)),
        M::Reason => s(&r.reason),
        M::Message => s(&r.message),
        M::Type => s(&r.type_),
        M::Action => s(&r.action),
        M::ReportingController => s(&r.reporting_component),
        M::ReportingInstance => s(&r.reporting_instance),
        M::Source => Value::obj(Obj::Source(r.source.as_ref())),
        M::FirstTimestamp => meta_time(&r.first_timestamp),
        M::LastTimestamp => meta_time(&r.last_timestamp),
        M::Count => Value::Int(i64::from(r.count.unwrap_or(0)), IntKind::Int32),
        M::EventTime => Value::Time(
            GoTime::from_opt(r.event_time.as_ref().map(|t| t.0)),
            TimeKind::Micro,
        ),
        M::Series => match &r.series {
            Some(x) => Value::Obj {
                obj: Obj::Series(x),
                ptr: true,
                addr: false,
            },
            None => Value::NilPtr("*v1.EventSeries"),
        },
        M::Related => match &r.related {
            Some(x) => Value::Obj {
                obj: Obj::Reference(x),
                ptr: true,
                addr: false,
            },
            None => Value::NilPtr("*v1.ObjectReference"),
        },
        _ => return object_meta_value(&r.metadata, m),
    })
}

fn object_ref_value(
    r: &k8s_openapi::api::core::v1::ObjectReference,
    m: Member,
) -> Option<Value<'_>> {
    use Member as M;
    Some(match m {
        M::Kind => s(&r.kind),
        M::Namespace => s(&r.namespace),
        M::Name => s(&r.name),
        M::UID => s(&r.uid),
        M::APIVersion => s(&r.api_version),
        M::ResourceVersion => s(&r.resource_version),
        M::FieldPath => s(&r.field_path),
        _ => return None,
    })
}

fn time_value<'a>(t: GoTime, m: Member, args: &[Value<'a>]) -> Result<Option<Value<'a>>, String> {
    use Member as M;
    let c = || t.civil();
    Ok(Some(match m {
        M::Format => match args.first().and_then(Value::as_str) {
            Some(layout) => Value::string(t.format(layout)),
            None => {
                return Err(format!(
                    "wrong type for value; expected string; got {}",
                    args.first()
                        .map_or_else(|| "<nil>".to_owned(), Value::type_name)
                ));
            }
        },
        M::String => Value::string(t.go_string()),
        M::Unix => Value::Int(t.unix(), IntKind::Int64),
        M::UnixMilli => Value::Int(t.unix_milli(), IntKind::Int64),
        M::UnixMicro => Value::Int(t.unix_micro(), IntKind::Int64),
        M::UnixNano => Value::Int(t.unix_nano(), IntKind::Int64),
        M::IsZero => Value::Bool(t.is_zero()),
        M::UTC | M::Local => Value::Time(t, TimeKind::Std),
        M::Year => Value::Int(c().year, IntKind::Int),
        M::Month => Value::Str(month_name(c().month)),
        M::Day => Value::Int(i64::from(c().day), IntKind::Int),
        M::Hour => Value::Int(i64::from(c().hour), IntKind::Int),
        M::Minute => Value::Int(i64::from(c().minute), IntKind::Int),
        M::Second => Value::Int(i64::from(c().second), IntKind::Int),
        M::Nanosecond => Value::Int(i64::from(t.nsec), IntKind::Int),
        M::Weekday => Value::Str(weekday_name(c().weekday)),
        M::YearDay => Value::Int(i64::from(c().yday), IntKind::Int),
        _ => return Ok(None),
    }))
}

/// Reads member `m` of struct or time value `recv`. `Ok(None)`: the type has no such member.
pub(crate) fn get_member<'a>(
    recv: &Value<'a>,
    m: Member,
    args: &[Value<'a>],
) -> Result<Option<Value<'a>>, String> {
    use Member as M;
    let v = match recv {
        Value::Time(t, _) => return time_value(*t, m, args),
        Value::Obj { obj, .. } => match *obj {
            Obj::Event(e) => match m {
                M::Event => Some(Value::obj(Obj::CoreEvent(e))),
                M::ClusterName => Some(Value::Str(e.cluster_name())),
                M::InvolvedObject => Some(Value::obj(Obj::Involved(e))),
                M::GetTimestampMs => Some(Value::Int(
                    first_or_event_time(e).unix_nano() / 1_000_000,
                    IntKind::Int64,
                )),
                M::GetTimestampISO8601 => Some(Value::string(
                    first_or_event_time(e).format("2006-01-02T15:04:05.000Z"),
                )),
                // An extension: the delivery's stable id (uid/occurrence), for receivers that
                // deduplicate.
                M::GetDeliveryID => Some(Value::string(crate::sink::DeliveryId::of(e).to_string())),
                _ => core_event_value(e, m),
            },
            Obj::CoreEvent(e) => core_event_value(e, m),
            Obj::TypeMeta => match m {
                M::Kind | M::APIVersion => Some(Value::Str("")),
                _ => None,
            },
            Obj::ObjectMeta(meta) => object_meta_value(meta, m),
            Obj::Source(src) => match m {
                M::Component => Some(Value::Str(
                    src.and_then(|x| x.component.as_deref()).unwrap_or(""),
                )),
                M::Host => Some(Value::Str(
                    src.and_then(|x| x.host.as_deref()).unwrap_or(""),
                )),
                _ => None,
            },
            Obj::Involved(e) => {
                let en = e.enrichment();
                match m {
                    M::ObjectReference => {
                        Some(Value::obj(Obj::Reference(&e.raw().involved_object)))
                    }
                    M::Labels => Some(Value::StrMap(en.labels.as_ref())),
                    M::Annotations => Some(Value::StrMap(en.annotations.as_ref())),
                    M::OwnerReferences => Some(Value::Slice(
                        en.owner_references.as_deref().map(Slice::OwnerRefs),
                    )),
                    M::Deleted => Some(Value::Bool(en.deleted)),
                    _ => object_ref_value(&e.raw().involved_object, m),
                }
            }
            Obj::Reference(r) => object_ref_value(r, m),
            Obj::Series(x) => match m {
                M::Count => Some(Value::Int(i64::from(x.count.unwrap_or(0)), IntKind::Int32)),
                M::LastObservedTime => Some(Value::Time(
                    GoTime::from_opt(x.last_observed_time.as_ref().map(|t| t.0)),
                    TimeKind::Micro,
                )),
                _ => None,
            },
            Obj::OwnerRef(r) => match m {
                M::APIVersion => Some(Value::Str(&r.api_version)),
                M::Kind => Some(Value::Str(&r.kind)),
                M::Name => Some(Value::Str(&r.name)),
                M::UID => Some(Value::Str(&r.uid)),
                M::Controller => Some(r.controller.map_or(Value::NilPtr("*bool"), Value::Bool)),
                M::BlockOwnerDeletion => Some(
                    r.block_owner_deletion
                        .map_or(Value::NilPtr("*bool"), Value::Bool),
                ),
                _ => None,
            },
        },
        _ => None,
    };
    Ok(v)
}

/// A precomputed accessor for a field chain from the event (dot statically the event):
/// rendering reads the field directly, without walking the chain.
#[derive(Clone, Debug)]
pub(crate) enum Direct {
    /// A string field.
    Str(for<'a, 'b> fn(&'b Event<'a>) -> &'a str),
    /// `.InvolvedObject.Labels.KEY`.
    Label(Box<str>),
    /// `.InvolvedObject.Annotations.KEY`.
    Annotation(Box<str>),
}

impl Direct {
    /// The value for `event`.
    pub(crate) fn value<'a>(&self, event: Event<'a>) -> Value<'a> {
        match self {
            Direct::Str(f) => Value::Str(f(&event)),
            Direct::Label(k) => event.label(k).map_or(Value::Missing, Value::Str),
            Direct::Annotation(k) => event.annotation(k).map_or(Value::Missing, Value::Str),
        }
    }
}

fn reporting_component<'a>(e: &Event<'a>) -> &'a str {
    e.raw().reporting_component.as_deref().unwrap_or("")
}

fn reporting_instance<'a>(e: &Event<'a>) -> &'a str {
    e.raw().reporting_instance.as_deref().unwrap_or("")
}

fn action<'a>(e: &Event<'a>) -> &'a str {
    e.raw().action.as_deref().unwrap_or("")
}

fn resource_version<'a>(e: &Event<'a>) -> &'a str {
    e.raw().metadata.resource_version.as_deref().unwrap_or("")
}

fn io_uid<'a>(e: &Event<'a>) -> &'a str {
    e.raw().involved_object.uid.as_deref().unwrap_or("")
}

fn io_resource_version<'a>(e: &Event<'a>) -> &'a str {
    e.raw()
        .involved_object
        .resource_version
        .as_deref()
        .unwrap_or("")
}

fn io_field_path<'a>(e: &Event<'a>) -> &'a str {
    e.raw().involved_object.field_path.as_deref().unwrap_or("")
}

fn ev_reason<'a>(e: &Event<'a>) -> &'a str {
    e.reason()
}

fn ev_message<'a>(e: &Event<'a>) -> &'a str {
    e.message()
}

fn ev_type_<'a>(e: &Event<'a>) -> &'a str {
    e.type_()
}

fn ev_name<'a>(e: &Event<'a>) -> &'a str {
    e.name()
}

fn ev_namespace<'a>(e: &Event<'a>) -> &'a str {
    e.namespace()
}

fn ev_uid<'a>(e: &Event<'a>) -> &'a str {
    e.uid()
}

fn ev_cluster_name<'a>(e: &Event<'a>) -> &'a str {
    e.cluster_name()
}

fn ev_component<'a>(e: &Event<'a>) -> &'a str {
    e.component()
}

fn ev_host<'a>(e: &Event<'a>) -> &'a str {
    e.host()
}

fn ev_kind<'a>(e: &Event<'a>) -> &'a str {
    e.kind()
}

fn ev_object_name<'a>(e: &Event<'a>) -> &'a str {
    e.object_name()
}

fn ev_object_namespace<'a>(e: &Event<'a>) -> &'a str {
    e.object_namespace()
}

fn ev_api_version<'a>(e: &Event<'a>) -> &'a str {
    e.api_version()
}

fn empty<'a>(_: &Event<'a>) -> &'a str {
    ""
}

/// The direct accessor of a chain from the event, for the common fields.
pub(crate) fn direct_of(chain: &[Option<Member>], names: &[&str]) -> Option<Direct> {
    use Member as M;
    let f: for<'a, 'b> fn(&'b Event<'a>) -> &'a str = match chain {
        [Some(M::Reason)] => ev_reason,
        [Some(M::Message)] => ev_message,
        [Some(M::Type)] => ev_type_,
        [Some(M::Name)] => ev_name,
        [Some(M::Namespace)] => ev_namespace,
        [Some(M::UID)] => ev_uid,
        [Some(M::ResourceVersion)] => resource_version,
        [Some(M::ClusterName)] => ev_cluster_name,
        [Some(M::ReportingController)] => reporting_component,
        [Some(M::ReportingInstance)] => reporting_instance,
        [Some(M::Action)] => action,
        [Some(M::Kind | M::APIVersion)] => empty,
        [Some(M::Source), Some(M::Component)] => ev_component,
        [Some(M::Source), Some(M::Host)] => ev_host,
        [Some(M::InvolvedObject), Some(M::Kind)] => ev_kind,
        [Some(M::InvolvedObject), Some(M::Name)] => ev_object_name,
        [Some(M::InvolvedObject), Some(M::Namespace)] => ev_object_namespace,
        [Some(M::InvolvedObject), Some(M::APIVersion)] => ev_api_version,
        [Some(M::InvolvedObject), Some(M::UID)] => io_uid,
        [Some(M::InvolvedObject), Some(M::ResourceVersion)] => io_resource_version,
        [Some(M::InvolvedObject), Some(M::FieldPath)] => io_field_path,
        [Some(M::InvolvedObject), Some(M::Labels), _] => {
            return names.get(2).map(|k| Direct::Label((*k).into()));
        }
        [Some(M::InvolvedObject), Some(M::Annotations), _] => {
            return names.get(2).map(|k| Direct::Annotation((*k).into()));
        }
        _ => return None,
    };
    Some(Direct::Str(f))
}
