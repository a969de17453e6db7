//! What a receiver implements: [`Sink`] delivers, and renders the exact requests it would send.
//!
//! Rendering is pure (no I/O, no state change) so that `event-exporter render` can show what a
//! configuration would send without sending it; delivery is async and may keep state (Slack
//! threads, Grafana regions). Both traits are object safe: receivers are `Box<dyn Sink>`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::event::{EnrichedEvent, Event};
use crate::redact::Secrets;

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
    /// Tells whoever dispatched it when this delivery is finished (see [`Receipt`]).
    pub receipt: Option<Receipt>,
}

impl Delivery {
    /// A delivery of `event`.
    pub fn new(event: Arc<EnrichedEvent>) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Self {
            id: DeliveryId::of(event.view()),
            seq: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            event,
            receipt: None,
        }
    }

    /// A delivery of `event` that marks `receipt` finished when it is (see [`Receipt`]).
    pub fn with_receipt(event: Arc<EnrichedEvent>, receipt: Receipt) -> Self {
        Self {
            receipt: Some(receipt),
            ..Self::new(event)
        }
    }
}

/// The finished flags of one event's deliveries: one slot per receiver it was dispatched to.
///
/// A delivery is finished once nothing holds it any more: it was sent, given up after its
/// retries, or dropped (a full queue, a shutdown). The dispatcher counts all three and sends
/// none of them again, so "finished" is what a checkpoint may record as done.
#[derive(Debug)]
pub struct ReceiptBoard {
    done: Box<[std::sync::atomic::AtomicBool]>,
}

impl ReceiptBoard {
    /// A board of `slots` unfinished deliveries.
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            done: (0..slots)
                .map(|_| std::sync::atomic::AtomicBool::new(false))
                .collect(),
        })
    }

    /// The receipt of slot `slot`, to travel with its delivery. Slots out of range are ignored.
    pub fn receipt(self: &Arc<Self>, slot: usize) -> Receipt {
        Receipt(Arc::new(ReceiptSlot {
            board: Arc::clone(self),
            slot,
        }))
    }

    /// How many slots it has.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// Whether it has no slot.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// Whether slot `slot`'s delivery is finished.
    pub fn is_done(&self, slot: usize) -> bool {
        self.done
            .get(slot)
            .is_none_or(|d| d.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Whether every delivery is finished.
    pub fn all_done(&self) -> bool {
        self.done
            .iter()
            .all(|d| d.load(std::sync::atomic::Ordering::Acquire))
    }
}

/// Marks its slot of a [`ReceiptBoard`] finished when the last clone of it is dropped, i.e.
/// when the delivery carrying it is.
#[derive(Debug, Clone)]
pub struct Receipt(Arc<ReceiptSlot>);

impl Receipt {
    /// Its slot on the board.
    pub fn slot(&self) -> usize {
        self.0.slot
    }
}

#[derive(Debug)]
struct ReceiptSlot {
    board: Arc<ReceiptBoard>,
    slot: usize,
}

impl Drop for ReceiptSlot {
    fn drop(&mut self) {
        if let Some(d) = self.board.done.get(self.slot) {
            d.store(true, std::sync::atomic::Ordering::Release);
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
        /// What failed (no secrets, no response body).
        message: String,
        /// Whether trying again may succeed.
        retryable: bool,
        /// How long the receiver asked us to wait (`Retry-After`), if it said.
        retry_after: Option<std::time::Duration>,
        /// The HTTP status, when the receiver answered with one.
        status: Option<u16>,
        /// The start of what the receiver answered, if anything: logged at debug only (it can
        /// echo the request's credentials), never part of the message.
        body: Option<String>,
    },
    /// This process ran short of something on the way (no file descriptor left to connect or
    /// open a file with): not the receiver's failure. Retried for as long as it lasts (up to an
    /// hour); it never uses up a delivery's attempts or time.
    #[error("{0}")]
    Local(String),
}

/// Whether `error` or one of its causes is this process out of file descriptors (`EMFILE`,
/// `ENFILE`): a local shortage, see [`SendError::Local`].
pub fn out_of_descriptors(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(io.raw_os_error(), Some(23 | 24))
        {
            return true;
        }
        next = e.source();
    }
    false
}

impl SendError {
    /// A transport failure that a retry may fix.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Transport {
            message: message.into(),
            retryable: true,
            retry_after: None,
            status: None,
            body: None,
        }
    }

    /// A transport failure that a retry will not fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Transport {
            message: message.into(),
            retryable: false,
            retry_after: None,
            status: None,
            body: None,
        }
    }

    /// The same failure, with the start of what the receiver answered (see
    /// [`SendError::body`]).
    pub fn with_body(mut self, excerpt: impl Into<String>) -> Self {
        if let Self::Transport { body, .. } = &mut self {
            *body = Some(excerpt.into());
        }
        self
    }

    /// The start of what the receiver answered, if the failure carries it: for debug logs,
    /// scrubbed of the receiver's secrets first.
    pub fn body(&self) -> Option<&str> {
        match self {
            Self::Transport { body, .. } => body.as_deref(),
            Self::Render(_) | Self::Local(_) => None,
        }
    }

    /// The HTTP status the receiver answered with, if the failure was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Transport { status, .. } => *status,
            Self::Render(_) | Self::Local(_) => None,
        }
    }

    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Transport {
                retryable: true,
                ..
            } | Self::Local(_)
        )
    }

    /// Whether this is a local shortage ([`SendError::Local`]).
    pub fn is_local(&self) -> bool {
        matches!(self, Self::Local(_))
    }

    /// The wait the receiver asked for, if any.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Transport { retry_after, .. } => *retry_after,
            Self::Render(_) | Self::Local(_) => None,
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

    /// What this receiver's configuration holds that is secret (tokens, passwords, credential
    /// URLs, header values from the environment): masked in whatever is logged or shown of it.
    fn secrets(&self) -> &Secrets {
        static NONE: Secrets = Secrets::new();
        &NONE
    }

    /// Flushes and releases resources; called once when the exporter stops.
    async fn close(&self) -> Result<(), SendError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_is_finished_when_the_last_clone_of_its_delivery_is_dropped() {
        let event = Arc::new(EnrichedEvent::default());
        let board = ReceiptBoard::new(2);
        let a = Delivery::with_receipt(Arc::clone(&event), board.receipt(0));
        let b = Delivery::with_receipt(Arc::clone(&event), board.receipt(1));
        let retry = a.clone();
        drop(a);
        assert!(!board.is_done(0), "a clone still holds it");
        drop(retry);
        assert!(board.is_done(0));
        assert!(!board.all_done());
        drop(b);
        assert!(board.all_done());
        assert_eq!(board.len(), 2);
    }
}
