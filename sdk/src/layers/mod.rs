//! Send-side layers: each stamps or checks an outgoing message, one concern per module.
//!
//! Order, on send: **trace context** (W3C `traceparent`/`tracestate` from the current span) →
//! **correlation** (message-id, correlation-id, causation-id, timestamp) → **idempotency key**
//! (when the producer has a key function) → the broker's capability check → the adapter.
//! Typed events are validated against their schema before any layer runs
//! ([`crate::encode_event`]).
//!
//! On receive, the handler pipeline applies the same concerns in the same order: trace context
//! (parent of the handler's span) → correlation ([`crate::Context`]) → schema validation →
//! idempotency → retry/dead-letter. See [`crate::handler`].

pub mod correlation;
pub mod idempotency_key;
pub mod trace_context;

use brokerkit_core::{Message, Result};

/// Something done to every outgoing message before it reaches the adapter.
pub trait SendLayer: Send + Sync + 'static {
    /// Stamps or checks `message`; an error stops the send.
    fn on_send(&self, message: &mut Message) -> Result<()>;
}

/// The layers every producer gets unless built `without_default_layers`.
pub fn default_send_layers() -> Vec<std::sync::Arc<dyn SendLayer>> {
    vec![
        std::sync::Arc::new(trace_context::TraceContextLayer),
        std::sync::Arc::new(correlation::CorrelationLayer),
    ]
}
