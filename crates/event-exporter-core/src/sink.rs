//! What a receiver implements: [`Sink`] delivers, and renders the exact requests it would send.
//!
//! Rendering is pure (no I/O, no state change) so that `event-exporter render` can show what a
//! configuration would send without sending it; delivery is async and may keep state (Slack
//! threads, Grafana regions). Both traits are object safe: receivers are `Box<dyn Sink>`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::event::{EnrichedEvent, Event};

/// One header of a rendered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header name.
    pub name: String,
    /// The value.
    pub value: String,
    /// Whether the value is a secret (a token, an Authorization value): shown as `***` unless
    /// secrets are asked for, and never logged.
    pub sensitive: bool,
}

impl Header {
    /// A header whose value can be shown.
    pub fn plain(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            sensitive: false,
        }
    }

    /// A header whose value is a secret.
    pub fn secret(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            sensitive: true,
        }
    }
}

/// A request a sink sends (or a line it writes), exactly as it goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// HTTP method, or `WRITE` for stream and file sinks.
    pub method: String,
    /// The URL, or `stdout:` / `file://PATH` for stream and file sinks. It may carry
    /// credentials (a Slack incoming-webhook path): mask it before showing it.
    pub url: String,
    /// Headers in the order they are sent.
    pub headers: Vec<Header>,
    /// The body bytes as sent.
    pub body: String,
}

impl Request {
    /// Whether the body is JSON (by its content type, or for line-writing sinks always).
    pub fn is_json(&self) -> bool {
        self.method == "WRITE"
            || self
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("content-type") && h.value.contains("json"))
    }
}

/// Identity of one delivery: the event's uid and occurrence count. Stable across restarts, so
/// receivers and templates can use it to deduplicate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryId {
    /// The event's `metadata.uid`.
    pub uid: String,
    /// The occurrence (`count`, or `series.count`), 0 when the event carries none.
    pub count: i32,
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.uid, self.count)
    }
}

impl DeliveryId {
    /// The id of an event's current occurrence.
    pub fn of(event: Event<'_>) -> Self {
        Self {
            uid: event.uid().to_owned(),
            count: event.occurrence().unwrap_or(0),
        }
    }
}

/// One event on its way to one receiver.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The delivery's identity (stable across restarts).
    pub id: DeliveryId,
    /// A number unique to this delivery within the process: what retries of one delivery
    /// share and no other delivery has (events without a uid, or reaching a receiver twice,
    /// share an `id`).
    pub seq: u64,
    /// The event (shared between the receivers it was routed to).
    pub event: Arc<EnrichedEvent>,
}

impl Delivery {
    /// A delivery of `event`.
    pub fn new(event: Arc<EnrichedEvent>) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Self {
            id: DeliveryId::of(event.view()),
            seq: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            event,
        }
    }
}

/// Why a sink could not render an event.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    /// What failed, with the field (`layout.text: template:1:3: ...`).
    pub message: String,
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The event could not be rendered: retrying will not help.
    #[error("render: {0}")]
    Render(#[from] RenderError),
    /// Writing or sending failed; `retryable` says whether a retry may succeed.
    #[error("{message}")]
    Transport {
        /// What failed (no secrets).
        message: String,
        /// Whether trying again may succeed.
        retryable: bool,
        /// How long the receiver asked us to wait (`Retry-After`), if it said.
        retry_after: Option<std::time::Duration>,
        /// The HTTP status, when the receiver answered with one.
        status: Option<u16>,
    },
}

impl SendError {
    /// A transport failure that a retry may fix.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Transport {
            message: message.into(),
            retryable: true,
            retry_after: None,
            status: None,
        }
    }

    /// A transport failure that a retry will not fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Transport {
            message: message.into(),
            retryable: false,
            retry_after: None,
            status: None,
        }
    }

    /// The HTTP status the receiver answered with, if the failure was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Transport { status, .. } => *status,
            Self::Render(_) => None,
        }
    }

    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Transport {
                retryable: true,
                ..
            }
        )
    }

    /// The wait the receiver asked for, if any.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Transport { retry_after, .. } => *retry_after,
            Self::Render(_) => None,
        }
    }
}

/// A receiver's sink.
#[async_trait]
pub trait Sink: Send + Sync + fmt::Debug {
    /// The receiver's name.
    fn name(&self) -> &str;

    /// The sink kind (`webhook`, `stdout`, ...).
    fn kind(&self) -> &'static str;

    /// The requests this sink would send for `event`, rendered exactly, without I/O and without
    /// changing any state.
    fn render(&self, event: Event<'_>) -> Result<Vec<Request>, RenderError>;

    /// Delivers one event.
    async fn send(&self, delivery: &Delivery) -> Result<(), SendError>;

    /// Flushes and releases resources; called once when the exporter stops.
    async fn close(&self) -> Result<(), SendError> {
        Ok(())
    }
}
