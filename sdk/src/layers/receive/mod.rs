//! Receive-side layers: the stack every delivery of a handler goes through.
//!
//! Each concern is a [`tower::Layer`] over [`ReceiveService`], in its own module. The default
//! order, outermost first (see [`DEFAULT_LAYERS`]):
//!
//! | name          | module             | job                                                        |
//! |---------------|--------------------|------------------------------------------------------------|
//! | `trace`       | [`trace`]          | `brokerkit.handle` span, parent from `traceparent`          |
//! | `correlation` | [`correlation`]    | [`crate::Context::current`] for sends made while handling  |
//! | `metrics`     | [`metrics`]        | consumed, processed, retried, dead-lettered (OpenTelemetry) |
//! | `retry`       | [`retry`]          | a failure becomes retry-after-backoff, dead-letter or drop |
//! | `claim_check` | `claim_check`      | fetch and verify an offloaded payload (when configured)    |
//! | `decode`      | [`decode`]         | decode and schema-validate the payload for the handler     |
//! | `idempotency` | [`idempotency`]    | run each key once; renew the claim while the handler runs  |
//! | *your layers* |                    | [`crate::HandlerBuilder::layer`] adds them here            |
//! | handler       | [`handler_fn`]     | your function                                              |
//!
//! `retry` sits outside `decode` and `idempotency` so that a payload that does not decode, a
//! claim-check object that is missing, or an idempotency store that is down go through the same
//! policy as a failing handler.
//!
//! Services answer a [`Disposition`]: what should happen to the delivery. They never settle it
//! themselves: the handler runner owns the delivery (it extends its lease while the stack runs
//! and settles it once, by the disposition). An error that reaches the runner because the
//! `retry` layer was removed is retried without delay.
//!
//! Any tower middleware whose service is `Clone + Send + Sync` fits, e.g.
//! `tower::timeout::TimeoutLayer` (its error must be turned into [`brokerkit_core::Error`] with
//! [`tower::util::MapErrLayer`]) or your own layer built with [`from_fn`].

pub mod after_ack;
#[cfg(feature = "claim-check")]
pub mod claim_check;
pub mod correlation;
pub mod decode;
pub mod handler_fn;
pub mod idempotency;
pub mod metrics;
pub mod retry;
pub mod trace;

use std::time::Duration;

use brokerkit_core::{DeadLetterReason, Message};

use crate::context::Context;
pub(crate) use crate::layers::Call;
pub use crate::layers::{from_fn, BoxFuture, Extensions, FromFnLayer};

/// The receive-side service every layer wraps: cheap to clone (one `Arc`) and a
/// [`tower::Service`], so any tower layer can wrap it.
pub type ReceiveService = crate::layers::SharedService<Incoming, Disposition>;

/// The receive layers of a handler, by name, outermost first.
pub type ReceiveStack = crate::layers::LayerStack<Incoming, Disposition>;

/// The default receive layers, outermost first.
pub const DEFAULT_LAYERS: &[&str] = &[
    "trace",
    "correlation",
    "metrics",
    "retry",
    "decode",
    "idempotency",
];

/// One delivery as the layers see it: the message, its [`Context`] and typed extensions that
/// layers pass inward (the decoded event, for example). The delivery itself stays with the
/// handler runner.
pub struct Incoming {
    /// The message (payload and headers as received; a layer may replace the payload, as
    /// claim-check does).
    pub message: Message,
    /// Ids, destination, group and attempt.
    pub context: Context,
    extensions: Extensions,
}

impl Incoming {
    /// An incoming message with its context (tests and custom runners).
    pub fn new(message: Message, context: Context) -> Self {
        Incoming {
            message,
            context,
            extensions: Extensions::default(),
        }
    }

    /// Delivery attempt, 1 on the first.
    pub fn attempt(&self) -> u32 {
        self.context.attempt()
    }

    /// Typed values layers attach for inner layers.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Mutable access to the extensions.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("message", &self.message)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// What should happen to a delivery, as decided by the stack. The handler runner settles
/// the delivery accordingly (and adapts to the broker: no delay where it has none, nack
/// where it has no dead-letter destination).
#[derive(Debug)]
#[non_exhaustive]
pub enum Disposition {
    /// Handled: ack.
    Ack,
    /// Handled before (idempotency): ack without running the handler.
    Duplicate,
    /// Deliver again, no earlier than `delay`.
    Retry {
        /// Minimum wait; `None` for as soon as possible.
        delay: Option<Duration>,
    },
    /// Deliver again after the retry policy's backoff, without counting as a failure of the
    /// message (an idempotency store outage, say). The `retry` layer turns this into
    /// [`Disposition::Retry`].
    RetryLater,
    /// Move to the dead-letter destination.
    DeadLetter(DeadLetterReason),
    /// Ack without handling (by policy); logged.
    Drop,
}
