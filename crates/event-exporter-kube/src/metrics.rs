//! Prometheus metrics, rendered in the text exposition format 0.0.4.
//!
//! Every series is a relaxed atomic: recording costs one `fetch_add` and never allocates. Labels
//! are low-cardinality only — a fixed reason or outcome, or a receiver name from the config;
//! never an event's name, uid or involved object.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Why an event was not exported (the `reason` label of `events_discarded_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Discard {
    /// The update was not a new occurrence of the event.
    Duplicate,
    /// The event is older than `maxEventAgeSeconds`.
    TooOld,
    /// No route sent the event to any receiver.
    NoRoute,
    /// The watch delivered something that is not a readable Event.
    Malformed,
}

impl Discard {
    /// Every reason, in the order they are rendered.
    pub const ALL: [Self; 4] = [
        Self::Duplicate,
        Self::TooOld,
        Self::NoRoute,
        Self::Malformed,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::TooOld => "too_old",
            Self::NoRoute => "no_route",
            Self::Malformed => "malformed",
        }
    }
}

/// The outcome of one involved-object lookup (see [`crate::enrich`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lookup {
    /// Served from the cache (or by joining a lookup of the same object already in flight).
    Hit,
    /// Not cached: the object was requested from the API.
    Miss,
    /// The request failed (forbidden, server error, timeout, unknown kind).
    Error,
    /// The object does not exist any more.
    NotFound,
    /// Not requested: lookups of its group/version were timing out (see
    /// [`EnrichSettings::slow_api_pause`](crate::enrich::EnrichSettings::slow_api_pause)).
    Skipped,
}

/// The exporter's own counters and gauges, shared as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    prefix: String,
    events_received: AtomicU64,
    events_exported: AtomicU64,
    events_discarded: [AtomicU64; Discard::ALL.len()],
    watch_restarts: AtomicU64,
    watch_errors: AtomicU64,
    enrichment_hits: AtomicU64,
    enrichment_misses: AtomicU64,
    enrichment_errors: AtomicU64,
    enrichment_not_found: AtomicU64,
    enrichment_skipped: AtomicU64,
    leader: AtomicBool,
    checkpoint_rv: AtomicU64,
    checkpoint_pending: AtomicU64,
    checkpoint_writes: AtomicU64,
    checkpoint_errors: AtomicU64,
}

