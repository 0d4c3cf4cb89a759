//! `nats://` and `nats+js://` URLs → typed settings. Secrets stay out of every printed form.

use std::time::Duration;

use brokerkit_core::{BrokerUrl, Error, Result};

/// URL scheme of core NATS (at-most-once).
pub const CORE_SCHEME: &str = "nats";
/// URL scheme of JetStream (at-least-once, durable).
pub const JETSTREAM_SCHEME: &str = "nats+js";

/// Query keys accepted in core NATS mode.
pub const CORE_KEYS: &[&str] = &["connect_timeout_ms", "request_timeout_ms", "name"];
/// Query keys accepted in JetStream mode.
pub const JETSTREAM_KEYS: &[&str] = &[
    "connect_timeout_ms",
    "request_timeout_ms",
    "name",
    "auto_create",
    "ack_wait_ms",
    "max_deliver",
    "duplicate_window_ms",
];

/// Which NATS the URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Core NATS subjects and queue groups: at-most-once, nothing stored.
    Core,
    /// JetStream streams and durable pull consumers: at-least-once.
    JetStream,
}

impl Mode {
    /// The adapter name in this mode, as `Backend::name` and error context give it.
    pub fn adapter_name(self) -> &'static str {
        match self {
            Mode::Core => "nats",
            Mode::JetStream => "nats-jetstream",
        }
    }
}

/// Settings read from the URL.
#[derive(Clone)]
pub struct NatsConfig {
    /// Core or JetStream.
    pub mode: Mode,
    /// `nats://host:port` without credentials, for the client.
    pub server: String,
    /// The URL with secrets redacted, for errors and logs.
    pub redacted: String,
    /// User and password from the URL's userinfo.
    pub user_password: Option<(String, String)>,
    /// Token: a URL username without a password.
    pub token: Option<String>,
    /// Client connection name shown by the server (`name`, default `brokerkit`).
    pub client_name: String,
    /// Connect timeout (`connect_timeout_ms`, default 5000).
    pub connect_timeout: Duration,
    /// Timeout of JetStream API requests and publish acks (`request_timeout_ms`, default 10000).
    pub request_timeout: Duration,
    /// Create missing streams on first use (`auto_create`, default true).
    pub auto_create: bool,
    /// Visibility timeout: an unsettled delivery is redelivered after this (`ack_wait_ms`,
    /// default 30000).
    pub ack_wait: Duration,
    /// A nack on this attempt or later dead-letters instead (`max_deliver`, default unlimited).
    pub max_deliver: Option<u32>,
    /// Dedup window of streams created by the adapter (`duplicate_window_ms`, default 120000).
    pub duplicate_window: Duration,
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("mode", &self.mode)
            .field("url", &self.redacted)
            .field("auto_create", &self.auto_create)
            .field("ack_wait", &self.ack_wait)
            .field("max_deliver", &self.max_deliver)
            .finish_non_exhaustive()
    }
}

fn positive_millis(p: &brokerkit_core::Params, key: &str, default: u64) -> Result<Duration> {
    let d = p.millis(key)?.unwrap_or(Duration::from_millis(default));
    if d.is_zero() {
        return Err(Error::config(format!(
            "config key {key:?} must be a positive number of milliseconds"
        )));
    }
    Ok(d)
}

