//! `brokerkit-nats`: the NATS adapter of brokerkit, in two modes chosen by URL scheme.
//!
//! - `nats+js://[user:password@]host[:port][?key=value…]` — **JetStream** (at-least-once):
//!   a file-stored stream per destination (created on first use unless `auto_create=false`;
//!   an existing stream whose subjects capture the destination is used as is), one durable
//!   pull consumer per consumer group, explicit acks, nak with delay, dead-lettering to
//!   `<destination>.dlq`, dedup through `Nats-Msg-Id` fed from the idempotency key.
//!   Keys: `auto_create`, `ack_wait_ms`, `max_deliver`, `duplicate_window_ms`,
//!   `connect_timeout_ms`, `request_timeout_ms`, `name`.
//! - `nats://[user:password@]host[:port][?key=value…]` — **core NATS** (at-most-once):
//!   subjects and queue groups; no redelivery, no delay, no dead-letter, no ordering key
//!   (refused with `Unsupported`). Keys: `connect_timeout_ms`, `request_timeout_ms`, `name`.
//!
//! A username without a password is sent as a token. The crate README has the capability
//! table of both modes, the header mapping and the dead-letter and `max_deliver` design.
//!
//! Feature `client` (default) builds the adapter; without it only the header decoder and the
//! URL check build ([`decode_headers`], [`check_url`]), for fuzzing without the client.
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
mod core_consumer;
#[cfg(feature = "client")]
mod error;
mod headers;
#[cfg(feature = "client")]
mod lag;
#[cfg(feature = "client")]
mod link;
#[cfg(feature = "client")]
mod names;
#[cfg(feature = "client")]
mod producer;
mod profile;
mod settings;
#[cfg(feature = "client")]
mod settle;

#[cfg(feature = "client")]
use std::sync::Arc;

#[cfg(feature = "client")]
use async_trait::async_trait;
#[cfg(feature = "client")]
use brokerkit_core::{Backend, BrokerUrl, Connector, Result};

pub use config::{CORE_KEYS, CORE_SCHEME, JETSTREAM_KEYS, JETSTREAM_SCHEME};
pub use headers::{INVALID_HEADERS, KEY_HEADER, MSG_ID_HEADER};
#[cfg(feature = "client")]
pub use link::HEADER_RESERVE;
pub use settings::NatsSettings;

/// Connects `nats://` (core NATS) and `nats+js://` (JetStream) URLs.
#[cfg(feature = "client")]
pub struct NatsConnector;

#[cfg(feature = "client")]
#[async_trait]
impl Connector for NatsConnector {
    fn schemes(&self) -> &'static [&'static str] {
        &[CORE_SCHEME, JETSTREAM_SCHEME]
    }

    fn profile(&self, scheme: &str) -> brokerkit_core::SchemeProfile {
        crate::profile::profile(scheme)
    }

    async fn connect(&self, url: &BrokerUrl) -> Result<Arc<dyn Backend>> {
        let config = config::NatsConfig::from_url(url)?;
        let name = config.mode.adapter_name();
        let backend = backend::NatsBackend::connect(config)
            .await
            .map_err(|e| e.with_broker(name))?;
        Ok(Arc::new(backend))
    }
}

/// Decodes received NATS headers as a consumer does (invalid ones skipped and listed in
/// [`INVALID_HEADERS`]): the headers and the ordering key. Input: each header name with its
/// last value, as a NATS header map holds them. Public for fuzzing and tools.
pub fn decode_headers<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (brokerkit_core::Headers, Option<String>) {
    headers::from_pairs(pairs)
}

/// Checks a broker URL's keys and values as connecting does, without connecting; the error
/// names the bad key. Public for fuzzing and tools.
pub fn check_url(url: &brokerkit_core::BrokerUrl) -> brokerkit_core::Result<()> {
    config::NatsConfig::from_url(url).map(|_| ())
}
