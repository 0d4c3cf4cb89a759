//! Runs the conformance suite against the brokers that need no server:
//!
//! - `memory`: always, and `memory_faults`: memory wrapped in the fault-injecting backend.
//! - `from_env`: the broker at `$BROKERKIT_TEST_URL`, when set (skipped otherwise), e.g.
//!   `BROKERKIT_TEST_URL=memory://?capacity=5 cargo test -p brokerkit-integration-tests --test conformance`.
//!
//! Each networked adapter runs the same suite with its fixture from its own crate
//! (`adapters/<b>/tests/conformance.rs`, see `adapters/README.md`).

use brokerkit_integration_tests::conformance_suite;

conformance_suite!(
    memory,
    Some("memory://".to_string()),
    brokerkit_integration_tests::fixture::NoFixture,
    brokerkit::Registry::default(),
    lease: Some("memory://?visibility_timeout_ms=2000".to_string())
);
// The suite again over memory wrapped in the fault-injecting backend (small delays, batches
// split into chunks of 3): the wrapper forwards every promise.
conformance_suite!(
    memory_faults,
    Some("memory://".to_string()),
    brokerkit_integration_tests::fixture::NoFixture,
    brokerkit::Registry::default().with(brokerkit::faults::FaultConnector::new(
        brokerkit::memory::MemoryConnector,
        brokerkit::faults::FaultPlan::default()
            .delay(std::time::Duration::from_millis(1))
            .max_batch(3),
    ))
);
conformance_suite!(from_env, std::env::var("BROKERKIT_TEST_URL").ok());
