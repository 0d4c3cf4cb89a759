//! Runs the conformance suite against every broker.
//!
//! - `memory`: always.
//! - `from_env`: the broker at `$BROKERKIT_TEST_URL`, when set (skipped otherwise), e.g.
//!   `BROKERKIT_TEST_URL=memory://?capacity=5 cargo test -p brokerkit-integration-tests --test conformance`.
//!
//! Each adapter adds one line here.

use brokerkit_integration_tests::conformance_suite;

conformance_suite!(memory, Some("memory://".to_string()));
conformance_suite!(from_env, std::env::var("BROKERKIT_TEST_URL").ok());
#[cfg(feature = "nats")]
conformance_suite!(
    nats_jetstream,
    brokerkit_integration_tests::broker_url(
        "nats",
        "BROKERKIT_NATS_JS_URL",
        "nats+js://127.0.0.1:4222"
    )
);
#[cfg(feature = "nats")]
conformance_suite!(
    nats_core,
    brokerkit_integration_tests::broker_url("nats", "BROKERKIT_NATS_URL", "nats://127.0.0.1:4222")
);
#[cfg(feature = "kafka")]
conformance_suite!(
    kafka,
    brokerkit_integration_tests::broker_url(
        "kafka",
        "BROKERKIT_KAFKA_URL",
        "kafka://127.0.0.1:9092"
    )
);
