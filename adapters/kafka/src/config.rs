//! `kafka://host[:port][?key=value…]` → typed settings, with defaults and checks.

use std::time::Duration;

use brokerkit_core::{BrokerUrl, Error, Result};

/// Query keys accepted in a `kafka://` URL.
pub const KEYS: &[&str] = &[
    "client_id",
    "linger_ms",
    "batch_size",
    "batch_num_messages",
    "message_max_bytes",
    "send_timeout_ms",
    "create_topics",
    "partitions",
    "replication_factor",
    "connect_timeout_ms",
    "session_timeout_ms",
    "assignment_timeout_ms",
    "drain_timeout_ms",
    "commit_interval_ms",
    "max_delay_ms",
    "buffer_messages",
    "fetch_wait_ms",
];

/// Default port of a Kafka broker.
pub const DEFAULT_PORT: u16 = 9092;

/// Bytes of `message.max.bytes` kept free for record framing, the retry headers and the
/// dead-letter envelope; the rest is the payload and user headers (see [`KafkaConfig::max_payload_bytes`]).
pub const RESERVED_BYTES: usize = 64 * 1024;

/// Most bytes of user header names and values per message.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Settings of a Kafka connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port` of the bootstrap broker.
    pub bootstrap: String,
    /// The URL with secrets redacted, for errors and logs.
    pub redacted: String,
    /// `client.id` (default `brokerkit`).
    pub client_id: String,
    /// Producer `linger.ms` (default 1).
    pub linger: Duration,
    /// Producer `batch.size` in bytes (default 1,000,000).
    pub batch_size: usize,
    /// Producer `batch.num.messages` (default 10,000).
    pub batch_num_messages: usize,
    /// `message.max.bytes` (default 1,000,000): the largest record the client sends.
    pub message_max_bytes: usize,
    /// `delivery.timeout.ms`: how long a send may take, retries included (default 30 s).
    pub send_timeout: Duration,
    /// Create missing topics (default true).
    pub create_topics: bool,
    /// Partitions of topics created by brokerkit (default 3).
    pub partitions: i32,
    /// Replication factor of topics created by brokerkit (default 1).
    pub replication_factor: i32,
    /// How long `connect` and metadata look-ups wait for the broker (default 5 s).
    pub connect_timeout: Duration,
    /// Consumer `session.timeout.ms` (default 10 s).
    pub session_timeout: Duration,
    /// How long creating a consumer waits for its first partition assignment (default 30 s).
    pub assignment_timeout: Duration,
    /// How long a closing consumer, or one losing partitions in a rebalance, waits for
    /// deliveries in hand to be settled before it lets go (default 10 s).
    pub drain_timeout: Duration,
    /// How often settled offsets are committed (default 100 ms).
    pub commit_interval: Duration,
    /// Longest `nack` delay (default 1 h).
    pub max_delay: Duration,
    /// Messages a consumer buffers beyond what librdkafka reads ahead before it pauses its
    /// partitions (default 20,000; at least twice the prefetch).
    pub buffer_messages: usize,
    /// Consumer `fetch.wait.max.ms`: how long the broker may hold a fetch waiting for data
    /// (default 100 ms).
    pub fetch_wait: Duration,
}

