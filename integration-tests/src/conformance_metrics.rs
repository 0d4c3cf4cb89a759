//! Conformance case for the metrics layers: counts read back through an in-memory
//! OpenTelemetry exporter must be exact on every broker.

use std::time::Duration;

use brokerkit::{dead_letter_destination, Context, Error, ErrorKind, Message, RetryPolicy};

use crate::harness::{Ctx, Outcome, Stop};
use crate::metrics_probe::MetricsProbe;

fn fate(fate: &str, i: usize) -> Message {
    let mut m = Message::new(format!("{fate}-{i}"));
    m.headers.insert("fate", fate).unwrap();
    m
}

/// Five sent; three handled at once, one after a retry, one dead-lettered: sent 5, consumed
/// 6, processed 6, retried 1, dead-lettered 1 (as `rejected`), duplicates 0.
pub async fn metrics_count_exactly(c: Ctx) -> Outcome {
    let caps = c.broker.capabilities().clone();
    if !caps.redelivery || !caps.dead_letter.is_available() {
        return Outcome::Skipped("needs redelivery and dead-lettering".into());
    }
    let dest = c.dest("m");
    let probe = MetricsProbe::new();
    let mut dlq = c
        .broker
        .consumer(&dead_letter_destination(&dest))
        .group("g")
        .build()
        .await
        .unwrap();
    let policy = if caps.delayed_redelivery.is_available() {
        RetryPolicy::exponential(Duration::from_millis(50), 3).without_jitter()
    } else {
        RetryPolicy::immediate(3)
    };
    let stop = Stop::new();
    let running = c
        .broker
        .consumer(&dest)
        .group("g")
        .retry(policy)
        .instruments(probe.instruments.clone())
        .handle_raw(|ctx: Context, m: Message| async move {
            match m.headers.get("fate") {
                Some("flaky") if ctx.attempt() == 1 => {
                    Err(Error::new(ErrorKind::Handler, "flaky").into())
                }
                Some("bad") => Err(Error::new(ErrorKind::Rejected, "bad").into()),
                _ => Ok(()),
            }
        })
        .start(stop.signal())
        .await
        .unwrap();
    let producer = c
        .broker
        .producer(&dest)
        .instruments(probe.instruments.clone())
        .build()
        .await
        .unwrap();
    for (i, f) in ["ok", "ok", "ok", "flaky", "bad"].iter().enumerate() {
        producer.send(fate(f, i)).await.unwrap();
    }
    let dead = c.recv(&mut dlq).await;
    dead.ack().await.unwrap();
    let d = [("messaging.destination.name", dest.as_str())];
    let deadline = tokio::time::Instant::now() + crate::RECEIVE_TIMEOUT;
    while probe.total("messaging.process.duration", &d) < 6 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every delivery was processed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.now();
    let report = running.join().await.unwrap();
    assert_eq!(
        (report.acked, report.retried, report.dead_lettered),
        (4, 1, 1)
    );
    assert_eq!(probe.total("messaging.client.sent.messages", &d), 5);
    assert_eq!(probe.total("messaging.client.operation.duration", &d), 5);
    assert_eq!(probe.total("messaging.client.consumed.messages", &d), 6);
    assert_eq!(probe.total("messaging.process.duration", &d), 6);
    assert_eq!(probe.total("brokerkit.retries", &d), 1);
    let rejected = [
        ("messaging.destination.name", dest.as_str()),
        ("error.type", "rejected"),
    ];
    assert_eq!(probe.total("brokerkit.dead_letters", &rejected), 1);
    assert_eq!(probe.total("brokerkit.duplicates", &d), 0);
    assert_eq!(probe.total("brokerkit.handlers.in_flight", &d), 0);
    let group = [
        ("messaging.consumer.group.name", "g"),
        ("messaging.destination.name", dest.as_str()),
    ];
    assert_eq!(probe.total("messaging.client.consumed.messages", &group), 6);
    Outcome::Passed
}