impl NatsConfig {
    /// Reads `nats://[user[:password]@]host[:port][?key=value…]` (core NATS) or the same with
    /// scheme `nats+js` (JetStream).
    pub fn from_url(url: &BrokerUrl) -> Result<Self> {
        let mode = match url.scheme() {
            CORE_SCHEME => Mode::Core,
            JETSTREAM_SCHEME => Mode::JetStream,
            other => {
                return Err(Error::config(format!(
                    "scheme {other:?} is not NATS; use nats:// (core) or nats+js:// (JetStream)"
                )))
            }
        };
        let keys = match mode {
            Mode::Core => CORE_KEYS,
            Mode::JetStream => JETSTREAM_KEYS,
        };
        let p = url.params(keys)?;
        let u = url.expose();
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .unwrap_or("127.0.0.1");
        let port = u.port().unwrap_or(4222);
        if !matches!(u.path(), "" | "/") {
            return Err(Error::config(format!(
                "NATS URLs have no path; got {:?} in {}",
                u.path(),
                url.redacted()
            )));
        }
        let user = percent_decode(u.username());
        let (user_password, token) = match (user.is_empty(), u.password()) {
            (true, None) => (None, None),
            (false, None) => (None, Some(user)),
            (_, Some(pw)) => (Some((user, percent_decode(pw))), None),
        };
        let redacted = if token.is_some() {
            // A token travels as the username: hide it like a password.
            let mut hidden = u.clone();
            let _ = hidden.set_username("***");
            brokerkit_core::config::redact_url(&hidden)
        } else {
            url.redacted()
        };
        let max_deliver = p.parse::<u32>("max_deliver", "a positive integer")?;
        if max_deliver == Some(0) {
            return Err(Error::config(
                "config key \"max_deliver\" must be at least 1",
            ));
        }
        Ok(NatsConfig {
            mode,
            server: format!("nats://{host}:{port}"),
            redacted,
            user_password,
            token,
            client_name: p.get("name").unwrap_or("brokerkit").to_string(),
            connect_timeout: positive_millis(&p, "connect_timeout_ms", 5_000)?,
            request_timeout: positive_millis(&p, "request_timeout_ms", 10_000)?,
            auto_create: p.flag("auto_create")?.unwrap_or(true),
            ack_wait: positive_millis(&p, "ack_wait_ms", 30_000)?,
            max_deliver,
            duplicate_window: positive_millis(&p, "duplicate_window_ms", 120_000)?,
        })
    }
}

/// Decodes `%XX` escapes of URL userinfo; a malformed escape is kept as written.
fn percent_decode(s: &str) -> String {
    brokerkit_core::config::percent_decode(s).unwrap_or_else(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use brokerkit_core::ErrorKind;

    fn cfg(url: &str) -> Result<NatsConfig> {
        NatsConfig::from_url(&BrokerUrl::parse(url).unwrap())
    }

    #[test]
    fn modes_defaults_and_keys() {
        let c = cfg("nats://127.0.0.1:4222").unwrap();
        assert_eq!(
            (c.mode, c.server.as_str()),
            (Mode::Core, "nats://127.0.0.1:4222")
        );
        let c = cfg("nats+js://h?ack_wait_ms=500&max_deliver=3&auto_create=false").unwrap();
        assert_eq!(c.mode, Mode::JetStream);
        assert_eq!(c.server, "nats://h:4222");
        assert_eq!(c.ack_wait, Duration::from_millis(500));
        assert_eq!((c.max_deliver, c.auto_create), (Some(3), false));
        // JetStream keys are refused in core mode, naming the accepted ones.
        let e = cfg("nats://h?max_deliver=3").err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("connect_timeout_ms"), "{e}");
        assert!(cfg("nats+js://h?max_deliver=0").is_err());
        assert!(cfg("nats+js://h?ack_wait_ms=0").is_err());
        assert!(cfg("nats://h/some/path").is_err());
    }

    #[test]
    fn credentials_are_split_and_redacted() {
        let c = cfg("nats+js://al%40ice:s%3Acret@127.0.0.1:1").unwrap();
        assert_eq!(
            c.user_password,
            Some(("al@ice".to_string(), "s:cret".to_string()))
        );
        assert!(!c.redacted.contains("cret") && !format!("{c:?}").contains("cret"));
        assert!(!c.server.contains("alice"));
        let c = cfg("nats://tok3n@h").unwrap();
        assert_eq!(c.token.as_deref(), Some("tok3n"));
        assert!(!c.redacted.contains("tok3n"), "{}", c.redacted);
    }
}
