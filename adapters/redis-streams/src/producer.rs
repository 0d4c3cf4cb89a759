//! `XADD` to the destination's stream.

use std::sync::Arc;

use brokerkit_core::{async_trait, Message, ProducerBackend, Result};

use crate::link::Link;

/// Sends to one stream.
pub(crate) struct RedisStreamsProducer {
    pub link: Arc<Link>,
    pub key: String,
}

#[async_trait]
impl ProducerBackend for RedisStreamsProducer {
    async fn send(&self, message: Message) -> Result<()> {
        self.link.send(&self.key, &message).await
    }

    async fn send_batch(&self, messages: Vec<Message>) -> Result<()> {
        self.link.send_batch(&self.key, &messages).await
    }
}
