//! The broker handle: chosen by URL, makes producers and consumers.

use std::sync::Arc;

use brokerkit_core::{Backend, BrokerSettings, Capabilities, ConsumerOptions, Error, Result};

use crate::connect::ConnectOptions;
use crate::consumer_builder::ConsumerBuilder;
use crate::producer_builder::ProducerBuilder;
use crate::registry::Registry;

/// Environment variable read by [`Broker::from_env`].
pub const URL_ENV: &str = "BROKERKIT_URL";

/// A connected broker. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Broker {
    backend: Arc<dyn Backend>,
    capabilities: Arc<Capabilities>,
    stats: Arc<crate::health::Stats>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("adapter", &self.backend.name())
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Connects with the adapter registered for the URL's scheme, e.g. `memory://`,
    /// `amqp://guest:guest@127.0.0.1:5672/%2f`. Unknown schemes and config keys are
    /// [`brokerkit_core::ErrorKind::Config`] errors that list what is accepted.
    ///
    /// A broker that cannot be reached yet (a retryable error) is retried with backoff for up
    /// to **30 s**, each attempt logged at `warn`; see [`ConnectOptions`] to change or turn
    /// that off. Errors that retrying cannot fix (bad URL, credentials) return at once.
    pub async fn connect(url: &str) -> Result<Broker> {
        ConnectOptions::default().connect(url).await
    }

    /// Connects with typed settings instead of a URL, retrying as [`Broker::connect`] does.
    ///
    /// ```
    /// # async fn demo() -> brokerkit::Result<()> {
    /// use brokerkit::{memory::MemoryConfig, Broker};
    /// let broker = Broker::connect_settings(&MemoryConfig::default().with_capacity(100)).await?;
    /// # broker.close().await?; Ok(()) }
    /// ```
    pub async fn connect_settings(settings: &dyn BrokerSettings) -> Result<Broker> {
        ConnectOptions::default().connect_settings(settings).await
    }

    /// Connects through a custom registry (retrying as [`Broker::connect`] does).
    pub async fn connect_with(registry: &Registry, url: &str) -> Result<Broker> {
        ConnectOptions::default()
            .registry(registry.clone())
            .connect(url)
            .await
    }

    /// Connects to `$BROKERKIT_URL`, or `memory://` when it is unset, retrying as
    /// [`Broker::connect`] does for up to `$BROKERKIT_CONNECT_DEADLINE_MS` (default 30000).
    pub async fn from_env() -> Result<Broker> {
        let url = match std::env::var(URL_ENV) {
            Ok(u) if !u.trim().is_empty() => u,
            Ok(_) | Err(std::env::VarError::NotPresent) => "memory://".to_string(),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(Error::config(format!("{URL_ENV} is not valid UTF-8")))
            }
        };
        ConnectOptions::default().from_env()?.connect(&url).await
    }

    /// Wraps an adapter backend directly.
    pub fn from_backend(backend: Arc<dyn Backend>) -> Broker {
        let capabilities = Arc::new(backend.capabilities().clone());
        Broker {
            backend,
            capabilities,
            stats: Arc::default(),
        }
    }

    pub(crate) fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The adapter's name, e.g. `memory`.
    pub fn adapter(&self) -> &'static str {
        self.backend.name()
    }

    /// What this broker can do.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Starts building a producer for `destination`.
    pub fn producer(&self, destination: &str) -> ProducerBuilder {
        ProducerBuilder::new(self.clone(), destination)
    }

    /// Starts building a consumer of `destination`.
    pub fn consumer(&self, destination: &str) -> ConsumerBuilder {
        ConsumerBuilder::new(self.clone(), destination, ConsumerOptions::default())
    }

    pub(crate) fn shared_capabilities(&self) -> Arc<Capabilities> {
        self.capabilities.clone()
    }

    /// Closes the connection; later operations fail with `Closed`.
    pub async fn close(&self) -> Result<()> {
        self.stats.closed();
        self.backend.close().await
    }

    /// Health without I/O (see [`crate::health`]): last successful round trip, consumers
    /// and handlers running, deliveries in flight and stuck handlers.
    pub fn health(&self) -> crate::health::Health {
        self.stats.snapshot(self.adapter())
    }

    pub(crate) fn stats(&self) -> &Arc<crate::health::Stats> {
        &self.stats
    }
}

pub(crate) fn check_destination(destination: &str) -> Result<()> {
    if destination.is_empty() || destination.len() > 200 {
        return Err(Error::config(format!(
            "destination name {destination:?} must be 1 to 200 bytes"
        )));
    }
    if destination.bytes().all(|b| b == b'.') {
        // `.` and `..` are path segments on brokers that map names to files or URLs.
        return Err(Error::config(format!(
            "destination name {destination:?} is only dots; use letters, digits, '-', '_' and '.'"
        )));
    }
    if let Some(c) = destination
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(Error::config(format!(
            "destination name {destination:?} has {c:?}; use letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_destination;

    #[test]
    fn dot_only_names_are_refused() {
        for bad in [".", "..", "...", "", "a/b"] {
            let e = check_destination(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config, "{bad:?}");
        }
        for good in ["orders", "orders.dlq", ".hidden", "a..b"] {
            check_destination(good).unwrap();
        }
    }
}
