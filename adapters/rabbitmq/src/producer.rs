//! Publishing with confirms to a destination's fanout exchange.

use std::sync::Arc;

use async_trait::async_trait;
use brokerkit_core::{Error, ErrorKind, Message, ProducerBackend, Result};

use crate::headers;
use crate::link::{Link, Publisher, Refused};
use crate::{error, NAME};

/// Sends to one destination. Each `send` waits for the broker's publisher confirm; messages
/// are persistent and published with the mandatory flag, so a message that no queue takes
/// (no consumer group has subscribed yet) is reported as `NotFound` instead of vanishing.
pub struct RabbitProducer {
    link: Arc<Link>,
    destination: String,
    publisher: Publisher,
}

impl RabbitProducer {
    /// Declares the destination's exchange and opens a confirm-mode channel.
    pub async fn new(link: Arc<Link>, destination: &str) -> Result<Self> {
        let publisher = Publisher::new(link.clone(), Some(destination.to_string()));
        publisher.channel("producer").await?;
        Ok(RabbitProducer {
            link,
            destination: destination.to_string(),
            publisher,
        })
    }

    fn refused(&self, r: Refused, op: &'static str) -> Error {
        match r {
            Refused::Unroutable(why) => error::new(
                ErrorKind::NotFound,
                format!(
                    "no consumer group has subscribed to destination {:?}, so RabbitMQ stored \
                     nothing ({why}); build a consumer (group) before sending",
                    self.destination
                ),
                op,
                self.link.address(),
            ),
            Refused::Failed(e) => e,
        }
        .with_destination(self.destination.clone())
    }

    fn encode(&self, m: &Message, op: &'static str) -> Result<lapin::BasicProperties> {
        headers::encode(m).map_err(|e| {
            e.with_broker(NAME)
                .with_operation(op)
                .with_destination(self.destination.clone())
        })
    }
}

#[async_trait]
impl ProducerBackend for RabbitProducer {
    async fn send(&self, message: Message) -> Result<()> {
        self.link.check_open("send")?;
        let props = self.encode(&message, "send")?;
        self.publisher
            .publish("send", &self.destination, "", &message.payload, props)
            .await
            .map_err(|r| self.refused(r, "send"))
    }

    /// Publishes every message, then waits for all confirms (pipelined).
    async fn send_batch(&self, messages: Vec<Message>) -> Result<()> {
        self.link.check_open("send_batch")?;
        let props = messages
            .iter()
            .map(|m| self.encode(m, "send_batch"))
            .collect::<Result<Vec<_>>>()?;
        let mut pending = Vec::with_capacity(messages.len());
        let mut failed: Vec<(usize, Error)> = Vec::new();
        for (i, (m, p)) in messages.iter().zip(props).enumerate() {
            match self
                .publisher
                .start("send_batch", &self.destination, "", &m.payload, p)
                .await
            {
                Ok(confirm) => pending.push((i, confirm)),
                Err(e) => {
                    // The channel broke: this and the later entries were not sent.
                    failed.extend((i..messages.len()).map(|j| (j, e.clone_shallow())));
                    break;
                }
            }
        }
        for (i, confirm) in pending {
            if let Err(r) = self
                .publisher
                .finish("send_batch", &self.destination, confirm)
                .await
            {
                failed.push((i, self.refused(r, "send_batch")));
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        failed.sort_by_key(|(i, _)| *i);
        let indexes: Vec<String> = failed.iter().map(|(i, _)| i.to_string()).collect();
        let retryable = failed.iter().all(|(_, e)| e.is_retryable());
        let (_, first) = failed.swap_remove(0);
        Err(Error::new(
            first.kind(),
            format!(
                "{} of {} batch entries failed (indexes {}); the others were sent. First error: {}",
                indexes.len(),
                messages.len(),
                indexes.join(", "),
                first
            ),
        )
        .retryable(retryable)
        .with_broker(NAME)
        .with_operation("send_batch")
        .with_destination(self.destination.clone())
        .with_address(self.link.address()))
    }
}

trait CloneShallow {
    fn clone_shallow(&self) -> Error;
}

impl CloneShallow for Error {
    /// The same kind, message and retryability (the source is not cloneable).
    fn clone_shallow(&self) -> Error {
        Error::new(self.kind(), self.message()).retryable(self.is_retryable())
    }
}
