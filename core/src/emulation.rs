//! Emulations written once. An adapter whose broker lacks a feature provides the primitives
//! (publish a copy, remove the original) and calls the emulation here; the policy (what the
//! envelope says, the first-failure time, the order of the steps) lives only here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::dead_letter::{dead_letter_destination, DeadLetterEnvelope, DeadLetterReason};
use crate::error::Result;
use crate::message::Message;

/// What the adapter knows about a delivery that is being dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRecord {
    /// Delivery attempts made (the current delivery's attempt).
    pub attempts: u32,
    /// Where the message was consumed from.
    pub destination: String,
    /// The group that gives up.
    pub group: Option<String>,
    /// When the first failure of this message was recorded (a header the adapter carries
    /// across redeliveries, or a record kept by the process); `None` when this is the first.
    pub first_failure: Option<SystemTime>,
}

impl FailureRecord {
    /// The first-failure time as the envelope states it: the recorded one, never later than
    /// `now`, else `now` (the standard every adapter follows).
    pub fn first_failure_at(&self, now: SystemTime) -> SystemTime {
        self.first_failure.filter(|t| *t <= now).unwrap_or(now)
    }
}

/// Milliseconds since the epoch (as carried in headers) to a time.
pub fn time_from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Now, in milliseconds since the epoch (the form carried in headers).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The primitives of the dead-letter emulation, provided by an adapter's settler.
#[async_trait]
pub trait DeadLetterPrimitives: Send {
    /// Stores `message` (original payload and headers plus the envelope) on `dlq`, creating
    /// it where needed. `Ok` means the copy survives what the broker survives.
    async fn publish_dead_letter(&mut self, dlq: &str, message: Message) -> Result<()>;

    /// Removes the original for good (ack, terminate, delete), once its copy is stored.
    async fn remove_original(&mut self) -> Result<()>;

    /// Publishing failed: the original stays and will be delivered again. Restore whatever
    /// state the adapter took for the dead-lettering (the default does nothing).
    fn publish_failed(&mut self) {}
}

/// Dead-letters a delivery: writes the envelope, publishes to `<destination>.dlq`, then
/// removes the original. If publishing fails the original is kept (and delivered again);
/// nothing is lost, at worst a dead letter is stored twice.
pub async fn dead_letter<P: DeadLetterPrimitives + ?Sized>(
    primitives: &mut P,
    failure: FailureRecord,
    reason: DeadLetterReason,
    mut message: Message,
) -> Result<()> {
    let now = SystemTime::now();
    let dlq = dead_letter_destination(&failure.destination);
    DeadLetterEnvelope {
        reason,
        attempts: failure.attempts,
        first_failure: failure.first_failure_at(now),
        last_failure: now,
        original_destination: failure.destination,
        original_group: failure.group,
    }
    .write_to(&mut message.headers);
    if let Err(e) = primitives.publish_dead_letter(&dlq, message).await {
        primitives.publish_failed();
        return Err(e);
    }
    primitives.remove_original().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorKind};

    #[derive(Default)]
    struct Fake {
        published: Vec<(String, Message)>,
        removed: bool,
        restored: bool,
        fail: bool,
    }

    #[async_trait]
    impl DeadLetterPrimitives for Fake {
        async fn publish_dead_letter(&mut self, dlq: &str, message: Message) -> Result<()> {
            if self.fail {
                return Err(Error::new(ErrorKind::Unavailable, "down"));
            }
            self.published.push((dlq.to_string(), message));
            Ok(())
        }
        async fn remove_original(&mut self) -> Result<()> {
            self.removed = true;
            Ok(())
        }
        fn publish_failed(&mut self) {
            self.restored = true;
        }
    }

    fn record(first: Option<SystemTime>) -> FailureRecord {
        FailureRecord {
            attempts: 3,
            destination: "orders".into(),
            group: Some("billing".into()),
            first_failure: first,
        }
    }

    #[tokio::test]
    async fn publishes_then_removes() {
        let mut f = Fake::default();
        let t0 = time_from_ms(1_000);
        dead_letter(
            &mut f,
            record(Some(t0)),
            DeadLetterReason::new("bad"),
            Message::new("x"),
        )
        .await
        .unwrap();
        assert!(f.removed);
        let (dlq, m) = &f.published[0];
        assert_eq!(dlq, "orders.dlq");
        let env = DeadLetterEnvelope::read_from(&m.headers).unwrap();
        assert_eq!((env.attempts, env.first_failure), (3, t0));
        assert_eq!(env.original_group.as_deref(), Some("billing"));
    }

    #[tokio::test]
    async fn keeps_the_original_when_publishing_fails() {
        let mut f = Fake {
            fail: true,
            ..Fake::default()
        };
        let r = dead_letter(
            &mut f,
            record(None),
            DeadLetterReason::new("x"),
            Message::new("x"),
        );
        assert!(r.await.is_err());
        assert!(!f.removed && f.restored);
    }

    #[test]
    fn first_failure_is_never_in_the_future() {
        let now = time_from_ms(5_000);
        assert_eq!(record(Some(time_from_ms(9_000))).first_failure_at(now), now);
        assert_eq!(record(None).first_failure_at(now), now);
    }
}
