//! Metrics through the OpenTelemetry metrics API (you choose the exporter by installing a
//! meter provider; without one the instruments are no-ops). Names follow the OpenTelemetry
//! messaging semantic conventions where they have one; brokerkit's own start with `brokerkit.`.
//!
//! | instrument | kind | recorded by |
//! |---|---|---|
//! | `messaging.client.sent.messages` | counter | send `metrics` layer, per message (with `error.type` on failure) |
//! | `messaging.client.operation.duration` (s) | histogram | send `metrics` layer, per send or batch (`messaging.operation.name` = `send`) |
//! | `messaging.client.consumed.messages` | counter | receive `metrics` layer, per delivery |
//! | `messaging.process.duration` (s) | histogram | receive `metrics` layer, per delivery (`error.type` unless acked) |
//! | `brokerkit.retries` | counter | receive `metrics` layer: deliveries sent back for another attempt |
//! | `brokerkit.dead_letters` | counter | receive `metrics` layer, `error.type` = the error kind |
//! | `brokerkit.duplicates` | counter | receive `metrics` layer: skipped by idempotency |
//! | `brokerkit.handlers.in_flight` | up-down counter | receive `metrics` layer |
//! | `brokerkit.settle.failures` | counter | handler runner: an ack/nack/dead-letter the broker refused |
//! | `brokerkit.settle.given_up` | counter | handler runner: a message whose settle failed `SETTLE_FAILURE_LIMIT` times; the run stopped (`error.type` = the last failure's kind) |
//! | `brokerkit.lease.extensions` | counter | handler runner: leases extended (`error.type` on failure) |
//!
//! Every instrument carries `messaging.system` (the adapter name,
//! [`brokerkit_core::Backend::name`]: `memory`, …) and `messaging.destination.name`; receive-side
//! ones also `messaging.consumer.group.name`.

use std::sync::Arc;

use opentelemetry::metrics::{Counter, Histogram, Meter, UpDownCounter};
use opentelemetry::KeyValue;

/// The instrument scope name brokerkit records under.
pub const SCOPE: &str = "brokerkit";

/// Histogram buckets the conventions recommend for messaging durations, in seconds.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// brokerkit's instruments on one meter.
#[derive(Clone)]
pub struct Instruments {
    pub(crate) sent: Counter<u64>,
    pub(crate) operation_duration: Histogram<f64>,
    pub(crate) consumed: Counter<u64>,
    pub(crate) process_duration: Histogram<f64>,
    pub(crate) retries: Counter<u64>,
    pub(crate) dead_letters: Counter<u64>,
    pub(crate) duplicates: Counter<u64>,
    pub(crate) in_flight: UpDownCounter<i64>,
    pub(crate) settle_failures: Counter<u64>,
    pub(crate) settle_given_up: Counter<u64>,
    pub(crate) lease_extensions: Counter<u64>,
}

impl Instruments {
    /// Creates the instruments on `meter`.
    pub fn new(meter: &Meter) -> Self {
        let count = |name: &'static str, what: &'static str| {
            meter
                .u64_counter(name)
                .with_unit("{message}")
                .with_description(what)
                .build()
        };
        let seconds = |name: &'static str, what: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(what)
                .with_boundaries(BUCKETS.to_vec())
                .build()
        };
        Instruments {
            sent: count(
                "messaging.client.sent.messages",
                "Number of messages the producer attempted to send to the broker.",
            ),
            operation_duration: seconds(
                "messaging.client.operation.duration",
                "Duration of a messaging operation initiated by a producer or consumer client.",
            ),
            consumed: count(
                "messaging.client.consumed.messages",
                "Number of messages that were delivered to the application.",
            ),
            process_duration: seconds(
                "messaging.process.duration",
                "Duration of processing a delivery (the receive layers and the handler).",
            ),
            retries: count(
                "brokerkit.retries",
                "Deliveries sent back for another attempt.",
            ),
            dead_letters: count(
                "brokerkit.dead_letters",
                "Deliveries moved to the dead-letter destination.",
            ),
            duplicates: count(
                "brokerkit.duplicates",
                "Deliveries skipped as already handled (idempotency).",
            ),
            in_flight: meter
                .i64_up_down_counter("brokerkit.handlers.in_flight")
                .with_unit("{delivery}")
                .with_description("Deliveries being processed now.")
                .build(),
            settle_failures: count(
                "brokerkit.settle.failures",
                "Settlements (ack, nack, dead-letter) the broker refused.",
            ),
            settle_given_up: count(
                "brokerkit.settle.given_up",
                "Messages whose settlement kept failing; the handler run stopped.",
            ),
            lease_extensions: count(
                "brokerkit.lease.extensions",
                "Lease extensions of deliveries being handled or waiting.",
            ),
        }
    }

    /// The instruments on the global meter provider (installed with
    /// `opentelemetry::global::set_meter_provider`), as it is now: producers and handlers call
    /// this when they are built, so install the provider before building them.
    pub fn global() -> Arc<Instruments> {
        Arc::new(Instruments::new(&opentelemetry::global::meter(SCOPE)))
    }
}

/// The attributes shared by one producer's or handler's measurements.
pub(crate) fn attributes(
    system: &'static str,
    destination: &str,
    group: Option<&str>,
) -> Arc<[KeyValue]> {
    let mut attrs = vec![
        KeyValue::new("messaging.system", system),
        KeyValue::new("messaging.destination.name", Arc::<str>::from(destination)),
    ];
    if let Some(g) = group {
        attrs.push(KeyValue::new(
            "messaging.consumer.group.name",
            Arc::<str>::from(g),
        ));
    }
    attrs.into()
}

/// `attrs` plus `error.type`.
pub(crate) fn with_error(attrs: &[KeyValue], error_type: &'static str) -> Vec<KeyValue> {
    let mut v = attrs.to_vec();
    v.push(KeyValue::new("error.type", error_type));
    v
}
