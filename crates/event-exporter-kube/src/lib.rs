//! # event-exporter-kube
//!
//! The cluster runtime of event-exporter: it watches core/v1 Events, decides which updates are
//! new occurrences, enriches them with facts about their involved object, routes and delivers
//! them through [`event_exporter_sinks`], and remembers how far delivery got so that a restart,
//! a 410 or a leader hand-over neither loses nor repeats an event.

pub mod checkpoint;
pub mod client;
pub mod configmap;
pub mod enrich;
pub mod exporter;
pub mod leader;
pub mod metrics;
pub mod occurrence;
pub mod progress;
pub mod server;
pub mod threads;
pub mod watch;

/// What a log line quotes of an error: a short, escaped excerpt. An API server's error can
/// carry a whole response body (a 200 KB HTML page), newlines included.
pub(crate) fn brief(error: &dyn std::fmt::Display) -> String {
    event_exporter_core::redact::excerpt(&error.to_string(), 300)
}
