//! `sqs://` and `sns://` URLs → typed settings, with credentials redacted.

use std::time::Duration;

use brokerkit_core::config::redact_text;
use brokerkit_core::{BrokerUrl, Capabilities, Error, Result, Support};

/// Which service the URL addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// `sqs://`: destinations are queues.
    Sqs,
    /// `sns://`: destinations are topics; consumer groups are queues subscribed to them.
    Sns,
}

impl Service {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Service::Sqs => "sqs",
            Service::Sns => "sns",
        }
    }
}

/// Accepted query keys (both schemes).
pub(crate) const KEYS: &[&str] = &[
    "endpoint",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "fifo",
    "auto_create",
    "wait_time_secs",
    "visibility_timeout_secs",
    "max_message_bytes",
    "max_receive_count",
    "max_attempts",
    "retry_backoff_ms",
    "timeout_ms",
    "queue_owner",
];

/// Keys whose values never print (credentials).
/// The message size SQS and SNS accept by default (256 KiB), body and attributes together.
pub(crate) const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// The largest message size an SQS queue can be configured for (1 MiB).
pub(crate) const SQS_LIMIT_BYTES: usize = 1024 * 1024;
/// Bytes of every message's size budget kept for the packed headers attribute (headers at the
/// declared limits, JSON-escaped in the worst case, plus the ordering key and the dead-letter
/// envelope). See the README's size table.
pub(crate) const ATTRIBUTE_RESERVE: usize = 32 * 1024;
/// Most headers per message (they travel packed in one attribute, so SQS's limit of 10
/// attributes does not apply).
pub(crate) const MAX_HEADERS: usize = 64;
/// Most bytes of header names and values per message.
pub(crate) const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Longest nack delay: SQS's longest visibility timeout.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(12 * 60 * 60);
/// Largest batch of one SendMessageBatch / PublishBatch request.
pub(crate) const MAX_BATCH: usize = 10;

/// Static credentials given in the URL.
#[derive(Clone)]
pub(crate) struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// Settings of one connection.
#[derive(Clone)]
pub(crate) struct SqsConfig {
    pub service: Service,
    /// Endpoint override (LocalStack), else the regional AWS endpoint.
    pub endpoint: Option<String>,
    /// Region; else `AWS_REGION` / the profile.
    pub region: Option<String>,
    /// Static credentials; else the standard AWS credential chain.
    pub credentials: Option<StaticCredentials>,
    /// Every destination is FIFO (`.fifo` appended to queue and topic names).
    pub fifo: bool,
    /// Create queues, topics and subscriptions on first use.
    pub auto_create: bool,
    /// Long-poll wait of ReceiveMessage, 0 to 20 s.
    pub wait_time_secs: i32,
    /// Visibility timeout asked for on receive (and set on created queues); else the queue's.
    pub visibility_timeout_secs: Option<i32>,
    /// Largest message (body + attributes) the destinations accept.
    pub max_message_bytes: usize,
    /// Broker-side redrive after this many receives, set on queues this adapter creates.
    pub max_receive_count: Option<i32>,
    /// Attempts per request, the first included (the AWS SDK retries with backoff).
    pub max_attempts: u32,
    /// Initial retry backoff.
    pub retry_backoff: Duration,
    /// Timeout of one request attempt (a long poll gets `wait_time_secs` on top).
    pub timeout: Duration,
    /// Account that owns the queues (cross-account access), for GetQueueUrl.
    pub queue_owner: Option<String>,
    /// The URL with every secret replaced by `***`.
    pub redacted: String,
}

impl std::fmt::Debug for SqsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsConfig")
            .field("url", &self.redacted)
            .finish_non_exhaustive()
    }
}

fn bounded<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: Option<T>,
    default: T,
    min: T,
    max: T,
) -> Result<T> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return Err(Error::config(format!(
            "config key {key:?} is {v}; expected {min} to {max}"
        )));
    }
    Ok(v)
}

