//! `metrics`: counts each message sent (`messaging.client.sent.messages`, with `error.type`
//! when the send failed) and times each send or batch (`messaging.client.operation.duration`).
//! See [`crate::metrics`].

use std::sync::Arc;

use brokerkit_core::Result;
use opentelemetry::KeyValue;

use super::{BoxFuture, Outgoing, SendService};
use crate::clock::Stopwatch;
use crate::layers::{Call, SharedService};
use crate::metrics::{with_error, Instruments};

/// See the [module docs](self).
#[derive(Clone)]
pub struct MetricsLayer {
    instruments: Arc<Instruments>,
    attributes: Arc<[KeyValue]>,
}

impl MetricsLayer {
    /// Records on `instruments` with the attributes of one producer (`messaging.system`,
    /// `messaging.destination.name`).
    pub fn new(instruments: Arc<Instruments>, system: &'static str, destination: &str) -> Self {
        let mut attrs = crate::metrics::attributes(system, destination, None).to_vec();
        attrs.push(KeyValue::new("messaging.operation.name", "send"));
        MetricsLayer {
            instruments,
            attributes: attrs.into(),
        }
    }
}

impl tower::Layer<SendService> for MetricsLayer {
    type Service = SendService;

    fn layer(&self, inner: SendService) -> SendService {
        SharedService::from_arc(Arc::new(Measured {
            inner,
            layer: self.clone(),
        }))
    }
}

struct Measured {
    inner: SendService,
    layer: MetricsLayer,
}

impl Call<Outgoing, ()> for Measured {
    fn call(self: Arc<Self>, request: Outgoing) -> BoxFuture<Result<()>> {
        let count = request.messages().len() as u64;
        let started = Stopwatch::start();
        let mut run = self.inner.run(request);
        // A send that finished at once (an in-process broker) is recorded without a future
        // of its own.
        if let Some(result) = crate::layers::now_or_later(&mut run) {
            self.record(&result, count, started);
            return crate::layers::finished(result);
        }
        Box::pin(async move {
            let result = run.await;
            self.record(&result, count, started);
            result
        })
    }
}

impl Measured {
    fn record(&self, result: &Result<()>, count: u64, started: Stopwatch) {
        let m = &self.layer;
        let seconds = started.seconds();
        match result {
            Ok(()) => {
                m.instruments.sent.add(count, &m.attributes);
                m.instruments
                    .operation_duration
                    .record(seconds, &m.attributes);
            }
            Err(e) => {
                let attrs = with_error(&m.attributes, e.kind().as_str());
                m.instruments.sent.add(count, &attrs);
                m.instruments.operation_duration.record(seconds, &attrs);
            }
        }
    }
}
