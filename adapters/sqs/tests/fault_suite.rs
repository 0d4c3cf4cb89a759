//! The fault suite (written once in `integration-tests/src/conformance_faults.rs`) over this
//! adapter's fixture: broker restart mid-stream, a consumer killed between handler success and
//! ack, a crash-looping poison message. One case at a time (`--test-threads 1` is not needed:
//! the cases share a lock).
//!
//! `BROKERKIT_RESTART_MESSAGES=100000 cargo test -p brokerkit-sqs --test fault_suite` runs the
//! 100,000-message restart bar (default 5,000).

#[allow(dead_code)]
mod fixture;

brokerkit_integration_tests::fault_suite!(
    sqs,
    brokerkit_integration_tests::broker_url(
        "localstack",
        "BROKERKIT_SQS_URL",
        "sqs://?endpoint=http://127.0.0.1:4566&region=us-east-1&access_key_id=test&secret_access_key=test"
    ),
    crate::fixture::SqsFixture { sns: false },
    crash_url: brokerkit_integration_tests::fault_suite::with_query(
        brokerkit_integration_tests::broker_url(
            "localstack",
            "BROKERKIT_SQS_URL",
            "sqs://?endpoint=http://127.0.0.1:4566&region=us-east-1&access_key_id=test&secret_access_key=test"
        ),
        "wait_time_secs=1&visibility_timeout_secs=2"
    )
);
