//! The shared conformance suite against Redis Streams (Redis on 127.0.0.1:6379), a round
//! trip through the plain client, and the AsyncAPI server it documents.

use brokerkit_integration_tests::{broker_url, conformance_suite};

mod fixture;

fn url() -> Option<String> {
    broker_url(
        "redis",
        "BROKERKIT_REDIS_STREAMS_URL",
        "redis+streams://127.0.0.1:6379",
    )
}

conformance_suite!(
    redis_streams,
    url(),
    fixture::RedisStreamsFixture,
    brokerkit::Registry::default(),
    lease: broker_url(
        "redis",
        "BROKERKIT_REDIS_STREAMS_LEASE_URL",
        "redis+streams://127.0.0.1:6379?lease_ms=2000"
    )
);

/// Redis itself answers: an entry written with `XADD` reads back with `XRANGE`.
#[tokio::test]
async fn raw_round_trip() {
    let Some(url) = url() else { return };
    let client = redis::Client::open(fixture::client_url(&url)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("bk-raw-{}", uuid::Uuid::new_v4().simple());
    let _: String = redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("payload")
        .arg("hi")
        .query_async(&mut conn)
        .await
        .unwrap();
    let len: u64 = redis::cmd("XLEN")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(len, 1);
    let _: u64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// The server is documented with protocol `redis` and its host; no bindings are declared.
#[test]
fn asyncapi_server() {
    let Some(url) = url() else { return };
    let doc = brokerkit_integration_tests::conformance_profile::asyncapi_of(&url);
    assert_eq!(doc["servers"]["s"]["protocol"], "redis");
    assert_eq!(doc["servers"]["s"]["host"], "127.0.0.1:6379");
}
