//! # event-exporter-core
//!
//! The engine of event-exporter: the [`Event`] view over an enriched Kubernetes event, compiled
//! match/drop rules and the route tree ([`route`]), Go-template layouts ([`template`],
//! [`layout`]), the configuration model ([`config`]) and the [`Sink`] trait receivers implement.
//!
//! Everything is compiled once, when the configuration loads; routing an event borrows it and
//! allocates nothing.

pub mod config;
pub mod event;
pub mod event_json;
pub mod gojson;
pub mod layout;
pub mod pattern;
pub mod redact;
pub mod route;
pub mod sink;
pub mod template;

pub use config::Config;
pub use event::{EnrichedEvent, Event, ObjectEnrichment};
pub use route::{Matcher, ReceiverId, Router};
pub use sink::Sink;
