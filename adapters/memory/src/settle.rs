//! Settling memory deliveries: ack, nack (with delay), lease extension, and dead-lettering
//! through the core emulation (publish to `<destination>.dlq`, then remove the original).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use brokerkit_core::emulation::{self, DeadLetterPrimitives, FailureRecord};
use brokerkit_core::{DeadLetterReason, Error, ErrorKind, Message, Result, Settle, Settlement};

use crate::consumer::Shared;
use crate::engine::group::Group;
use crate::engine::queue::{Entry, Ticket};
use crate::link::Link;

/// The settlement half of one memory delivery. It holds its consumer's prefetch place until
/// it is dropped (after settling, or unsettled).
pub(crate) struct MemorySettler {
    shared: Arc<Shared>,
    ticket: Ticket,
    attempt: u32,
    first_failure: Option<SystemTime>,
    settled: bool,
}

impl MemorySettler {
    /// `delivery` is the ticket, the attempt and the first failure of the entry.
    pub fn new(shared: Arc<Shared>, delivery: (Ticket, u32, Option<SystemTime>)) -> Self {
        let (ticket, attempt, first_failure) = delivery;
        MemorySettler {
            shared,
            ticket,
            attempt,
            first_failure,
            settled: false,
        }
    }

    fn expired(&self, operation: &'static str) -> Error {
        Error::new(
            ErrorKind::DeliveryExpired,
            "the visibility timeout expired before settlement; the message is delivered again",
        )
        .with_operation(operation)
    }

    async fn dead_letter(&self, reason: DeadLetterReason, message: Message) -> Result<()> {
        let s = &self.shared;
        let Some(entry) = s.group.take_for_dead_letter(self.ticket) else {
            return Err(self.expired("dead_letter"));
        };
        let mut taken = Taken {
            link: &s.link,
            group: &s.group,
            entry: Some(entry),
        };
        let failure = FailureRecord {
            attempts: self.attempt,
            destination: s.destination.to_string(),
            group: Some(s.group_name.to_string()),
            first_failure: self.first_failure,
        };
        emulation::dead_letter(&mut taken, failure, reason, message).await
    }
}

/// An entry taken out of its group for dead-lettering; put back if dropped before removal
/// (a cancelled settle, a closed broker).
struct Taken<'a> {
    link: &'a Link,
    group: &'a Group,
    entry: Option<Entry>,
}

#[async_trait]
impl DeadLetterPrimitives for Taken<'_> {
    async fn publish_dead_letter(&mut self, dlq: &str, message: Message) -> Result<()> {
        self.link.check_open("dead_letter")?;
        // Waits while the DLQ is full, at most the send timeout (then the dead-lettering fails
        // and the entry goes back); if this future is dropped, `Drop` puts the entry back.
        self.link
            .destination(dlq)
            .send_one(message, self.link.config.send_timeout, &self.link.closed)
            .await
    }

    async fn remove_original(&mut self) -> Result<()> {
        if let Some(entry) = self.entry.take() {
            self.group.finish_dead_letter(&entry);
        }
        Ok(())
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.group.restore(entry);
        }
    }
}

impl MemorySettler {
    /// Ack or nack under the group's lock (no waiting); `None` for a dead-letter.
    fn settle_in_place(&mut self, how: &Settlement) -> Option<Result<()>> {
        let (ok, op) = match how {
            Settlement::Ack => (self.shared.group.ack(self.ticket), "ack"),
            Settlement::Nack { delay } => (self.shared.group.nack(self.ticket, *delay), "nack"),
            Settlement::DeadLetter { .. } => return None,
        };
        self.settled = true;
        Some(if ok { Ok(()) } else { Err(self.expired(op)) })
    }
}

#[async_trait]
impl Settle for MemorySettler {
    async fn settle(mut self: Box<Self>, how: Settlement) -> Result<()> {
        if let Some(done) = self.settle_in_place(&how) {
            return done;
        }
        self.settled = true;
        match how {
            Settlement::DeadLetter { reason, message } => self.dead_letter(reason, message).await,
            // Handled in place above.
            Settlement::Ack | Settlement::Nack { .. } => Ok(()),
        }
    }

    fn settle_now(&mut self, how: &Settlement) -> Option<Result<()>> {
        self.settle_in_place(how)
    }

    async fn extend(&mut self, by: Duration) -> Result<()> {
        if self.shared.group.extend(self.ticket, by) {
            Ok(())
        } else {
            Err(self.expired("extend"))
        }
    }
}

impl Drop for MemorySettler {
    fn drop(&mut self) {
        if !self.settled {
            // Dropped unsettled: deliver again now. A stale ticket means it already was.
            self.shared.group.nack(self.ticket, None);
        }
        self.shared.release();
    }
}
