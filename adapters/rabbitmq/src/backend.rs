//! The connected broker: makes producers and consumers.

use std::sync::Arc;

use async_trait::async_trait;
use brokerkit_core::{
    Backend, Capabilities, ConsumerBackend, ConsumerOptions, ProducerBackend, Result,
};

use crate::config::{names, RabbitConfig};
use crate::consumer::{RabbitConsumer, Shared};
use crate::link::{Link, Publisher};
use crate::producer::RabbitProducer;
use crate::NAME;

/// One AMQP connection (re-established after a loss) and what it can do.
pub struct RabbitBackend {
    link: Arc<Link>,
    capabilities: Arc<Capabilities>,
    settle: Arc<Publisher>,
}

impl RabbitBackend {
    /// Connects to the broker of `config`.
    pub async fn connect(config: RabbitConfig) -> Result<Self> {
        let (link, frame_max) = Link::connect(config).await?;
        let capabilities = Arc::new(link.config.capabilities(frame_max));
        Ok(RabbitBackend {
            settle: Arc::new(Publisher::new(link.clone(), None)),
            link,
            capabilities,
        })
    }
}

#[async_trait]
impl Backend for RabbitBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn profile(&self) -> brokerkit_core::SchemeProfile {
        crate::profile::profile("amqp")
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn producer(&self, destination: &str) -> Result<Box<dyn ProducerBackend>> {
        self.link.check_open("producer")?;
        let p = RabbitProducer::new(self.link.clone(), destination)
            .await
            .map_err(|e| e.with_destination(destination.to_string()))?;
        Ok(Box::new(p))
    }

    async fn consumer(
        &self,
        destination: &str,
        options: &ConsumerOptions,
    ) -> Result<Box<dyn ConsumerBackend>> {
        self.link.check_open("consumer")?;
        let group = options
            .group
            .clone()
            .unwrap_or_else(|| names::DEFAULT_GROUP.to_string());
        let shared = Arc::new(Shared {
            link: self.link.clone(),
            destination: destination.into(),
            queue: names::queue(destination, &group),
            group,
            capabilities: self.capabilities.clone(),
            settle: self.settle.clone(),
        });
        let c = RabbitConsumer::new(shared, options.prefetch)
            .await
            .map_err(|e| e.with_destination(destination.to_string()))?;
        Ok(Box::new(c))
    }

    async fn browse(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<brokerkit_core::BrowsedMessage>> {
        crate::browse::browse(&self.link, destination, limit).await
    }

    async fn lag(&self, destination: &str, group: Option<&str>) -> Result<brokerkit_core::Lag> {
        crate::lag::lag(&self.link, destination, group).await
    }

    async fn close(&self) -> Result<()> {
        self.link.close().await;
        Ok(())
    }
}
