//! The conformance suite (written once in `integration-tests`) against this adapter, with its
//! fixture (`fixture/mod.rs`), and a round trip through the raw client with no brokerkit code in
//! between: if that fails, the broker is broken, not the adapter.

use std::time::Duration;

use brokerkit_integration_tests::{broker_url, conformance_suite};

mod fixture;

const TIMEOUT: Duration = Duration::from_secs(20);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

conformance_suite!(
    rabbitmq,
    broker_url(
        "rabbitmq",
        "BROKERKIT_RABBITMQ_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f"
    ),
    fixture::RabbitFixture
);

#[tokio::test]
async fn rabbitmq_answers_lapin() {
    use lapin::options::{
        BasicGetOptions, BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions,
    };
    let Some(url) = broker_url(
        "rabbitmq",
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

/// The AsyncAPI bindings this adapter declares: a fanout exchange per destination; no
/// credentials copied.
#[test]
fn asyncapi_bindings() {
    let d = brokerkit_integration_tests::conformance_profile::asyncapi_of(
        "amqps://guest:s3cret@127.0.0.1:5671/%2f",
    );
    assert_eq!(d["servers"]["s"]["protocol"], "amqps");
    assert_eq!(d["servers"]["s"]["host"], "127.0.0.1:5671");
    let ex = &d["channels"]["orders"]["bindings"]["amqp"]["exchange"];
    assert_eq!(ex["name"], "orders");
    assert_eq!(ex["type"], "fanout");
    assert!(!d.to_string().contains("s3cret"));
}
