//! `brokerkit-rabbitmq`: the RabbitMQ adapter of brokerkit (AMQP 0-9-1 through lapin).
//!
//! URL: `amqp://[user[:password]@]host[:port][/vhost][?key=value…]` or `amqps://…`, e.g.
//! `amqp://guest:guest@127.0.0.1:5672/%2f`. Keys: [`ACCEPTED_KEYS`], described in the README.
//!
//! Topology (all durable, created on first use):
//! - destination `d` → fanout exchange `d`;
//! - consumer group `g` of `d` → queue `d:g` bound to it (no group: `d:default`); every group
//!   gets every message, consumers of one group compete;
//! - dead letters → exchange `d.dlq`, whose default-group queue `d.dlq:default` is declared
//!   with the first consumer of `d`, so dead letters are kept until someone reads them;
//! - delayed nack → hold queue `d:g:hold:<ms>` (`x-message-ttl`, dead-lettered back to
//!   `d:g` only).
//!
//! The adapter's README has the capability table and the header mapping.
//!
//! Feature `client` (default) builds the adapter; without it only the header codec and the
//! URL check build ([`decode_properties`], [`check_url`]), for fuzzing without the client.
#![warn(missing_docs)]
#![cfg_attr(not(feature = "client"), allow(dead_code))]

#[cfg(feature = "client")]
mod backend;
#[cfg(feature = "client")]
mod browse;
mod config;
#[cfg(feature = "client")]
mod consumer;
#[cfg(feature = "client")]
mod error;
mod headers;
#[cfg(feature = "client")]
mod lag;
#[cfg(feature = "client")]
mod link;
#[cfg(feature = "client")]
mod producer;
mod profile;
mod settings;

#[cfg(feature = "client")]
use std::sync::Arc;

#[cfg(feature = "client")]
use async_trait::async_trait;
#[cfg(feature = "client")]
use brokerkit_core::{Backend, BrokerUrl, Result};

#[cfg(feature = "client")]
use backend::RabbitBackend;
#[cfg(feature = "client")]
use config::RabbitConfig;
pub use settings::RabbitMqSettings;

/// Query keys accepted in `amqp://` URLs.
pub const ACCEPTED_KEYS: &[&str] = config::KEYS;

/// Adapter name used in errors and `Broker::adapter`.
pub const NAME: &str = "rabbitmq";

/// Connects `amqp://` and `amqps://` URLs.
#[cfg(feature = "client")]
pub struct RabbitMqConnector;

#[cfg(feature = "client")]
#[async_trait]
impl brokerkit_core::Connector for RabbitMqConnector {
    fn schemes(&self) -> &'static [&'static str] {
        &["amqp", "amqps"]
    }

    fn profile(&self, scheme: &str) -> brokerkit_core::SchemeProfile {
        crate::profile::profile(scheme)
    }

    async fn connect(&self, url: &BrokerUrl) -> Result<Arc<dyn Backend>> {
        let config = RabbitConfig::from_url(url)?;
        Ok(Arc::new(RabbitBackend::connect(config).await?))
    }
}

/// Decodes received AMQP properties (the header table and the message properties) as a
/// consumer does, invalid headers skipped and listed: the headers, the ordering key and the
/// deliveries made before this copy. Public for fuzzing and tools.
pub fn decode_properties(
    props: &amq_protocol::protocol::BasicProperties,
) -> (brokerkit_core::Headers, Option<String>, u32) {
    let d = headers::decode(props);
    (d.headers, d.key, d.attempts_before)
}

/// Checks a broker URL's keys and values as connecting does, without connecting; the error
/// names the bad key. Public for fuzzing and tools.
pub fn check_url(url: &brokerkit_core::BrokerUrl) -> brokerkit_core::Result<()> {
    config::RabbitConfig::from_url(url).map(|_| ())
}
