//! Settling one pending entry. Ack is `XACK` (only while this consumer still owns the entry);
//! nack, release on drop and lease extension set the entry's idle time with
//! `XCLAIM … IDLE … JUSTID` (no delivery counted), so any consumer of the group claims it
//! once it is idle past the lease: at once (nack, drop), after the delay (nack with delay),
//! or a full lease from now (extend). Dead-lettering is the core emulation over `XADD` to
//! `<destination>.dlq` and the owned `XACK`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokerkit_core::emulation::{dead_letter, DeadLetterPrimitives, FailureRecord};
use brokerkit_core::{async_trait, Error, ErrorKind, Message, Result, Settle, Settlement};
use tokio::sync::OwnedSemaphorePermit;

use crate::link::Link;

/// The deliveries a consumer has handed out and not settled (its claim scan skips them).
pub(crate) type Held = Arc<Mutex<HashSet<String>>>;

/// One delivery's handle.
pub(crate) struct RedisStreamsSettler {
    pub link: Arc<Link>,
    pub key: Arc<str>,
    pub group: Arc<str>,
    pub consumer: Arc<str>,
    pub id: String,
    pub attempt: u32,
    pub held: Held,
    /// One of the consumer's `prefetch` slots, freed when this delivery is settled or dropped.
    pub permit: Option<OwnedSemaphorePermit>,
    pub done: bool,
}

fn expired() -> Error {
    Error::new(
        ErrorKind::DeliveryExpired,
        "the delivery was idle past its lease and another consumer claimed it (or it was settled already)",
    )
    .retryable(false)
}

impl RedisStreamsSettler {
    /// Makes the entry claimable after `after` (zero: at once).
    async fn release(&mut self, after: Duration) -> Result<()> {
        let lease = self.link.config.lease;
        let idle = match lease.checked_sub(after) {
            Some(d) if !after.is_zero() => d,
            _ => lease + Duration::from_millis(1),
        };
        self.set_idle(idle).await
    }

    /// Sets the entry's idle time to `idle` while this consumer still owns it.
    async fn set_idle(&self, idle: Duration) -> Result<()> {
        let owned = self
            .link
            .set_idle(&self.key, &self.group, &self.consumer, &self.id, idle)
            .await?;
        owned.then_some(()).ok_or_else(expired)
    }

    async fn ack(&mut self) -> Result<()> {
        let owned = self
            .link
            .ack(&self.key, &self.group, &self.consumer, &self.id)
            .await?;
        owned.then_some(()).ok_or_else(expired)
    }

    fn finish(&mut self) {
        self.done = true;
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        self.permit.take();
    }
}

#[async_trait]
impl DeadLetterPrimitives for RedisStreamsSettler {
    async fn publish_dead_letter(&mut self, dlq: &str, message: Message) -> Result<()> {
        self.link.send(dlq, &message).await
    }

    async fn remove_original(&mut self) -> Result<()> {
        self.ack().await
    }
}

#[async_trait]
impl Settle for RedisStreamsSettler {
    async fn settle(mut self: Box<Self>, how: Settlement) -> Result<()> {
        self.link.closed.check("settle")?;
        let result = match how {
            Settlement::Ack => self.ack().await,
            Settlement::Nack { delay } => self.release(delay.unwrap_or_default()).await,
            Settlement::DeadLetter { reason, message } => {
                let failure = FailureRecord {
                    attempts: self.attempt,
                    destination: self.key.to_string(),
                    group: Some(self.group.to_string()),
                    first_failure: None,
                };
                dead_letter(&mut *self, failure, reason, message).await
            }
        };
        // Settled, or no longer ours: either way nothing to hand back on drop. A failed
        // request (Redis unreachable) leaves it pending: the drop releases it.
        if result.is_ok()
            || result
                .as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::DeliveryExpired)
        {
            self.finish();
        }
        result
    }

    async fn extend(&mut self, by: Duration) -> Result<()> {
        self.link.closed.check("extend")?;
        let idle = self.link.config.lease.saturating_sub(by);
        self.set_idle(idle).await
    }
}

impl Drop for RedisStreamsSettler {
    /// Dropped unsettled: hand the entry back to the group at once (it would come back after
    /// the lease anyway).
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        let permit = self.permit.take();
        let link = self.link.clone();
        let (key, group, consumer, id) = (
            self.key.clone(),
            self.group.clone(),
            self.consumer.clone(),
            std::mem::take(&mut self.id),
        );
        let idle = link.config.lease + Duration::from_millis(1);
        let runtime = link.runtime.clone();
        runtime.spawn(async move {
            let _ = link.set_idle(&key, &group, &consumer, &id, idle).await;
            drop(permit);
        });
    }
}
