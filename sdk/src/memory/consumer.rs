//! Memory consumer and its deliveries' settlement.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use brokerkit_core::{
    dead_letter_destination, ConsumerBackend, DeadLetterEnvelope, Delivery, Error, ErrorKind,
    Result, Settle, Settlement,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::group::Group;
use super::queue::Ticket;
use super::{Inner, NAME};

pub(crate) struct MemoryConsumer {
    inner: Arc<Inner>,
    destination: Arc<str>,
    group_name: Arc<str>,
    group: Arc<Group>,
    prefetch: Arc<Semaphore>,
    closed: bool,
}

impl MemoryConsumer {
    pub fn new(
        inner: Arc<Inner>,
        destination: Arc<str>,
        group_name: Arc<str>,
        group: Arc<Group>,
        prefetch: usize,
    ) -> Self {
        MemoryConsumer {
            inner,
            destination,
            group_name,
            group,
            prefetch: Arc::new(Semaphore::new(prefetch.max(1))),
            closed: false,
        }
    }

    /// Slow path: waits for a permit and a message, or for the broker to close (`None`).
    /// Cancel-safe: nothing leaves the queue until `pop` returns.
    async fn wait(&self) -> Result<Option<(OwnedSemaphorePermit, Ticket, super::queue::Entry)>> {
        let shutdown = self.inner.shutdown.notified();
        tokio::pin!(shutdown);
        shutdown.as_mut().enable();
        if self.inner.closed.load(Ordering::Acquire) {
            return Ok(None);
        }
        let received = async {
            let permit = self
                .prefetch
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Error::new(ErrorKind::Closed, "consumer closed"))?;
            let (ticket, entry) = self.group.pop().await;
            Ok::<_, Error>((permit, ticket, entry))
        };
        tokio::select! {
            biased;
            _ = &mut shutdown => Ok(None),
            got = received => got.map(Some),
        }
    }
}

#[async_trait]
impl ConsumerBackend for MemoryConsumer {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        if self.closed {
            return Ok(None);
        }
        if self.inner.closed.load(Ordering::Acquire) {
            return Ok(None);
        }
        // Fast path: a permit and a message are available now.
        let ready = match self.prefetch.clone().try_acquire_owned() {
            Ok(permit) => self.group.try_pop().map(|(t, e)| (permit, t, e)),
            Err(_) => None,
        };
        let (permit, ticket, entry) = match ready {
            Some(got) => got,
            None => match self.wait().await? {
                Some(got) => got,
                None => return Ok(None),
            },
        };
        let settler = MemorySettler {
            inner: self.inner.clone(),
            group: self.group.clone(),
            group_name: self.group_name.clone(),
            destination: self.destination.clone(),
            ticket,
            settled: false,
            _permit: permit,
        };
        Ok(Some(Delivery::new(
            entry.message,
            entry.deliveries,
            self.destination.clone(),
            self.inner.capabilities.clone(),
            Box::new(settler),
        )))
    }

    async fn close(&mut self) -> Result<()> {
        self.closed = true;
        Ok(())
    }
}

struct MemorySettler {
    inner: Arc<Inner>,
    group: Arc<Group>,
    group_name: Arc<str>,
    destination: Arc<str>,
    ticket: Ticket,
    settled: bool,
    _permit: OwnedSemaphorePermit,
}

impl MemorySettler {
    fn expired(&self, operation: &'static str) -> Error {
        Error::new(
            ErrorKind::DeliveryExpired,
            "the visibility timeout expired before settlement; the message is delivered again",
        )
        .with_broker(NAME)
        .with_destination(&*self.destination)
        .with_operation(operation)
    }
}

#[async_trait]
impl Settle for MemorySettler {
    async fn settle(mut self: Box<Self>, how: Settlement) -> Result<()> {
        self.settled = true;
        let (ok, op) = match how {
            Settlement::Ack => (self.group.ack(self.ticket), "ack"),
            Settlement::Nack { delay } => (self.group.nack(self.ticket, delay), "nack"),
            Settlement::DeadLetter {
                reason,
                mut message,
            } => {
                let Some(entry) = self.group.take_for_dead_letter(self.ticket) else {
                    return Err(self.expired("dead_letter"));
                };
                if let Err(e) = self.inner.check_open(&self.destination, "dead_letter") {
                    self.group.restore(entry);
                    return Err(e);
                }
                let now = SystemTime::now();
                DeadLetterEnvelope {
                    reason,
                    attempts: entry.deliveries,
                    original_destination: self.destination.to_string(),
                    original_group: Some(self.group_name.to_string()),
                    first_failure: entry.first_failure.unwrap_or(now),
                    last_failure: now,
                }
                .write_to(&mut message.headers);
                let dlq = self
                    .inner
                    .destination(&dead_letter_destination(&self.destination));
                // If this future is dropped while the DLQ is full, the message goes back.
                let mut pending = RestoreOnDrop {
                    group: &self.group,
                    entry: Some(entry),
                };
                dlq.send(message).await;
                if let Some(entry) = pending.entry.take() {
                    self.group.finish_dead_letter(&entry);
                }
                (true, "dead_letter")
            }
        };
        if ok {
            Ok(())
        } else {
            Err(self.expired(op))
        }
    }

    async fn extend(&mut self, by: Duration) -> Result<()> {
        self.extend_lease(by)
    }
}

impl MemorySettler {
    fn extend_lease(&self, by: Duration) -> Result<()> {
        if self.group.extend(self.ticket, by) {
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
            self.group.nack(self.ticket, None);
        }
    }
}

struct RestoreOnDrop<'a> {
    group: &'a Group,
    entry: Option<super::queue::Entry>,
}

impl Drop for RestoreOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.group.restore(entry);
        }
    }
}
