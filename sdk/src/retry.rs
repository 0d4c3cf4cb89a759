//! Retry and dead-letter policy: from a failure and the attempt count, decide to retry after a
//! backoff (through `nack` with a delay, so it works on every broker and no handler sleeps while
//! holding a message), dead-letter now, or drop.

use std::time::Duration;

use brokerkit_core::{Error, ErrorKind};

/// What to do with a failed message, by policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Redeliver after the backoff (until the attempts run out, then dead-letter).
    Retry,
    /// Dead-letter now.
    DeadLetter,
    /// Acknowledge and forget (logged).
    Drop,
}

/// The outcome for one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `nack` with this delay.
    Retry(Duration),
    /// Dead-letter; `true` when it is because the attempts ran out.
    DeadLetter {
        /// Whether the attempts ran out (rather than a dead-letter-now decision).
        exhausted: bool,
    },
    /// `ack` without handling.
    Drop,
}

/// Exponential backoff with optional "equal" jitter (half fixed, half random).
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Growth per attempt.
    pub multiplier: f64,
    /// Randomize each delay within [d/2, d].
    pub jitter: bool,
}

impl Backoff {
    /// The delay after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .multiplier
            .powi(attempt.saturating_sub(1).min(63) as i32);
        let base = self.initial.as_secs_f64() * exp;
        // `try_`: a huge `initial` or `max` (e.g. `Duration::MAX`) must not panic.
        let d = Duration::try_from_secs_f64(base.min(self.max.as_secs_f64()).max(0.0))
            .unwrap_or(MAX_DELAY)
            .min(MAX_DELAY);
        if !self.jitter || d.is_zero() {
            return d;
        }
        let half = d / 2;
        half + Duration::from_nanos(fastrand::u64(
            0..=half.as_nanos().min(u64::MAX as u128) as u64,
        ))
    }
}

/// Longest backoff delay: longer ones (a `max_delay` or `initial` of `Duration::MAX`) are
/// clamped to it. One year, beyond every broker's own delay limit.
pub const MAX_DELAY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The policy: attempts, backoff and per-kind decisions.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Most deliveries of a message before it is dead-lettered.
    pub max_attempts: u32,
    /// Delay between attempts.
    pub backoff: Backoff,
    rules: Vec<(ErrorKind, Decision)>,
}

impl Default for RetryPolicy {
    /// 5 attempts, 100 ms doubling to at most 30 s, with jitter.
    fn default() -> Self {
        RetryPolicy::exponential(Duration::from_millis(100), 5)
    }
}

impl RetryPolicy {
    /// Exponential backoff from `initial` (doubling, capped at 30 s, jittered), at most
    /// `max_attempts` deliveries.
    pub fn exponential(initial: Duration, max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            backoff: Backoff {
                initial,
                max: Duration::from_secs(30),
                multiplier: 2.0,
                jitter: true,
            },
            rules: Vec::new(),
        }
    }

    /// Redelivers at once (for brokers without delayed redelivery).
    pub fn immediate(max_attempts: u32) -> Self {
        RetryPolicy::exponential(Duration::ZERO, max_attempts)
    }

    /// Caps the delay (itself capped at [`MAX_DELAY`]: `Duration::MAX` means one year).
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.backoff.max = max.min(MAX_DELAY);
        self
    }

    /// Turns jitter off (predictable delays).
    pub fn without_jitter(mut self) -> Self {
        self.backoff.jitter = false;
        self
    }

    /// Decides `decision` for errors of `kind`, overriding the defaults.
    pub fn on(mut self, kind: ErrorKind, decision: Decision) -> Self {
        self.rules.retain(|(k, _)| *k != kind);
        self.rules.push((kind, decision));
        self
    }

    /// Whether some retry would need a delayed redelivery.
    pub fn needs_delay(&self) -> bool {
        !self.backoff.initial.is_zero()
    }

    /// The decision for `kind` before counting attempts.
    ///
    /// Defaults: payload problems (`Decode`, `Validation`, `InvalidHeader`, `PayloadTooLarge`),
    /// `Rejected`, `Config` and `Unsupported` dead-letter now; everything else retries.
    pub fn decision(&self, kind: ErrorKind) -> Decision {
        if let Some((_, d)) = self.rules.iter().find(|(k, _)| *k == kind) {
            return *d;
        }
        match kind {
            ErrorKind::Decode
            | ErrorKind::Validation
            | ErrorKind::InvalidHeader
            | ErrorKind::PayloadTooLarge
            | ErrorKind::Rejected
            | ErrorKind::Config
            | ErrorKind::Unsupported => Decision::DeadLetter,
            _ => Decision::Retry,
        }
    }

    /// What to do after delivery `attempt` failed with `error`.
    pub fn decide(&self, error: &Error, attempt: u32) -> Action {
        match self.decision(error.kind()) {
            Decision::Drop => Action::Drop,
            Decision::DeadLetter => Action::DeadLetter { exhausted: false },
            Decision::Retry if attempt >= self.max_attempts => {
                Action::DeadLetter { exhausted: true }
            }
            Decision::Retry => {
                let d = self.backoff.delay(attempt);
                Action::Retry(error.retry_after().map_or(d, |hint| hint.max(d)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters_within_bounds() {
        let p = RetryPolicy::exponential(Duration::from_millis(100), 10)
            .max_delay(Duration::from_secs(1))
            .without_jitter();
        let d: Vec<_> = (1..=6).map(|a| p.backoff.delay(a).as_millis()).collect();
        assert_eq!(d, vec![100, 200, 400, 800, 1000, 1000]);
        let j = RetryPolicy::exponential(Duration::from_millis(100), 10);
        for _ in 0..100 {
            let d = j.backoff.delay(3);
            assert!(
                d >= Duration::from_millis(200) && d <= Duration::from_millis(400),
                "{d:?}"
            );
        }
    }

    #[test]
    fn decisions_by_kind_and_attempts() {
        let p = RetryPolicy::exponential(Duration::from_millis(10), 3).without_jitter();
        let handler = Error::new(ErrorKind::Handler, "boom");
        assert_eq!(
            p.decide(&handler, 1),
            Action::Retry(Duration::from_millis(10))
        );
        assert_eq!(
            p.decide(&handler, 3),
            Action::DeadLetter { exhausted: true }
        );
        let bad = Error::new(ErrorKind::Validation, "bad");
        assert_eq!(p.decide(&bad, 1), Action::DeadLetter { exhausted: false });
        let p = p.on(ErrorKind::Handler, Decision::Drop);
        assert_eq!(p.decide(&handler, 1), Action::Drop);
        let throttled =
            Error::new(ErrorKind::Throttled, "slow down").with_retry_after(Duration::from_secs(2));
        assert_eq!(
            p.decide(&throttled, 1),
            Action::Retry(Duration::from_secs(2))
        );
    }
}
