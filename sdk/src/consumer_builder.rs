//! Builds a raw [`Consumer`], or — once a handler setting is given — a [`HandlerBuilder`].
//!
//! Handler settings (retry, idempotency, concurrency, drain timeout, receive layers) exist
//! only on [`HandlerBuilder`], which has no `build()`: a raw consumer cannot be given settings
//! it would ignore. That is checked at compile time:
//!
//! ```compile_fail
//! # async fn demo(broker: brokerkit::Broker) {
//! let consumer = broker.consumer("orders").concurrency(4).build().await; // no `build` here
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use brokerkit_core::{Capabilities, ConsumerOptions, Error, Message, Result};

use crate::broker::{check_destination, Broker};
use crate::consumer::Consumer;
use crate::context::Context;
use crate::event::Event;
use crate::handler::{Decoder, Handler, JsonWithSchema, Raw, Typed};
use crate::idempotency::Idempotency;
use crate::layers::receive::{Disposition, Incoming, ReceiveStack, DEFAULT_LAYERS};
use crate::layers::StackLayer;
use crate::retry::RetryPolicy;
use crate::schema::SchemaValidator;

/// Largest `prefetch` (and `concurrency`): more is a `Config` error when the consumer or
/// handler is built (deliveries held at once are memory, and permits are bounded).
pub const MAX_PREFETCH: usize = 1 << 20;

/// Builds a [`Consumer`] (`build`), or a [`Handler`] that runs a function per message
/// (`handle`, `handle_json`, `handle_raw`).
///
/// A raw consumer gets no receive layers: its deliveries are settled by you. Use
/// [`Context::of`] and [`Context::run`] to give your processing the trace and correlation
/// context a handler gets.
pub struct ConsumerBuilder {
    broker: Broker,
    destination: String,
    options: ConsumerOptions,
}

impl ConsumerBuilder {
    pub(crate) fn new(broker: Broker, destination: &str, options: ConsumerOptions) -> Self {
        ConsumerBuilder {
            broker,
            destination: destination.to_string(),
            options,
        }
    }

    pub(crate) fn stats(&self) -> &Arc<crate::health::Stats> {
        self.broker.stats()
    }

