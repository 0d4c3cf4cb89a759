//! `impl Backend` and `impl Connector` for `redis+streams://`.

use std::sync::Arc;

use brokerkit_core::{
    async_trait, Backend, BrokerUrl, BrowsedMessage, Capabilities, Connector, ConsumerBackend,
    ConsumerOptions, Lag, ProducerBackend, Result, SchemeProfile,
};

use crate::config::{RedisStreamsConfig, SCHEME};
use crate::consumer::{Reader, RedisStreamsConsumer};
use crate::headers;
use crate::link::Link;
use crate::producer::RedisStreamsProducer;
use crate::profile::profile;

/// The URL schemes of this adapter.
pub const SCHEMES: &[&str] = &[SCHEME];

/// The adapter's name.
pub const NAME: &str = "redis-streams";

/// A connected Redis.
pub(crate) struct RedisStreamsBackend {
    link: Arc<Link>,
}

#[async_trait]
impl Backend for RedisStreamsBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn profile(&self) -> SchemeProfile {
        profile(SCHEME)
    }

    fn capabilities(&self) -> &Capabilities {
        &self.link.caps
    }

    async fn producer(&self, destination: &str) -> Result<Box<dyn ProducerBackend>> {
        self.link.closed.check("producer")?;
        Ok(Box::new(RedisStreamsProducer {
            link: self.link.clone(),
            key: destination.to_string(),
        }))
    }

    async fn consumer(
        &self,
        destination: &str,
        options: &ConsumerOptions,
    ) -> Result<Box<dyn ConsumerBackend>> {
        self.link.closed.check("consumer")?;
        let group = options.group_or_default();
        self.link.ensure_group(destination, group).await?;
        let conn = self.link.reader().await?;
        let consumer = format!("bk-{}", uuid::Uuid::new_v4().simple());
        Ok(Box::new(RedisStreamsConsumer::start(Reader {
            link: self.link.clone(),
            conn,
            key: destination.into(),
            group: group.into(),
            consumer: consumer.into(),
            prefetch: options.prefetch,
        })))
    }

    async fn browse(&self, destination: &str, limit: usize) -> Result<Vec<BrowsedMessage>> {
        let entries = self
            .link
            .browse(destination, brokerkit_core::DEFAULT_GROUP, limit)
            .await?;
        Ok(entries
            .into_iter()
            .map(|e| BrowsedMessage::new(e.id, headers::decode(e.fields)))
            .collect())
    }

    async fn lag(&self, destination: &str, group: Option<&str>) -> Result<Lag> {
        let group = group.unwrap_or(brokerkit_core::DEFAULT_GROUP);
        self.link.lag(destination, group).await
    }

    async fn close(&self) -> Result<()> {
        self.link.closed.close();
        Ok(())
    }
}

/// Connects `redis+streams://` URLs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisStreamsConnector;

#[async_trait]
impl Connector for RedisStreamsConnector {
    fn schemes(&self) -> &'static [&'static str] {
        SCHEMES
    }

    fn profile(&self, scheme: &str) -> SchemeProfile {
        profile(scheme)
    }

    async fn connect(&self, url: &BrokerUrl) -> Result<Arc<dyn Backend>> {
        let config = RedisStreamsConfig::from_url(url)?;
        Ok(Arc::new(RedisStreamsBackend {
            link: Link::connect(config).await?,
        }))
    }
}
