//! Typed settings: the alternative to writing a `nats://` or `nats+js://` URL by hand.

use std::time::Duration;

use brokerkit_core::{BrokerSettings, BrokerUrl, Result, UrlParts};

use crate::config::{NatsConfig, CORE_SCHEME, JETSTREAM_SCHEME};

/// Settings of a NATS connection, built in code: [`NatsSettings::jetstream`] (at-least-once)
/// or [`NatsSettings::core`] (at-most-once). Each `with_*` method stands for one URL key of
/// the adapter's README; [`BrokerSettings::to_url`] checks them as a URL would be, so a
/// JetStream-only key on core settings is a `Config` error naming the accepted keys.
///
/// ```
/// use std::time::Duration;
/// use brokerkit_core::BrokerSettings;
/// use brokerkit_nats::NatsSettings;
///
/// let settings = NatsSettings::jetstream("127.0.0.1")
///     .with_ack_wait(Duration::from_secs(10))
///     .with_max_deliver(5);
/// assert_eq!(
///     settings.to_url().unwrap().to_string(),
///     "nats+js://127.0.0.1?ack_wait_ms=10000&max_deliver=5"
/// );
/// assert!(NatsSettings::core("127.0.0.1").with_max_deliver(5).to_url().is_err());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NatsSettings {
    parts: UrlParts,
}

impl NatsSettings {
    /// JetStream on `host`, port 4222.
    pub fn jetstream(host: impl Into<String>) -> Self {
        NatsSettings {
            parts: UrlParts::new(JETSTREAM_SCHEME, host),
        }
    }

    /// Core NATS on `host`, port 4222.
    pub fn core(host: impl Into<String>) -> Self {
        NatsSettings {
            parts: UrlParts::new(CORE_SCHEME, host),
        }
    }

    /// The port (default 4222).
    pub fn with_port(self, port: u16) -> Self {
        self.map(|p| p.port(port))
    }

    /// User name and password.
    pub fn with_credentials(self, user: impl Into<String>, password: &str) -> Self {
        self.map(|p| p.user(user, Some(password)))
    }

    /// An authentication token (sent as the URL's user name).
    pub fn with_token(self, token: impl Into<String>) -> Self {
        self.map(|p| p.user(token, None))
    }

    /// Client connection name shown by the server (`name`, default `brokerkit`).
    pub fn with_client_name(self, name: impl Into<String>) -> Self {
        self.map(|p| p.key("name", name.into()))
    }

    /// Connect timeout (`connect_timeout_ms`).
    pub fn with_connect_timeout(self, timeout: Duration) -> Self {
        self.map(|p| p.millis("connect_timeout_ms", timeout))
    }

    /// Timeout of JetStream API requests and publish acks (`request_timeout_ms`).
    pub fn with_request_timeout(self, timeout: Duration) -> Self {
        self.map(|p| p.millis("request_timeout_ms", timeout))
    }

    /// JetStream: create missing streams on first use (`auto_create`, default true).
    pub fn with_auto_create(self, on: bool) -> Self {
        self.map(|p| p.key("auto_create", on))
    }

    /// JetStream: the visibility timeout (`ack_wait_ms`, default 30 s).
    pub fn with_ack_wait(self, wait: Duration) -> Self {
        self.map(|p| p.millis("ack_wait_ms", wait))
    }

    /// JetStream: a nack on this attempt or later dead-letters instead (`max_deliver`).
    pub fn with_max_deliver(self, attempts: u32) -> Self {
        self.map(|p| p.key("max_deliver", attempts))
    }

    /// JetStream: dedup window of streams the adapter creates (`duplicate_window_ms`).
    pub fn with_duplicate_window(self, window: Duration) -> Self {
        self.map(|p| p.millis("duplicate_window_ms", window))
    }

    fn map(self, f: impl FnOnce(UrlParts) -> UrlParts) -> Self {
        NatsSettings {
            parts: f(self.parts),
        }
    }
}

impl BrokerSettings for NatsSettings {
    fn to_url(&self) -> Result<BrokerUrl> {
        let url = self.parts.build()?;
        NatsConfig::from_url(&url)?;
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;

    #[test]
    fn settings_read_back_as_the_url_would() {
        let s = NatsSettings::jetstream("127.0.0.1")
            .with_port(4223)
            .with_credentials("al@ice", "s:cr/et")
            .with_client_name("orders svc")
            .with_duplicate_window(Duration::from_secs(60));
        let c = NatsConfig::from_url(&s.to_url().unwrap()).unwrap();
        assert_eq!(c.mode, Mode::JetStream);
        assert_eq!(c.server, "nats://127.0.0.1:4223");
        assert_eq!(
            c.user_password,
            Some(("al@ice".to_string(), "s:cr/et".to_string()))
        );
        assert_eq!(c.client_name, "orders svc");
        assert_eq!(c.duplicate_window, Duration::from_secs(60));
        assert!(!format!("{s:?}").contains("cr%2Fet") && !format!("{s:?}").contains("s:cr"));

        let t = NatsSettings::core("h").with_token("tok3nSECRET");
        let c = NatsConfig::from_url(&t.to_url().unwrap()).unwrap();
        assert_eq!(
            (c.mode, c.token.as_deref()),
            (Mode::Core, Some("tok3nSECRET"))
        );
        assert!(!format!("{t:?}").contains("tok3n"), "{t:?}");
    }

    #[test]
    fn zero_durations_are_config_errors() {
        assert!(NatsSettings::jetstream("h")
            .with_ack_wait(Duration::ZERO)
            .to_url()
            .is_err());
        assert!(NatsSettings::jetstream("h")
            .with_max_deliver(0)
            .to_url()
            .is_err());
    }
}
