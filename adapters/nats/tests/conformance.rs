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
    nats_jetstream,
    broker_url("nats", "BROKERKIT_NATS_JS_URL", "nats+js://127.0.0.1:4222"),
    fixture::NatsFixture { jetstream: true },
    brokerkit::Registry::default(),
    lease: broker_url(
        "nats",
        "BROKERKIT_NATS_JS_LEASE_URL",
        "nats+js://127.0.0.1:4222?ack_wait_ms=2000"
    )
);
conformance_suite!(
    nats_core,
    broker_url("nats", "BROKERKIT_NATS_URL", "nats://127.0.0.1:4222"),
    fixture::NatsFixture { jetstream: false }
);

#[tokio::test]
async fn nats_jetstream_answers_async_nats() {
    use async_nats::jetstream::{self, stream};
    let Some(url) = broker_url("nats", "BROKERKIT_SMOKE_NATS", "127.0.0.1:4222") else {
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

/// The AsyncAPI bindings this adapter declares: a consumer group is a queue group.
#[test]
fn asyncapi_bindings() {
    let d =
        brokerkit_integration_tests::conformance_profile::asyncapi_of("nats+js://127.0.0.1:4222");
    assert_eq!(d["servers"]["s"]["protocol"], "nats");
    let op = &d["operations"]["receive-orders-billing"]["bindings"];
    assert_eq!(op["nats"]["queue"], "billing");
}