impl SqsConfig {
    /// Reads the settings from an `sqs://` or `sns://` URL.
    pub fn from_url(url: &BrokerUrl) -> Result<Self> {
        let service = match url.scheme() {
            "sqs" => Service::Sqs,
            "sns" => Service::Sns,
            other => {
                return Err(Error::config(format!(
                    "scheme {other:?} is not handled by the SQS adapter; use sqs:// or sns://"
                )))
            }
        };
        // Credentials, secret keys and passwords inside an endpoint value become `***`.
        let redacted = url.redacted();
        // Check keys against a copy without credentials, so no error can quote them.
        BrokerUrl::parse(&redacted)?.params(KEYS)?;
        let p = url.params(KEYS)?;
        let u = url.expose();
        if u.host_str().is_some_and(|h| !h.is_empty())
            || !u.username().is_empty()
            || u.password().is_some()
            || !matches!(u.path(), "" | "/")
        {
            return Err(Error::config(format!(
                "{redacted}: put the endpoint and credentials in query keys, e.g. \
                 {}://?endpoint=http://127.0.0.1:4566&region=us-east-1; accepted keys: {}",
                service.name(),
                KEYS.join(", ")
            )));
        }
        let endpoint = match p.get("endpoint") {
            None => None,
            Some(e) => {
                let parsed = url::Url::parse(e).map_err(|err| {
                    Error::config(format!(
                        "config key \"endpoint\" is {:?}: {err}; expected an http(s) URL",
                        redact_text(e)
                    ))
                })?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                    return Err(Error::config(format!(
                        "config key \"endpoint\" is {:?}; expected an http(s) URL with a host",
                        redact_text(e)
                    )));
                }
                Some(e.trim_end_matches('/').to_string())
            }
        };
        let credentials = match (p.get("access_key_id"), p.get("secret_access_key")) {
            (Some(id), Some(secret)) => Some(StaticCredentials {
                access_key_id: id.to_string(),
                secret_access_key: secret.to_string(),
                session_token: p.get("session_token").map(str::to_string),
            }),
            (None, None) if p.get("session_token").is_none() => None,
            _ => {
                return Err(Error::config(
                    "give both access_key_id and secret_access_key (and optionally \
                     session_token), or none to use the standard AWS credential chain",
                ))
            }
        };
        let max_limit = match service {
            Service::Sqs => SQS_LIMIT_BYTES,
            Service::Sns => DEFAULT_MAX_MESSAGE_BYTES,
        };
        let min_size = ATTRIBUTE_RESERVE + 4 * 1024;
        let max_message_bytes = bounded(
            "max_message_bytes",
            p.parse("max_message_bytes", "a number of bytes")?,
            DEFAULT_MAX_MESSAGE_BYTES,
            min_size,
            max_limit,
        )?;
        let max_receive_count = p.parse::<i32>("max_receive_count", "1 to 1000")?;
        if let Some(n) = max_receive_count {
            bounded("max_receive_count", Some(n), 1, 1, 1000)?;
        }
        let visibility_timeout_secs = p.parse::<i32>("visibility_timeout_secs", "0 to 43200")?;
        if let Some(v) = visibility_timeout_secs {
            bounded("visibility_timeout_secs", Some(v), 30, 0, 43_200)?;
        }
        let queue_owner = p.get("queue_owner").map(str::to_string);
        if service == Service::Sns && queue_owner.is_some() {
            return Err(Error::config(
                "queue_owner applies to sqs:// only (sns:// creates its own queues)",
            ));
        }
        let region = p.get("region").map(str::to_string);
        if region.as_deref() == Some("") {
            return Err(Error::config("config key \"region\" is empty"));
        }
        Ok(SqsConfig {
            service,
            endpoint,
            region,
            credentials,
            fifo: p.flag("fifo")?.unwrap_or(false),
            auto_create: p.flag("auto_create")?.unwrap_or(true),
            wait_time_secs: bounded(
                "wait_time_secs",
                p.parse("wait_time_secs", "0 to 20")?,
                20,
                0,
                20,
            )?,
            visibility_timeout_secs,
            max_message_bytes,
            max_receive_count,
            max_attempts: bounded(
                "max_attempts",
                p.parse("max_attempts", "1 to 20")?,
                3,
                1,
                20,
            )?,
            retry_backoff: p
                .millis("retry_backoff_ms")?
                .unwrap_or(Duration::from_millis(200)),
            timeout: Duration::from_millis(bounded(
                "timeout_ms",
                p.parse("timeout_ms", "milliseconds, 1 to 600000")?,
                10_000u64,
                1,
                600_000,
            )?),
            queue_owner,
            redacted,
        })
    }

    /// The capabilities of this connection.
    pub fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_payload_bytes = max_payload_bytes(self.max_message_bytes);
        caps.max_batch = MAX_BATCH;
        caps.redelivery = true;
        caps.delayed_redelivery = Support::Native;
        caps.max_delay = Some(MAX_DELAY);
        caps.ordering_key = if self.fifo {
            Support::Native
        } else {
            Support::No
        };
        caps.dead_letter = Support::Emulated;
        caps.native_dedup = self.fifo;
        caps.max_headers = Some(MAX_HEADERS);
        caps.max_header_bytes = Some(MAX_HEADER_BYTES);
        caps.fan_out = self.service == Service::Sns;
        caps.competing_consumers = true;
        caps.lease_extension = Support::Native;
        caps.browse = Support::Emulated;
        caps.crash_safe_attempts = true; // ApproximateReceiveCount
        caps.lag = Some(brokerkit_core::LagAccuracy::Approximate);
        caps.lease = Some(Duration::from_secs(
            self.visibility_timeout_secs.unwrap_or(30).max(1) as u64,
        ));
        caps
    }
}

