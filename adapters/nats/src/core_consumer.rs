//! Core NATS consumer: a queue subscription per group (members of a group compete, every
//! group gets each message). At-most-once: nothing is stored or redelivered, so settling is
//! bookkeeping only; `prefetch` still bounds the deliveries held unsettled.

use std::sync::Arc;

use async_nats::Subscriber;
use async_trait::async_trait;
use brokerkit_core::{ConsumerBackend, Delivery, Message, Result, Settle, Settlement};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::from_client;
use crate::link::Shared;
use crate::{headers, names};

pub(crate) struct CoreConsumer {
    shared: Arc<Shared>,
    destination: Arc<str>,
    sub: Option<Subscriber>,
    slots: Arc<Semaphore>,
}

impl CoreConsumer {
    /// Subscribes in queue group `group`; the server has the subscription when this returns.
    pub async fn subscribe(
        shared: Arc<Shared>,
        destination: &str,
        group: &str,
        prefetch: usize,
    ) -> Result<Self> {
        let subject = names::subject(destination)?;
        let address = shared.address().to_string();
        let sub = shared
            .client
            .queue_subscribe(subject, group.to_string())
            .await
            .map_err(|e| from_client(e, "subscribe", &address))?;
        // Round trip: the server has processed the SUB before we return.
        shared
            .client
            .flush()
            .await
            .map_err(|e| from_client(e, "subscribe", &address))?;
        Ok(CoreConsumer {
            shared,
            destination: destination.into(),
            sub: Some(sub),
            slots: Arc::new(Semaphore::new(prefetch.max(1))),
        })
    }
}

#[async_trait]
impl ConsumerBackend for CoreConsumer {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        if self.shared.check_open().is_err() {
            return Ok(None);
        }
        let Some(sub) = self.sub.as_mut() else {
            return Ok(None);
        };
        // Cancel-safe: the permit goes back if the wait for a message is dropped.
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            return Ok(None);
        };
        let Some(m) = sub.next().await else {
            return Ok(None);
        };
        let (headers, key) = headers::from_nats(m.headers.as_ref());
        let message = Message {
            payload: m.payload,
            headers,
            key,
        };
        Ok(Some(Delivery::new(
            message,
            1,
            self.destination.clone(),
            self.shared.caps.clone(),
            Box::new(CoreSettler { _permit: permit }),
        )))
    }

    async fn close(&mut self) -> Result<()> {
        if let Some(mut sub) = self.sub.take() {
            let _ = sub.unsubscribe().await;
        }
        Ok(())
    }
}

/// Core NATS has nothing to acknowledge; the permit frees the prefetch slot.
struct CoreSettler {
    _permit: OwnedSemaphorePermit,
}

#[async_trait]
impl Settle for CoreSettler {
    async fn settle(self: Box<Self>, how: Settlement) -> Result<()> {
        match how {
            Settlement::Ack => Ok(()),
            // The SDK refuses these first (capabilities say No); kept for direct callers.
            Settlement::Nack { .. } => Err(brokerkit_core::Error::unsupported(
                "core NATS is at-most-once: nack is not available (use nats+js:// for JetStream)",
            )),
            Settlement::DeadLetter { .. } => Err(brokerkit_core::Error::unsupported(
                "core NATS has no dead-letter destination (use nats+js:// for JetStream)",
            )),
        }
    }
}
