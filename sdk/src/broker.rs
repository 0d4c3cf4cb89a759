//! The broker handle: chosen by URL, makes producers and consumers.

use std::sync::Arc;

use std::future::Future;
use std::time::Duration;

use brokerkit_core::{Backend, Capabilities, ConsumerOptions, Error, Message, Result};

use crate::consumer::Consumer;
use crate::context::Context;
use crate::event::Event;
use crate::handler::{Handler, HandlerSettings, JsonWithSchema, Raw, Typed};
use crate::idempotency::Idempotency;
use crate::layers::{default_send_layers, idempotency_key::IdempotencyKeyLayer, SendLayer};
use crate::producer::Producer;
use crate::registry::Registry;
use crate::retry::RetryPolicy;
use crate::schema::SchemaValidator;

/// Environment variable read by [`Broker::from_env`].
pub const URL_ENV: &str = "BROKERKIT_URL";

/// A connected broker. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Broker {
    backend: Arc<dyn Backend>,
    capabilities: Arc<Capabilities>,
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
    pub async fn connect(url: &str) -> Result<Broker> {
        Broker::connect_with(&Registry::default(), url).await
    }

    /// Connects through a custom registry.
    pub async fn connect_with(registry: &Registry, url: &str) -> Result<Broker> {
        Ok(Broker::from_backend(registry.connect(url).await?))
    }

    /// Connects to `$BROKERKIT_URL`, or `memory://` when it is unset.
    pub async fn from_env() -> Result<Broker> {
        let url = match std::env::var(URL_ENV) {
            Ok(u) if !u.trim().is_empty() => u,
            Ok(_) | Err(std::env::VarError::NotPresent) => "memory://".to_string(),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(Error::config(format!("{URL_ENV} is not valid UTF-8")))
            }
        };
        Broker::connect(&url).await
    }

    /// Wraps an adapter backend directly.
    pub fn from_backend(backend: Arc<dyn Backend>) -> Broker {
        let capabilities = Arc::new(backend.capabilities().clone());
        Broker {
            backend,
            capabilities,
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
        ProducerBuilder {
            broker: self.clone(),
            destination: destination.to_string(),
            layers: default_send_layers(),
        }
    }

    /// Starts building a consumer of `destination`.
    pub fn consumer(&self, destination: &str) -> ConsumerBuilder {
        ConsumerBuilder {
            broker: self.clone(),
            destination: destination.to_string(),
            options: ConsumerOptions::default(),
            handler: HandlerSettings::default(),
        }
    }

    /// Closes the connection; later operations fail with `Closed`.
    pub async fn close(&self) -> Result<()> {
        self.backend.close().await
    }
}

fn check_destination(destination: &str) -> Result<()> {
    if destination.is_empty() || destination.len() > 200 {
        return Err(Error::config(format!(
            "destination name {destination:?} must be 1 to 200 bytes"
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

/// Builds a [`Producer`]. Correlation and trace-context layers are on by default.
pub struct ProducerBuilder {
    broker: Broker,
    destination: String,
    layers: Vec<Arc<dyn SendLayer>>,
}

impl ProducerBuilder {
    /// Removes the default layers (trace context, correlation): messages go out as given.
    pub fn without_default_layers(mut self) -> Self {
        self.layers.clear();
        self
    }

    /// Adds a layer after the ones already present.
    pub fn layer(mut self, layer: impl SendLayer) -> Self {
        self.layers.push(Arc::new(layer));
        self
    }

    /// Sets each message's idempotency key with `key` (unless it has one); adapters map it to
    /// the broker's native dedup where there is one.
    pub fn idempotency_key(
        self,
        key: impl Fn(&Message) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.layer(IdempotencyKeyLayer::new(key))
    }

    /// Creates the producer (and the destination, where the adapter does that).
    pub async fn build(self) -> Result<Producer> {
        let b = &self.broker;
        check_destination(&self.destination)?;
        let backend = b
            .backend
            .producer(&self.destination)
            .await
            .map_err(|e| e.or_context(b.adapter(), &self.destination, "producer"))?;
        Ok(Producer::new(
            backend.into(),
            b.capabilities.clone(),
            b.adapter(),
            &self.destination,
            self.layers.into(),
        ))
    }
}

/// Builds a [`Consumer`], or a [`Handler`] that runs a function per message.
pub struct ConsumerBuilder {
    broker: Broker,
    destination: String,
    options: ConsumerOptions,
    handler: HandlerSettings,
}

impl ConsumerBuilder {
    pub(crate) fn group_name(&self) -> Option<&str> {
        self.options.group.as_deref()
    }

    pub(crate) fn capabilities(&self) -> &Capabilities {
        self.broker.capabilities()
    }

    /// Retry and dead-letter policy of handlers. Default: 5 attempts, exponential from 100 ms
    /// (immediate redelivery on brokers without delayed redelivery). A policy with delays on
    /// such a broker is refused with `Unsupported` when the handler starts.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.handler.retry = Some(policy);
        self
    }

    /// Handles each idempotency key once (see [`crate::idempotency`]).
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.handler.idempotency = Some(idempotency);
        self
    }

    /// Handlers running at once (default 1). Prefetch is raised to at least this.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.handler.concurrency = n.max(1);
        self.options.prefetch = self.options.prefetch.max(n);
        self
    }

    /// How long shutdown waits for running handlers before cancelling them (default 30 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.handler.drain_timeout = timeout;
        self
    }

    /// Runs `f` for each event of type `E` (decoded and validated against its schema).
    /// Messages that do not decode or validate never reach `f`: they are dead-lettered with
    /// the reason and the violations.
    pub fn handle<E, F, Fut>(self, f: F) -> Handler<Typed<E>, F>
    where
        E: Event,
        F: Fn(Context, E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let settings = self.handler.clone();
        Handler::new(self, settings, Typed::default(), f)
    }

    /// Runs `f` for each JSON payload valid against `schema` (a contract with no Rust type).
    pub fn handle_json<F, Fut>(
        self,
        schema: Arc<SchemaValidator>,
        f: F,
    ) -> Handler<JsonWithSchema, F>
    where
        F: Fn(Context, serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let settings = self.handler.clone();
        Handler::new(self, settings, JsonWithSchema(schema), f)
    }

    /// Runs `f` for each message as it is.
    pub fn handle_raw<F, Fut>(self, f: F) -> Handler<Raw, F>
    where
        F: Fn(Context, Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let settings = self.handler.clone();
        Handler::new(self, settings, Raw, f)
    }

    /// Joins consumer group `group`: every group gets each message; members of a group
    /// share them.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.options.group = Some(group.into());
        self
    }

    /// Most unsettled deliveries held at once (default 64).
    pub fn prefetch(mut self, prefetch: usize) -> Self {
        self.options.prefetch = prefetch;
        self
    }

    /// Subscribes. Messages sent after this returns reach the group.
    pub async fn build(&self) -> Result<Consumer> {
        let b = &self.broker;
        check_destination(&self.destination)?;
        if let Some(g) = &self.options.group {
            check_destination(g).map_err(|e| Error::config(format!("group: {}", e.message())))?;
        }
        if self.options.prefetch == 0 {
            return Err(Error::config("prefetch must be at least 1"));
        }
        b.capabilities
            .check_group(self.options.group.as_deref())
            .map_err(|e| e.or_context(b.adapter(), &self.destination, "consumer"))?;
        let backend = b
            .backend
            .consumer(&self.destination, &self.options)
            .await
            .map_err(|e| e.or_context(b.adapter(), &self.destination, "consumer"))?;
        Ok(Consumer::new(backend, b.adapter(), &self.destination))
    }
}
