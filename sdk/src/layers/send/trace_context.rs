//! W3C trace context through OpenTelemetry propagation: injected from the current `tracing`
//! span on send, extracted on receive to parent the handler's span.

use brokerkit_core::{Headers, Message, Result};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::Stamp;
use crate::context::Context;

/// Injects `traceparent`/`tracestate`.
pub struct TraceContextLayer;

struct Inject<'a>(&'a mut Headers);

impl Injector for Inject<'_> {
    fn set(&mut self, key: &str, value: String) {
        // Propagator keys are the W3C names, valid header names; a value the propagator
        // produced that our header rules reject is dropped rather than failing the send.
        let _ = self.0.insert(key.to_ascii_lowercase(), value);
    }
}

struct Extract<'a>(&'a Headers);

impl Extractor for Extract<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k).collect()
    }
}

impl Stamp for TraceContextLayer {
    fn stamp(&self, message: &mut Message) -> Result<()> {
        if message.headers.traceparent().is_some() {
            return Ok(());
        }
        let cx = tracing::Span::current().context();
        if cx.span().span_context().is_valid() {
            TraceContextPropagator::new().inject_context(&cx, &mut Inject(&mut message.headers));
            return Ok(());
        }
        // No OpenTelemetry span here: continue the trace of the message being handled.
        if let Some(ctx) = Context::current() {
            if let Some(tp) = ctx.traceparent() {
                message.headers.set_traceparent(tp)?;
                if let Some(ts) = ctx.tracestate() {
                    message.headers.set_tracestate(ts)?;
                }
            }
        }
        Ok(())
    }
}

/// The OpenTelemetry context carried by `headers` (empty when there is none or it is invalid).
pub fn extract(headers: &Headers) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&Extract(headers))
}
