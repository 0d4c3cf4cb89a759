//! `trace`: each delivery runs in a `brokerkit.handle` span whose parent is the trace the
//! message's W3C `traceparent`/`tracestate` headers carry.

use std::sync::Arc;

use brokerkit_core::Result;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{BoxFuture, Call, Disposition, Incoming, ReceiveService};
use crate::layers::send::trace_context;

/// See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl tower::Layer<ReceiveService> for TraceLayer {
    type Service = ReceiveService;

    fn layer(&self, inner: ReceiveService) -> ReceiveService {
        ReceiveService::from_arc(Arc::new(Trace { inner }))
    }
}

struct Trace {
    inner: ReceiveService,
}

impl Call<Incoming, Disposition> for Trace {
    fn call(self: Arc<Self>, request: Incoming) -> BoxFuture<Result<Disposition>> {
        let ctx = &request.context;
        let span = tracing::info_span!(
            "brokerkit.handle",
            otel.kind = "consumer",
            messaging.operation.name = "process",
            messaging.destination.name = ctx.destination(),
            messaging.consumer.group.name = ctx.group().unwrap_or(crate::DEFAULT_GROUP),
            messaging.message.id = ctx.message_id().unwrap_or(""),
            messaging.message.conversation_id = ctx.correlation_id().unwrap_or(""),
            attempt = ctx.attempt(),
            outcome = tracing::field::Empty,
            retry_after_ms = tracing::field::Empty,
            reason = tracing::field::Empty,
        );
        if span.is_disabled() {
            return self.inner.run(request);
        }
        let _ = span.set_parent(trace_context::extract(&request.message.headers));
        let run = self.inner.run(request).instrument(span.clone());
        Box::pin(async move {
            let result = run.await;
            record_outcome(&span, &result);
            result
        })
    }
}

/// Puts what happened to the delivery on its span: `acked`, `duplicate`, `retried` (with the
/// delay), `dead_lettered` (with the reason), `dropped`, or `failed`.
fn record_outcome(span: &tracing::Span, result: &Result<Disposition>) {
    let outcome = match result {
        Ok(Disposition::Ack) => "acked",
        Ok(Disposition::Duplicate) => "duplicate",
        Ok(Disposition::Retry { delay }) => {
            let ms = delay.map_or(0, |d| d.as_millis() as u64);
            span.record("retry_after_ms", ms);
            "retried"
        }
        Ok(Disposition::RetryLater) => "retried",
        Ok(Disposition::DeadLetter(reason)) => {
            span.record("reason", reason.reason.as_str());
            "dead_lettered"
        }
        Ok(Disposition::Drop) => "dropped",
        Err(e) => {
            span.record("reason", tracing::field::display(e));
            "failed"
        }
    };
    span.record("outcome", outcome);
}
