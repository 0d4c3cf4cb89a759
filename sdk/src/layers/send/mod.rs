//! Send-side layers: the stack every `send`, `send_batch` and `send_event` goes through.
//!
//! Each concern is a [`tower::Layer`] over [`SendService`], in its own module. A layer sees
//! the message(s), the destination and the result, and can be async. Default order,
//! outermost first ([`DEFAULT_LAYERS`]):
//!
//! | name              | module                | job                                               |
//! |-------------------|-----------------------|---------------------------------------------------|
//! | `trace_context`   | [`trace_context`]     | W3C `traceparent`/`tracestate` from the current span |
//! | `correlation`     | [`correlation`]       | message-id, correlation-id, causation-id, timestamp |
//! | `schema`          | [`schema`]            | typed events validated against their JSON Schema   |
//! | `idempotency_key` | [`idempotency_key`]   | the key from your function (when configured)        |
//! | `metrics`         | [`metrics`]           | sent messages and send duration (OpenTelemetry)     |
//! | *your layers*     |                       | [`crate::ProducerBuilder::layer`] adds them here     |
//! | `claim_check`     | `claim_check`         | large payloads to an object store (when configured, feature `claim-check`) |
//! | (always)          | [`capability`]        | the broker's capability check, then the adapter     |
//!
//! The capability check is always innermost: whatever the layers did to a message, the
//! adapter only ever sees messages the broker can carry.

pub mod capability;
#[cfg(feature = "claim-check")]
pub mod claim_check;
pub mod compatibility;
pub mod correlation;
pub mod idempotency_key;
pub mod metrics;
pub mod schema;
pub mod trace_context;

use std::sync::Arc;

use brokerkit_core::{Message, Result};

pub use crate::layers::{BoxFuture, Extensions};
use crate::layers::{Call, SharedService};

/// The send-side service every layer wraps (cheap to clone; a [`tower::Service`]).
pub type SendService = SharedService<Outgoing, ()>;

/// The send layers of a producer, by name, outermost first.
pub type SendStack = crate::layers::LayerStack<Outgoing, ()>;

/// The default send layers, outermost first.
pub const DEFAULT_LAYERS: &[&str] = &[
    "trace_context",
    "correlation",
    "schema",
    "idempotency_key",
    "metrics",
];

/// What a send layer sees: the destination, one message or a batch, and typed extensions
/// (e.g. the schema of a typed event, attached by `send_event`).
pub struct Outgoing {
    destination: Arc<str>,
    messages: Batch,
    extensions: Extensions,
}

enum Batch {
    One(Message),
    Many(Vec<Message>),
}

impl Outgoing {
    /// One message for `destination`.
    pub fn one(destination: Arc<str>, message: Message) -> Self {
        Outgoing {
            destination,
            messages: Batch::One(message),
            extensions: Extensions::default(),
        }
    }

    /// A batch for `destination`.
    pub fn batch(destination: Arc<str>, messages: Vec<Message>) -> Self {
        Outgoing {
            destination,
            messages: Batch::Many(messages),
            extensions: Extensions::default(),
        }
    }

    /// Where the messages go.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Whether this is a `send_batch`.
    pub fn is_batch(&self) -> bool {
        matches!(self.messages, Batch::Many(_))
    }

    /// The messages (one for `send`).
    pub fn messages(&self) -> &[Message] {
        match &self.messages {
            Batch::One(m) => std::slice::from_ref(m),
            Batch::Many(v) => v,
        }
    }

    /// The messages, to change them.
    pub fn messages_mut(&mut self) -> &mut [Message] {
        match &mut self.messages {
            Batch::One(m) => std::slice::from_mut(m),
            Batch::Many(v) => v,
        }
    }

    /// Typed values for inner layers.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Mutable access to the extensions.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    pub(crate) fn into_messages(self) -> Result<Message, Vec<Message>> {
        match self.messages {
            Batch::One(m) => Ok(m),
            Batch::Many(v) => Err(v),
        }
    }
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("destination", &self.destination)
            .field("messages", &self.messages())
            .finish_non_exhaustive()
    }
}

/// A synchronous change or check of every outgoing message: the simplest send layer. Wrap
/// one with [`StampLayer`] (or pass it to [`crate::ProducerBuilder::stamp`]).
pub trait Stamp: Send + Sync + 'static {
    /// Stamps or checks `message`; an error stops the send.
    fn stamp(&self, message: &mut Message) -> Result<()>;
}

/// A [`Stamp`] as a send layer. It adds no allocation to a send.
pub struct StampLayer<S>(Arc<S>);

impl<S> Clone for StampLayer<S> {
    fn clone(&self) -> Self {
        StampLayer(self.0.clone())
    }
}

impl<S: Stamp> StampLayer<S> {
    /// Wraps `stamp`.
    pub fn new(stamp: S) -> Self {
        StampLayer(Arc::new(stamp))
    }
}

impl<S: Stamp> tower::Layer<SendService> for StampLayer<S> {
    type Service = SendService;

    fn layer(&self, inner: SendService) -> SendService {
        SharedService::from_arc(Arc::new(Stamped {
            stamp: self.0.clone(),
            inner,
        }))
    }
}

struct Stamped<S> {
    stamp: Arc<S>,
    inner: SendService,
}

impl<S: Stamp> Call<Outgoing, ()> for Stamped<S> {
    fn call(self: Arc<Self>, mut request: Outgoing) -> BoxFuture<Result<()>> {
        for m in request.messages_mut() {
            if let Err(e) = self.stamp.stamp(m) {
                return Box::pin(std::future::ready(Err(e)));
            }
        }
        self.inner.run(request)
    }
}