/// The largest payload that fits in a message of `max_message_bytes` whatever its bytes:
/// payloads that are not XML-safe text travel base64-encoded (4 bytes per 3), and
/// [`ATTRIBUTE_RESERVE`] bytes are kept for the headers attribute.
pub(crate) fn max_payload_bytes(max_message_bytes: usize) -> usize {
    (max_message_bytes.saturating_sub(ATTRIBUTE_RESERVE) / 4) * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_print() {
        let url = BrokerUrl::parse(
            "sqs://?endpoint=http://u:pw@127.0.0.1:4566&region=us-east-1&access_key_id=AKID1&secret_access_key=S3CR3T&session_token=T0K",
        )
        .unwrap();
        let c = SqsConfig::from_url(&url).unwrap();
        for shown in [c.redacted.clone(), format!("{c:?}")] {
            for secret in ["AKID1", "S3CR3T", "T0K", ":pw@"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
        assert_eq!(c.credentials.unwrap().access_key_id, "AKID1");
    }

    #[test]
    fn defaults_and_limits() {
        let c = SqsConfig::from_url(&BrokerUrl::parse("sqs://?region=eu-west-1").unwrap()).unwrap();
        assert_eq!(
            (c.wait_time_secs, c.max_attempts, c.auto_create, c.fifo),
            (20, 3, true, false)
        );
        let caps = c.capabilities();
        assert_eq!(caps.max_payload_bytes, 172_032);
        assert_eq!(caps.max_batch, 10);
        assert!(!caps.fan_out && caps.competing_consumers);
        let sns = SqsConfig::from_url(&BrokerUrl::parse("sns://?fifo=true").unwrap()).unwrap();
        assert!(sns.capabilities().fan_out);
        assert_eq!(sns.capabilities().ordering_key, Support::Native);
        let e = SqsConfig::from_url(&BrokerUrl::parse("sns://?max_message_bytes=1048576").unwrap())
            .unwrap_err();
        assert!(e.message().contains("max_message_bytes"), "{e}");
        let big =
            SqsConfig::from_url(&BrokerUrl::parse("sqs://?max_message_bytes=1048576").unwrap())
                .unwrap();
        assert_eq!(big.capabilities().max_payload_bytes, 761_856);
    }
}
