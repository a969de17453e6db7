//! When to retry a failed delivery, kept apart from how long to wait.
//!
//! [`RetryPolicy::decide`] answers "should we retry, and after how long" from the error (is it
//! retryable, did the receiver send `Retry-After`), the attempts made and the time spent;
//! [`RetryPolicy::backoff`] is the waiting curve alone: exponential, capped, with jitter so
//! that receivers recovering from an outage are not hit in lockstep.

use std::time::Duration;

use event_exporter_core::sink::SendError;

/// Bounds on retrying one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The wait before the first retry (before jitter).
    pub initial_backoff: Duration,
    /// The longest wait between attempts (a longer `Retry-After` is still honoured, within
    /// `max_elapsed`).
    pub max_backoff: Duration,
    /// The longest time one delivery may take, waits included.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again after this long.
    RetryAfter(Duration),
    /// Stop: the error is permanent, or the attempts or time are used up.
    GiveUp,
}

impl RetryPolicy {
    /// The wait after `failures` failed attempts (1 for the first), for a jitter draw
    /// `unit` in `[0, 1)`: half the exponential step is fixed, half random ("equal jitter").
    pub fn backoff(&self, failures: u32, unit: f64) -> Duration {
        let exp = 2u32.saturating_pow(failures.saturating_sub(1));
        let step = self
            .initial_backoff
            .saturating_mul(exp)
            .min(self.max_backoff);
        let half = step / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Whether and when to retry after `failures` failed attempts taking `elapsed` so far.
    pub fn decide(
        &self,
        error: &SendError,
        failures: u32,
        elapsed: Duration,
        unit: f64,
    ) -> Decision {
        if !error.is_retryable() || failures >= self.max_attempts {
            return Decision::GiveUp;
        }
        let wait = error
            .retry_after()
            .unwrap_or_else(|| self.backoff(failures, unit));
        if elapsed.saturating_add(wait) > self.max_elapsed {
            Decision::GiveUp
        } else {
            Decision::RetryAfter(wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let p = policy();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(2, 1.0), Duration::from_secs(2));
        assert_eq!(p.backoff(3, 0.5), Duration::from_secs(3));
        assert_eq!(p.backoff(10, 1.0), Duration::from_secs(5));
        assert_eq!(p.backoff(u32::MAX, 1.0), Duration::from_secs(5));
    }

    #[test]
    fn permanent_errors_and_exhausted_budgets_give_up() {
        let p = policy();
        let transient = SendError::retryable("reset");
        assert_eq!(
            p.decide(&transient, 1, Duration::ZERO, 1.0),
            Decision::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            p.decide(&transient, 4, Duration::ZERO, 1.0),
            Decision::GiveUp
        );
        assert_eq!(
            p.decide(&SendError::permanent("404"), 1, Duration::ZERO, 1.0),
            Decision::GiveUp
        );
        assert_eq!(
            p.decide(&transient, 1, Duration::from_secs(59), 1.0),
            Decision::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            p.decide(&transient, 1, Duration::from_millis(59_500), 1.0),
            Decision::GiveUp
        );
    }

    #[test]
    fn retry_after_is_honoured_within_the_time_budget() {
        let p = policy();
        let limited = SendError::Transport {
            message: "HTTP 429".into(),
            retryable: true,
            retry_after: Some(Duration::from_secs(20)),
            status: Some(429),
            body: None,
        };
        assert_eq!(
            p.decide(&limited, 1, Duration::ZERO, 0.3),
            Decision::RetryAfter(Duration::from_secs(20))
        );
        assert_eq!(
            p.decide(&limited, 1, Duration::from_secs(41), 0.3),
            Decision::GiveUp
        );
    }
}
