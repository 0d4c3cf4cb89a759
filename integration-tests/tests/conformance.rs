//! Runs the conformance suite against every broker.
//!
//! - `memory`: always.
//! - `from_env`: the broker at `$BROKERKIT_TEST_URL`, when set (skipped otherwise), e.g.
//!   `BROKERKIT_TEST_URL=memory://?capacity=5 cargo test -p brokerkit-integration-tests --test conformance`.
//!
//! Each adapter adds one line here.

use brokerkit_integration_tests::conformance_suite;

conformance_suite!(
    memory,
    Some("memory://".to_string()),
    lease: Some("memory://?visibility_timeout_ms=2000".to_string())
);
conformance_suite!(from_env, std::env::var("BROKERKIT_TEST_URL").ok());
#[cfg(feature = "nats")]
conformance_suite!(
    nats_jetstream,
    brokerkit_integration_tests::broker_url(
        "nats",
        "BROKERKIT_NATS_JS_URL",
        "nats+js://127.0.0.1:4222"
    ),
    lease: brokerkit_integration_tests::broker_url(
        "nats",
        "BROKERKIT_NATS_JS_LEASE_URL",
        "nats+js://127.0.0.1:4222?ack_wait_ms=2000"
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
#[cfg(feature = "sqs")]
conformance_suite!(sqs, brokerkit_integration_tests::broker_url("localstack", "BROKERKIT_SQS_URL", "sqs://?endpoint=http://127.0.0.1:4566&region=us-east-1&access_key_id=test&secret_access_key=test&wait_time_secs=20"),
    lease: brokerkit_integration_tests::broker_url("localstack", "BROKERKIT_SQS_LEASE_URL", "sqs://?endpoint=http://127.0.0.1:4566&region=us-east-1&access_key_id=test&secret_access_key=test&wait_time_secs=1&visibility_timeout_secs=2"));
#[cfg(feature = "sqs")]
conformance_suite!(sns, brokerkit_integration_tests::broker_url("localstack", "BROKERKIT_SNS_URL", "sns://?endpoint=http://127.0.0.1:4566&region=us-east-1&access_key_id=test&secret_access_key=test&wait_time_secs=20"),
    lease: brokerkit_integration_tests::broker_url("localstack", "BROKERKIT_SNS_LEASE_URL", "sns://?endpoint=http://127.0.0.1:4566&region=us-east-1&access_key_id=test&secret_access_key=test&wait_time_secs=1&visibility_timeout_secs=2"));
#[cfg(feature = "rabbitmq")]
conformance_suite!(
    rabbitmq,
    brokerkit_integration_tests::broker_url(
        "rabbitmq",
        "BROKERKIT_RABBITMQ_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f"
    )
);
