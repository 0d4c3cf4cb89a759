//! `amqp://` / `amqps://` URL → typed settings, and the names of exchanges and queues.

use std::time::Duration;

use amq_protocol::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use brokerkit_core::{BrokerUrl, Capabilities, Error, Result, Support};

/// Query keys accepted in the URL.
pub const KEYS: &[&str] = &[
    "max_payload_bytes",
    "single_active_consumer",
    "quorum_queues",
    "connection_timeout",
    "heartbeat",
    "frame_max",
    "channel_max",
];

/// Default largest payload: 16 MiB (RabbitMQ 3.10 accepts up to 128 MiB by default).
pub const DEFAULT_MAX_PAYLOAD: usize = 16 * 1024 * 1024;
/// RabbitMQ's hard ceiling for `max_message_size` (512 MiB); 3.10's default is 128 MiB.
pub const HARD_MAX_PAYLOAD: usize = 512 * 1024 * 1024;
/// Default TCP connect timeout.
pub const DEFAULT_CONNECTION_TIMEOUT_MS: u64 = 5_000;
/// Most user headers per message (the AMQP content header must fit in one frame).
pub const MAX_HEADERS: usize = 1024;
/// Most bytes of user header names and values per message.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Longest nack delay: RabbitMQ's `x-message-ttl` is at most 2^32-1 ms; rounded down to a minute.
pub const MAX_DELAY: Duration = Duration::from_millis(4_294_920_000);

/// Settings read from the URL.
#[derive(Debug, Clone)]
pub struct RabbitConfig {
    /// What lapin connects to (holds the password: never print).
    pub uri: AMQPUri,
    /// The URL with secrets redacted, for errors and logs.
    pub redacted: String,
    /// Largest payload accepted.
    pub max_payload_bytes: usize,
    /// Queues are declared with `x-single-active-consumer` (per-queue order, no competition).
    pub single_active_consumer: bool,
    /// Group queues are quorum queues (`x-queue-type: quorum`): RabbitMQ counts every
    /// redelivery in `x-delivery-count`, so attempts survive a consumer crash. Existing
    /// classic queues of the same name cannot be re-declared as quorum (`PRECONDITION_FAILED`).
    pub quorum_queues: bool,
}

fn decode(part: &str, what: &str, url: &BrokerUrl) -> Result<String> {
    brokerkit_core::config::percent_decode(part).ok_or_else(|| {
        Error::config(format!(
            "the {what} in {url} is not valid percent-encoded UTF-8"
        ))
    })
}

impl RabbitConfig {
    /// Reads `amqp://[user[:password]@]host[:port][/vhost][?key=value…]`.
    ///
    /// The vhost follows the AMQP URI spec: no path is the default vhost `/`, `/%2f` is `/`,
    /// `/name` is `name`.
    pub fn from_url(url: &BrokerUrl) -> Result<Self> {
        let scheme = match url.scheme() {
            "amqp" => AMQPScheme::AMQP,
            "amqps" => AMQPScheme::AMQPS,
            other => {
                return Err(Error::config(format!(
                "scheme {other:?} is not handled by the rabbitmq adapter; use amqp:// or amqps://"
            )))
            }
        };
        let p = url.params(KEYS)?;
        let u = url.expose();
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                Error::config(format!(
                    "{url} has no host; expected amqp://host[:port]/vhost"
                ))
            })?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = u.port().unwrap_or_else(|| scheme.default_port());
        let mut userinfo = AMQPUserInfo::default();
        if !u.username().is_empty() {
            userinfo.username = decode(u.username(), "user name", url)?;
        }
        if let Some(pw) = u.password() {
            userinfo.password = decode(pw, "password", url)?;
        }
        let vhost = match u.path() {
            "" => "/".to_string(),
            path => decode(&path[1..], "vhost", url)?,
        };
        let positive = "a positive integer";
        let max_payload_bytes = p
            .parse::<usize>("max_payload_bytes", positive)?
            .unwrap_or(DEFAULT_MAX_PAYLOAD);
        if max_payload_bytes == 0 || max_payload_bytes > HARD_MAX_PAYLOAD {
            return Err(Error::config(format!(
                "max_payload_bytes must be 1 to {HARD_MAX_PAYLOAD} (RabbitMQ's ceiling); \
                 got {max_payload_bytes}; it must not exceed the broker's max_message_size"
            )));
        }
        let query = AMQPQueryString {
            frame_max: p.parse("frame_max", "bytes as a positive integer (at least 4096)")?,
            channel_max: p.parse("channel_max", positive)?,
            heartbeat: p.parse("heartbeat", "seconds as a non-negative integer")?,
            connection_timeout: Some(
                p.parse("connection_timeout", "milliseconds as a positive integer")?
                    .unwrap_or(DEFAULT_CONNECTION_TIMEOUT_MS),
            ),
            auth_mechanism: None,
        };
        if query.frame_max.is_some_and(|f| f < 4096) {
            return Err(Error::config("frame_max must be at least 4096 bytes"));
        }
        Ok(RabbitConfig {
            uri: AMQPUri {
                scheme,
                authority: AMQPAuthority {
                    userinfo,
                    host,
                    port,
                },
                vhost,
                query,
            },
            redacted: url.redacted(),
            max_payload_bytes,
            single_active_consumer: p.flag("single_active_consumer")?.unwrap_or(false),
            quorum_queues: p.flag("quorum_queues")?.unwrap_or(false),
        })
    }

    /// The capabilities for this configuration and the negotiated frame size.
    pub fn capabilities(&self, frame_max: u32) -> Capabilities {
        // The content header (properties + headers table) must fit in one frame.
        let frame = frame_max as usize;
        let frame = if frame == 0 { 131_072 } else { frame };
        let mut caps = Capabilities::default();
        caps.max_payload_bytes = self.max_payload_bytes;
        caps.max_batch = 256;
        caps.redelivery = true;
        caps.delayed_redelivery = Support::Emulated;
        caps.max_delay = Some(MAX_DELAY);
        caps.ordering_key = if self.single_active_consumer {
            Support::Native
        } else {
            Support::No
        };
        caps.dead_letter = Support::Emulated;
        caps.max_headers = Some(MAX_HEADERS.min(frame / 128));
        caps.max_header_bytes = Some(MAX_HEADER_BYTES.min(frame / 2));
        caps.fan_out = true;
        caps.competing_consumers = !self.single_active_consumer;
        caps.browse = Support::Emulated;
        caps.lag = Some(brokerkit_core::LagAccuracy::WaitingOnly);
        caps.crash_safe_attempts = self.quorum_queues;
        caps
    }
}

