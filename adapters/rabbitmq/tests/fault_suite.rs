//! The fault suite (written once in `integration-tests/src/conformance_faults.rs`) over this
//! adapter's fixture: broker restart mid-stream, a consumer killed between handler success and
//! ack, a crash-looping poison message. One case at a time (`--test-threads 1` is not needed:
//! the cases share a lock).
//!
//! `BROKERKIT_RESTART_MESSAGES=100000 cargo test -p brokerkit-rabbitmq --test fault_suite` runs the
//! 100,000-message restart bar (default 5,000).

#[allow(dead_code)]
mod fixture;

brokerkit_integration_tests::fault_suite!(
    rabbitmq,
    brokerkit_integration_tests::broker_url(
        "rabbitmq",
        "BROKERKIT_RABBITMQ_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f"
    ),
    crate::fixture::RabbitFixture,
    // Quorum queues count redeliveries (crash_safe_attempts).
    crash_url: brokerkit_integration_tests::fault_suite::with_query(
        brokerkit_integration_tests::broker_url(
            "rabbitmq",
            "BROKERKIT_RABBITMQ_URL",
            "amqp://guest:guest@127.0.0.1:5672/%2f"
        ),
        "quorum_queues=true"
    )
);
