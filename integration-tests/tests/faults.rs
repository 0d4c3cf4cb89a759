//! Fault cases over each real broker's fixture (`src/conformance_faults.rs`), one at a time:
//! the RabbitMQ fixture restarts the shared broker (`rabbitmqctl stop_app`/`start_app`, needs
//! root); NATS and Kafka start private servers on free ports.
//!
//! `BROKERKIT_RESTART_MESSAGES=100000 cargo test -p brokerkit-integration-tests
//! --features rabbitmq,nats,kafka --test faults -- --test-threads 1` runs the 100,000-message
//! restart bar (default 5,000).

#[allow(dead_code)]
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[allow(unused_macros)]
macro_rules! fault_suite {
    ($name:ident, $url:expr, $fixture:expr) => {
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
        }
    };
}

#[cfg(feature = "rabbitmq")]
fault_suite!(
    rabbitmq,
    brokerkit_integration_tests::broker_url(
        "rabbitmq",
        "BROKERKIT_RABBITMQ_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f"
    ),
    brokerkit_integration_tests::fixtures::RabbitFixture
);
#[cfg(feature = "nats")]
fault_suite!(
    nats_jetstream,
    brokerkit_integration_tests::broker_url(
        "nats",
        "BROKERKIT_NATS_JS_URL",
        "nats+js://127.0.0.1:4222"
    ),
    brokerkit_integration_tests::fixtures::NatsFixture { jetstream: true }
);
#[cfg(feature = "kafka")]
fault_suite!(
    kafka,
    brokerkit_integration_tests::broker_url(
        "kafka",
        "BROKERKIT_KAFKA_URL",
        "kafka://127.0.0.1:9092"
    ),
    brokerkit_integration_tests::fixtures::KafkaFixture
);