/// Exchange and queue names. Destination and group names are limited by the SDK to letters,
/// digits, `-`, `_` and `.`; the separator `:` (allowed in AMQP names) cannot occur in them,
/// so every name below is unambiguous.
pub mod names {
    use std::time::Duration;

    /// Group name used when a consumer gives none.
    #[cfg(feature = "client")]
    pub use brokerkit_core::DEFAULT_GROUP;

    /// The fanout exchange of a destination.
    pub fn exchange(destination: &str) -> String {
        destination.to_string()
    }

    /// The queue of one consumer group.
    pub fn queue(destination: &str, group: &str) -> String {
        format!("{destination}:{group}")
    }

    /// Rounds a delay up to the hold-queue granularity (so few hold queues exist): 100 ms up
    /// to 10 s, whole seconds up to 10 min, whole minutes beyond. Never shorter than asked.
    pub fn delay_bucket(delay: Duration) -> u64 {
        let ms = delay.as_millis().min(u128::from(u64::MAX)) as u64;
        let step = match ms {
            0..=10_000 => 100,
            10_001..=600_000 => 1_000,
            _ => 60_000,
        };
        ms.div_ceil(step).max(1) * step
    }

    /// The hold queue for delayed redelivery of `queue`'s messages after `ms`.
    ///
    /// Named `:hold:` since issue 12 (quorum, never expiring); the earlier `:delay:` queues
    /// were classic with `x-expires`, and RabbitMQ refuses to re-declare a queue with other
    /// arguments, so the new shape needs a new name. Old `:delay:` queues drain into their
    /// group queue and expire on their own.
    pub fn hold_queue(queue: &str, ms: u64) -> String {
        format!("{queue}:hold:{ms}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brokerkit_core::ErrorKind;

    fn cfg(url: &str) -> Result<RabbitConfig> {
        RabbitConfig::from_url(&BrokerUrl::parse(url).unwrap())
    }

    #[test]
    fn parses_url_with_defaults_and_vhost() {
        let c = cfg("amqp://guest:s%40cret@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(c.uri.authority.host, "127.0.0.1");
        assert_eq!(c.uri.authority.userinfo.password, "s@cret");
        assert_eq!(c.uri.vhost, "/");
        assert!(!c.redacted.contains("cret"));
        assert_eq!(c.max_payload_bytes, DEFAULT_MAX_PAYLOAD);
        assert_eq!(cfg("amqp://h").unwrap().uri.vhost, "/");
        assert_eq!(cfg("amqp://h/prod").unwrap().uri.vhost, "prod");
        assert_eq!(cfg("amqps://h").unwrap().uri.authority.port, 5671);
        let c =
            cfg("amqp://h?max_payload_bytes=1024&single_active_consumer=true&heartbeat=5").unwrap();
        assert_eq!(c.max_payload_bytes, 1024);
        assert!(c.single_active_consumer);
        assert_eq!(c.uri.query.heartbeat, Some(5));
        let caps = c.capabilities(131_072);
        assert_eq!(caps.ordering_key, Support::Native);
        assert!(!caps.competing_consumers);
    }

    #[test]
    fn bad_keys_and_values_are_config_errors() {
        let e = cfg("amqp://u:pw@h?colour=red").err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("max_payload_bytes") && !e.message().contains("pw@"));
        assert!(cfg("amqp://h?max_payload_bytes=0").is_err());
        assert!(cfg("amqp://h?frame_max=10").is_err());
        assert!(cfg("amqp://h?single_active_consumer=maybe").is_err());
        assert!(cfg("other://h").is_err());
    }

    #[test]
    fn names_and_delay_buckets() {
        assert_eq!(names::queue("orders", "billing"), "orders:billing");
        assert_eq!(
            names::hold_queue("orders:billing", 1500),
            "orders:billing:hold:1500"
        );
        assert_eq!(names::delay_bucket(Duration::from_millis(1)), 100);
        assert_eq!(names::delay_bucket(Duration::from_millis(1500)), 1500);
        assert_eq!(names::delay_bucket(Duration::from_millis(1501)), 1600);
        assert_eq!(names::delay_bucket(Duration::from_millis(10_001)), 11_000);
        assert_eq!(names::delay_bucket(Duration::from_secs(601)), 660_000);
        assert!(names::delay_bucket(MAX_DELAY) <= u64::from(u32::MAX));
    }
}
