//! Kafka adapter, broker level: oversized records are refused before I/O, rebalances and
//! small buffers lose nothing. Unreachable brokers and foreign headers are shared cases of the
//! conformance suite (`fixture/mod.rs`); the broker restart mid-stream is the fault case
//! in `tests/fault_suite.rs` (a private tansu). The tests here use the broker at
//! `$BROKERKIT_KAFKA_URL` (default `kafka://127.0.0.1:9092`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use brokerkit::{Broker, ErrorKind, Message};
use brokerkit_integration_tests::broker_url;

fn shared_url() -> Option<String> {
    broker_url("kafka", "BROKERKIT_KAFKA_URL", "kafka://127.0.0.1:9092")
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// A record over `message.max.bytes` (here through a long key) is refused before sending;
/// a missing topic with creation off is NotFound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_record_and_missing_topic() {
    let Some(url) = shared_url() else { return };
    let broker = Broker::connect(&url).await.expect("connect");
    let dest = unique("big");
    let producer = broker.producer(&dest).build().await.expect("producer");
    let max = broker.capabilities().max_payload_bytes;
    let key = "k".repeat(64 * 1024);
    let e = producer
        .send(Message::new(vec![b'x'; max]).with_key(key))
        .await
        .expect_err("too large");
    assert_eq!(e.kind(), ErrorKind::PayloadTooLarge, "{e}");
    let e = producer
        .send(Message::new(vec![b'x'; max + 1]))
        .await
        .expect_err("too large");
    assert_eq!(e.kind(), ErrorKind::PayloadTooLarge, "{e}");

    let sep = if url.contains('?') { '&' } else { '?' };
    let strict = Broker::connect(&format!("{url}{sep}create_topics=false"))
        .await
        .expect("connect");
    let e = strict
        .producer(&unique("missing"))
        .build()
        .await
        .err()
        .expect("missing topic is an error");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let _ = broker.close().await;
    let _ = strict.close().await;
}

/// A second member joins while the first holds deliveries: the first gets time to settle them
/// and commits before its partitions move, so nothing is lost and nothing is delivered twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_commits_settled_offsets_before_partitions_move() {
    let Some(url) = shared_url() else { return };
    let broker = Broker::connect(&url).await.expect("connect");
    let dest = unique("rebalance");
    let mut a = broker
        .consumer(&dest)
        .group("g")
        .prefetch(5)
        .build()
        .await
        .expect("consumer a");
    let producer = broker.producer(&dest).build().await.expect("producer");
    let total = 30;
    for i in 0..total {
        producer
            .send(Message::new(i.to_string()))
            .await
            .expect("send");
    }
    let mut held = Vec::new();
    for _ in 0..5 {
        let d = tokio::time::timeout(Duration::from_secs(15), a.next())
            .await
            .expect("in time")
            .expect("no error")
            .expect("a delivery");
        held.push(d);
    }
    let mut seen: Vec<String> = held
        .iter()
        .map(|d| String::from_utf8_lossy(&d.message().payload).into_owned())
        .collect();
    // Settle the held deliveries while `b` is joining (the rebalance waits for them).
    let settler = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for d in held {
            d.ack().await.expect("ack before the partitions move");
        }
    });
    let mut b = broker
        .consumer(&dest)
        .group("g")
        .prefetch(5)
        .build()
        .await
        .expect("consumer b");
    settler.await.expect("settler");
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < total {
        assert!(Instant::now() < deadline, "only {} of {total}", seen.len());
        let d = tokio::select! {
            d = a.next() => d,
            d = b.next() => d,
            _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
        }
        .expect("no error")
        .expect("a delivery");
        seen.push(String::from_utf8_lossy(&d.message().payload).into_owned());
        d.ack().await.expect("ack");
    }
    // Nothing more: no duplicates of what was settled before the rebalance.
    let extra = tokio::time::timeout(Duration::from_secs(2), async {
        tokio::select! { d = a.next() => d, d = b.next() => d }
    })
    .await;
    if let Ok(Ok(Some(d))) = extra {
        panic!(
            "delivered again: {:?}",
            String::from_utf8_lossy(&d.message().payload)
        );
    }
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), distinct.len()), (total, total), "{seen:?}");
    let _ = broker.close().await;
}

/// With a tiny local buffer the consumer pauses and resumes its partitions over and over:
/// every message arrives once, in order per partition (all with one key here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_buffer_pauses_and_resumes_without_loss() {
    let Some(url) = shared_url() else { return };
    let sep = if url.contains('?') { '&' } else { '?' };
    let broker = Broker::connect(&format!("{url}{sep}buffer_messages=5"))
        .await
        .expect("connect");
    let dest = unique("paused");
    let mut consumer = broker
        .consumer(&dest)
        .prefetch(2)
        .build()
        .await
        .expect("consumer");
    let producer = broker.producer(&dest).build().await.expect("producer");
    let total = 300;
    let batch = (0..total)
        .map(|i| Message::new(i.to_string()).with_key("one-key"))
        .collect();
    producer.send_batch(batch).await.expect("send");
    for expected in 0..total {
        let d = tokio::time::timeout(Duration::from_secs(15), consumer.next())
            .await
            .unwrap_or_else(|_| panic!("message {expected} did not arrive"))
            .expect("no error")
            .expect("a delivery");
        let got: usize = String::from_utf8_lossy(&d.message().payload)
            .parse()
            .expect("a number");
        assert_eq!(got, expected);
        d.ack().await.expect("ack");
    }
    if let Ok(Ok(Some(d))) = tokio::time::timeout(Duration::from_secs(1), consumer.next()).await {
        panic!(
            "delivered twice: {:?}",
            String::from_utf8_lossy(&d.message().payload)
        );
    }
    let _ = broker.close().await;
}

