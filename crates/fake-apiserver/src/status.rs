//! The Kubernetes `Status` object used for every error response and watch `ERROR` event.

use serde::Serialize;

/// A Kubernetes `Status` (failure) object.
///
/// Serializes as the full wire form
/// `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":…,"reason":…,"details":…,"code":…}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(into = "StatusWire")]
#[error("{code} {reason}: {message}")]
pub struct Status {
    /// The HTTP status code (also the `code` field).
    pub code: u16,
    /// The machine-readable reason, e.g. `NotFound`, `Conflict`, `Expired`.
    pub reason: String,
    /// The human-readable message.
    pub message: String,
    /// Optional `details`.
    pub details: Option<Box<StatusDetails>>,
    /// `metadata.continue` (set on an expired-continue 410).
    pub continue_token: Option<String>,
}

/// `Status.details`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    /// The object name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The API group (omitted for core).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The resource plural (e.g. `events`, `leases`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Field-level causes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    /// Seconds the client should wait before retrying (429).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
}

/// One entry of `Status.details.causes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusCause {
    /// e.g. `FieldValueInvalid`.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// The offending field path.
    pub field: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusWire {
    kind: &'static str,
    api_version: &'static str,
    metadata: WireMeta,
    status: &'static str,
    message: String,
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Box<StatusDetails>>,
    code: u16,
}

#[derive(Serialize)]
struct WireMeta {
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    continue_token: Option<String>,
}

impl From<Status> for StatusWire {
    fn from(s: Status) -> Self {
        StatusWire {
            kind: "Status",
            api_version: "v1",
            metadata: WireMeta {
                continue_token: s.continue_token,
            },
            status: "Failure",
            message: s.message,
            reason: s.reason,
            details: s.details,
            code: s.code,
        }
    }
}

/// Identifies a resource for error messages: plural and group (`""` for core).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResourceRef<'a> {
    pub(crate) plural: &'a str,
    pub(crate) group: &'a str,
}

impl ResourceRef<'_> {
    /// `leases.coordination.k8s.io` or `events`.
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn details(&self, name: &str) -> StatusDetails {
        StatusDetails {
            name: (!name.is_empty()).then(|| name.to_string()),
            group: (!self.group.is_empty()).then(|| self.group.to_string()),
            kind: Some(self.plural.to_string()),
            ..StatusDetails::default()
        }
    }
}

impl Status {
    /// A status with the given code, reason and message and no details.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Status {
        Status {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
            continue_token: None,
        }
    }

    /// The wire JSON of this status.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.clone()).unwrap_or(serde_json::Value::Null)
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Status {
        Status::new(400, "BadRequest", message)
    }

    /// 404 NotFound for a page/path that does not exist.
    pub fn path_not_found() -> Status {
        Status::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub(crate) fn not_found(res: ResourceRef<'_>, name: &str) -> Status {
        Status {
            details: Some(Box::new(res.details(name))),
            ..Status::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", res.qualified()),
            )
        }
    }

    pub(crate) fn already_exists(res: ResourceRef<'_>, name: &str) -> Status {
        Status {
            details: Some(Box::new(res.details(name))),
            ..Status::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", res.qualified()),
            )
        }
    }

    pub(crate) fn conflict(res: ResourceRef<'_>, name: &str) -> Status {
        Status {
            details: Some(Box::new(res.details(name))),
            ..Status::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    res.qualified()
                ),
            )
        }
    }

    /// 422 Invalid for one field. `kind` is the object kind (e.g. `Lease`).
    pub(crate) fn invalid(
        kind: &str,
        res: ResourceRef<'_>,
        name: &str,
        field: &str,
        detail: &str,
    ) -> Status {
        let kind_q = if res.group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{}", res.group)
        };
        Status {
            details: Some(Box::new(StatusDetails {
                name: (!name.is_empty()).then(|| name.to_string()),
                group: (!res.group.is_empty()).then(|| res.group.to_string()),
                kind: Some(kind.to_string()),
                causes: vec![StatusCause {
                    reason: "FieldValueInvalid".to_string(),
                    message: detail.to_string(),
                    field: field.to_string(),
                }],
                retry_after_seconds: None,
            })),
            ..Status::new(
                422,
                "Invalid",
                format!("{kind_q} \"{name}\" is invalid: {field}: {detail}"),
            )
        }
    }

    /// 422 Invalid for bad query parameters (no object).
    pub(crate) fn invalid_params(message: impl Into<String>) -> Status {
        Status::new(422, "Invalid", message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Status {
        Status::new(401, "Unauthorized", "Unauthorized")
    }

    pub(crate) fn forbidden(res: ResourceRef<'_>, verb: &str, namespace: Option<&str>) -> Status {
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        Status {
            details: Some(Box::new(StatusDetails {
                group: (!res.group.is_empty()).then(|| res.group.to_string()),
                kind: Some(res.plural.to_string()),
                ..StatusDetails::default()
            })),
            ..Status::new(
                403,
                "Forbidden",
                format!(
                    "{} is forbidden: User \"system:serviceaccount:default:fake\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                    res.qualified(),
                    res.plural,
                    res.group
                ),
            )
        }
    }

    /// The watch-window 410: `too old resource version: N (oldest)`.
    pub fn too_old(requested: u64, oldest: u64) -> Status {
        Status::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// The HTTP 410 for an expired `continue` token.
    pub fn expired_continue(new_token: Option<String>) -> Status {
        Status {
            continue_token: new_token,
            ..Status::new(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
            )
        }
    }

    /// An injected failure with the conventional reason for `code`.
    pub fn for_code(code: u16, retry_after_seconds: Option<u32>) -> Status {
        let (reason, message) = match code {
            400 => ("BadRequest", "bad request"),
            401 => ("Unauthorized", "Unauthorized"),
            403 => ("Forbidden", "forbidden"),
            404 => (
                "NotFound",
                "the server could not find the requested resource",
            ),
            409 => ("Conflict", "conflict"),
            410 => ("Expired", "resource expired"),
            422 => ("Invalid", "invalid"),
            429 => (
                "TooManyRequests",
                "Too many requests, please try again later.",
            ),
            500 => ("InternalError", "Internal error occurred: injected failure"),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted",
            ),
            _ => ("Unknown", "injected failure"),
        };
        Status {
            details: retry_after_seconds.map(|s| {
                Box::new(StatusDetails {
                    retry_after_seconds: Some(s),
                    ..StatusDetails::default()
                })
            }),
            ..Status::new(code, reason, message)
        }
    }
}
