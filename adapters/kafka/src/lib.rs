//! `brokerkit-kafka`: the brokerkit adapter for Kafka-protocol brokers, over librdkafka
//! (the `rdkafka` crate, bundled librdkafka built without TLS, SASL-GSSAPI or zstd).
//!
//! URL: `kafka://host[:port][?key=value…]` (port 9092 by default); the accepted keys, the
//! capability table, the header mapping and the retry and dead-letter scheme are in the
//! crate's README.
//!
//! - A destination is a topic; a brokerkit group is the Kafka consumer group
//!   `<destination>:<group>` (`default` when none is given). A new group starts at the
//!   earliest retained offset.
//! - Producers are idempotent with `acks=all`; `send` returns after the delivery report.
//! - Consumers commit only offsets whose message and every earlier message of the partition
//!   are settled. `nack`, a delivery dropped unsettled, and `nack` with a delay go through the
//!   group's retry topic `<destination>.retry.<group>`; dead letters go to `<destination>.dlq`.
//!
//! Feature `client` (default) builds the adapter; without it only the header codec and the
//! URL check build ([`decode_headers`], [`KafkaConfig`]), for fuzzing without librdkafka.
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
mod driver;
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
mod settle;
#[cfg(feature = "client")]
mod state;
#[cfg(feature = "client")]
mod topics;

#[cfg(feature = "client")]
use std::sync::Arc;

#[cfg(feature = "client")]
use brokerkit_core::{Backend, BrokerUrl, Result};

pub use config::{KafkaConfig, KEYS};
pub use settings::KafkaSettings;

/// Connects `kafka://` URLs.
#[cfg(feature = "client")]
pub struct KafkaConnector;

#[cfg(feature = "client")]
#[async_trait::async_trait]
impl brokerkit_core::Connector for KafkaConnector {
    fn schemes(&self) -> &'static [&'static str] {
        &["kafka"]
    }

    fn profile(&self, scheme: &str) -> brokerkit_core::SchemeProfile {
        crate::profile::profile(scheme)
    }

    async fn connect(&self, url: &BrokerUrl) -> Result<Arc<dyn Backend>> {
        let config = KafkaConfig::from_url(url)?;
        Ok(Arc::new(backend::KafkaBackend::connect(config).await?))
    }
}

/// Decodes raw Kafka record headers as a consumer does (invalid ones skipped and listed in
/// `x-brokerkit-invalid-headers`): the headers and the attempt number. `retry_copy` reads
/// brokerkit's retry headers, as for a record on a retry topic. Public for fuzzing and tools.
pub fn decode_headers<'a>(
    raw: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    retry_copy: bool,
) -> (brokerkit_core::Headers, u32) {
    let (headers, info) = headers::from_kafka(raw, retry_copy);
    (headers, info.attempt)
}
