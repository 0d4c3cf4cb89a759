//! The fault suite (written once in `integration-tests/src/conformance_faults.rs`) over this
//! adapter's fixture: broker restart mid-stream, a consumer killed between handler success and
//! ack, a crash-looping poison message. One case at a time (`--test-threads 1` is not needed:
//! the cases share a lock).
//!
//! `BROKERKIT_RESTART_MESSAGES=100000 cargo test -p brokerkit-nats --test fault_suite` runs the
//! 100,000-message restart bar (default 5,000).

#[allow(dead_code)]
mod fixture;

brokerkit_integration_tests::fault_suite!(
    nats_jetstream,
    brokerkit_integration_tests::broker_url(
        "nats",
        "BROKERKIT_NATS_JS_URL",
        "nats+js://127.0.0.1:4222"
    ),
    crate::fixture::NatsFixture { jetstream: true },
    crash_url: brokerkit_integration_tests::fault_suite::with_query(
        brokerkit_integration_tests::broker_url(
            "nats",
            "BROKERKIT_NATS_JS_URL",
            "nats+js://127.0.0.1:4222"
        ),
        "ack_wait_ms=2000"
    )
);
