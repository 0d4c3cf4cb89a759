//! Sending to a memory destination.

use std::sync::Arc;

use async_trait::async_trait;
use brokerkit_core::{Message, ProducerBackend, Result, SendNow};

use crate::engine::destination::Destination;
use crate::link::Link;

pub(crate) struct MemoryProducer {
    pub destination: Arc<Destination>,
    pub link: Arc<Link>,
}

#[async_trait]
impl ProducerBackend for MemoryProducer {
    async fn send(&self, message: Message) -> Result<()> {
        self.link.check_open("send")?;
        self.destination
            .send_one(message, self.link.config.send_timeout, &self.link.closed)
            .await
    }

    fn send_now(&self, message: Message) -> SendNow {
        if let Err(e) = self.link.check_open("send") {
            return SendNow::Done(Err(e));
        }
        match self.destination.try_send_one(message) {
            Ok(()) => SendNow::Done(Ok(())),
            Err(message) => SendNow::Wait(message),
        }
    }

    fn send_owned(
        self: Arc<Self>,
        message: Message,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'static>> {
        Box::pin(async move {
            self.link.check_open("send")?;
            self.destination
                .send_one(message, self.link.config.send_timeout, &self.link.closed)
                .await
        })
    }

    async fn send_batch(&self, messages: Vec<Message>) -> Result<()> {
        self.link.check_open("send_batch")?;
        self.destination
            .send_batch(messages, self.link.config.send_timeout, &self.link.closed)
            .await
    }
}
