//! What is specific to Redis Streams: a stream's first group gets the backlog and later groups
//! only new entries, `maxlen` trims, an abandoned delivery comes back once its lease is over
//! (with Redis's delivery count), browse ids are entry ids, and the `payload` field is
//! reserved.

use std::time::{Duration, Instant};

use brokerkit::{Broker, ErrorKind, Headers, Message};
use brokerkit_integration_tests::{broker_url, expect_none, receive};

// Only its `client_url` is used here.
#[allow(dead_code)]
mod fixture;

fn url(query: &str) -> Option<String> {
    broker_url(
        "redis",
        "BROKERKIT_REDIS_STREAMS_URL",
        "redis+streams://127.0.0.1:6379",
    )
    .map(|u| match query {
        "" => u,
        q if u.contains('?') => format!("{u}&{q}"),
        q => format!("{u}?{q}"),
    })
}

fn dest(what: &str) -> String {
    format!("bk-redis-{what}-{}", uuid::Uuid::new_v4().simple())
}

async fn raw() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(fixture::client_url(&url("").unwrap())).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_group_gets_the_backlog_later_groups_new_entries() {
    let Some(url) = url("") else { return };
    let broker = Broker::connect(&url).await.unwrap();
    let d = dest("backlog");
    let producer = broker.producer(&d).build().await.unwrap();
    producer.send(Message::new("before")).await.unwrap();
    let mut first = broker.consumer(&d).group("a").build().await.unwrap();
    let mut later = broker.consumer(&d).group("b").build().await.unwrap();
    producer.send(Message::new("after")).await.unwrap();
    for want in ["before", "after"] {
        let got = receive(&mut first).await;
        assert_eq!(got.message().payload.as_ref(), want.as_bytes());
        got.ack().await.unwrap();
    }
    let got = receive(&mut later).await;
    assert_eq!(got.message().payload.as_ref(), b"after");
    got.ack().await.unwrap();
    expect_none(&mut later, Duration::from_millis(300)).await;
    broker.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxlen_trims_the_stream() {
    let Some(url) = url("maxlen=10") else { return };
    let broker = Broker::connect(&url).await.unwrap();
    let d = dest("maxlen");
    let producer = broker.producer(&d).build().await.unwrap();
    let batch: Vec<Message> = (0..300).map(|i| Message::new(i.to_string())).collect();
    for chunk in batch.chunks(100) {
        producer.send_batch(chunk.to_vec()).await.unwrap();
    }
    let len: u64 = redis::cmd("XLEN")
        .arg(&d)
        .query_async(&mut raw().await)
        .await
        .unwrap();
    // `MAXLEN ~` trims whole nodes (100 entries by default): well under 300, at least 10.
    assert!((10..300).contains(&len), "XLEN {len}");
    broker.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_delivery_returns_after_the_lease() {
    let Some(url) = url("lease_ms=1000") else {
        return;
    };
    let broker = Broker::connect(&url).await.unwrap();
    let d = dest("abandoned");
    let mut gone = broker.consumer(&d).group("g").build().await.unwrap();
    let producer = broker.producer(&d).build().await.unwrap();
    producer.send(Message::new("x")).await.unwrap();
    let first = receive(&mut gone).await;
    let at = Instant::now();
    // A crashed process settles nothing and releases nothing: only the lease brings it back.
    std::mem::forget(first);
    std::mem::forget(gone);
    let mut next = broker.consumer(&d).group("g").build().await.unwrap();
    let again = receive(&mut next).await;
    assert!(
        at.elapsed() >= Duration::from_millis(900),
        "{:?}",
        at.elapsed()
    );
    assert_eq!(again.attempt(), 2, "Redis's delivery count");
    again.ack().await.unwrap();
    broker.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_ids_are_entry_ids_and_payload_is_reserved() {
    let Some(url) = url("") else { return };
    let broker = Broker::connect(&url).await.unwrap();
    let d = dest("browse");
    let producer = broker.producer(&d).build().await.unwrap();
    producer.send(Message::new("one")).await.unwrap();
    let seen = broker.browse(&d, 10).await.unwrap();
    assert_eq!(seen, broker.browse(&d, 10).await.unwrap());
    assert_eq!(seen.len(), 1);
    let (ms, seq) = seen[0].id.split_once('-').expect("<ms>-<seq>");
    assert!(
        ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok(),
        "{}",
        seen[0].id
    );
    // Once the default group acked it, the stream no longer holds it for that group.
    let mut reader = broker.consumer(&d).build().await.unwrap();
    receive(&mut reader).await.ack().await.unwrap();
    assert!(broker.browse(&d, 10).await.unwrap().is_empty());
    let h = Headers::new().with("payload", "x").unwrap();
    let e = producer
        .send(Message::new("two").with_headers(h))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidHeader, "{e}");
    broker.close().await.unwrap();
}
