//! Pipelined single sends (`SendBatcher`) and batch consumption (`Consumer::next_batch`) on
//! the memory broker, with faults injected where a failure must reach the right message.

use std::sync::Arc;
use std::time::Duration;

use brokerkit::faults::{FaultPlan, FaultyBackend};
use brokerkit::memory::{MemoryBroker, MemoryConfig};
use brokerkit::{ack_all, BatcherOptions, Broker, Consumer, ErrorKind, Message};

fn faulty(plan: FaultPlan) -> Broker {
    let memory = Arc::new(MemoryBroker::new(MemoryConfig::default()));
    Broker::from_backend(FaultyBackend::wrap(memory, plan))
}

async fn payloads(consumer: &mut Consumer, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let batch = tokio::time::timeout(
            Duration::from_secs(5),
            consumer.next_batch(64, Duration::from_millis(20)),
        )
        .await
        .expect("in time")
        .expect("no error");
        assert!(!batch.is_empty(), "consumer ended early");
        assert!(batch.len() <= 64);
        out.extend(
            batch
                .iter()
                .map(|d| String::from_utf8_lossy(&d.message().payload).into_owned()),
        );
        ack_all(batch).await.unwrap();
    }
    out
}

#[tokio::test]
async fn one_task_feeds_many_and_every_receipt_confirms_in_order() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut consumer = broker.consumer("b").group("g").build().await.unwrap();
    let producer = broker.producer("b").build().await.unwrap();
    let batcher = producer.batcher(BatcherOptions::default()).unwrap();
    let mut receipts = Vec::new();
    for i in 0..1000 {
        receipts.push(batcher.feed(Message::new(format!("m{i}"))).await.unwrap());
    }
    batcher.flush().await.unwrap();
    for r in receipts {
        r.await.unwrap();
    }
    let got = payloads(&mut consumer, 1000).await;
    let want: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_message_refused_before_io_fails_alone() {
    let broker = Broker::connect("memory://bt-limit?max_payload_bytes=100")
        .await
        .unwrap();
    let mut consumer = broker.consumer("b").group("g").build().await.unwrap();
    let producer = broker.producer("b").build().await.unwrap();
    let batcher = producer.batcher(BatcherOptions::default()).unwrap();
    let mut receipts = Vec::new();
    for i in 0..10 {
        let payload = if i == 4 {
            "x".repeat(500)
        } else {
            format!("m{i}")
        };
        receipts.push(batcher.feed(Message::new(payload)).await.unwrap());
    }
    let mut results = Vec::new();
    for r in receipts {
        results.push(r.await);
    }
    for (i, r) in results.iter().enumerate() {
        if i == 4 {
            assert_eq!(r.as_ref().unwrap_err().kind(), ErrorKind::PayloadTooLarge);
        } else {
            assert!(r.is_ok(), "message {i}: {r:?}");
        }
    }
    let got = payloads(&mut consumer, 9).await;
    assert_eq!(got.len(), 9);
    assert!(!got.iter().any(|p| p.len() > 100));
}

#[tokio::test]
async fn a_failed_batch_fails_only_its_own_messages() {
    // The first data call is the first send: its batch fails, later batches succeed.
    let broker = faulty(FaultPlan::default().fail_call(1, ErrorKind::Unavailable));
    let mut consumer = broker.consumer("b").group("g").build().await.unwrap();
    let producer = broker.producer("b").build().await.unwrap();
    let batcher = producer.batcher(BatcherOptions::default()).unwrap();
    let first = batcher.send(Message::new("lost")).await;
    assert_eq!(first.unwrap_err().kind(), ErrorKind::Unavailable);
    let mut receipts = Vec::new();
    for i in 0..50 {
        receipts.push(batcher.feed(Message::new(format!("m{i}"))).await.unwrap());
    }
    for r in receipts {
        r.await.unwrap();
    }
    let got = payloads(&mut consumer, 50).await;
    assert_eq!(got.first().map(String::as_str), Some("m0"));
    assert!(!got.contains(&"lost".to_string()));
}

#[tokio::test]
async fn many_tasks_sending_at_once_are_batched_and_all_arrive() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut consumer = broker.consumer("b").group("g").build().await.unwrap();
    let producer = broker.producer("b").build().await.unwrap();
    let batcher = producer
        .batcher(BatcherOptions {
            concurrent_batches: 4,
            linger: Duration::from_millis(1),
            ..BatcherOptions::default()
        })
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let batcher = batcher.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                batcher
                    .send(Message::new(format!("t{t}-{i}")))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut got = payloads(&mut consumer, 800).await;
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 800);
}

