//! Typed settings: the alternative to writing an `sqs://` or `sns://` URL by hand.

use std::time::Duration;

use brokerkit_core::{BrokerSettings, BrokerUrl, Result, UrlParts};

use crate::config::SqsConfig;

/// Settings of an SQS (`sqs://`) or SNS (`sns://`) connection, built in code. Each `with_*`
/// method stands for one URL key of the adapter's README; [`BrokerSettings::to_url`] checks
/// them as a URL would be. Static credentials never print (`Debug` shows `***`); without
/// them the standard AWS credential chain is used.
///
/// ```
/// use brokerkit_core::BrokerSettings;
/// use brokerkit_sqs::SqsSettings;
///
/// let settings = SqsSettings::sqs()
///     .with_endpoint("http://127.0.0.1:4566")
///     .with_region("us-east-1")
///     .with_credentials("test", "SECRET")
///     .with_fifo(true);
/// let shown = settings.to_url().unwrap().to_string();
/// assert!(shown.starts_with("sqs://?endpoint=http"), "{shown}");
/// assert!(!shown.contains("SECRET") && !format!("{settings:?}").contains("SECRET"));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SqsSettings {
    parts: UrlParts,
}

impl SqsSettings {
    /// Destinations are SQS queues.
    pub fn sqs() -> Self {
        SqsSettings {
            parts: UrlParts::new("sqs", ""),
        }
    }

    /// Destinations are SNS topics; each consumer group is an SQS queue subscribed to it.
    pub fn sns() -> Self {
        SqsSettings {
            parts: UrlParts::new("sns", ""),
        }
    }

    /// Endpoint override, e.g. LocalStack's `http://127.0.0.1:4566` (`endpoint`).
    pub fn with_endpoint(self, endpoint: impl Into<String>) -> Self {
        self.map(|p| p.key("endpoint", endpoint.into()))
    }

    /// AWS region (`region`; else `AWS_REGION` or the profile).
    pub fn with_region(self, region: impl Into<String>) -> Self {
        self.map(|p| p.key("region", region.into()))
    }

    /// Static credentials (`access_key_id`, `secret_access_key`).
    pub fn with_credentials(self, access_key_id: impl Into<String>, secret: &str) -> Self {
        self.map(|p| {
            p.key("access_key_id", access_key_id.into())
                .key("secret_access_key", secret)
        })
    }

    /// A session token for temporary credentials (`session_token`).
    pub fn with_session_token(self, token: &str) -> Self {
        self.map(|p| p.key("session_token", token))
    }

    /// FIFO queues and topics (`fifo`): ordering keys and native dedup.
    pub fn with_fifo(self, on: bool) -> Self {
        self.map(|p| p.key("fifo", on))
    }

    /// Create queues, topics and subscriptions on first use (`auto_create`, default true).
    pub fn with_auto_create(self, on: bool) -> Self {
        self.map(|p| p.key("auto_create", on))
    }

    /// Long-poll wait of a receive, 0 to 20 s (`wait_time_secs`, rounded up).
    pub fn with_wait_time(self, wait: Duration) -> Self {
        self.map(|p| p.seconds("wait_time_secs", wait))
    }

    /// Visibility timeout asked for on receive, 0 to 12 h (`visibility_timeout_secs`).
    pub fn with_visibility_timeout(self, timeout: Duration) -> Self {
        self.map(|p| p.seconds("visibility_timeout_secs", timeout))
    }

    /// Largest message, body and attributes (`max_message_bytes`).
    pub fn with_max_message_bytes(self, bytes: usize) -> Self {
        self.map(|p| p.key("max_message_bytes", bytes))
    }

    /// Broker-side redrive after this many receives on created queues (`max_receive_count`).
    pub fn with_max_receive_count(self, count: u32) -> Self {
        self.map(|p| p.key("max_receive_count", count))
    }

    /// Attempts per request, the first included (`max_attempts`, 1 to 20).
    pub fn with_max_attempts(self, attempts: u32) -> Self {
        self.map(|p| p.key("max_attempts", attempts))
    }

    /// Initial retry backoff of requests (`retry_backoff_ms`).
    pub fn with_retry_backoff(self, backoff: Duration) -> Self {
        self.map(|p| p.millis("retry_backoff_ms", backoff))
    }

    /// Timeout of one request attempt (`timeout_ms`).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.map(|p| p.millis("timeout_ms", timeout))
    }

    /// Account that owns the queues, for cross-account access (`queue_owner`, `sqs` only).
    pub fn with_queue_owner(self, account: impl Into<String>) -> Self {
        self.map(|p| p.key("queue_owner", account.into()))
    }

    fn map(self, f: impl FnOnce(UrlParts) -> UrlParts) -> Self {
        SqsSettings {
            parts: f(self.parts),
        }
    }
}

impl BrokerSettings for SqsSettings {
    fn to_url(&self) -> Result<BrokerUrl> {
        let url = self.parts.build()?;
        SqsConfig::from_url(&url)?;
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Service;

    #[test]
    fn settings_read_back_as_the_url_would() {
        let s = SqsSettings::sns()
            .with_endpoint("http://127.0.0.1:4566")
            .with_region("eu-west-1")
            .with_credentials("AKID1", "S3CR&T=X")
            .with_session_token("T0K")
            .with_wait_time(Duration::from_millis(500))
            .with_max_attempts(5);
        let c = SqsConfig::from_url(&s.to_url().unwrap()).unwrap();
        assert_eq!(c.service, Service::Sns);
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:4566"));
        let creds = c.credentials.unwrap();
        assert_eq!(creds.secret_access_key, "S3CR&T=X");
        assert_eq!(creds.session_token.as_deref(), Some("T0K"));
        assert_eq!((c.wait_time_secs, c.max_attempts), (1, 5));
        let shown = format!("{s:?} {}", s.to_url().unwrap());
        for secret in ["S3CR", "T0K"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn out_of_range_values_are_config_errors() {
        assert!(SqsSettings::sqs()
            .with_wait_time(Duration::from_secs(21))
            .to_url()
            .is_err());
        assert!(SqsSettings::sns().with_queue_owner("1").to_url().is_err());
        let e = SqsSettings::sqs()
            .with_credentials("AKID1", "S3CRET")
            .with_max_attempts(0)
            .to_url()
            .unwrap_err();
        assert!(!e.to_string().contains("S3CRET"), "{e}");
    }
}
