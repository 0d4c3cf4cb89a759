//! brokerkit adapter for Redis Streams (`redis+streams://host:6379`).
//!
//! A destination is a stream (key = its name); a group is a consumer group created on first
//! subscribe (`XGROUP CREATE … MKSTREAM`, from the start for a stream's first group, from new
//! entries for later ones); each consumer is a Redis consumer of its own. See `README.md`.
#![warn(missing_docs)]

#[cfg(feature = "client")]
mod backend;
mod config;
#[cfg(feature = "client")]
mod consumer;
#[cfg(feature = "client")]
mod error;
mod headers;
#[cfg(feature = "client")]
mod link;
#[cfg(feature = "client")]
mod producer;
#[cfg(feature = "client")]
mod profile;
#[cfg(feature = "client")]
mod reply;
mod settings;
#[cfg(feature = "client")]
mod settle;

#[cfg(feature = "client")]
pub use backend::{RedisStreamsConnector, NAME, SCHEMES};
pub use config::{RedisStreamsConfig, KEYS};
pub use settings::RedisStreamsSettings;

/// Checks a URL as `connect` does before connecting (the `url_redis_streams` fuzz target).
pub fn check_url(url: &brokerkit_core::BrokerUrl) -> brokerkit_core::Result<()> {
    RedisStreamsConfig::from_url(url).map(drop)
}

/// The message of a stream entry's fields as the consumer decodes them (field `payload`, the
/// rest headers; what cannot be carried dropped and listed). For the `headers_redis_streams`
/// fuzz target and tools reading entries written by others.
pub fn decode_fields(fields: Vec<(Vec<u8>, Vec<u8>)>) -> brokerkit_core::Message {
    headers::decode(fields)
}
