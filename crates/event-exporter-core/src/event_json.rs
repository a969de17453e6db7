//! The enriched event as upstream's `json.Marshal(EnhancedEvent)` shapes it.
//! (Interface placeholder: the implementation is being written.)

use crate::event::Event;

/// The event as a JSON value of upstream's `EnhancedEvent` shape.
pub fn to_go_json(_event: Event<'_>) -> serde_json::Value {
    serde_json::Value::Null
}
