//! Builds a [`Producer`] and its send layers.

use brokerkit_core::{Error, Message, Result};

use crate::broker::{check_destination, Broker};
use crate::layers::send::{
    capability::adapter_service, correlation::CorrelationLayer,
    idempotency_key::IdempotencyKeyLayer, metrics::MetricsLayer, schema::SchemaLayer,
    trace_context::SendSpanLayer, Outgoing, SendService, SendStack, Stamp, StampLayer,
    DEFAULT_LAYERS,
};
use crate::layers::{SharedService, StackLayer};
use crate::producer::Producer;

/// Builds a [`Producer`]. The default send layers ([`crate::layers::send`]) are on; change
/// them with the methods below.
pub struct ProducerBuilder {
    broker: Broker,
    destination: String,
    stack: SendStack,
    idempotency_key: Option<IdempotencyKeyLayer>,
    instruments: Option<std::sync::Arc<crate::metrics::Instruments>>,
}

impl ProducerBuilder {
    pub(crate) fn new(broker: Broker, destination: &str) -> Self {
        ProducerBuilder {
            broker,
            destination: destination.to_string(),
            stack: SendStack::with_defaults(DEFAULT_LAYERS),
            idempotency_key: None,
            instruments: None,
        }
    }

    /// Removes every default layer: messages go out as given (the capability check stays).
    pub fn without_default_layers(mut self) -> Self {
        for name in DEFAULT_LAYERS {
            if self.stack.contains(name) {
                self.stack.remove(name);
            }
        }
        self
    }

    /// Removes the layer called `name` (a default such as `"correlation"`, or one of yours).
    /// An unknown name fails `build` with a `Config` error listing the layers.
    pub fn without_layer(mut self, name: &str) -> Self {
        self.stack.remove(name);
        self
    }

    /// Adds a tower layer innermost (just before the capability check and the adapter).
    pub fn layer(mut self, name: impl Into<String>, layer: impl StackLayer<Outgoing, ()>) -> Self {
        self.stack.push(name, layer);
        self
    }

    /// Adds a tower layer just outside the layer called `before`.
    pub fn layer_before(
        mut self,
        before: &str,
        name: impl Into<String>,
        layer: impl StackLayer<Outgoing, ()>,
    ) -> Self {
        self.stack.insert_before(before, name, layer);
        self
    }

    /// Replaces the layer called `name` with `layer`, in the same position.
    pub fn replace_layer(mut self, name: &str, layer: impl StackLayer<Outgoing, ()>) -> Self {
        self.stack.replace(name, layer);
        self
    }

    /// Offloads payloads the broker cannot carry (or above the set-up's threshold) to an
    /// object store, sending a reference instead: the `claim_check` layer, innermost of the
    /// named layers (layers added later go outside it). See [`crate::claim_check`].
    #[cfg(feature = "claim-check")]
    pub fn claim_check(mut self, config: crate::claim_check::ClaimCheck) -> Self {
        let layer = crate::layers::send::claim_check::ClaimCheckLayer::new(
            config,
            self.broker.shared_capabilities(),
        );
        self.stack.push_pinned("claim_check", layer);
        self
    }

    /// Adds a synchronous [`Stamp`] innermost.
    pub fn stamp(self, name: impl Into<String>, stamp: impl Stamp) -> Self {
        self.layer(name, StampLayer::new(stamp))
    }

    /// The send layers, outermost first.
    pub fn layer_names(&self) -> Vec<&str> {
        self.stack.names()
    }

    /// Sets each message's idempotency key with `key` (unless it has one); adapters map it to
    /// the broker's native dedup where there is one. This is the `idempotency_key` layer.
    pub fn idempotency_key(
        mut self,
        key: impl Fn(&Message) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.idempotency_key = Some(IdempotencyKeyLayer::new(key));
        self
    }

    /// Refuses, before any I/O, a typed event ([`Producer::send_event`]) whose JSON Schema
    /// breaks `mode` against the schemas already `published` for this destination (e.g.
    /// `PublishedSchemas::from_dir("schemas")?`); the `Validation` error names each break.
    /// This adds the `compatibility` layer innermost; see
    /// [`crate::layers::send::compatibility`].
    pub fn compatibility(
        self,
        mode: crate::layers::send::compatibility::Compatibility,
        published: crate::schema::published::PublishedSchemas,
    ) -> Self {
        self.layer(
            "compatibility",
            crate::layers::send::compatibility::CompatibilityLayer::new(mode, published),
        )
    }

    /// Sends CloudEvents 1.0 binary mode: adds the `cloudevents` layer (innermost), which
    /// writes `specversion`, `id`, `source`, `type`, `time` (and `dataschema`) under the
    /// broker's protocol binding next to brokerkit's headers. Off by default; receiving
    /// CloudEvents is always on. See [`crate::cloudevents`].
    pub fn cloudevents(self, settings: crate::cloudevents::CloudEvents) -> Self {
        let layer = settings.layer(&self.broker);
        self.layer("cloudevents", layer)
    }

    /// Records the `metrics` layer's measurements on `instruments` (default: the global meter
    /// provider's, see [`crate::metrics`]).
    pub fn instruments(mut self, instruments: std::sync::Arc<crate::metrics::Instruments>) -> Self {
        self.instruments = Some(instruments);
        self
    }

    /// Creates the producer (and the destination, where the adapter does that).
    pub async fn build(self) -> Result<Producer> {
        let b = &self.broker;
        check_destination(&self.destination)?;
        let context = |e: Error| e.or_context(b.adapter(), &self.destination, "producer");
        let backend = b
            .backend()
            .producer(&self.destination)
            .await
            .map_err(context)?;
        let adapter = adapter_service(backend.into(), b.shared_capabilities());
        let key = self.idempotency_key.clone();
        let metrics = MetricsLayer::new(
            self.instruments
                .clone()
                .unwrap_or_else(crate::metrics::Instruments::global),
            b.adapter(),
            &self.destination,
        );
        let service = self
            .stack
            .build(adapter, |name, inner| {
                builtin(name, inner, key.as_ref(), &metrics)
            })
            .map_err(context)?;
        Ok(Producer::new(
            service,
            b.stats().clone(),
            b.adapter(),
            &self.destination,
        ))
    }
}

fn builtin(
    name: &str,
    inner: SendService,
    key: Option<&IdempotencyKeyLayer>,
    metrics: &MetricsLayer,
) -> Option<SendService> {
    use tower::Layer;
    let wrapped: SharedService<_, _> = match name {
        "trace_context" => SendSpanLayer.layer(inner),
        "correlation" => StampLayer::new(CorrelationLayer).layer(inner),
        "schema" => SchemaLayer.layer(inner),
        "idempotency_key" => StampLayer::new(key?.clone()).layer(inner),
        "metrics" => metrics.layer(inner),
        _ => return None,
    };
    Some(wrapped)
}
