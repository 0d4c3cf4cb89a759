//! The fault suite (written once in `integration-tests/src/conformance_faults.rs`) over this
//! adapter's fixture: broker restart mid-stream, a consumer killed between handler success and
//! ack, a crash-looping poison message. One case at a time (`--test-threads 1` is not needed:
//! the cases share a lock).
//!
//! `BROKERKIT_RESTART_MESSAGES=100000 cargo test -p brokerkit-kafka --test fault_suite` runs the
//! 100,000-message restart bar (default 5,000).

#[allow(dead_code)]
mod fixture;

brokerkit_integration_tests::fault_suite!(
    kafka,
    brokerkit_integration_tests::broker_url(
        "kafka",
        "BROKERKIT_KAFKA_URL",
        "kafka://127.0.0.1:9092"
    ),
    crate::fixture::KafkaFixture,
    crash_url: brokerkit_integration_tests::fault_suite::with_query(
        brokerkit_integration_tests::broker_url(
            "kafka",
            "BROKERKIT_KAFKA_URL",
            "kafka://127.0.0.1:9092"
        ),
        "session_timeout_ms=6000"
    )
);