#[tokio::test]
async fn fed_messages_are_sent_after_the_batcher_is_dropped() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut consumer = broker.consumer("b").group("g").build().await.unwrap();
    let producer = broker.producer("b").build().await.unwrap();
    let batcher = producer.batcher(BatcherOptions::default()).unwrap();
    let receipt = batcher.feed(Message::new("last")).await.unwrap();
    drop(batcher);
    receipt.await.unwrap();
    assert_eq!(payloads(&mut consumer, 1).await, ["last"]);
}

#[tokio::test]
async fn out_of_range_options_are_config_errors() {
    let broker = Broker::connect("memory://").await.unwrap();
    let producer = broker.producer("b").build().await.unwrap();
    for options in [
        BatcherOptions {
            max_batch: 0,
            ..BatcherOptions::default()
        },
        BatcherOptions {
            max_in_flight: usize::MAX,
            ..BatcherOptions::default()
        },
        BatcherOptions {
            concurrent_batches: 0,
            ..BatcherOptions::default()
        },
        BatcherOptions {
            linger: Duration::MAX,
            ..BatcherOptions::default()
        },
    ] {
        let e = producer.batcher(options).err().expect("refused");
        assert_eq!(e.kind(), ErrorKind::Config);
    }
}

#[tokio::test]
async fn next_batch_takes_what_is_ready_and_ends_empty_after_shutdown() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut consumer = broker
        .consumer("nb")
        .group("g")
        .prefetch(100)
        .build()
        .await
        .unwrap();
    let producer = broker.producer("nb").build().await.unwrap();
    producer
        .send_batch((0..25).map(|i| Message::new(format!("m{i}"))).collect())
        .await
        .unwrap();
    let first = consumer
        .next_batch(10, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(first.len(), 10);
    ack_all(first).await.unwrap();
    let rest = consumer
        .next_batch(100, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(rest.len(), 15);
    ack_all(rest).await.unwrap();
    assert_eq!(
        consumer
            .next_batch(0, Duration::ZERO)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Config
    );
    consumer.shutdown_handle().shutdown();
    assert!(consumer
        .next_batch(10, Duration::from_millis(50))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn next_batch_waits_no_longer_than_asked_after_the_first() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut consumer = broker.consumer("nw").group("g").build().await.unwrap();
    let producer = broker.producer("nw").build().await.unwrap();
    producer.send(Message::new("only")).await.unwrap();
    let started = tokio::time::Instant::now();
    let batch = consumer
        .next_batch(10, Duration::from_millis(100))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(batch.len(), 1);
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    ack_all(batch).await.unwrap();
}

/// A batch taken at once (the memory broker pops it under one lock) keeps every rule of
/// `next`: at most `prefetch` unsettled, send order, attempt 1, and a dropped batch is
/// delivered again whole with attempt 2 (no attempt counted for messages not handed out).
#[tokio::test]
async fn a_batch_taken_at_once_keeps_prefetch_order_and_attempts() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut consumer = broker
        .consumer("once")
        .group("g")
        .prefetch(4)
        .build()
        .await
        .unwrap();
    let producer = broker.producer("once").build().await.unwrap();
    producer
        .send_batch((0..6).map(|i| Message::new(format!("m{i}"))).collect())
        .await
        .unwrap();
    let payloads = |b: &[brokerkit::Delivery]| -> Vec<String> {
        b.iter()
            .map(|d| String::from_utf8_lossy(&d.message().payload).into_owned())
            .collect()
    };
    let batch = consumer.next_batch(10, Duration::ZERO).await.unwrap();
    assert_eq!(
        payloads(&batch),
        ["m0", "m1", "m2", "m3"],
        "prefetch bounds it"
    );
    assert!(batch.iter().all(|d| d.attempt() == 1));
    // Prefetch is used up: nothing more until a settlement.
    let more = tokio::time::timeout(Duration::from_millis(50), consumer.next()).await;
    assert!(more.is_err(), "a fifth unsettled delivery was handed out");
    drop(batch);
    let again = consumer.next_batch(10, Duration::ZERO).await.unwrap();
    // Each dropped delivery goes back to the front, so the four come back in some order.
    let mut back = payloads(&again);
    back.sort();
    assert_eq!(back, ["m0", "m1", "m2", "m3"]);
    assert!(again.iter().all(|d| d.attempt() == 2), "redelivered once");
    ack_all(again).await.unwrap();
    let rest = consumer.next_batch(10, Duration::ZERO).await.unwrap();
    assert_eq!(payloads(&rest), ["m4", "m5"]);
    assert!(
        rest.iter().all(|d| d.attempt() == 1),
        "never handed out before"
    );
    ack_all(rest).await.unwrap();
}
