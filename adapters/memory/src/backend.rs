//! The memory backend (broker handle) and its connector.

use std::sync::Arc;

use async_trait::async_trait;
use brokerkit_core::{
    Backend, BrokerUrl, Capabilities, ConsumerBackend, ConsumerOptions, ProducerBackend, Result,
};

use crate::config::MemoryConfig;
use crate::consumer::MemoryConsumer;
use crate::link::{Link, NAME};
use crate::producer::MemoryProducer;

/// URL schemes of the memory adapter.
pub const SCHEMES: &[&str] = &["memory"];

/// The in-process broker.
#[derive(Clone)]
pub struct MemoryBroker {
    link: Arc<Link>,
}

impl MemoryBroker {
    /// A private broker with these settings.
    pub fn new(config: MemoryConfig) -> Self {
        MemoryBroker {
            link: Link::new(config),
        }
    }

    /// The broker for a `memory://` URL: private, or shared by name within the process.
    pub fn from_url(url: &BrokerUrl) -> Result<Self> {
        let config = MemoryConfig::from_url(url)?;
        let name = url.expose().host_str().unwrap_or_default();
        if name.is_empty() {
            return Ok(MemoryBroker::new(config));
        }
        Ok(MemoryBroker {
            link: Link::shared(name, config),
        })
    }
}

#[async_trait]
impl Backend for MemoryBroker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn profile(&self) -> brokerkit_core::SchemeProfile {
        crate::profile::profile("memory")
    }

    fn capabilities(&self) -> &Capabilities {
        &self.link.capabilities
    }

    async fn producer(&self, destination: &str) -> Result<Box<dyn ProducerBackend>> {
        self.link.check_open("producer")?;
        Ok(Box::new(MemoryProducer {
            destination: self.link.destination(destination),
            link: self.link.clone(),
        }))
    }

    async fn consumer(
        &self,
        destination: &str,
        options: &ConsumerOptions,
    ) -> Result<Box<dyn ConsumerBackend>> {
        self.link.check_open("consumer")?;
        let dest = self.link.destination(destination);
        let group_name = options.group_or_default();
        let group = dest.subscribe(group_name);
        Ok(Box::new(MemoryConsumer::new(
            self.link.clone(),
            dest.name.clone(),
            group_name.into(),
            group,
            options.prefetch,
        )))
    }

    async fn browse(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<brokerkit_core::BrowsedMessage>> {
        self.link.check_open("browse")?;
        let group = self.link.destination(destination).browsed_group();
        let held = group.map(|g| g.peek(limit)).unwrap_or_default();
        Ok(held
            .into_iter()
            .enumerate()
            .map(|(i, m)| brokerkit_core::BrowsedMessage::new((i + 1).to_string(), m))
            .collect())
    }

    async fn lag(&self, destination: &str, group: Option<&str>) -> Result<brokerkit_core::Lag> {
        self.link.check_open("lag")?;
        Ok(crate::lag::lag(&self.link, destination, group))
    }

    async fn close(&self) -> Result<()> {
        self.link.close();
        Ok(())
    }
}

/// Connects `memory://` URLs.
pub struct MemoryConnector;

#[async_trait]
impl brokerkit_core::Connector for MemoryConnector {
    fn schemes(&self) -> &'static [&'static str] {
        SCHEMES
    }

    fn profile(&self, scheme: &str) -> brokerkit_core::SchemeProfile {
        crate::profile::profile(scheme)
    }

    async fn connect(&self, url: &BrokerUrl) -> Result<Arc<dyn Backend>> {
        Ok(Arc::new(MemoryBroker::from_url(url)?))
    }
}
