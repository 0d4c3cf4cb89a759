//! The memory adapter's settings: from a `memory://` URL or built in code.

use std::time::Duration;

use brokerkit_core::{BrokerSettings, BrokerUrl, Capabilities, Error, Result, Support, UrlParts};

/// Query keys a `memory://` URL accepts.
pub const KEYS: &[&str] = &[
    "capacity",
    "visibility_timeout_ms",
    "max_payload_bytes",
    "send_timeout_ms",
];

/// Longest accepted visibility timeout and send timeout (one year); longer values are clamped.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Settings of a memory broker. Build one with [`MemoryConfig::default`] and the `with_*`
/// methods, or read it from a URL with [`MemoryConfig::from_url`].
///
/// ```
/// use std::time::Duration;
/// let config = brokerkit_memory::MemoryConfig::default()
///     .with_capacity(100)
///     .with_visibility_timeout(Duration::from_millis(500));
/// assert_eq!(config.capacity, 100);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// Messages each consumer group holds before senders wait (default 10,000).
    pub capacity: usize,
    /// How long a delivery may stay unsettled before it is delivered again (default 30 s).
    pub visibility_timeout: Duration,
    /// Largest payload (default 1 MiB).
    pub max_payload_bytes: usize,
    /// How long a send waits for room in a full consumer group before it fails with a
    /// retryable `Timeout` (default 30 s; at most [`MAX_TIMEOUT`]). A group nobody consumes
    /// (e.g. the `default` group `redrive` leaves on `<d>.dlq`) fills up; sends then fail
    /// after this long instead of blocking forever. Closing the broker fails waiting sends
    /// with `Closed` at once.
    pub send_timeout: Duration,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            capacity: 10_000,
            visibility_timeout: Duration::from_secs(30),
            max_payload_bytes: 1024 * 1024,
            send_timeout: Duration::from_secs(30),
        }
    }
}

impl MemoryConfig {
    /// Sets the per-group capacity (at least 1).
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Sets the visibility timeout (at least 1 ms, at most [`MAX_TIMEOUT`]).
    pub fn with_visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout.clamp(Duration::from_millis(1), MAX_TIMEOUT);
        self
    }

    /// Sets the send timeout (at least 1 ms, at most [`MAX_TIMEOUT`]).
    pub fn with_send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout.clamp(Duration::from_millis(1), MAX_TIMEOUT);
        self
    }

    /// Sets the largest payload (at least 1 byte).
    pub fn with_max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes.max(1);
        self
    }

    /// Reads the settings from a `memory://` URL.
    pub fn from_url(url: &BrokerUrl) -> Result<Self> {
        let p = url.params(KEYS)?;
        let d = MemoryConfig::default();
        let positive = "a positive integer";
        let cfg = MemoryConfig {
            capacity: p.parse("capacity", positive)?.unwrap_or(d.capacity),
            visibility_timeout: p
                .millis("visibility_timeout_ms")?
                .unwrap_or(d.visibility_timeout)
                .min(MAX_TIMEOUT),
            send_timeout: p
                .millis("send_timeout_ms")?
                .unwrap_or(d.send_timeout)
                .min(MAX_TIMEOUT),
            max_payload_bytes: p
                .parse("max_payload_bytes", positive)?
                .unwrap_or(d.max_payload_bytes),
        };
        if cfg.capacity == 0
            || cfg.max_payload_bytes == 0
            || cfg.visibility_timeout.is_zero()
            || cfg.send_timeout.is_zero()
        {
            return Err(Error::config(format!(
                "capacity, visibility_timeout_ms, send_timeout_ms and max_payload_bytes must be \
                 positive in {url}"
            )));
        }
        Ok(cfg)
    }

    /// What a broker with these settings can do.
    pub fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_payload_bytes = self.max_payload_bytes;
        caps.max_batch = 1000;
        caps.redelivery = true;
        caps.delayed_redelivery = Support::Native;
        caps.ordering_key = Support::Native;
        caps.dead_letter = Support::Native;
        caps.fan_out = true;
        caps.competing_consumers = true;
        caps.lease_extension = Support::Native;
        caps.lease = Some(self.visibility_timeout);
        caps.browse = Support::Native;
        caps.lag = Some(brokerkit_core::LagAccuracy::Exact);
        caps
    }
}

/// `memory://` with these settings, for `Broker::connect_settings` (each connect makes a new,
/// empty broker, as a `memory://` URL does).
impl BrokerSettings for MemoryConfig {
    fn to_url(&self) -> Result<BrokerUrl> {
        let url = UrlParts::new("memory", "")
            .key("capacity", self.capacity)
            .millis("visibility_timeout_ms", self.visibility_timeout)
            .key("max_payload_bytes", self.max_payload_bytes)
            .millis("send_timeout_ms", self.send_timeout)
            .build()?;
        MemoryConfig::from_url(&url)?;
        Ok(url)
    }
}
