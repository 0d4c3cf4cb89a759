//! What a handler run did, counted per outcome.

/// The fate of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Acked,
    Duplicate,
    Retried,
    DeadLettered,
    Dropped,
    Cancelled,
    Released,
    SettleFailed,
}

/// Counts of a handler run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Handled successfully and acked.
    pub acked: u64,
    /// Skipped as already handled (idempotency) and acked.
    pub duplicates: u64,
    /// Sent back for redelivery (handler failure, busy key, unavailable store).
    pub retried: u64,
    /// Dead-lettered.
    pub dead_lettered: u64,
    /// Acked without handling by policy.
    pub dropped: u64,
    /// Cancelled by shutdown and sent back.
    pub cancelled: u64,
    /// Received but not started before shutdown, handed back at once.
    pub released: u64,
    /// Could not be settled (the broker redelivers them).
    pub settle_failed: u64,
    /// Messages whose settle failed [`SETTLE_FAILURE_LIMIT`](crate::SETTLE_FAILURE_LIMIT)
    /// times: the run stopped on the first (it returns the error), so the handler does not
    /// run again and again on a message that can never be settled.
    pub settle_given_up: u64,
}

impl RunReport {
    pub(crate) fn add(&mut self, o: Outcome) {
        let n = match o {
            Outcome::Acked => &mut self.acked,
            Outcome::Duplicate => &mut self.duplicates,
            Outcome::Retried => &mut self.retried,
            Outcome::DeadLettered => &mut self.dead_lettered,
            Outcome::Dropped => &mut self.dropped,
            Outcome::Cancelled => &mut self.cancelled,
            Outcome::Released => &mut self.released,
            Outcome::SettleFailed => &mut self.settle_failed,
        };
        *n += 1;
    }

    /// Deliveries processed in all.
    pub fn total(&self) -> u64 {
        self.acked
            + self.duplicates
            + self.retried
            + self.dead_lettered
            + self.dropped
            + self.cancelled
            + self.released
            + self.settle_failed
    }
}
