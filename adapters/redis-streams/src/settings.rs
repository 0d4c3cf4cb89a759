//! `RedisStreamsSettings`: the typed alternative to writing a `redis+streams://` URL.

use std::fmt;
use std::time::Duration;

use brokerkit_core::{BrokerSettings, BrokerUrl, Result, UrlParts};

use crate::config::{RedisStreamsConfig, SCHEME};

/// Settings for a Redis Streams broker; `Broker::connect_settings` takes them.
///
/// ```
/// use brokerkit_core::BrokerSettings;
/// use brokerkit_redis_streams::RedisStreamsSettings;
/// let url = RedisStreamsSettings::new("127.0.0.1")
///     .with_port(6379)
///     .with_lease(std::time::Duration::from_secs(10))
///     .to_url()
///     .unwrap();
/// assert_eq!(url.expose().as_str(), "redis+streams://127.0.0.1:6379?lease_ms=10000");
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisStreamsSettings {
    parts: UrlParts,
}

impl RedisStreamsSettings {
    /// Redis at `host` (port 6379, database 0).
    pub fn new(host: impl Into<String>) -> Self {
        RedisStreamsSettings {
            parts: UrlParts::new(SCHEME, host),
        }
    }

    /// The port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.parts = self.parts.port(port);
        self
    }

    /// User and password (Redis ACL; user `default` for `requirepass`).
    pub fn with_credentials(mut self, user: impl Into<String>, password: &str) -> Self {
        self.parts = self.parts.user(user, Some(password));
        self
    }

    /// The database number.
    pub fn with_database(mut self, db: u32) -> Self {
        self.parts = self.parts.path_segment(db.to_string());
        self
    }

    /// How long a delivery may stay pending before another consumer claims it (`lease_ms`).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.parts = self.parts.millis("lease_ms", lease);
        self
    }

    /// Trims each stream to about `maxlen` entries on every send (`maxlen`).
    pub fn with_maxlen(mut self, maxlen: u64) -> Self {
        self.parts = self.parts.key("maxlen", maxlen);
        self
    }
}

impl fmt::Debug for RedisStreamsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisStreamsSettings({:?})", self.parts)
    }
}

impl BrokerSettings for RedisStreamsSettings {
    fn to_url(&self) -> Result<BrokerUrl> {
        let url = self.parts.build()?;
        RedisStreamsConfig::from_url(&url)?;
        Ok(url)
    }
}
