//! Fault cases over each adapter's [`Fixture`]: the broker restarted mid-stream with a
//! producer and a consumer both running. Run by `tests/faults.rs` one at a time (the RabbitMQ
//! fixture restarts the shared broker, which would disturb concurrent cases).

use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerkit::{Broker, Message};

use crate::fixture::Fixture;
use crate::harness::Outcome;

/// Messages of the restart case: `$BROKERKIT_RESTART_MESSAGES`, default 5,000 (the bar of
/// 100,000 is run by hand: `BROKERKIT_RESTART_MESSAGES=100000 cargo test ... --test faults`).
pub fn restart_messages() -> usize {
    std::env::var("BROKERKIT_RESTART_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(5_000)
}

fn report(line: &str) {
    // Past the test harness's capture, so the figures show in every run.
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Sends N numbered messages (batches of 100, retried on retryable errors: duplicates
/// allowed, any other error fails) while a consumer receives and acks; after a third is sent
/// the broker is stopped for 2 s and started again. Every message must arrive; duplicates
/// are counted and reported. No ack error is ignored: each must be retryable (the message is
/// then not settled and must come again, or was settled and the error was about the reply),
/// each is counted and reported with how many of those messages came again.
pub async fn broker_restart_mid_stream(url: &str, f: Arc<dyn Fixture>) -> Outcome {
    let total = restart_messages();
    let mut restartable = match f.restartable(url).await {
        Ok(r) => r,
        Err(why) => return Outcome::Skipped(why),
    };
    let url = restartable.url();
    let broker = Broker::connect(&url).await.expect("connect");
    if !broker.capabilities().redelivery {
        broker.close().await.unwrap();
        return Outcome::Skipped("the broker does not redeliver".into());
    }
    let adapter = broker.adapter();
    let dest = format!(
        "bk-restart-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let mut consumer = broker
        .consumer(&dest)
        .group("g")
        .prefetch(256)
        .build()
        .await
        .expect("consumer");
    let producer = broker.producer(&dest).build().await.expect("producer");
    let started = Instant::now();
    let sent = Arc::new(AtomicUsize::new(0));
    let send_retries = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (sent, send_retries) = (sent.clone(), send_retries.clone());
        tokio::spawn(async move {
            let mut next = 0;
            while next < total {
                let n = 100.min(total - next);
                let batch: Vec<Message> = (next..next + n)
                    .map(|i| Message::new(i.to_string()))
                    .collect();
                match producer.send_batch(batch).await {
                    Ok(()) => {
                        next += n;
                        sent.store(next, Ordering::Relaxed);
                    }
                    Err(e) => {
                        assert!(e.is_retryable(), "non-retryable send error: {e}");
                        send_retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        })
    };
    let restarter = {
        let sent = sent.clone();
        tokio::spawn(async move {
            while sent.load(Ordering::Relaxed) < total / 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let at = sent.load(Ordering::Relaxed);
            let t = Instant::now();
            restartable.restart(Duration::from_secs(2)).await;
            (restartable, at, t.elapsed())
        })
    };

    let mut seen = HashSet::with_capacity(total);
    let mut deliveries = 0usize;
    let mut receive_errors = 0usize;
    let mut failed_acks: HashSet<usize> = HashSet::new();
    let mut ack_errors = 0usize;
    let mut came_again = 0usize;
    let deadline = Instant::now() + Duration::from_secs(120 + total as u64 / 200);
    while seen.len() < total {
        assert!(
            Instant::now() < deadline,
            "only {} of {total} received (sent {})",
            seen.len(),
            sent.load(Ordering::Relaxed)
        );
        let d = match tokio::time::timeout(Duration::from_secs(30), consumer.next()).await {
            Ok(Ok(Some(d))) => d,
            Ok(Ok(None)) => panic!("consumer ended"),
            Ok(Err(e)) => {
                assert!(e.is_retryable(), "non-retryable receive error: {e}");
                receive_errors += 1;
                continue;
            }
            Err(_) => continue,
        };
        deliveries += 1;
        let i: usize = String::from_utf8_lossy(&d.message().payload)
            .parse()
            .expect("a number");
        seen.insert(i);
        if failed_acks.remove(&i) {
            came_again += 1;
        }
        if let Err(e) = d.ack().await {
            assert!(e.is_retryable(), "non-retryable ack error: {e}");
            ack_errors += 1;
            failed_acks.insert(i);
        }
    }
    let elapsed = started.elapsed();
    sender.await.expect("sender task");
    let (restartable, restarted_at, down) = restarter.await.expect("restarter task");
    let lost = total - seen.len();
    report(&format!(
        "restart {adapter}: sent {total} (broker restarted after {restarted_at} sent, down \
         {:.1} s), received {} distinct in {deliveries} deliveries, {} duplicates, {lost} lost, \
         {send_retries} send retries, {receive_errors} receive errors, {ack_errors} ack errors \
         ({came_again} of those messages came again), {:.1} s",
        down.as_secs_f64(),
        seen.len(),
        deliveries - seen.len(),
        elapsed.as_secs_f64(),
        send_retries = send_retries.load(Ordering::Relaxed),
    ));
    assert_eq!(lost, 0);
    let _ = tokio::time::timeout(Duration::from_secs(20), broker.close()).await;
    drop(restartable);
    Outcome::Passed
}
