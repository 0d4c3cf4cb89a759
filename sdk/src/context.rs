//! The handler context: the IDs of the message being handled, available to the handler and,
//! through a task-local, to every producer it sends with (for correlation).

use std::future::Future;
use std::sync::Arc;

use brokerkit_core::{Delivery, Headers};

tokio::task_local! {
    static CURRENT: Context;
}

/// What a handler knows about the message it handles. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Context(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    headers: Headers,
    destination: Arc<str>,
    group: Option<Arc<str>>,
    attempt: u32,
}

impl Context {
    pub(crate) fn new(
        headers: Headers,
        destination: Arc<str>,
        group: Option<Arc<str>>,
        attempt: u32,
    ) -> Self {
        Context(Arc::new(Inner {
            headers,
            destination,
            group,
            attempt,
        }))
    }

    #[cfg(test)]
    pub(crate) fn for_test(headers: Headers) -> Self {
        Context::new(headers, Arc::from("test"), None, 1)
    }

    /// The context of a delivery received from a raw [`crate::Consumer`] (a handler gets it
    /// from its layers). `group` is the group the consumer joined.
    pub fn of(delivery: &Delivery, group: Option<&str>) -> Self {
        Context::new(
            delivery.message().headers.clone(),
            Arc::from(delivery.destination()),
            group.map(Arc::from),
            delivery.attempt(),
        )
    }

    /// Runs `fut` as a handler's work runs: with this context current (messages sent from it
    /// carry its correlation and causation ids) and inside a `brokerkit.handle` span whose
    /// parent is the message's `traceparent`. For raw consumers.
    pub async fn run<F: Future>(self, fut: F) -> F::Output {
        use tracing::Instrument;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let span = tracing::info_span!(
            "brokerkit.handle",
            destination = self.destination(),
            message_id = self.message_id().unwrap_or(""),
            attempt = self.attempt(),
        );
        if !span.is_disabled() {
            let _ = span.set_parent(crate::layers::send::trace_context::extract(self.headers()));
        }
        self.scope(fut).instrument(span).await
    }

    /// The context of the handler running on this task, if any.
    pub fn current() -> Option<Context> {
        CURRENT.try_with(Context::clone).ok()
    }

    /// Runs `fut` with this context as the current one.
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }

    /// The handled message's id.
    pub fn message_id(&self) -> Option<&str> {
        self.0.headers.message_id()
    }
    /// Its correlation id.
    pub fn correlation_id(&self) -> Option<&str> {
        self.0.headers.correlation_id()
    }
    /// Its causation id (the message whose handling sent it).
    pub fn causation_id(&self) -> Option<&str> {
        self.0.headers.causation_id()
    }
    /// Its idempotency key.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.0.headers.idempotency_key()
    }
    /// Its W3C `traceparent`.
    pub fn traceparent(&self) -> Option<&str> {
        self.0.headers.traceparent()
    }
    /// Its W3C `tracestate`.
    pub fn tracestate(&self) -> Option<&str> {
        self.0.headers.tracestate()
    }
    /// Its event type.
    pub fn event_type(&self) -> Option<&str> {
        self.0.headers.event_type()
    }
    /// All its headers.
    pub fn headers(&self) -> &Headers {
        &self.0.headers
    }
    /// Where it was consumed from.
    pub fn destination(&self) -> &str {
        &self.0.destination
    }
    /// The consumer group handling it.
    pub fn group(&self) -> Option<&str> {
        self.0.group.as_deref()
    }
    /// Delivery attempt, 1 on the first.
    pub fn attempt(&self) -> u32 {
        self.0.attempt
    }
}
