//! A backend wrapper that records every message its producers' sends were accepted for, per
//! destination, as the adapter got them (after the send layers stamped them).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use brokerkit_core::{
    Backend, BrowsedMessage, Capabilities, ConsumerBackend, ConsumerOptions, Lag, Message,
    ProducerBackend, Result,
};

/// Messages sent, by destination, in send order.
pub(crate) type Sent = Arc<Mutex<BTreeMap<String, Vec<Message>>>>;

pub(crate) fn lock(sent: &Sent) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<Message>>> {
    sent.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) struct Recording {
    pub(crate) inner: Arc<dyn Backend>,
    pub(crate) sent: Sent,
}

#[async_trait]
impl Backend for Recording {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn profile(&self) -> brokerkit_core::SchemeProfile {
        self.inner.profile()
    }

    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }

    async fn producer(&self, destination: &str) -> Result<Box<dyn ProducerBackend>> {
        Ok(Box::new(RecordingProducer {
            inner: self.inner.producer(destination).await?,
            destination: destination.to_string(),
            sent: self.sent.clone(),
        }))
    }

    async fn consumer(
        &self,
        destination: &str,
        options: &ConsumerOptions,
    ) -> Result<Box<dyn ConsumerBackend>> {
        self.inner.consumer(destination, options).await
    }

    async fn browse(&self, destination: &str, limit: usize) -> Result<Vec<BrowsedMessage>> {
        self.inner.browse(destination, limit).await
    }

    async fn lag(&self, destination: &str, group: Option<&str>) -> Result<Lag> {
        self.inner.lag(destination, group).await
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

struct RecordingProducer {
    inner: Box<dyn ProducerBackend>,
    destination: String,
    sent: Sent,
}

#[async_trait]
impl ProducerBackend for RecordingProducer {
    async fn send(&self, message: Message) -> Result<()> {
        self.inner.send(message.clone()).await?;
        lock(&self.sent)
            .entry(self.destination.clone())
            .or_default()
            .push(message);
        Ok(())
    }

    async fn send_batch(&self, messages: Vec<Message>) -> Result<()> {
        self.inner.send_batch(messages.clone()).await?;
        lock(&self.sent)
            .entry(self.destination.clone())
            .or_default()
            .extend(messages);
        Ok(())
    }
}
