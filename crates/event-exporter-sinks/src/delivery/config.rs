//! A receiver's `delivery:` block: its queue, retry and timeout settings.
//!
//! ```yaml
//! receivers:
//!   - name: alerts
//!     delivery:
//!       queueSize: 5000        # deliveries held before the oldest is dropped
//!       maxAttempts: 10        # attempts per delivery, the first included
//!       initialBackoff: 1s     # first wait, doubling...
//!       maxBackoff: 1m         # ...up to this
//!       maxElapsed: 10m        # give up after this long, waits included
//!       timeout: 5s            # one request, response included
//!     webhook: {endpoint: ...}
//! ```
//! Durations are `500ms`, `30s`, `2m`, `1h`, or a number of seconds.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::{DispatchOptions, RetryPolicy};

/// A duration written as `500ms`, `30s`, `2m`, `1h` or plain seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationText(pub Duration);

/// Parses `500ms`, `30s`, `2m`, `1h`, or a number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    (0.0..1e9)
        .contains(&seconds)
        .then(|| Duration::from_secs_f64(seconds))
}

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 500ms, 30s, 2m, 1h, or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationText, E> {
                parse_duration(v)
                    .map(DurationText)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationText, E> {
                Ok(DurationText(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationText, E> {
                u64::try_from(v)
                    .map(|v| DurationText(Duration::from_secs(v)))
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationText, E> {
                parse_duration(&v.to_string())
                    .map(DurationText)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// `delivery:` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeliveryConfig {
    /// Deliveries the queue holds.
    pub queue_size: Option<usize>,
    /// Attempts per delivery, the first included.
    pub max_attempts: Option<u32>,
    /// The first wait between attempts.
    pub initial_backoff: Option<DurationText>,
    /// The longest wait between attempts.
    pub max_backoff: Option<DurationText>,
    /// The longest a delivery may take.
    pub max_elapsed: Option<DurationText>,
    /// The longest one request may take.
    pub timeout: Option<DurationText>,
}

/// A receiver's effective delivery settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Queue and retries.
    pub dispatch: DispatchOptions,
    /// One request's time limit.
    pub timeout: Duration,
}

impl DeliveryConfig {
    /// These settings over `defaults`; the error says which field is out of range.
    pub fn apply(&self, defaults: DeliverySettings) -> Result<DeliverySettings, String> {
        let d = defaults.dispatch.retry;
        let retry = RetryPolicy {
            max_attempts: self.max_attempts.unwrap_or(d.max_attempts),
            initial_backoff: self.initial_backoff.map_or(d.initial_backoff, |x| x.0),
            max_backoff: self.max_backoff.map_or(d.max_backoff, |x| x.0),
            max_elapsed: self.max_elapsed.map_or(d.max_elapsed, |x| x.0),
        };
        let queue_capacity = self.queue_size.unwrap_or(defaults.dispatch.queue_capacity);
        let timeout = self.timeout.map_or(defaults.timeout, |x| x.0);
        if retry.max_attempts == 0 {
            return Err("delivery.maxAttempts: must be at least 1".into());
        }
        if queue_capacity == 0 {
            return Err("delivery.queueSize: must be at least 1".into());
        }
        if timeout.is_zero() {
            return Err("delivery.timeout: must be more than 0".into());
        }
        if retry.initial_backoff > retry.max_backoff {
            return Err("delivery.initialBackoff: must not exceed maxBackoff".into());
        }
        Ok(DeliverySettings {
            dispatch: DispatchOptions {
                queue_capacity,
                retry,
            },
            timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5 days"), None);
        assert_eq!(parse_duration("-1s"), None);
    }

    #[test]
    fn applies_over_defaults_and_validates() {
        let defaults = DeliverySettings {
            dispatch: DispatchOptions::default(),
            timeout: Duration::from_secs(10),
        };
        let cfg: DeliveryConfig =
            serde_yaml_ng::from_str("{queueSize: 5, maxAttempts: 2, timeout: 3s, maxBackoff: 1m}")
                .unwrap();
        let s = cfg.apply(defaults).unwrap();
        assert_eq!(s.dispatch.queue_capacity, 5);
        assert_eq!(s.dispatch.retry.max_attempts, 2);
        assert_eq!(s.dispatch.retry.max_backoff, Duration::from_secs(60));
        assert_eq!(s.timeout, Duration::from_secs(3));
        let bad: DeliveryConfig = serde_yaml_ng::from_str("{maxAttempts: 0}").unwrap();
        assert!(bad.apply(defaults).unwrap_err().contains("maxAttempts"));
        assert!(serde_yaml_ng::from_str::<DeliveryConfig>("{timeout: soon}").is_err());
        assert!(serde_yaml_ng::from_str::<DeliveryConfig>("{retries: 3}").is_err());
    }
}
