//! `brokerkit-sqs`: the brokerkit adapter for Amazon SQS (`sqs://`) and SNS (`sns://`).
//!
//! - `sqs://`: a destination is a queue (FIFO with `fifo=true`). Consumers of a queue compete
//!   for its messages; SQS has no consumer groups, so a group name is only a label (kept in
//!   the dead-letter envelope) and there is no fan-out.
//! - `sns://`: a destination is a topic. Each consumer group is an SQS queue
//!   `<topic>-<group>` subscribed to the topic with raw message delivery; consumers of one
//!   group compete, every group gets every message (fan-out).
//!
//! URL: `sqs://?endpoint=http://127.0.0.1:4566&region=us-east-1` (or `sns://…`), keys in the
//! crate README. Credentials come from the standard AWS chain, or from `access_key_id` and
//! `secret_access_key` in the URL (never printed: every error shows the URL redacted).
//!
//! Headers, the ordering key and the body encoding travel in one message attribute,
//! `brokerkit`, holding compact JSON (see the README); payloads that are not XML-safe text are
//! base64-encoded. Nack uses `ChangeMessageVisibility`; dead-lettering sends the message
//! with brokerkit's envelope to the queue/topic of `<destination>.dlq`, then deletes it.
//!
//! Feature `client` (default) builds the adapter; without it only the header codec and the
//! URL check build ([`decode_message`], [`check_url`]), for fuzzing without the AWS SDK.
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
mod names;
#[cfg(feature = "client")]
mod producer;
mod profile;
mod settings;
mod site;

#[cfg(feature = "client")]
use std::sync::Arc;

#[cfg(feature = "client")]
use async_trait::async_trait;
#[cfg(feature = "client")]
use brokerkit_core::{Backend, BrokerUrl, Connector, Result};

pub use settings::SqsSettings;

/// Connects `sqs://` and `sns://` URLs.
#[cfg(feature = "client")]
#[derive(Debug, Clone, Copy, Default)]
pub struct SqsConnector;

#[cfg(feature = "client")]
#[async_trait]
impl Connector for SqsConnector {
    fn schemes(&self) -> &'static [&'static str] {
        &["sqs", "sns"]
    }

    fn profile(&self, scheme: &str) -> brokerkit_core::SchemeProfile {
        crate::profile::profile(scheme)
    }

    async fn connect(&self, url: &BrokerUrl) -> Result<Arc<dyn Backend>> {
        let config = config::SqsConfig::from_url(url)?;
        let inner = link::Inner::connect(config).await?;
        Ok(Arc::new(backend::SqsBackend { inner }))
    }
}

/// Decodes a received SQS body and message attributes `(name, data type, string value)` as a
/// consumer does (the `brokerkit` attribute's JSON, foreign attributes, body encoding; what
/// cannot be read is listed in `x-brokerkit-invalid-headers`). Public for fuzzing and tools.
pub fn decode_message(
    body: &str,
    attributes: &[(&str, &str, Option<&str>)],
    group_id: Option<&str>,
) -> brokerkit_core::Message {
    headers::unpack(
        body,
        attributes
            .iter()
            .map(|&(name, data_type, string_value)| headers::Attr {
                name,
                data_type,
                string_value,
            }),
        group_id,
    )
}

/// Checks a broker URL's keys and values as connecting does, without connecting; the error
/// names the bad key. Public for fuzzing and tools.
pub fn check_url(url: &brokerkit_core::BrokerUrl) -> brokerkit_core::Result<()> {
    config::SqsConfig::from_url(url).map(|_| ())
}
