//! Reads brokerkit's metrics back through OpenTelemetry's in-memory exporter, for exact counts
//! in tests.

use std::sync::Arc;

use brokerkit::metrics::{Instruments, SCOPE};
use opentelemetry::metrics::MeterProvider;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

/// A private meter provider whose instruments tests give to producers and handlers.
pub struct MetricsProbe {
    exporter: InMemoryMetricExporter,
    provider: SdkMeterProvider,
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
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let instruments = Arc::new(Instruments::new(&provider.meter(SCOPE)));
        MetricsProbe {
            exporter,
            provider,
            instruments,
        }
    }

    /// The total of counter `name` (or the count of histogram `name`) over the data points
    /// whose attributes include every `(key, value)` in `filter`.
    pub fn total(&self, name: &str, filter: &[(&str, &str)]) -> u64 {
        self.provider.force_flush().expect("flush metrics");
        let exported = self.exporter.get_finished_metrics().expect("read metrics");
        let Some(last) = exported.last() else {
            return 0;
        };
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
