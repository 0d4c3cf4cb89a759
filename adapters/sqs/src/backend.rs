//! The `Backend` implementation for both schemes: makes producers and consumers on top of
//! the shared link.

use std::sync::Arc;

use async_trait::async_trait;
use brokerkit_core::{
    Backend, Capabilities, ConsumerBackend, ConsumerOptions, ProducerBackend, Result,
};

use crate::config::Service;
use crate::consumer::SqsConsumer;
use crate::link::Inner;
use crate::producer::Producer;

/// The backend of one `sqs://` or `sns://` connection.
pub(crate) struct SqsBackend {
    pub inner: Arc<Inner>,
}

#[async_trait]
impl Backend for SqsBackend {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn profile(&self) -> brokerkit_core::SchemeProfile {
        crate::profile::profile(self.inner.name())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.capabilities
    }

    async fn producer(&self, destination: &str) -> Result<Box<dyn ProducerBackend>> {
        self.inner.check_open(destination, "producer")?;
        let target = self.inner.target(destination).await?;
        Ok(Box::new(Producer::new(
            self.inner.clone(),
            destination,
            target,
        )))
    }

    async fn consumer(
        &self,
        destination: &str,
        options: &ConsumerOptions,
    ) -> Result<Box<dyn ConsumerBackend>> {
        self.inner.check_open(destination, "consumer")?;
        let group = options.group_or_default();
        let queue = match self.inner.config.service {
            // SQS has no consumer groups: every consumer of a queue competes for its messages,
            // whatever group it names (the group is kept for the dead-letter envelope).
            Service::Sqs => self.inner.destination_queue(destination).await?,
            Service::Sns => self.inner.group_queue(destination, group).await?,
        };
        Ok(Box::new(SqsConsumer::start(
            self.inner.clone(),
            queue,
            destination,
            group,
            options.prefetch,
        )))
    }

    async fn browse(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<brokerkit_core::BrowsedMessage>> {
        crate::browse::browse(&self.inner, destination, limit).await
    }

    async fn lag(&self, destination: &str, group: Option<&str>) -> Result<brokerkit_core::Lag> {
        crate::lag::lag(&self.inner, destination, group).await
    }

    async fn close(&self) -> Result<()> {
        self.inner.closed.close();
        self.inner.shutdown.send_replace(true);
        Ok(())
    }
}
