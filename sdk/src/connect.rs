//! Waiting for a broker that is not up yet: [`ConnectOptions`] retries a retryable connection
//! failure (the broker unreachable, throttling, a timeout) with backoff until a deadline, so a
//! service started before its broker (docker-compose, Kubernetes) connects once it comes up.
//! A non-retryable error (bad URL, unknown key, refused credentials) fails at once.

use std::time::Duration;

use brokerkit_core::{BrokerSettings, Error, Result};

use crate::broker::Broker;
use crate::registry::Registry;

/// Environment variable read by [`Broker::from_env`] and the configuration file: the connect
/// deadline in milliseconds (`0` tries once).
pub const CONNECT_DEADLINE_ENV: &str = "BROKERKIT_CONNECT_DEADLINE_MS";

/// How [`Broker::connect`] waits for the broker.
///
/// Default: retry for up to **30 s**, backing off from 250 ms, doubling, at most 5 s between
/// attempts; each failed attempt is logged at `warn`. The deadline bounds when the last
/// attempt may start; an attempt itself is bounded by the adapter's own connect timeout.
///
/// ```no_run
/// # async fn demo() -> brokerkit::Result<()> {
/// use std::time::Duration;
/// use brokerkit::{Broker, ConnectOptions};
///
/// let broker = ConnectOptions::default()
///     .deadline(Duration::from_secs(120))
///     .connect(&std::env::var("BROKERKIT_URL").unwrap_or("memory://".into()))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    deadline: Duration,
    initial_backoff: Duration,
    max_backoff: Duration,
    registry: Option<Registry>,
}

impl Default for ConnectOptions {
    /// 30 s deadline, 250 ms first backoff doubling to at most 5 s, the default registry.
    fn default() -> Self {
        ConnectOptions {
            deadline: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
            registry: None,
        }
    }
}

impl ConnectOptions {
    /// How long to keep retrying; `Duration::ZERO` tries once.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Tries once and returns the first error.
    pub fn no_retry(self) -> Self {
        self.deadline(Duration::ZERO)
    }

    /// The wait after the first failed attempt (then doubling).
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The longest wait between attempts.
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Connects through `registry` instead of the default one.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The deadline in effect.
    pub fn deadline_value(&self) -> Duration {
        self.deadline
    }

    /// Applies `$BROKERKIT_CONNECT_DEADLINE_MS` when it is set; a value that is not a number
    /// of milliseconds is a `Config` error.
    pub fn from_env(self) -> Result<Self> {
        match std::env::var(CONNECT_DEADLINE_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                let ms: u64 = v.trim().parse().map_err(|_| {
                    Error::config(format!(
                        "{CONNECT_DEADLINE_ENV}={v:?} is not a number of milliseconds"
                    ))
                })?;
                Ok(self.deadline(Duration::from_millis(ms)))
            }
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(self),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::config(format!(
                "{CONNECT_DEADLINE_ENV} is not valid UTF-8"
            ))),
        }
    }

    /// Connects with typed settings (an adapter's `…Settings` builder), retrying as
    /// [`connect`](Self::connect) does. The settings are checked before the first attempt.
    pub async fn connect_settings(&self, settings: &dyn BrokerSettings) -> Result<Broker> {
        let url = settings.to_url()?;
        self.connect(url.expose().as_str()).await
    }

    /// Connects to `url`, retrying retryable failures until the deadline. The error returned
    /// is the last attempt's.
    pub async fn connect(&self, url: &str) -> Result<Broker> {
        let default_registry;
        let registry = match &self.registry {
            Some(r) => r,
            None => {
                default_registry = Registry::default();
                &default_registry
            }
        };
        let started = tokio::time::Instant::now();
        let mut backoff = self.initial_backoff;
        let mut attempt = 1u32;
        loop {
            let error = match registry.connect(url).await {
                Ok(backend) => {
                    if attempt > 1 {
                        tracing::info!(attempt, "connected to the broker");
                    }
                    return Ok(Broker::from_backend(backend));
                }
                Err(e) => e,
            };
            let elapsed = started.elapsed();
            if !error.is_retryable() || elapsed + backoff > self.deadline {
                if attempt > 1 {
                    tracing::warn!(
                        attempt,
                        elapsed_ms = elapsed.as_millis() as u64,
                        error = %error,
                        "giving up connecting to the broker"
                    );
                }
                return Err(error);
            }
            tracing::warn!(
                attempt,
                retry_in_ms = backoff.as_millis() as u64,
                deadline_ms = self.deadline.as_millis() as u64,
                error = %error,
                "cannot connect to the broker yet; retrying"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.max_backoff);
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;
    use brokerkit_core::{Backend, BrokerUrl, Connector, ErrorKind};

    /// Fails the first `failures` connects with `kind`, then connects to memory.
    struct Flaky {
        failures: u32,
        kind: ErrorKind,
        calls: Arc<AtomicU32>,
    }

    #[async_trait::async_trait]
    impl Connector for Flaky {
        fn schemes(&self) -> &'static [&'static str] {
            &["memory"]
        }
        async fn connect(&self, url: &BrokerUrl) -> Result<Arc<dyn Backend>> {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
                return Err(Error::new(self.kind, "broker not up"));
            }
            crate::memory::MemoryConnector.connect(url).await
        }
    }

    fn flaky(failures: u32, kind: ErrorKind) -> (Registry, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let c = Flaky {
            failures,
            kind,
            calls: calls.clone(),
        };
        (Registry::empty().with(c), calls)
    }

    #[tokio::test(start_paused = true)]
    async fn retries_a_retryable_failure_then_connects() {
        let (registry, calls) = flaky(2, ErrorKind::Unavailable);
        let started = tokio::time::Instant::now();
        let broker = ConnectOptions::default()
            .registry(registry)
            .connect("memory://")
            .await
            .unwrap();
        assert_eq!(broker.adapter(), "memory");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // 250 ms + 500 ms of backoff.
        assert_eq!(started.elapsed(), Duration::from_millis(750));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_deadline() {
        let (registry, calls) = flaky(u32::MAX, ErrorKind::Unavailable);
        let started = tokio::time::Instant::now();
        let e = ConnectOptions::default()
            .deadline(Duration::from_secs(10))
            .registry(registry)
            .connect("memory://")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        // Waits 250, 500, 1000, 2000, 4000 ms (7.75 s); the next 5 s would pass the deadline.
        assert_eq!(started.elapsed(), Duration::from_millis(7750));
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_non_retryable_error_or_no_retry_fails_at_once() {
        let (registry, calls) = flaky(1, ErrorKind::PermissionDenied);
        let started = tokio::time::Instant::now();
        let e = ConnectOptions::default()
            .registry(registry)
            .connect("memory://")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let (registry, calls) = flaky(1, ErrorKind::Unavailable);
        let e = ConnectOptions::default()
            .no_retry()
            .registry(registry)
            .connect("memory://")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[test]
    fn deadline_from_the_environment() {
        // The only test that touches this variable.
        std::env::set_var(CONNECT_DEADLINE_ENV, "1500");
        let o = ConnectOptions::default().from_env().unwrap();
        assert_eq!(o.deadline_value(), Duration::from_millis(1500));
        std::env::set_var(CONNECT_DEADLINE_ENV, "soon");
        let e = ConnectOptions::default().from_env().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains(CONNECT_DEADLINE_ENV), "{e}");
        std::env::remove_var(CONNECT_DEADLINE_ENV);
        let o = ConnectOptions::default().from_env().unwrap();
        assert_eq!(o.deadline_value(), Duration::from_secs(30));
    }
}