/// One receiver's delivery statistics, as the sinks report them at render time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiverSample<'a> {
    /// The receiver's name from the config.
    pub name: &'a str,
    /// Deliveries that succeeded.
    pub sent: u64,
    /// Delivery attempts that were retried.
    pub retried: u64,
    /// Deliveries that failed for good.
    pub failed: u64,
    /// Events dropped before delivery (full queue, shutdown).
    pub dropped: u64,
    /// Events waiting in the receiver's queue now.
    pub queue_depth: usize,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Metrics {
    /// Metrics whose names all start with `prefix` (upstream's `metricsNamePrefix`; the caller
    /// passes the configured value, `""` means no prefix).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            events_received: AtomicU64::new(0),
            events_exported: AtomicU64::new(0),
            events_discarded: Default::default(),
            watch_restarts: AtomicU64::new(0),
            watch_errors: AtomicU64::new(0),
            enrichment_hits: AtomicU64::new(0),
            enrichment_misses: AtomicU64::new(0),
            enrichment_errors: AtomicU64::new(0),
            enrichment_not_found: AtomicU64::new(0),
            enrichment_skipped: AtomicU64::new(0),
            leader: AtomicBool::new(false),
            checkpoint_rv: AtomicU64::new(0),
            checkpoint_pending: AtomicU64::new(0),
            checkpoint_writes: AtomicU64::new(0),
            checkpoint_errors: AtomicU64::new(0),
        }
    }

    /// An event update arrived from the watch.
    pub fn event_received(&self) {
        bump(&self.events_received);
    }

    /// An event was routed to at least one receiver.
    pub fn event_exported(&self) {
        bump(&self.events_exported);
    }

    /// An event was not exported, for `reason`.
    pub fn event_discarded(&self, reason: Discard) {
        bump(&self.events_discarded[reason as usize]);
    }

    /// The watch was restarted (relist after an error or a 410).
    pub fn watch_restart(&self) {
        bump(&self.watch_restarts);
    }

    /// The watch reported an error.
    pub fn watch_error(&self) {
        bump(&self.watch_errors);
    }

    /// One involved-object lookup ended with `outcome`. A miss is followed by [`Lookup::Error`]
    /// or [`Lookup::NotFound`] when the request did not return the object.
    pub fn enrichment_lookup(&self, outcome: Lookup) {
        bump(match outcome {
            Lookup::Hit => &self.enrichment_hits,
            Lookup::Miss => &self.enrichment_misses,
            Lookup::Error => &self.enrichment_errors,
            Lookup::NotFound => &self.enrichment_not_found,
            Lookup::Skipped => &self.enrichment_skipped,
        });
    }

    /// Whether this replica is the leader now.
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Relaxed);
    }

    /// The resourceVersion the checkpoint last recorded.
    pub fn set_checkpoint_rv(&self, rv: u64) {
        self.checkpoint_rv.store(rv, Ordering::Relaxed);
    }

    /// How many occurrences the checkpoint last recorded as not finished by some receiver.
    pub fn set_checkpoint_pending(&self, pending: u64) {
        self.checkpoint_pending.store(pending, Ordering::Relaxed);
    }

    /// The checkpoint was written.
    pub fn checkpoint_written(&self) {
        bump(&self.checkpoint_writes);
    }

    /// Writing the checkpoint failed.
    pub fn checkpoint_error(&self) {
        bump(&self.checkpoint_errors);
    }

    /// Renders every metric in the Prometheus text format 0.0.4, with per-receiver
    /// `deliveries_total` and `queue_depth` series from `receivers`, and `build_info`.
    pub fn render(&self, receivers: &[ReceiverSample<'_>]) -> String {
        let mut out = String::with_capacity(2048 + receivers.len() * 400);
        let mut w = Writer {
            out: &mut out,
            prefix: &self.prefix,
        };
        w.simple(
            "events_received_total",
            "counter",
            "Event updates received from the watch.",
            load(&self.events_received),
        );
        w.simple(
            "events_exported_total",
            "counter",
            "Events routed to at least one receiver.",
            load(&self.events_exported),
        );
        w.header(
            "events_discarded_total",
            "counter",
            "Events not exported, by reason.",
        );
        for reason in Discard::ALL {
            w.sample(
                "events_discarded_total",
                &[("reason", reason.as_str())],
                load(&self.events_discarded[reason as usize]),
            );
        }
        w.simple(
            "watch_restarts_total",
            "counter",
            "Times the event watch was restarted.",
            load(&self.watch_restarts),
        );
        w.simple(
            "watch_errors_total",
            "counter",
            "Errors reported by the event watch.",
            load(&self.watch_errors),
        );
        w.simple(
            "enrichment_cache_hits_total",
            "counter",
            "Involved-object lookups served from the cache.",
            load(&self.enrichment_hits),
        );
        w.simple(
            "enrichment_cache_misses_total",
            "counter",
            "Involved-object lookups that requested the object from the API.",
            load(&self.enrichment_misses),
        );
        w.simple(
            "enrichment_errors_total",
            "counter",
            "Involved-object lookups that failed.",
            load(&self.enrichment_errors),
        );
        w.simple(
            "enrichment_not_found_total",
            "counter",
            "Involved-object lookups that found the object deleted.",
            load(&self.enrichment_not_found),
        );
        w.simple(
            "enrichment_skipped_total",
            "counter",
            "Involved-object lookups skipped while lookups of their API group/version time out.",
            load(&self.enrichment_skipped),
        );
        w.simple(
            "leader",
            "gauge",
            "1 when this replica is the leader, else 0.",
            u64::from(self.leader.load(Ordering::Relaxed)),
        );
        w.simple(
            "checkpoint_resource_version",
            "gauge",
            "The resourceVersion last recorded in the checkpoint.",
            load(&self.checkpoint_rv),
        );
        w.simple(
            "checkpoint_pending",
            "gauge",
            "Occurrences the checkpoint last recorded as not finished by some receiver.",
            load(&self.checkpoint_pending),
        );
        w.simple(
            "checkpoint_writes_total",
            "counter",
            "Checkpoint writes that succeeded.",
            load(&self.checkpoint_writes),
        );
        w.simple(
            "checkpoint_errors_total",
            "counter",
            "Checkpoint writes that failed.",
            load(&self.checkpoint_errors),
        );
        if !receivers.is_empty() {
            w.header(
                "deliveries_total",
                "counter",
                "Deliveries per receiver, by outcome.",
            );
            for r in receivers {
                for (outcome, value) in [
                    ("sent", r.sent),
                    ("retried", r.retried),
                    ("failed", r.failed),
                    ("dropped", r.dropped),
                ] {
                    w.sample(
                        "deliveries_total",
                        &[("receiver", r.name), ("outcome", outcome)],
                        value,
                    );
                }
            }
            w.header(
                "queue_depth",
                "gauge",
                "Events waiting in each receiver's queue.",
            );
            for r in receivers {
                w.sample("queue_depth", &[("receiver", r.name)], r.queue_depth as u64);
            }
        }
        w.header("build_info", "gauge", "The exporter's version; always 1.");
        w.sample("build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);
        out
    }
}

struct Writer<'a> {
    out: &'a mut String,
    prefix: &'a str,
}

