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
