//! brokerkit adapter for Redis Streams (`redis+streams://host:6379`).
//!
//! A destination is a stream (key = its name); a group is a consumer group created on first
//! subscribe (`XGROUP CREATE … MKSTREAM`, from the start for a stream's first group, from new
//! entries for later ones); each consumer is a Redis consumer of its own. See `README.md`.
#![warn(missing_docs)]

mod backend;
mod config;
mod consumer;
mod error;
mod headers;
mod link;
mod producer;
mod profile;
mod settings;
mod settle;

pub use backend::{RedisStreamsConnector, NAME, SCHEMES};
pub use config::{RedisStreamsConfig, KEYS};
pub use settings::RedisStreamsSettings;

/// Checks a URL as `connect` would before connecting (for the fuzz target).
pub fn check_url(text: &str) -> brokerkit_core::Result<()> {
    RedisStreamsConfig::from_url(&brokerkit_core::BrokerUrl::parse(text)?).map(|_| ())
}