impl Writer<'_> {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {}{name} {help}", self.prefix);
        let _ = writeln!(self.out, "# TYPE {}{name} {kind}", self.prefix);
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.out.push_str(self.prefix);
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(key);
                self.out.push_str("=\"");
                escape_label_value(self.out, value);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    fn simple(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.header(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// Escapes a label value per the text format: backslash, double quote and line feed.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values() {
        let mut s = String::new();
        escape_label_value(&mut s, "a\\b\"c\nd");
        assert_eq!(s, r#"a\\b\"c\nd"#);
    }

    #[test]
    fn renders_exact_text() {
        let m = Metrics::new("ee_");
        m.event_received();
        m.event_received();
        m.event_exported();
        m.event_discarded(Discard::TooOld);
        m.enrichment_lookup(Lookup::Hit);
        m.enrichment_lookup(Lookup::Miss);
        m.enrichment_lookup(Lookup::NotFound);
        m.set_leader(true);
        m.set_checkpoint_rv(42);
        m.set_checkpoint_pending(3);
        m.checkpoint_written();
        let text = m.render(&[ReceiverSample {
            name: "sla\"ck\\x\ny",
            sent: 3,
            retried: 1,
            failed: 0,
            dropped: 2,
            queue_depth: 5,
        }]);
        let expected = format!(
            r#"# HELP ee_events_received_total Event updates received from the watch.
# TYPE ee_events_received_total counter
ee_events_received_total 2
# HELP ee_events_exported_total Events routed to at least one receiver.
# TYPE ee_events_exported_total counter
ee_events_exported_total 1
# HELP ee_events_discarded_total Events not exported, by reason.
# TYPE ee_events_discarded_total counter
ee_events_discarded_total{{reason="duplicate"}} 0
ee_events_discarded_total{{reason="too_old"}} 1
ee_events_discarded_total{{reason="no_route"}} 0
ee_events_discarded_total{{reason="malformed"}} 0
# HELP ee_watch_restarts_total Times the event watch was restarted.
# TYPE ee_watch_restarts_total counter
ee_watch_restarts_total 0
# HELP ee_watch_errors_total Errors reported by the event watch.
# TYPE ee_watch_errors_total counter
ee_watch_errors_total 0
# HELP ee_enrichment_cache_hits_total Involved-object lookups served from the cache.
# TYPE ee_enrichment_cache_hits_total counter
ee_enrichment_cache_hits_total 1
# HELP ee_enrichment_cache_misses_total Involved-object lookups that requested the object from the API.
# TYPE ee_enrichment_cache_misses_total counter
ee_enrichment_cache_misses_total 1
# HELP ee_enrichment_errors_total Involved-object lookups that failed.
# TYPE ee_enrichment_errors_total counter
ee_enrichment_errors_total 0
# HELP ee_enrichment_not_found_total Involved-object lookups that found the object deleted.
# TYPE ee_enrichment_not_found_total counter
ee_enrichment_not_found_total 1
# HELP ee_enrichment_skipped_total Involved-object lookups skipped while lookups of their API group/version time out.
# TYPE ee_enrichment_skipped_total counter
ee_enrichment_skipped_total 0
# HELP ee_leader 1 when this replica is the leader, else 0.
# TYPE ee_leader gauge
ee_leader 1
# HELP ee_checkpoint_resource_version The resourceVersion last recorded in the checkpoint.
# TYPE ee_checkpoint_resource_version gauge
ee_checkpoint_resource_version 42
# HELP ee_checkpoint_pending Occurrences the checkpoint last recorded as not finished by some receiver.
# TYPE ee_checkpoint_pending gauge
ee_checkpoint_pending 3
# HELP ee_checkpoint_writes_total Checkpoint writes that succeeded.
# TYPE ee_checkpoint_writes_total counter
ee_checkpoint_writes_total 1
# HELP ee_checkpoint_errors_total Checkpoint writes that failed.
# TYPE ee_checkpoint_errors_total counter
ee_checkpoint_errors_total 0
# HELP ee_deliveries_total Deliveries per receiver, by outcome.
# TYPE ee_deliveries_total counter
ee_deliveries_total{{receiver="sla\"ck\\x\ny",outcome="sent"}} 3
ee_deliveries_total{{receiver="sla\"ck\\x\ny",outcome="retried"}} 1
ee_deliveries_total{{receiver="sla\"ck\\x\ny",outcome="failed"}} 0
ee_deliveries_total{{receiver="sla\"ck\\x\ny",outcome="dropped"}} 2
# HELP ee_queue_depth Events waiting in each receiver's queue.
# TYPE ee_queue_depth gauge
ee_queue_depth{{receiver="sla\"ck\\x\ny"}} 5
# HELP ee_build_info The exporter's version; always 1.
# TYPE ee_build_info gauge
ee_build_info{{version="{}"}} 1
"#,
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn empty_prefix_and_no_receivers() {
        let text = Metrics::new("").render(&[]);
        assert!(text.starts_with("# HELP events_received_total "));
        assert!(!text.contains("deliveries_total"));
        assert!(text.contains("\nbuild_info{version=\""));
    }
}