    pub(crate) fn adapter(&self) -> &'static str {
        self.broker.adapter()
    }

    pub(crate) fn destination(&self) -> &str {
        &self.destination
    }

    pub(crate) fn group_name(&self) -> Option<&str> {
        self.options.group.as_deref()
    }

    pub(crate) fn capabilities(&self) -> &Capabilities {
        self.broker.capabilities()
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

    /// Turns this into a [`HandlerBuilder`] (for handler settings given in code elsewhere,
    /// e.g. from a configuration file).
    pub fn handler(self) -> HandlerBuilder {
        self.handler_builder()
    }

    fn handler_builder(self) -> HandlerBuilder {
        HandlerBuilder {
            consumer: self,
            settings: HandlerSettings::default(),
        }
    }

    /// Retry and dead-letter policy of the handler: see [`HandlerBuilder::retry`].
    pub fn retry(self, policy: RetryPolicy) -> HandlerBuilder {
        self.handler_builder().retry(policy)
    }

    /// Idempotent handling: see [`HandlerBuilder::idempotency`].
    pub fn idempotency(self, idempotency: Idempotency) -> HandlerBuilder {
        self.handler_builder().idempotency(idempotency)
    }

    /// Handlers running at once: see [`HandlerBuilder::concurrency`].
    pub fn concurrency(self, n: usize) -> HandlerBuilder {
        self.handler_builder().concurrency(n)
    }

    /// Shutdown drain bound: see [`HandlerBuilder::drain_timeout`].
    pub fn drain_timeout(self, timeout: Duration) -> HandlerBuilder {
        self.handler_builder().drain_timeout(timeout)
    }

    /// Adds a receive layer: see [`HandlerBuilder::layer`].
    pub fn layer(
        self,
        name: impl Into<String>,
        layer: impl StackLayer<Incoming, Disposition>,
    ) -> HandlerBuilder {
        self.handler_builder().layer(name, layer)
    }

    /// Fetches claim-checked payloads: see [`HandlerBuilder::claim_check`].
    #[cfg(feature = "claim-check")]
    pub fn claim_check(self, config: crate::claim_check::ClaimCheck) -> HandlerBuilder {
        self.handler_builder().claim_check(config)
    }

    /// Removes a receive layer: see [`HandlerBuilder::without_layer`].
    pub fn without_layer(self, name: &str) -> HandlerBuilder {
        self.handler_builder().without_layer(name)
    }

    /// Several versions of one event: see [`HandlerBuilder::handle_versions`].
    pub fn handle_versions<E, F, Fut>(self, versions: crate::handler::Versions<E>, f: F) -> Handler
    where
        E: Event,
        F: Fn(Context, E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::HandlerResult> + Send + 'static,
    {
        self.handler_builder().handle_versions(versions, f)
    }

    /// Many event types: see [`HandlerBuilder::handle_events`].
    pub fn handle_events(self, router: crate::handler::Router) -> Handler {
        self.handler_builder().handle_events(router)
    }

    /// Runs `f` for each event of type `E`: see [`HandlerBuilder::handle`].
    pub fn handle<E, F, Fut>(self, f: F) -> Handler
    where
        E: Event,
        F: Fn(Context, E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::HandlerResult> + Send + 'static,
    {
        self.handler_builder().handle(f)
    }

    /// Runs `f` for each JSON payload valid against `schema`: see
    /// [`HandlerBuilder::handle_json`].
    pub fn handle_json<F, Fut>(self, schema: Arc<SchemaValidator>, f: F) -> Handler
    where
        F: Fn(Context, serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::HandlerResult> + Send + 'static,
    {
        self.handler_builder().handle_json(schema, f)
    }

    /// Runs `f` for each message as it is: see [`HandlerBuilder::handle_raw`].
    pub fn handle_raw<F, Fut>(self, f: F) -> Handler
    where
        F: Fn(Context, Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::HandlerResult> + Send + 'static,
    {
        self.handler_builder().handle_raw(f)
    }

    /// Subscribes. Messages sent after this returns reach the group.
    pub async fn build(&self) -> Result<Consumer> {
        let b = &self.broker;
        check_destination(&self.destination)?;
        if let Some(g) = &self.options.group {
            check_destination(g).map_err(|e| Error::config(format!("group: {}", e.message())))?;
        }
        if self.options.prefetch == 0 || self.options.prefetch > MAX_PREFETCH {
            return Err(Error::config(format!(
                "prefetch (raised to the concurrency) must be 1 to {MAX_PREFETCH}, got {}",
                self.options.prefetch
            )));
        }
        let context = |e: Error| e.or_context(b.adapter(), &self.destination, "consumer");
        b.capabilities()
            .check_group(self.options.group.as_deref())
            .map_err(context)?;
        let backend = b
            .backend()
            .consumer(&self.destination, &self.options)
            .await
            .map_err(context)?;
        let lag = crate::lag::LagSource::new(b.backend().clone(), self.options.group.as_deref());
        Ok(
            Consumer::new(backend, b.stats().clone(), b.adapter(), &self.destination)
                .with_lag_source(lag),
        )
    }
}

/// Settings of a handler run, set on the [`HandlerBuilder`].
#[derive(Clone)]
pub(crate) struct HandlerSettings {
    /// `None`: the default policy for the broker (see [`HandlerBuilder::retry`]).
    pub retry: Option<RetryPolicy>,
    pub idempotency: Option<Idempotency>,
    pub concurrency: usize,
    pub drain_timeout: Duration,
    pub stack: ReceiveStack,
    pub instruments: Option<Arc<crate::metrics::Instruments>>,
    /// A layer queues work after the ack ([`crate::layers::receive::after_ack::AfterAck`]).
    pub after_ack: bool,
}

impl Default for HandlerSettings {
    fn default() -> Self {
        HandlerSettings {
            retry: None,
            idempotency: None,
            concurrency: 1,
            drain_timeout: Duration::from_secs(30),
            stack: ReceiveStack::with_defaults(DEFAULT_LAYERS),
            instruments: None,
            after_ack: false,
        }
    }
}

/// Builds a [`Handler`]: a [`ConsumerBuilder`] with handler settings. Every setting here is
/// used by the handler; there is no raw `build()`.
pub struct HandlerBuilder {
    consumer: ConsumerBuilder,
    settings: HandlerSettings,
}

impl HandlerBuilder {
    /// Joins consumer group `group`.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.consumer = self.consumer.group(group);
        self
    }

    /// Most unsettled deliveries held at once (default 64, raised to the concurrency).
    /// Deliveries waiting for a free handler keep their lease: see [`crate::handler`].
    pub fn prefetch(mut self, prefetch: usize) -> Self {
        self.consumer = self.consumer.prefetch(prefetch);
        self
    }

    /// Retry and dead-letter policy (the `retry` layer). Default: 5 attempts, exponential
    /// from 100 ms (immediate redelivery on brokers without delayed redelivery). A policy with
    /// delays on such a broker is refused with `Unsupported` when the handler starts.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.settings.retry = Some(policy);
        self
    }

    /// Handles each idempotency key once (the `idempotency` layer; see
    /// [`crate::idempotency`]).
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.settings.idempotency = Some(idempotency);
        self
    }

    /// Handlers running at once (default 1). Prefetch is raised to at least this.
    pub fn concurrency(mut self, n: usize) -> Self {
        let n = n.max(1);
        self.settings.concurrency = n;
        self.consumer.options.prefetch = self.consumer.options.prefetch.max(n);
        self
    }

    /// How long shutdown waits for running handlers before cancelling them (default 30 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.settings.drain_timeout = timeout;
        self
    }

    /// Adds a tower layer innermost, right around the handler (after decode and
    /// idempotency). See [`crate::layers::receive`] for the order.
    pub fn layer(
        mut self,
        name: impl Into<String>,
        layer: impl StackLayer<Incoming, Disposition>,
    ) -> Self {
        self.settings.stack.push(name, layer);
        self
    }

    /// Adds a tower layer just outside the layer called `before` (e.g. `"trace"` to be
    /// outermost).
    pub fn layer_before(
        mut self,
        before: &str,
        name: impl Into<String>,
        layer: impl StackLayer<Incoming, Disposition>,
    ) -> Self {
        self.settings.stack.insert_before(before, name, layer);
        self
    }

    /// Replaces the layer called `name`, in the same position.
    pub fn replace_layer(
        mut self,
        name: &str,
        layer: impl StackLayer<Incoming, Disposition>,
    ) -> Self {
        self.settings.stack.replace(name, layer);
        self
    }

    /// Removes the layer called `name` (a default such as `"trace"`, or one of yours). An
    /// unknown name fails the handler's start with a `Config` error listing the layers.
    pub fn without_layer(mut self, name: &str) -> Self {
        self.settings.stack.remove(name);
        self
    }

    /// Fetches and verifies claim-checked payloads before `decode` (the `claim_check` layer,
    /// just inside `retry`), so a missing or corrupt object is dead-lettered with the reason.
    /// Deletes objects after ack where [`crate::claim_check::ClaimCheck::deletes_after_ack`]
    /// says so for this broker. See [`crate::claim_check`].
    #[cfg(feature = "claim-check")]
    pub fn claim_check(mut self, config: crate::claim_check::ClaimCheck) -> Self {
        let delete = config.deletes_after_ack(self.consumer.capabilities());
        let layer = crate::layers::receive::claim_check::ClaimCheckLayer::new(config, delete);
        let stack = &mut self.settings.stack;
        if stack.contains("decode") {
            stack.insert_before("decode", "claim_check", layer);
        } else {
            stack.push("claim_check", layer);
        }
        self.settings.after_ack |= delete;
        self
    }

    /// Records the `metrics` layer's measurements (and the runner's settle failures and
    /// lease extensions) on `instruments` (default: the global meter provider's).
    pub fn instruments(mut self, instruments: Arc<crate::metrics::Instruments>) -> Self {
        self.settings.instruments = Some(instruments);
        self
    }

    /// The receive layers, outermost first.
    pub fn layer_names(&self) -> Vec<&str> {
        self.settings.stack.names()
    }

    /// Runs `f` for each event of type `E` (decoded and validated against its schema).
    /// Messages that do not decode or validate never reach `f`: they are dead-lettered with
    /// the reason and the violations.
    ///
    /// `f` returns a [`crate::HandlerResult`]: `Ok(())` acks; `?` on any error is a handler
    /// failure (retried by the policy, then dead-lettered); mark one with
    /// [`crate::HandlerError::permanent`] (or `.permanent()` from [`crate::ResultExt`]) to
    /// dead-letter it now.
    pub fn handle<E, F, Fut>(self, f: F) -> Handler
    where
        E: Event,
        F: Fn(Context, E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::HandlerResult> + Send + 'static,
    {
        self.into_handler(Typed::<E>::default(), f)
    }

    /// Runs `f` for each event `versions` accepts: `E` itself and the older versions it has
    /// upcasters for, each validated against its own schema, then upcast to `E`. Other
    /// versions follow its [`crate::handler::Unaccepted`] policy (default: dead-letter).
    pub fn handle_versions<E, F, Fut>(self, versions: crate::handler::Versions<E>, f: F) -> Handler
    where
        E: Event,
        F: Fn(Context, E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::HandlerResult> + Send + 'static,
    {
        self.into_handler(versions, f)
    }

    /// Dispatches each message by its `event-type` (and version) to the typed handler the
    /// [`crate::handler::Router`] has for it; unknown types follow its policy.
    pub fn handle_events(self, router: crate::handler::Router) -> Handler {
        self.into_handler(router, |ctx, dispatch: crate::handler::Dispatch| {
            dispatch.run(ctx)
        })
    }

    /// Runs `f` for each JSON payload valid against `schema` (a contract with no Rust type).
    pub fn handle_json<F, Fut>(self, schema: Arc<SchemaValidator>, f: F) -> Handler
    where
        F: Fn(Context, serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::HandlerResult> + Send + 'static,
    {
        self.into_handler(JsonWithSchema(schema), f)
    }

    /// Runs `f` for each message as it is.
    pub fn handle_raw<F, Fut>(self, f: F) -> Handler
    where
        F: Fn(Context, Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::HandlerResult> + Send + 'static,
    {
        self.into_handler(Raw, f)
    }

    fn into_handler<D, F, Fut>(self, decoder: D, f: F) -> Handler
    where
        D: Decoder,
        F: Fn(Context, D::Output) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::HandlerResult> + Send + 'static,
    {
        Handler::new(self.consumer, self.settings, decoder, f)
    }
}