impl KafkaConfig {
    /// Reads the settings from a `kafka://` URL.
    pub fn from_url(url: &BrokerUrl) -> Result<Self> {
        let u = url.expose();
        let redacted = url.redacted();
        if !u.username().is_empty() || u.password().is_some() {
            return Err(Error::config(format!(
                "credentials in {redacted} are not supported: this build of the kafka adapter \
                 speaks PLAINTEXT only (no TLS, no SASL)"
            )));
        }
        let host = u.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
            Error::config(format!(
                "no broker host in {redacted}; expected kafka://host[:port][?key=value]"
            ))
        })?;
        if !matches!(u.path(), "" | "/") {
            return Err(Error::config(format!(
                "unexpected path {:?} in {redacted}; expected kafka://host[:port][?key=value]",
                u.path()
            )));
        }
        let port = u.port().unwrap_or(DEFAULT_PORT);
        let p = url.params(KEYS)?;
        let positive = "a positive integer";
        let ms = |key: &str, default: u64| -> Result<Duration> {
            Ok(p.millis(key)?.unwrap_or(Duration::from_millis(default)))
        };
        let cfg = KafkaConfig {
            bootstrap: format!("{host}:{port}"),
            redacted,
            client_id: p.get("client_id").unwrap_or("brokerkit").to_string(),
            linger: ms("linger_ms", 1)?,
            batch_size: p.parse("batch_size", positive)?.unwrap_or(1_000_000),
            batch_num_messages: p.parse("batch_num_messages", positive)?.unwrap_or(10_000),
            message_max_bytes: p.parse("message_max_bytes", positive)?.unwrap_or(1_000_000),
            send_timeout: ms("send_timeout_ms", 30_000)?,
            create_topics: p.flag("create_topics")?.unwrap_or(true),
            partitions: p.parse("partitions", positive)?.unwrap_or(3),
            replication_factor: p.parse("replication_factor", positive)?.unwrap_or(1),
            connect_timeout: ms("connect_timeout_ms", 5_000)?,
            session_timeout: ms("session_timeout_ms", 10_000)?,
            assignment_timeout: ms("assignment_timeout_ms", 30_000)?,
            drain_timeout: ms("drain_timeout_ms", 10_000)?,
            commit_interval: ms("commit_interval_ms", 100)?,
            max_delay: ms("max_delay_ms", 3_600_000)?,
            buffer_messages: p.parse("buffer_messages", positive)?.unwrap_or(20_000),
            fetch_wait: ms("fetch_wait_ms", 100)?,
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::config(format!("{what} in {}", self.redacted)));
        if self.message_max_bytes <= 2 * RESERVED_BYTES || self.message_max_bytes > 1_000_000_000 {
            return bad(format!(
                "message_max_bytes must be between {} and 1000000000",
                2 * RESERVED_BYTES + 1
            ));
        }
        if self.partitions < 1 || self.replication_factor < 1 || self.buffer_messages < 1 {
            return bad(
                "partitions, replication_factor and buffer_messages must be at least 1".into(),
            );
        }
        if self.linger > Duration::from_secs(900) {
            return bad("linger_ms must be at most 900000".into());
        }
        for (name, d) in [
            ("send_timeout_ms", self.send_timeout),
            ("connect_timeout_ms", self.connect_timeout),
            ("session_timeout_ms", self.session_timeout),
            ("assignment_timeout_ms", self.assignment_timeout),
            ("commit_interval_ms", self.commit_interval),
            ("max_delay_ms", self.max_delay),
            ("fetch_wait_ms", self.fetch_wait),
        ] {
            if d.is_zero() || d > Duration::from_secs(i32::MAX as u64 / 1000) {
                return bad(format!("{name} must be between 1 and {}", i32::MAX));
            }
        }
        Ok(())
    }

    /// Largest payload accepted: `message.max.bytes` minus [`RESERVED_BYTES`] for record
    /// framing, user headers and brokerkit's retry and dead-letter headers.
    pub fn max_payload_bytes(&self) -> usize {
        self.message_max_bytes - RESERVED_BYTES
    }

    /// Largest record (payload, key, headers and framing) the producer sends for a user:
    /// what is left of `message.max.bytes` after the retry and dead-letter headers.
    pub fn max_user_record_bytes(&self) -> usize {
        self.message_max_bytes - RESERVED_BYTES / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brokerkit_core::ErrorKind;

    fn parse(s: &str) -> Result<KafkaConfig> {
        KafkaConfig::from_url(&BrokerUrl::parse(s).unwrap())
    }

    #[test]
    fn defaults_and_keys() {
        let c = parse("kafka://127.0.0.1").unwrap();
        assert_eq!(c.bootstrap, "127.0.0.1:9092");
        assert_eq!(c.partitions, 3);
        assert!(c.create_topics);
        assert_eq!(c.max_payload_bytes(), 1_000_000 - RESERVED_BYTES);
        let c = parse("kafka://h:19092?partitions=5&create_topics=false&linger_ms=20").unwrap();
        assert_eq!(c.bootstrap, "h:19092");
        assert_eq!((c.partitions, c.create_topics), (5, false));
        assert_eq!(c.linger, Duration::from_millis(20));
    }

    #[test]
    fn bad_urls_are_config_errors() {
        for bad in [
            "kafka://h?colour=red",
            "kafka://h?partitions=0",
            "kafka://h?message_max_bytes=10",
            "kafka://h/path",
            "kafka://u:secret@h",
            "kafka://h?create_topics=maybe",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }
}
