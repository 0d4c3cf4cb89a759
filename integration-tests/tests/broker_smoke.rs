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

#[cfg(feature = "rabbitmq")]
#[tokio::test]
async fn rabbitmq_answers_lapin() {
    use lapin::options::{
        BasicGetOptions, BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions,
    };
    let Some(url) = addr(
        "BROKERKIT_SMOKE_RABBITMQ",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
    ) else {
        return;
    };
    let conn = tokio::time::timeout(
        TIMEOUT,
        lapin::Connection::connect(&url, lapin::ConnectionProperties::default()),
    )
    .await
    .expect("connect in time")
    .expect("rabbitmq answers");
    let ch = conn.create_channel().await.unwrap();
    let queue = unique("smoke");
    ch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions::default(),
        Default::default(),
    )
    .await
    .unwrap();
    ch.basic_publish(
        "".into(),
        queue.as_str().into(),
        BasicPublishOptions::default(),
        b"ping",
        Default::default(),
    )
    .await
    .unwrap();
    let mut got = None;
    for _ in 0..50 {
        got = ch
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap();
        if got.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got.expect("the message comes back").delivery.data, b"ping");
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
}

#[cfg(feature = "sqs")]
#[tokio::test]
async fn localstack_sqs_answers_aws_sdk() {
    let Some(endpoint) = addr("BROKERKIT_SMOKE_LOCALSTACK", "http://127.0.0.1:4566") else {
        return;
    };
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "smoke",
        ))
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let created = sqs
        .create_queue()
        .queue_name(unique("smoke"))
        .send()
        .await
        .expect("LocalStack SQS answers");
    let url = created.queue_url().expect("a queue url").to_string();
    assert!(url.contains("/queue/"), "path-style queue URL: {url}");
    sqs.send_message()
        .queue_url(&url)
        .message_body("ping")
        .send()
        .await
        .unwrap();
    let got = sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    assert_eq!(got.messages()[0].body(), Some("ping"));
    sqs.delete_queue().queue_url(&url).send().await.unwrap();
}
