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
#[cfg(feature = "rabbitmq")]
conformance_suite!(
    rabbitmq,
    brokerkit_integration_tests::broker_url(
        "rabbitmq",
        "BROKERKIT_RABBITMQ_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f"
    )
);
