//! Typed adapter settings: an alternative to writing a broker URL by hand.
//!
//! Each adapter offers a settings builder (named `<Adapter>Settings`, see its crate) whose typed
//! `with_*` methods stand for the URL's query keys. The builder renders a [`BrokerUrl`] and the
//! adapter checks it exactly as it checks a URL written by hand, so both paths accept the same
//! values and give the same errors. Credentials never print: `Debug` shows the redacted URL.
//!
//! Adapters build their settings on [`UrlParts`], which does the percent-encoding.

use std::fmt;
use std::time::Duration;

use url::Url;

use crate::config::BrokerUrl;
use crate::error::{Error, Result};

/// Settings that stand for a broker URL; `Broker::connect_settings` connects with them.
pub trait BrokerSettings: fmt::Debug + Send + Sync {
    /// The URL these settings stand for, checked by the adapter as a URL written by hand
    /// would be (unknown values and out-of-range options are `Config` errors).
    fn to_url(&self) -> Result<BrokerUrl>;
}

impl BrokerSettings for BrokerUrl {
    fn to_url(&self) -> Result<BrokerUrl> {
        Ok(self.clone())
    }
}

/// The parts of a broker URL, assembled with percent-encoding: scheme, host, port, user
/// info, one path segment, and query keys (set once each, in the order first set).
///
/// ```
/// use brokerkit_core::settings::UrlParts;
/// let url = UrlParts::new("amqp", "127.0.0.1")
///     .port(5672)
///     .user("guest", Some("p@ss/word"))
///     .path_segment("/")
///     .key("heartbeat", 5)
///     .build()
///     .unwrap();
/// assert_eq!(url.expose().as_str(), "amqp://guest:p%40ss%2Fword@127.0.0.1:5672/%2F?heartbeat=5");
/// assert!(!url.to_string().contains("p%40ss"));
/// ```
#[derive(Clone)]
pub struct UrlParts {
    scheme: &'static str,
    host: String,
    port: Option<u16>,
    user: Option<(String, Option<String>)>,
    path_segment: Option<String>,
    keys: Vec<(&'static str, String)>,
}

impl UrlParts {
    /// Starts a URL `scheme://host`; an empty host is allowed where the adapter allows it
    /// (a URL that carries everything in its query). IPv6 addresses may be given with or without brackets.
    pub fn new(scheme: &'static str, host: impl Into<String>) -> Self {
        UrlParts {
            scheme,
            host: host.into(),
            port: None,
            user: None,
            path_segment: None,
            keys: Vec::new(),
        }
    }

    /// Replaces the scheme (e.g. `amqp` → `amqps`).
    pub fn scheme(mut self, scheme: &'static str) -> Self {
        self.scheme = scheme;
        self
    }

    /// Replaces the host.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Sets the port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets the user info: a user name and an optional password (both percent-encoded).
    pub fn user(mut self, user: impl Into<String>, password: Option<&str>) -> Self {
        self.user = Some((user.into(), password.map(str::to_string)));
        self
    }

    /// Sets the single path segment (percent-encoded, so `/` becomes `%2F`).
    pub fn path_segment(mut self, segment: impl Into<String>) -> Self {
        self.path_segment = Some(segment.into());
        self
    }

    /// Sets query key `key` to `value`, replacing an earlier value.
    pub fn key(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        let value = value.to_string();
        match self.keys.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.keys.push((key, value)),
        }
        self
    }

    /// Sets query key `key` to a whole number of milliseconds (rounded up, so a positive
    /// duration never becomes 0).
    pub fn millis(self, key: &'static str, duration: Duration) -> Self {
        let ms = duration.as_nanos().div_ceil(1_000_000);
        self.key(key, u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// Sets query key `key` to a whole number of seconds (rounded up).
    pub fn seconds(self, key: &'static str, duration: Duration) -> Self {
        let secs = duration.as_nanos().div_ceil(1_000_000_000);
        self.key(key, u64::try_from(secs).unwrap_or(u64::MAX))
    }

    /// Assembles the URL. A host the URL syntax cannot hold is a `Config` error.
    pub fn build(&self) -> Result<BrokerUrl> {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let mut url = Url::parse(&format!("{}://{host}", self.scheme)).map_err(|e| {
            Error::config(format!(
                "host {:?} cannot be used in a {}:// URL: {e}",
                self.host, self.scheme
            ))
        })?;
        if let Some(port) = self.port {
            url.set_port(Some(port)).map_err(|()| {
                Error::config(format!("a {}:// URL cannot carry a port", self.scheme))
            })?;
        }
        if let Some((user, password)) = &self.user {
            let unsettable = || {
                Error::config(format!(
                    "a {}:// URL without a host cannot carry a user or password",
                    self.scheme
                ))
            };
            url.set_username(user).map_err(|()| unsettable())?;
            url.set_password(password.as_deref())
                .map_err(|()| unsettable())?;
        }
        if let Some(segment) = &self.path_segment {
            url.path_segments_mut()
                .map_err(|()| {
                    Error::config(format!("a {}:// URL cannot carry a path", self.scheme))
                })?
                .clear()
                .push(segment);
        }
        if !self.keys.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(self.keys.iter().map(|(k, v)| (*k, v.as_str())));
        }
        BrokerUrl::parse(url.as_str())
    }
}

impl fmt::Debug for UrlParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.build() {
            Ok(url) => write!(f, "{}", url.redacted()),
            Err(_) => f
                .debug_struct("UrlParts")
                .field("scheme", &self.scheme)
                .field("host", &self.host)
                .finish_non_exhaustive(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_user_info_path_and_keys() {
        let url = UrlParts::new("tokenized", "::1")
            .port(4222)
            .user("tok en", None)
            .key("name", "a b&c")
            .key("name", "svc")
            .build()
            .unwrap();
        assert_eq!(
            url.expose().as_str(),
            "tokenized://tok%20en@[::1]:4222?name=svc"
        );
        assert!(!format!("{url:?}").contains("tok%20en"), "{url:?}");
    }

    #[test]
    fn debug_never_prints_the_password() {
        let parts = UrlParts::new("plain", "h").user("u", Some("hunter2"));
        assert!(!format!("{parts:?}").contains("hunter2"));
        let broken = UrlParts::new("plain", "bad host").user("u", Some("hunter2"));
        assert!(broken.build().is_err());
        assert!(!format!("{broken:?}").contains("hunter2"));
    }

    #[test]
    fn durations_round_up() {
        let url = UrlParts::new("plain", "h")
            .millis("linger_ms", Duration::from_micros(1))
            .seconds("wait", Duration::from_millis(1500))
            .millis("max", Duration::MAX)
            .build()
            .unwrap();
        let q = url.expose().query().unwrap().to_string();
        assert!(q.contains("linger_ms=1") && q.contains("wait=2"), "{q}");
        assert!(q.contains(&format!("max={}", u64::MAX)), "{q}");
    }

    #[test]
    fn query_only_urls_have_no_host() {
        let url = UrlParts::new("queryonly", "")
            .key("endpoint", "http://127.0.0.1:4566")
            .build()
            .unwrap();
        assert_eq!(url.scheme(), "queryonly");
        assert_eq!(url.expose().host_str().unwrap_or(""), "");
        let e = UrlParts::new("queryonly", "").user("u", Some("p")).build();
        assert!(e.is_err());
    }
}
