//! The conformance suite (written once in `integration-tests`) against this adapter, with its
//! fixture (`fixture/mod.rs`), and a round trip through the raw client with no brokerkit code in
//! between: if that fails, the broker is broken, not the adapter.

use std::time::Duration;

use brokerkit_integration_tests::{broker_url, conformance_suite};

mod fixture;

const TIMEOUT: Duration = Duration::from_secs(20);

conformance_suite!(
    kafka,
    broker_url("kafka", "BROKERKIT_KAFKA_URL", "kafka://127.0.0.1:9092"),
    fixture::KafkaFixture
);

#[test]
fn kafka_answers_rdkafka() {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let Some(bootstrap) = broker_url("kafka", "BROKERKIT_SMOKE_KAFKA", "127.0.0.1:9092") else {
        return;
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("client config");
    let metadata = consumer
        .fetch_metadata(None, TIMEOUT)
        .expect("the Kafka-protocol broker answers metadata");
    let advertised: Vec<String> = metadata
        .brokers()
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect();
    assert!(
        advertised.iter().any(|a| a.ends_with(&format!(
            ":{}",
            bootstrap.rsplit(':').next().unwrap_or("9092")
        ))),
        "the broker advertises the address it listens on: {advertised:?}"
    );
}

/// The AsyncAPI bindings this adapter declares: the topic and the consumer group's `groupId`.
#[test]
fn asyncapi_bindings() {
    let d = brokerkit_integration_tests::conformance_profile::asyncapi_of("kafka://127.0.0.1:9092");
    assert_eq!(d["servers"]["s"]["protocol"], "kafka");
    assert_eq!(
        d["channels"]["orders"]["bindings"]["kafka"]["topic"],
        "orders"
    );
    let op = &d["operations"]["receive-orders-billing"]["bindings"];
    assert_eq!(op["kafka"]["groupId"]["enum"][0], "billing");
}
