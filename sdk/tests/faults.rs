//! The fault-injecting wrapper over the memory broker: each fault does what it says, and
//! `Producer::send_batch` reports failed and unattempted entries by their index in the
//! caller's batch across chunks.

use std::sync::Arc;
use std::time::Duration;

use brokerkit::core::BatchError;
use brokerkit::faults::{FaultPlan, FaultyBackend};
use brokerkit::memory::{MemoryBroker, MemoryConfig};
use brokerkit::{Broker, Consumer, ErrorKind, Message};

fn faulty(plan: FaultPlan) -> Broker {
    let memory = Arc::new(MemoryBroker::new(MemoryConfig::default()));
    Broker::from_backend(FaultyBackend::wrap(memory, plan))
}

async fn texts(consumer: &mut Consumer, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let d = tokio::time::timeout(Duration::from_secs(5), consumer.next())
            .await
            .expect("in time")
            .expect("no error")
            .expect("a delivery");
        out.push(String::from_utf8_lossy(&d.message().payload).into_owned());
        d.ack().await.unwrap();
    }
    let more = tokio::time::timeout(Duration::from_millis(100), consumer.next()).await;
    assert!(more.is_err(), "an unexpected extra delivery");
    out
}

async fn send_all(broker: &Broker, dest: &str, n: usize) {
    let producer = broker.producer(dest).build().await.unwrap();
    for i in 0..n {
        producer.send(Message::new(format!("m{i}"))).await.unwrap();
    }
}

#[tokio::test]
async fn drop_duplicate_and_reorder_sends() {
    let broker = faulty(FaultPlan::default().drop_every(2));
    let mut c = broker.consumer("d").build().await.unwrap();
    send_all(&broker, "d", 4).await;
    assert_eq!(texts(&mut c, 2).await, ["m0", "m2"]);

    let broker = faulty(FaultPlan::default().duplicate_every(2));
    let mut c = broker.consumer("d").build().await.unwrap();
    send_all(&broker, "d", 2).await;
    assert_eq!(texts(&mut c, 3).await, ["m0", "m1", "m1"]);

    let broker = faulty(FaultPlan::default().reorder_every(2));
    let mut c = broker.consumer("d").build().await.unwrap();
    send_all(&broker, "d", 3).await;
    assert_eq!(texts(&mut c, 3).await, ["m0", "m2", "m1"]);
}

#[tokio::test]
async fn dropped_delivery_comes_back_with_a_higher_attempt() {
    let plan = FaultPlan::default()
        .drop_delivery_every(2)
        .delay(Duration::from_millis(1));
    let broker = faulty(plan);
    let mut c = broker.consumer("d").build().await.unwrap();
    send_all(&broker, "d", 2).await;
    // Delivery 1 (m0) is handed out, delivery 2 (m1) is dropped unsettled and comes back.
    let first = c.next().await.unwrap().unwrap();
    assert_eq!(
        (&first.message().payload[..], first.attempt()),
        (&b"m0"[..], 1)
    );
    first.ack().await.unwrap();
    let again = c.next().await.unwrap().unwrap();
    assert_eq!(
        (&again.message().payload[..], again.attempt()),
        (&b"m1"[..], 2)
    );
    again.ack().await.unwrap();
}

#[tokio::test]
async fn failed_chunk_is_reported_by_index_in_the_whole_batch() {
    // Chunks of 3: calls 1 and 2 send entries 0..6, call 3 (entries 6..9) fails, 9 is never
    // attempted.
    let broker = faulty(
        FaultPlan::default()
            .max_batch(3)
            .fail_call(3, ErrorKind::Unavailable),
    );
    let mut c = broker.consumer("d").build().await.unwrap();
    let producer = broker.producer("d").build().await.unwrap();
    let batch = (0..10).map(|i| Message::new(format!("m{i}"))).collect();
    let e = producer.send_batch(batch).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    let report = BatchError::of(&e).expect("a structured report");
    let failed: Vec<usize> = report.failed.iter().map(|(i, _)| *i).collect();
    assert_eq!(failed, [6, 7, 8], "{e}");
    assert_eq!(report.not_attempted, [9], "{e}");
    assert_eq!(report.total, 10);
    let sent: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
    assert_eq!(texts(&mut c, 6).await, sent);
}
