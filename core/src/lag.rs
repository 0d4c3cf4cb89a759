//! Consumer lag: how many messages a consumer group has not acked yet, from the broker's own
//! figure, in one shape for every broker.
//!
//! The adapter primitive is [`crate::Backend::lag`]; what it can say is declared in
//! [`crate::Capabilities::lag`]. Dead-letter depth is the lag of the dead-letter destination
//! `d.dlq` ([`crate::dead_letter_destination`]) for its default group.

use std::fmt;

/// How close a broker's lag figure is to the true number of messages not yet acked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LagAccuracy {
    /// The broker's own count at the moment it answered (a counter or offsets it keeps).
    Exact,
    /// The broker publishes an estimate that may trail the truth (eventually consistent
    /// attributes, typically within a minute).
    Approximate,
    /// Only messages waiting to be delivered are counted; deliveries handed to a consumer and
    /// not acked yet are not (the broker reports ready messages only). The true lag is at
    /// least this figure.
    WaitingOnly,
}

impl LagAccuracy {
    /// A short name: `exact`, `approximate`, `waiting-only`.
    pub fn as_str(self) -> &'static str {
        match self {
            LagAccuracy::Exact => "exact",
            LagAccuracy::Approximate => "approximate",
            LagAccuracy::WaitingOnly => "waiting-only",
        }
    }
}

impl fmt::Display for LagAccuracy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lag of one partition or one underlying queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionLag {
    /// Topic (or stream, queue) the partition belongs to: the destination itself, or a topic
    /// brokerkit keeps for the group (a retry topic of the delay emulation).
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Offset of the next message the broker will write (high watermark).
    pub high_watermark: i64,
    /// Offset of the oldest message the broker still holds (low watermark).
    pub low_watermark: i64,
    /// The group's committed offset, `None` when the group never committed on this partition
    /// (it then counts from the low watermark).
    pub committed: Option<i64>,
    /// Messages not yet acked on this partition.
    pub lag: u64,
}

impl PartitionLag {
    /// The lag of a partition from its watermarks and the group's committed offset:
    /// `high - max(committed, low)`, never negative; without a commit, `high - low`.
    pub fn from_offsets(
        topic: impl Into<String>,
        partition: i32,
        low_watermark: i64,
        high_watermark: i64,
        committed: Option<i64>,
    ) -> Self {
        let from = committed.map_or(low_watermark, |c| c.max(low_watermark));
        let lag = u64::try_from(high_watermark.saturating_sub(from)).unwrap_or(0);
        PartitionLag {
            topic: topic.into(),
            partition,
            high_watermark,
            low_watermark,
            committed,
            lag,
        }
    }
}

/// How many messages of a destination a consumer group has not acked yet.
///
/// `total` is always set; `waiting`, `in_flight` and `delayed` are set where the broker tells
/// them apart (`total` is then their sum); `partitions` is set on partitioned brokers,
/// and `total` is then the sum of their lags.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lag {
    /// Messages not yet acked by the group: waiting, delayed and in flight.
    pub total: u64,
    /// Messages waiting to be delivered, where the broker says.
    pub waiting: Option<u64>,
    /// Messages delivered to a consumer and not yet settled, where the broker says.
    pub in_flight: Option<u64>,
    /// Messages held back until a delay elapses (nack with delay, a send delay), where the
    /// broker says.
    pub delayed: Option<u64>,
    /// Per-partition breakdown on partitioned brokers; empty elsewhere.
    pub partitions: Vec<PartitionLag>,
    /// How exact `total` is.
    pub accuracy: LagAccuracy,
}

impl Lag {
    /// A lag from its parts: `total` is `waiting + in_flight + delayed` (missing parts count
    /// as zero).
    pub fn from_parts(
        waiting: Option<u64>,
        in_flight: Option<u64>,
        delayed: Option<u64>,
        accuracy: LagAccuracy,
    ) -> Self {
        let total = [waiting, in_flight, delayed]
            .iter()
            .flatten()
            .fold(0u64, |a, b| a.saturating_add(*b));
        Lag {
            total,
            waiting,
            in_flight,
            delayed,
            partitions: Vec::new(),
            accuracy,
        }
    }

    /// A lag from per-partition figures: `total` is the sum of their lags.
    pub fn from_partitions(partitions: Vec<PartitionLag>, accuracy: LagAccuracy) -> Self {
        let total = partitions.iter().fold(0u64, |a, p| a.saturating_add(p.lag));
        Lag {
            total,
            waiting: None,
            in_flight: None,
            delayed: None,
            partitions,
            accuracy,
        }
    }

    /// Nothing outstanding (a destination or group the broker has never seen).
    pub fn zero(accuracy: LagAccuracy) -> Self {
        Lag::from_parts(Some(0), None, None, accuracy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_lag_counts_from_commit_or_low_watermark() {
        assert_eq!(PartitionLag::from_offsets("t", 0, 0, 10, Some(4)).lag, 6);
        assert_eq!(PartitionLag::from_offsets("t", 0, 3, 10, None).lag, 7);
        // A commit below the low watermark (retention removed messages) counts from low.
        assert_eq!(PartitionLag::from_offsets("t", 0, 5, 10, Some(2)).lag, 5);
        // A commit past the high watermark never gives a negative lag.
        assert_eq!(PartitionLag::from_offsets("t", 0, 0, 10, Some(12)).lag, 0);
    }

    #[test]
    fn totals_add_up() {
        let l = Lag::from_parts(Some(5), Some(2), None, LagAccuracy::Exact);
        assert_eq!(l.total, 7);
        let l = Lag::from_partitions(
            vec![
                PartitionLag::from_offsets("t", 0, 0, 10, Some(4)),
                PartitionLag::from_offsets("t", 1, 0, 3, None),
            ],
            LagAccuracy::Exact,
        );
        assert_eq!(l.total, 9);
        assert_eq!(Lag::zero(LagAccuracy::Approximate).total, 0);
        assert_eq!(LagAccuracy::WaitingOnly.to_string(), "waiting-only");
    }
}
