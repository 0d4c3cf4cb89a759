//! Conformance cases for pipelined single sends (`SendBatcher`) and batch consumption
//! (`Consumer::next_batch`): the same promises on every broker.

use std::collections::HashSet;
use std::time::Duration;

use brokerkit::{ack_all, BatcherOptions, Message};

use crate::harness::{Ctx, Outcome};

/// 200 messages fed from one task through a batcher: every receipt confirms, and a consumer
/// taking batches of at most 32 gets each message once, none after `ack_all`.
pub async fn pipelined_send_and_batch_receive(c: Ctx) -> Outcome {
    let dest = c.dest("pb");
    let mut consumer = c
        .broker
        .consumer(&dest)
        .group("g")
        .prefetch(64)
        .build()
        .await
        .unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    let batcher = producer.batcher(BatcherOptions::default()).unwrap();
    let n = 200;
    let mut receipts = Vec::with_capacity(n);
    for i in 0..n {
        receipts.push(batcher.feed(Message::new(format!("{i}"))).await.unwrap());
    }
    batcher.flush().await.unwrap();
    for (i, r) in receipts.into_iter().enumerate() {
        if let Err(e) = r.await {
            panic!("message {i} was not confirmed: {e}");
        }
    }
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + crate::RECEIVE_TIMEOUT * 2;
    while seen.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} arrived",
            seen.len()
        );
        let batch = tokio::time::timeout(
            crate::RECEIVE_TIMEOUT,
            consumer.next_batch(32, Duration::from_millis(100)),
        )
        .await
        .expect("a batch in time")
        .unwrap();
        assert!(!batch.is_empty(), "the consumer ended early");
        assert!(batch.len() <= 32, "a batch of {}", batch.len());
        for d in &batch {
            let text = String::from_utf8_lossy(&d.message().payload).into_owned();
            assert!(seen.insert(text.clone()), "duplicate {text}");
        }
        ack_all(batch).await.unwrap();
    }
    c.expect_nothing(&mut consumer, Duration::from_millis(500))
        .await;
    Outcome::Passed
}
