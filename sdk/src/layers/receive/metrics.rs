//! `metrics`: per delivery, `messaging.client.consumed.messages`, `messaging.process.duration`
//! (with `error.type` = `retry`, `dead_letter`, `drop` or the error kind unless acked),
//! `brokerkit.retries`, `brokerkit.dead_letters` (by error kind), `brokerkit.duplicates` and
//! `brokerkit.handlers.in_flight`. It sits outside `retry`, so it sees what finally happens to
//! each delivery. See [`crate::metrics`].

use std::sync::Arc;

use brokerkit_core::Result;
use opentelemetry::KeyValue;

use super::{BoxFuture, Call, Disposition, Incoming, ReceiveService};
use crate::metrics::{with_error, Instruments};

/// See the [module docs](self).
#[derive(Clone)]
pub struct MetricsLayer {
    instruments: Arc<Instruments>,
    attributes: Arc<[KeyValue]>,
}

impl MetricsLayer {
    /// Records on `instruments` with the attributes of one handler (`messaging.system`,
    /// `messaging.destination.name`, `messaging.consumer.group.name`).
    pub fn new(
        instruments: Arc<Instruments>,
        system: &'static str,
        destination: &str,
        group: Option<&str>,
    ) -> Self {
        MetricsLayer {
            instruments,
            attributes: crate::metrics::attributes(system, destination, group),
        }
    }
}

impl tower::Layer<ReceiveService> for MetricsLayer {
    type Service = ReceiveService;

    fn layer(&self, inner: ReceiveService) -> ReceiveService {
        ReceiveService::from_arc(Arc::new(Measured {
            inner,
            layer: self.clone(),
        }))
    }
}

struct Measured {
    inner: ReceiveService,
    layer: MetricsLayer,
}

/// Takes a delivery off `in_flight` however its processing ends (also when dropped).
struct InFlight<'a>(&'a MetricsLayer);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.instruments.in_flight.add(-1, &self.0.attributes);
    }
}

impl Call<Incoming, Disposition> for Measured {
    fn call(self: Arc<Self>, request: Incoming) -> BoxFuture<Result<Disposition>> {
        let m = &self.layer;
        m.instruments.consumed.add(1, &m.attributes);
        let started = crate::clock::Stopwatch::start();
        let run = self.inner.run(request);
        Box::pin(async move {
            let m = &self.layer;
            m.instruments.in_flight.add(1, &m.attributes);
            let guard = InFlight(m);
            let result = run.await;
            drop(guard);
            let seconds = started.seconds();
            let i = &m.instruments;
            let error_type = match &result {
                Ok(Disposition::Ack) => None,
                Ok(Disposition::Duplicate) => {
                    i.duplicates.add(1, &m.attributes);
                    None
                }
                Ok(Disposition::Retry { .. }) | Ok(Disposition::RetryLater) => {
                    i.retries.add(1, &m.attributes);
                    Some("retry")
                }
                Ok(Disposition::DeadLetter(reason)) => {
                    let kind = reason.error_kind.map_or("dead_letter", |k| k.as_str());
                    i.dead_letters.add(1, &with_error(&m.attributes, kind));
                    Some("dead_letter")
                }
                Ok(Disposition::Drop) => Some("drop"),
                Err(e) => Some(e.kind().as_str()),
            };
            match error_type {
                None => i.process_duration.record(seconds, &m.attributes),
                Some(t) => i
                    .process_duration
                    .record(seconds, &with_error(&m.attributes, t)),
            }
            result
        })
    }
}
