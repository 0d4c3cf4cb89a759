//! Typed settings: the alternative to writing an `amqp://` URL by hand.

use std::time::Duration;

use brokerkit_core::{BrokerSettings, BrokerUrl, Result, UrlParts};

use crate::config::RabbitConfig;

/// Settings of a RabbitMQ connection, built in code. Each `with_*` method stands for one URL
/// key of the adapter's README; [`BrokerSettings::to_url`] checks them as a URL would be.
///
/// ```
/// use std::time::Duration;
/// use brokerkit_core::BrokerSettings;
/// use brokerkit_rabbitmq::RabbitMqSettings;
///
/// let settings = RabbitMqSettings::new("127.0.0.1")
///     .with_credentials("guest", "guest")
///     .with_vhost("/")
///     .with_quorum_queues(true)
///     .with_heartbeat(Duration::from_secs(10));
/// let url = settings.to_url().unwrap();
/// assert_eq!(url.to_string(), "amqp://guest:***@127.0.0.1/%2F?quorum_queues=true&heartbeat=10");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RabbitMqSettings {
    parts: UrlParts,
}

impl RabbitMqSettings {
    /// Plain AMQP to `host` on port 5672, default vhost `/`, no credentials.
    pub fn new(host: impl Into<String>) -> Self {
        RabbitMqSettings {
            parts: UrlParts::new("amqp", host),
        }
    }

    /// The port (default 5672, or 5671 with TLS).
    pub fn with_port(self, port: u16) -> Self {
        self.map(|p| p.port(port))
    }

    /// TLS (`amqps://`).
    pub fn with_tls(self, tls: bool) -> Self {
        self.map(|p| p.scheme(if tls { "amqps" } else { "amqp" }))
    }

    /// User name and password.
    pub fn with_credentials(self, user: impl Into<String>, password: &str) -> Self {
        self.map(|p| p.user(user, Some(password)))
    }

    /// The virtual host (default `/`).
    pub fn with_vhost(self, vhost: impl Into<String>) -> Self {
        self.map(|p| p.path_segment(vhost))
    }

    /// Largest payload accepted (`max_payload_bytes`).
    pub fn with_max_payload_bytes(self, bytes: usize) -> Self {
        self.map(|p| p.key("max_payload_bytes", bytes))
    }

    /// Queues with `x-single-active-consumer`: per-queue order, no competition
    /// (`single_active_consumer`).
    pub fn with_single_active_consumer(self, on: bool) -> Self {
        self.map(|p| p.key("single_active_consumer", on))
    }

    /// Group queues are quorum queues, so attempts survive consumer crashes (`quorum_queues`).
    pub fn with_quorum_queues(self, on: bool) -> Self {
        self.map(|p| p.key("quorum_queues", on))
    }

    /// TCP connect timeout (`connection_timeout`, milliseconds).
    pub fn with_connection_timeout(self, timeout: Duration) -> Self {
        self.map(|p| p.millis("connection_timeout", timeout))
    }

    /// AMQP heartbeat (`heartbeat`, whole seconds, rounded up).
    pub fn with_heartbeat(self, interval: Duration) -> Self {
        self.map(|p| p.seconds("heartbeat", interval))
    }

    /// Largest frame to negotiate (`frame_max`, at least 4096).
    pub fn with_frame_max(self, bytes: u32) -> Self {
        self.map(|p| p.key("frame_max", bytes))
    }

    /// Most channels to negotiate (`channel_max`).
    pub fn with_channel_max(self, channels: u16) -> Self {
        self.map(|p| p.key("channel_max", channels))
    }

    fn map(self, f: impl FnOnce(UrlParts) -> UrlParts) -> Self {
        RabbitMqSettings {
            parts: f(self.parts),
        }
    }
}

impl BrokerSettings for RabbitMqSettings {
    fn to_url(&self) -> Result<BrokerUrl> {
        let url = self.parts.build()?;
        RabbitConfig::from_url(&url)?;
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brokerkit_core::ErrorKind;

    #[test]
    fn settings_read_back_as_the_url_would() {
        let s = RabbitMqSettings::new("::1")
            .with_port(5673)
            .with_tls(true)
            .with_credentials("svc", "p@ss/w:rd")
            .with_vhost("prod/eu")
            .with_max_payload_bytes(1024)
            .with_connection_timeout(Duration::from_millis(1500));
        let c = RabbitConfig::from_url(&s.to_url().unwrap()).unwrap();
        assert_eq!(c.uri.authority.host, "::1");
        assert_eq!(c.uri.authority.port, 5673);
        assert_eq!(c.uri.authority.userinfo.password, "p@ss/w:rd");
        assert_eq!(c.uri.vhost, "prod/eu");
        assert_eq!(c.max_payload_bytes, 1024);
        assert_eq!(c.uri.query.connection_timeout, Some(1500));
        assert_eq!(
            RabbitConfig::from_url(&RabbitMqSettings::new("h").to_url().unwrap())
                .unwrap()
                .uri
                .vhost,
            "/"
        );
        assert!(!format!("{s:?}").contains("p@ss") && !format!("{s:?}").contains("p%40ss"));
    }

    #[test]
    fn out_of_range_values_are_config_errors() {
        let e = RabbitMqSettings::new("h")
            .with_credentials("u", "hunter2")
            .with_frame_max(10)
            .to_url()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("frame_max") && !e.to_string().contains("hunter2"));
        assert!(RabbitMqSettings::new("h")
            .with_max_payload_bytes(0)
            .to_url()
            .is_err());
    }
}