// ---------------------------------------------------------------------------------------
// Issue 12: close commits, cancelled settlements
// ---------------------------------------------------------------------------------------

/// Set in a child process of [`acked_then_closed_is_committed_when_the_process_exits`].
const CHILD_ENV: &str = "BROKERKIT_KAFKA_CLOSE_CHILD";

/// The child half: receive one record, ack it, close the consumer, exit the process at once
/// (no `Broker::close`, no sleep), as a CLI or a short job does. Does nothing unless run as
/// that child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_acks_closes_and_exits() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (url, dest) = spec.split_once('|').expect("url|destination");
    let broker = Broker::connect(url).await.expect("connect");
    let mut consumer = broker
        .consumer(dest)
        .group("billing")
        .build()
        .await
        .expect("consumer");
    let d = brokerkit_integration_tests::receive(&mut consumer).await;
    assert_eq!(&d.message().payload[..], b"once");
    d.ack().await.expect("ack");
    consumer.close().await.expect("close");
    std::process::exit(0);
}

/// Issue 12 item 2: ack → `Consumer::close` → process exit leaves the ack committed: the next
/// consumer of the group does not get the record again. Before, `close` returned before the
/// driver thread's final commit, and an exiting process lost it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_then_closed_is_committed_when_the_process_exits() {
    let Some(url) = shared_url() else { return };
    let broker = Broker::connect(&url).await.expect("connect");
    let dest = unique("closecommit");
    // Subscribe the group first so the record is there for it (offset reset: earliest).
    broker
        .consumer(&dest)
        .group("billing")
        .build()
        .await
        .expect("consumer")
        .close()
        .await
        .expect("close");
    let producer = broker.producer(&dest).build().await.expect("producer");
    producer.send(Message::new("once")).await.expect("send");
    let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_acks_closes_and_exits", "--nocapture"])
        .env(CHILD_ENV, format!("{url}|{dest}"))
        .status()
        .expect("child ran");
    assert!(status.success(), "child failed: {status}");
    let mut next = broker
        .consumer(&dest)
        .group("billing")
        .build()
        .await
        .expect("consumer");
    brokerkit_integration_tests::expect_none(&mut next, Duration::from_secs(3)).await;
    let _ = broker.close().await;
}

/// Issue 12 item 3: a `nack` whose future is dropped while its retry copy is being produced
/// (a user timeout, the shutdown abort) must not leave the offset handed out forever: the
/// message comes back in this consumer, and commits move past it once it is acked. Before,
/// the offset stayed "out", so no commit of its partition ever moved past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_nack_neither_loses_the_message_nor_freezes_commits() {
    let Some(url) = shared_url() else { return };
    let sep = if url.contains('?') { '&' } else { '?' };
    let broker = Broker::connect(&format!("{url}{sep}partitions=1"))
        .await
        .expect("connect");
    let dest = unique("cancelnack");
    let mut consumer = broker
        .consumer(&dest)
        .group("billing")
        .build()
        .await
        .expect("consumer");
    let producer = broker.producer(&dest).build().await.expect("producer");
    producer.send(Message::new("a")).await.expect("send");
    producer.send(Message::new("b")).await.expect("send");
    let a = brokerkit_integration_tests::receive(&mut consumer).await;
    assert_eq!(&a.message().payload[..], b"a");
    let b = brokerkit_integration_tests::receive(&mut consumer).await;
    {
        let mut nack = Box::pin(a.nack(None));
        let first = futures_poll_once(nack.as_mut()).await;
        assert!(first.is_none(), "the nack finished in its first poll");
        // Dropped mid-produce.
    }
    b.ack().await.expect("ack b");
    // The message is not lost: it comes back (here, or as its retry copy).
    let again = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .unwrap_or_else(|_| panic!("the message of the cancelled nack never came back"))
        .expect("next")
        .expect("a delivery");
    assert_eq!(&again.message().payload[..], b"a");
    again.ack().await.expect("ack a");
    // Drain a possible retry copy (the produce may have completed): a duplicate, allowed.
    while let Ok(Ok(Some(d))) = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await
    {
        assert_eq!(
            &d.message().payload[..],
            b"a",
            "only a's retry copy may come"
        );
        d.ack().await.expect("ack copy");
    }
    consumer.close().await.expect("close");
    // Commits moved past both: a new member of the group gets neither record again.
    let lag = broker.lag(&dest, Some("billing")).await.expect("lag");
    assert_eq!(lag.total, 0, "{lag:?}");
    let _ = broker.close().await;
}

/// Polls `fut` once: `Some(output)` if it completed.
async fn futures_poll_once<F: std::future::Future + Unpin>(mut fut: F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut fut).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}
