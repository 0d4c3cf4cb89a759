//! `RedisStreamsConfig`: the URL `redis+streams://[user:password@]host[:port][/db]?keys` parsed
//! and checked, and the capabilities it gives.

use std::time::Duration;

use brokerkit_core::capabilities::{Capabilities, Support};
use brokerkit_core::config::percent_decode;
use brokerkit_core::lag::LagAccuracy;
use brokerkit_core::{BrokerUrl, Error, Result};

/// The URL scheme.
pub const SCHEME: &str = "redis+streams";

/// Query keys the URL accepts.
pub const KEYS: &[&str] = &["lease_ms", "maxlen"];

/// The lease (how long a delivery may stay pending before another consumer claims it) when
/// the URL sets none.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// Shortest lease accepted: the claim scan runs every 100 ms.
const MIN_LEASE: Duration = Duration::from_millis(500);

/// Largest payload sent, in bytes.
pub const MAX_PAYLOAD: usize = 1024 * 1024;

/// Most entries sent in one pipelined batch.
pub const MAX_BATCH: usize = 100;

/// How the adapter reaches Redis and keeps its streams.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisStreamsConfig {
    /// `redis://…` address for the client (holds the password: never print).
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) client_url: String,
    /// The brokerkit URL with secrets redacted, for errors.
    pub redacted: String,
    /// Idle time after which a pending entry may be claimed by another consumer.
    pub lease: Duration,
    /// Approximate `MAXLEN ~` trimming on every `XADD`; `None` keeps every entry.
    pub maxlen: Option<u64>,
}

impl std::fmt::Debug for RedisStreamsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamsConfig")
            .field("address", &self.redacted)
            .field("lease", &self.lease)
            .field("maxlen", &self.maxlen)
            .finish()
    }
}

impl Default for RedisStreamsConfig {
    fn default() -> Self {
        RedisStreamsConfig {
            client_url: "redis://127.0.0.1:6379".into(),
            redacted: format!("{SCHEME}://127.0.0.1:6379"),
            lease: DEFAULT_LEASE,
            maxlen: None,
        }
    }
}

impl RedisStreamsConfig {
    /// Sets the lease.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Trims every stream to about `maxlen` entries on each send.
    pub fn with_maxlen(mut self, maxlen: u64) -> Self {
        self.maxlen = Some(maxlen);
        self
    }

    /// Parses and checks a `redis+streams://` URL.
    pub fn from_url(url: &BrokerUrl) -> Result<Self> {
        if url.scheme() != SCHEME {
            return Err(Error::config(format!(
                "scheme {:?} is not {SCHEME}",
                url.scheme()
            )));
        }
        let params = url.params(KEYS)?;
        let u = url.expose();
        let redacted = url.redacted();
        let host = u.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
            Error::config(format!(
                "{redacted} names no host; expected {SCHEME}://[user:password@]host[:port][/db]"
            ))
        })?;
        let port = u.port().unwrap_or(6379);
        let db = match u.path().trim_start_matches('/') {
            "" => 0,
            d => d.parse::<u32>().map_err(|_| {
                Error::config(format!(
                    "the path of {redacted} must be a database number, e.g. /0"
                ))
            })?,
        };
        let decode = |s: &str, what: &str| {
            percent_decode(s).ok_or_else(|| {
                Error::config(format!(
                    "the {what} in {redacted} is not valid percent-encoded UTF-8"
                ))
            })
        };
        let user = decode(u.username(), "user name")?;
        let password = u.password().map(|p| decode(p, "password")).transpose()?;
        // The client takes its own URL; re-encode user info with the url crate.
        let mut client =
            url::Url::parse("redis://localhost").map_err(|e| Error::config(e.to_string()))?;
        client
            .set_host(Some(host))
            .map_err(|_| Error::config(format!("host of {redacted} is not valid")))?;
        let _ = client.set_port(Some(port));
        if !user.is_empty() {
            let _ = client.set_username(&user);
        }
        if let Some(p) = &password {
            let _ = client.set_password(Some(p));
        }
        client.set_path(&format!("/{db}"));
        let lease = params.millis("lease_ms")?.unwrap_or(DEFAULT_LEASE);
        if lease < MIN_LEASE {
            return Err(Error::config(format!(
                "lease_ms is {} ms; the shortest lease is {} ms",
                lease.as_millis(),
                MIN_LEASE.as_millis()
            )));
        }
        let maxlen = params.parse::<u64>("maxlen", "a positive number of entries")?;
        if maxlen == Some(0) {
            return Err(Error::config("maxlen must be at least 1"));
        }
        Ok(RedisStreamsConfig {
            client_url: client.to_string(),
            redacted,
            lease,
            maxlen,
        })
    }

    /// What the adapter can do with this configuration.
    pub fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::default();
        c.max_payload_bytes = MAX_PAYLOAD;
        c.max_batch = MAX_BATCH;
        c.redelivery = true;
        c.delayed_redelivery = Support::Emulated;
        c.max_delay = Some(self.lease);
        c.dead_letter = Support::Emulated;
        c.fan_out = true;
        c.competing_consumers = true;
        c.lease_extension = Support::Native;
        c.lease = Some(self.lease);
        c.browse = Support::Native;
        c.lag = Some(LagAccuracy::Exact);
        c.crash_safe_attempts = true;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brokerkit_core::ErrorKind;

    fn parse(url: &str) -> Result<RedisStreamsConfig> {
        RedisStreamsConfig::from_url(&BrokerUrl::parse(url)?)
    }

    #[test]
    fn keys_user_info_and_database() {
        let c = parse("redis+streams://default:p%40ss@10.0.0.1:6380/3?lease_ms=2000&maxlen=50")
            .unwrap();
        assert_eq!(c.client_url, "redis://default:p%40ss@10.0.0.1:6380/3");
        assert_eq!((c.lease, c.maxlen), (Duration::from_secs(2), Some(50)));
        assert!(!c.redacted.contains("p%40ss") && !format!("{c:?}").contains("p%40ss"));
        assert_eq!(c.capabilities().max_delay, Some(Duration::from_secs(2)));
        let d = parse("redis+streams://127.0.0.1").unwrap();
        assert_eq!(d.client_url, "redis://127.0.0.1:6379/0");
        assert_eq!(d.lease, DEFAULT_LEASE);
    }

    #[test]
    fn bad_values_are_config_errors_without_secrets() {
        for url in [
            "redis+streams://u:hunter2@h/notadb",
            "redis+streams://u:hunter2@h?lease_ms=10",
            "redis+streams://u:hunter2@h?maxlen=0",
            "redis+streams://u:hunter2@h?colour=red",
            "redis+streams://u:hunter2@h?lease_ms=soon",
        ] {
            let e = parse(url).err().unwrap();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}: {e}");
            assert!(!format!("{e} {e:?}").contains("hunter2"), "{e}");
        }
    }
}
