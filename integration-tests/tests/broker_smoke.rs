//! Each broker `scripts/brokers up` starts answers its raw Rust client: a round trip with no
//! brokerkit code in between. A failure here means the broker, not an adapter, is broken.

#![allow(unused_imports)]
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

fn addr(var: &str, default: &str) -> Option<String> {
    let skipped = std::env::var("BROKERKIT_SKIP_BROKERS").unwrap_or_default();
    let name = var
        .trim_start_matches("BROKERKIT_SMOKE_")
        .to_ascii_lowercase();
    if skipped.split(',').any(|s| s.trim() == name) {
        eprintln!("SKIP {name}: listed in BROKERKIT_SKIP_BROKERS");
        return None;
    }
    Some(std::env::var(var).unwrap_or_else(|_| default.to_string()))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

#[cfg(feature = "nats")]
#[tokio::test]
async fn nats_jetstream_answers_async_nats() {
    use async_nats::jetstream::{self, stream};
    let Some(url) = addr("BROKERKIT_SMOKE_NATS", "127.0.0.1:4222") else {
        return;
    };
    let client = tokio::time::timeout(TIMEOUT, async_nats::connect(url.as_str()))
        .await
        .expect("connect in time")
        .expect("nats answers");
    let js = jetstream::new(client);
    let name = unique("smoke");
    let info = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![name.clone()],
            ..Default::default()
        })
        .await
        .expect("JetStream is enabled");
    let ack = js
        .publish(name.clone(), "ping".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.stream, name);
    drop(info);
    js.delete_stream(&name).await.unwrap();
}

#[cfg(feature = "kafka")]
#[test]
fn kafka_answers_rdkafka() {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let Some(bootstrap) = addr("BROKERKIT_SMOKE_KAFKA", "127.0.0.1:9092") else {
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
