//! Fault cases over each real broker's fixture (`src/conformance_faults.rs`), one at a time:
//! the RabbitMQ fixture restarts the shared broker (`rabbitmqctl stop_app`/`start_app`, needs
//! root); NATS and Kafka start private servers on free ports.
//!
//! `BROKERKIT_RESTART_MESSAGES=100000 cargo test -p brokerkit-integration-tests
//! --features rabbitmq,nats,kafka --test faults -- --test-threads 1` runs the 100,000-message
//! restart bar (default 5,000).

/// The child process of the process-kill cases (started by them with the binary's own path;
/// ignored in a normal run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of the fault cases, started by them"]
async fn fault_child() {
    brokerkit_integration_tests::conformance_faults::child_main().await;
}

#[allow(dead_code)]
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[allow(unused_macros)]
macro_rules! fault_suite {
    ($name:ident, $url:expr, $fixture:expr) => {
        fault_suite!($name, $url, $fixture, crash_url: $url);
    };
    ($name:ident, $url:expr, $fixture:expr, crash_url: $crash_url:expr) => {
        mod $name {
            use std::sync::Arc;

            use brokerkit_integration_tests::conformance_faults as cases;
            use brokerkit_integration_tests::fixture::Fixture;
            use brokerkit_integration_tests::Outcome;

            fn skip(case: &str, why: &str) {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIP {case} on {}: {why}",
                    stringify!($name)
                );
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn broker_restart_mid_stream() {
                let _g = super::LOCK.lock().await;
                let Some(url) = $url else { return };
                let f: Arc<dyn Fixture> = Arc::new($fixture);
                if let Outcome::Skipped(why) = cases::broker_restart_mid_stream(&url, f).await {
                    skip("broker_restart_mid_stream", &why);
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn killed_between_handler_success_and_ack() {
                let _g = super::LOCK.lock().await;
                let Some(url) = $crash_url else { return };
                if let Outcome::Skipped(why) =
                    cases::killed_between_handler_success_and_ack(&url).await
                {
                    skip("killed_between_handler_success_and_ack", &why);
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn crash_looping_poison_reaches_the_dlq() {
                let _g = super::LOCK.lock().await;
                let Some(url) = $crash_url else { return };
                if let Outcome::Skipped(why) =
                    cases::crash_looping_poison_reaches_the_dlq(&url).await
                {
                    skip("crash_looping_poison_reaches_the_dlq", &why);
                }
            }
        }
    };
}

/// `url` with `query` added (the process-kill cases want short leases).
#[allow(dead_code)]
fn with_query(url: Option<String>, query: &str) -> Option<String> {
    url.map(|u| {
        let sep = if u.contains('?') { '&' } else { '?' };
        format!("{u}{sep}{query}")
    })
}

#[cfg(feature = "rabbitmq")]
fault_suite!(
    rabbitmq,
    brokerkit_integration_tests::broker_url(
        "rabbitmq",
        "BROKERKIT_RABBITMQ_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f"
    ),
    brokerkit_integration_tests::fixtures::RabbitFixture,
    // Quorum queues count redeliveries (crash_safe_attempts).
    crash_url: super::with_query(
        brokerkit_integration_tests::broker_url(
            "rabbitmq",
            "BROKERKIT_RABBITMQ_URL",
            "amqp://guest:guest@127.0.0.1:5672/%2f"
        ),
        "quorum_queues=true"
    )
);
#[cfg(feature = "nats")]
fault_suite!(
    nats_jetstream,
    brokerkit_integration_tests::broker_url(
        "nats",
        "BROKERKIT_NATS_JS_URL",
        "nats+js://127.0.0.1:4222"
    ),
    brokerkit_integration_tests::fixtures::NatsFixture { jetstream: true },
    crash_url: super::with_query(
        brokerkit_integration_tests::broker_url(
            "nats",
            "BROKERKIT_NATS_JS_URL",
            "nats+js://127.0.0.1:4222"
        ),
        "ack_wait_ms=2000"
    )
);
#[cfg(feature = "kafka")]
fault_suite!(
    kafka,
    brokerkit_integration_tests::broker_url(
        "kafka",
        "BROKERKIT_KAFKA_URL",
        "kafka://127.0.0.1:9092"
    ),
    brokerkit_integration_tests::fixtures::KafkaFixture,
    crash_url: super::with_query(
        brokerkit_integration_tests::broker_url(
            "kafka",
            "BROKERKIT_KAFKA_URL",
            "kafka://127.0.0.1:9092"
        ),
        "session_timeout_ms=6000"
    )
);
#[cfg(feature = "sqs")]
fault_suite!(
    sqs,
    brokerkit_integration_tests::broker_url(
        "localstack",
        "BROKERKIT_SQS_URL",
        "sqs://?endpoint=http://127.0.0.1:4566&region=us-east-1&access_key_id=test&secret_access_key=test"
    ),
    brokerkit_integration_tests::fixtures::SqsFixture { sns: false },
    crash_url: super::with_query(
        brokerkit_integration_tests::broker_url(
            "localstack",
            "BROKERKIT_SQS_URL",
            "sqs://?endpoint=http://127.0.0.1:4566&region=us-east-1&access_key_id=test&secret_access_key=test"
        ),
        "wait_time_secs=1&visibility_timeout_secs=2"
    )
);
