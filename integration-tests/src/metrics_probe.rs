//! Reads brokerkit's metrics back through an OpenTelemetry manual reader, for exact counts in
//! tests.
//!
//! A manual reader collects on the caller's thread. The periodic reader used before answers a
//! flush from its own thread and the caller waits for it with no bound, which hung a CI run
//! beyond every case timeout.

use std::sync::{Arc, Weak};
use std::time::Duration;

use brokerkit::metrics::{Instruments, SCOPE};
use opentelemetry::metrics::MeterProvider;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};

/// The provider owns its reader; the probe keeps a second handle to collect through.
#[derive(Debug, Clone)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// A private meter provider whose instruments tests give to producers and handlers.
pub struct MetricsProbe {
    reader: SharedReader,
    _provider: SdkMeterProvider,
    /// Pass to `ProducerBuilder::instruments` and `HandlerBuilder::instruments`.
    pub instruments: Arc<Instruments>,
}

impl Default for MetricsProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsProbe {
    /// A fresh provider with an in-memory exporter.
    pub fn new() -> Self {
        let reader = SharedReader(Arc::new(ManualReader::builder().build()));
        let provider = SdkMeterProvider::builder()
            .with_reader(reader.clone())
            .build();
        let instruments = Arc::new(Instruments::new(&provider.meter(SCOPE)));
        MetricsProbe {
            reader,
            _provider: provider,
            instruments,
        }
    }

    /// The total of counter `name` (or the count of histogram `name`) over the data points
    /// whose attributes include every `(key, value)` in `filter`.
    pub fn total(&self, name: &str, filter: &[(&str, &str)]) -> u64 {
        let mut last = ResourceMetrics::default();
        self.reader.collect(&mut last).expect("collect metrics");
        let matches = |attrs: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
            let attrs: Vec<_> = attrs
                .map(|kv| (kv.key.as_str().to_string(), kv.value.to_string()))
                .collect();
            filter
                .iter()
                .all(|(k, v)| attrs.iter().any(|(ak, av)| ak == k && av == v))
        };
        let mut total = 0;
        for scope in last.scope_metrics() {
            for metric in scope.metrics().filter(|m| m.name() == name) {
                match metric.data() {
                    AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                        for p in sum.data_points() {
                            if matches(&mut p.attributes()) {
                                total += p.value();
                            }
                        }
                    }
                    AggregatedMetrics::I64(MetricData::Sum(sum)) => {
                        for p in sum.data_points() {
                            if matches(&mut p.attributes()) {
                                total += p.value().max(0) as u64;
                            }
                        }
                    }
                    AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                        for p in h.data_points() {
                            if matches(&mut p.attributes()) {
                                total += p.count();
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        total
    }
}
