//! W3C trace context through OpenTelemetry propagation. On send, each send runs in a
//! `brokerkit.send` span (producer kind, messaging attributes, child of the current span) and
//! the message carries that span's context, so the consumer's `brokerkit.handle` span is its
//! child. With no subscriber enabled for the span, the current span's context (or the handled
//! message's, inside a handler) is carried on. On receive, [`extract`] parents the handler's
//! span.

use brokerkit_core::{Headers, Message, Result};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::Stamp;
use crate::context::Context;

/// Injects `traceparent`/`tracestate` (a [`super::Stamp`]; [`SendSpanLayer`] is the default
/// layer, which adds the send span around it).
pub struct TraceContextLayer;

/// The default `trace_context` send layer: a `brokerkit.send` span around the send, whose
/// context the message carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendSpanLayer;

impl tower::Layer<super::SendService> for SendSpanLayer {
    type Service = super::SendService;

    fn layer(&self, inner: super::SendService) -> super::SendService {
        crate::layers::SharedService::from_arc(std::sync::Arc::new(SendSpan { inner }))
    }
}

struct SendSpan {
    inner: super::SendService,
}

impl crate::layers::Call<super::Outgoing, ()> for SendSpan {
    fn call(
        self: std::sync::Arc<Self>,
        mut request: super::Outgoing,
    ) -> super::BoxFuture<Result<()>> {
        use tracing::Instrument;
        let span = tracing::info_span!(
            "brokerkit.send",
            otel.kind = "producer",
            messaging.operation.name = "send",
            messaging.destination.name = request.destination(),
            messaging.batch.message_count = request.messages().len(),
            error = tracing::field::Empty,
        );
        let stamped = span.in_scope(|| {
            request
                .messages_mut()
                .iter_mut()
                .try_for_each(|m| TraceContextLayer.stamp(m))
        });
        if let Err(e) = stamped {
            return Box::pin(std::future::ready(Err(e)));
        }
        if span.is_disabled() {
            return self.inner.run(request);
        }
        // Inner layers may start the send in `run` itself: inside the span too.
        let run = span
            .in_scope(|| self.inner.run(request))
            .instrument(span.clone());
        Box::pin(async move {
            let result = run.await;
            if let Err(e) = &result {
                span.record("error", tracing::field::display(e));
            }
            result
        })
    }
}

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
        // No current span (no subscriber, or outside every span): no OpenTelemetry context
        // to look up.
        let span = tracing::Span::current();
        if !span.is_none() {
            let cx = span.context();
            if cx.span().span_context().is_valid() {
                TraceContextPropagator::new()
                    .inject_context(&cx, &mut Inject(&mut message.headers));
                return Ok(());
            }
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
