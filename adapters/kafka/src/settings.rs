//! Typed settings: the alternative to writing a `kafka://` URL by hand.

use std::time::Duration;

use brokerkit_core::{BrokerSettings, BrokerUrl, Result, UrlParts};

use crate::config::KafkaConfig;

/// Settings of a Kafka connection, built in code. Each `with_*` method stands for one URL key
/// of the adapter's README; [`BrokerSettings::to_url`] checks them as a URL would be.
///
/// ```
/// use std::time::Duration;
/// use brokerkit_core::BrokerSettings;
/// use brokerkit_kafka::KafkaSettings;
///
/// let settings = KafkaSettings::new("127.0.0.1")
///     .with_partitions(6)
///     .with_linger(Duration::from_millis(5));
/// assert_eq!(
///     settings.to_url().unwrap().to_string(),
///     "kafka://127.0.0.1?partitions=6&linger_ms=5"
/// );
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KafkaSettings {
    parts: UrlParts,
}

macro_rules! duration_keys {
    ($($(#[$doc:meta])* $method:ident => $key:literal;)*) => {
        $(
            $(#[$doc])*
            pub fn $method(self, duration: Duration) -> Self {
                self.map(|p| p.millis($key, duration))
            }
        )*
    };
}

macro_rules! count_keys {
    ($($(#[$doc:meta])* $method:ident($ty:ty) => $key:literal;)*) => {
        $(
            $(#[$doc])*
            pub fn $method(self, value: $ty) -> Self {
                self.map(|p| p.key($key, value))
            }
        )*
    };
}

impl KafkaSettings {
    /// The bootstrap broker `host`, port 9092.
    pub fn new(host: impl Into<String>) -> Self {
        KafkaSettings {
            parts: UrlParts::new("kafka", host),
        }
    }

    /// The bootstrap broker's port (default 9092).
    pub fn with_port(self, port: u16) -> Self {
        self.map(|p| p.port(port))
    }

    /// `client.id` (`client_id`, default `brokerkit`).
    pub fn with_client_id(self, id: impl Into<String>) -> Self {
        self.map(|p| p.key("client_id", id.into()))
    }

    /// Create missing topics (`create_topics`, default true).
    pub fn with_create_topics(self, on: bool) -> Self {
        self.map(|p| p.key("create_topics", on))
    }

    count_keys! {
        /// Producer `batch.size` in bytes (`batch_size`).
        with_batch_size(usize) => "batch_size";
        /// Producer `batch.num.messages` (`batch_num_messages`).
        with_batch_num_messages(usize) => "batch_num_messages";
        /// `message.max.bytes` (`message_max_bytes`).
        with_message_max_bytes(usize) => "message_max_bytes";
        /// Partitions of topics brokerkit creates (`partitions`, default 3).
        with_partitions(i32) => "partitions";
        /// Replication factor of topics brokerkit creates (`replication_factor`, default 1).
        with_replication_factor(i32) => "replication_factor";
        /// Messages a consumer buffers before it pauses its partitions (`buffer_messages`).
        with_buffer_messages(usize) => "buffer_messages";
    }

    duration_keys! {
        /// Producer `linger.ms` (`linger_ms`, default 1 ms).
        with_linger => "linger_ms";
        /// How long a send may take, retries included (`send_timeout_ms`, default 30 s).
        with_send_timeout => "send_timeout_ms";
        /// Connect and metadata timeout (`connect_timeout_ms`, default 5 s).
        with_connect_timeout => "connect_timeout_ms";
        /// Consumer `session.timeout.ms` (`session_timeout_ms`, default 10 s).
        with_session_timeout => "session_timeout_ms";
        /// Wait for the first partition assignment (`assignment_timeout_ms`, default 30 s).
        with_assignment_timeout => "assignment_timeout_ms";
        /// Wait for deliveries in hand on close or rebalance (`drain_timeout_ms`, default 10 s).
        with_drain_timeout => "drain_timeout_ms";
        /// How often settled offsets are committed (`commit_interval_ms`, default 100 ms).
        with_commit_interval => "commit_interval_ms";
        /// Longest `nack` delay (`max_delay_ms`, default 1 h).
        with_max_delay => "max_delay_ms";
        /// Consumer `fetch.wait.max.ms` (`fetch_wait_ms`, default 100 ms).
        with_fetch_wait => "fetch_wait_ms";
    }

    fn map(self, f: impl FnOnce(UrlParts) -> UrlParts) -> Self {
        KafkaSettings {
            parts: f(self.parts),
        }
    }
}

impl BrokerSettings for KafkaSettings {
    fn to_url(&self) -> Result<BrokerUrl> {
        let url = self.parts.build()?;
        KafkaConfig::from_url(&url)?;
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brokerkit_core::ErrorKind;

    #[test]
    fn settings_read_back_as_the_url_would() {
        let s = KafkaSettings::new("127.0.0.1")
            .with_port(19092)
            .with_client_id("orders")
            .with_create_topics(false)
            .with_commit_interval(Duration::from_millis(250))
            .with_buffer_messages(500);
        let c = KafkaConfig::from_url(&s.to_url().unwrap()).unwrap();
        assert_eq!(c.bootstrap, "127.0.0.1:19092");
        assert_eq!((c.client_id.as_str(), c.create_topics), ("orders", false));
        assert_eq!(c.commit_interval, Duration::from_millis(250));
        assert_eq!(c.buffer_messages, 500);
    }

    #[test]
    fn out_of_range_values_are_config_errors() {
        for bad in [
            KafkaSettings::new("h").with_partitions(0),
            KafkaSettings::new("h").with_message_max_bytes(10),
            KafkaSettings::new("h").with_send_timeout(Duration::ZERO),
            KafkaSettings::new("h").with_max_delay(Duration::MAX),
        ] {
            assert_eq!(
                bad.to_url().unwrap_err().kind(),
                ErrorKind::Config,
                "{bad:?}"
            );
        }
    }
}
