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
            destination = ctx.destination(),
            group = ctx.group().unwrap_or("default"),
            message_id = ctx.message_id().unwrap_or(""),
            correlation_id = ctx.correlation_id().unwrap_or(""),
            attempt = ctx.attempt(),
        );
        if span.is_disabled() {
            return self.inner.run(request);
        }
        let _ = span.set_parent(trace_context::extract(&request.message.headers));
        Box::pin(self.inner.run(request).instrument(span))
    }
}
