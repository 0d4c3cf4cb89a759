//! Publishing with confirms to a destination's fanout exchange.

use std::sync::Arc;

use async_trait::async_trait;
use brokerkit_core::{BatchError, Error, ErrorKind, Message, ProducerBackend, Result};

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
        let mut report = BatchError::new(messages.len());
        for (i, (m, p)) in messages.iter().zip(props).enumerate() {
            match self
                .publisher
                .start("send_batch", &self.destination, "", &m.payload, p)
                .await
            {
                Ok(confirm) => pending.push((i, confirm)),
                Err(e) => {
                    // The channel broke: this entry failed, the later ones were not attempted.
                    report.fail(i, e);
                    report.skip(i + 1..messages.len());
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
                report.fail(i, self.refused(r, "send_batch"));
            }
        }
        report.into_result()
    }
}
