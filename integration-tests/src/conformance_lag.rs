//! Conformance cases for consumer lag and dead-letter depth: the same figure on every broker,
//! from the broker's own count, within the accuracy the broker declares in
//! [`brokerkit::Capabilities::lag`].

use std::time::{Duration, Instant};

use brokerkit::{Consumer, DeadLetterReason, ErrorKind, Lag, LagAccuracy, Message};

use crate::harness::{Ctx, Outcome};

/// Messages sent by [`lag_after_partial_ack`].
const SENT: u64 = 1000;
/// Messages consumed and acked by [`lag_after_partial_ack`].
const ACKED: u64 = 400;
/// Messages dead-lettered by [`dead_letter_depth`].
const DEAD: u64 = 5;
/// Prefetch of the consumers here (what a `WaitingOnly` broker may leave uncounted).
const PREFETCH: usize = 16;
/// Longest wait for a lag figure to settle (`Approximate` figures are eventually consistent).
const SETTLE: Duration = Duration::from_secs(60);

/// Writes a line past the test harness's output capture (the measured figures).
fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Polls `read` until `ok` holds for its figure, or [`SETTLE`] passed; returns the last lag.
async fn settle<F, Fut>(mut read: F, ok: impl Fn(&Lag) -> bool) -> Lag
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = brokerkit::Result<Lag>>,
{
    let started = Instant::now();
    loop {
        let lag = read().await.expect("lag");
        if ok(&lag) || started.elapsed() > SETTLE {
            return lag;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether `got` is `want` within what `accuracy` allows: exact brokers exactly, approximate ones
/// within 2 %, waiting-only brokers down to `want - uncounted`.
fn within(accuracy: LagAccuracy, got: u64, want: u64, uncounted: u64) -> bool {
    match accuracy {
        LagAccuracy::WaitingOnly => got <= want && got + uncounted >= want,
        LagAccuracy::Approximate => got.abs_diff(want) * 50 <= want.max(50),
        _ => got == want,
    }
}

async fn consumer(c: &Ctx, dest: &str) -> Consumer {
    c.broker
        .consumer(dest)
        .group("billing")
        .prefetch(PREFETCH)
        .build()
        .await
        .unwrap()
}

async fn send_all(c: &Ctx, dest: &str, n: u64) {
    let producer = c.broker.producer(dest).build().await.unwrap();
    let messages: Vec<Message> = (0..n).map(|i| Message::new(format!("m{i}"))).collect();
    for chunk in messages.chunks(100) {
        producer.send_batch(chunk.to_vec()).await.unwrap();
    }
}

/// Send 1,000 messages, consume and ack 400: `lag()` reports 600, while the consumer runs
/// (in-flight deliveries counted where the broker tells them) and after it closed.
pub async fn lag_after_partial_ack(c: Ctx) -> Outcome {
    let caps = c.broker.capabilities().clone();
    let Some(accuracy) = caps.lag else {
        let e = c.broker.lag(&c.dest("q"), None).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        return Outcome::Skipped("the broker declares no consumer lag".into());
    };
    let dest = c.dest("q");
    let mut consumer = consumer(&c, &dest).await;
    let want = SENT - ACKED;
    send_all(&c, &dest, SENT).await;
    let sent = settle(
        || c.broker.lag(&dest, Some("billing")),
        |l| within(accuracy, l.total, SENT, PREFETCH as u64),
    )
    .await;
    for _ in 0..ACKED {
        c.recv(&mut consumer).await.ack().await.unwrap();
    }
    let open = settle(
        || consumer.lag(),
        |l| within(accuracy, l.total, want, PREFETCH as u64),
    )
    .await;
    consumer.close().await.unwrap();
    let closed = settle(|| consumer.lag(), |l| within(accuracy, l.total, want, 0)).await;
    let other = c.broker.lag(&dest, Some("never-joined")).await.unwrap();
    report(&format!(
        "LAG {}: accuracy {accuracy}; after sending {SENT}: {}; after acking {ACKED} \
         (consumer open): {} (waiting {:?}, in flight {:?}, delayed {:?}, {} partitions); \
         consumer closed: {}; a group that never joined: {}",
        c.broker.adapter(),
        sent.total,
        open.total,
        open.waiting,
        open.in_flight,
        open.delayed,
        open.partitions.len(),
        closed.total,
        other.total
    ));
    assert_eq!(closed.accuracy, accuracy);
    assert!(
        within(accuracy, sent.total, SENT, PREFETCH as u64),
        "after sending {SENT}: lag {} ({accuracy})",
        sent.total
    );
    assert!(
        within(accuracy, open.total, want, PREFETCH as u64),
        "consumer open: lag {} ({accuracy}), want {want}",
        open.total
    );
    assert!(
        within(accuracy, closed.total, want, 0),
        "consumer closed: lag {} ({accuracy}), want {want}",
        closed.total
    );
    if !closed.partitions.is_empty() {
        let sum: u64 = closed.partitions.iter().map(|p| p.lag).sum();
        assert_eq!(sum, closed.total, "partition lags add up to the total");
    }
    if let (Some(w), Some(f)) = (open.waiting, open.in_flight) {
        assert_eq!(
            w + f + open.delayed.unwrap_or(0),
            open.total,
            "parts add up to the total"
        );
    }
    Outcome::Passed
}

/// Dead-lettering 5 messages shows as a dead-letter depth of 5, and as 5 fewer in the lag.
pub async fn dead_letter_depth(c: Ctx) -> Outcome {
    let caps = c.broker.capabilities().clone();
    let Some(accuracy) = caps.lag else {
        return Outcome::Skipped("the broker declares no consumer lag".into());
    };
    if !caps.dead_letter.is_available() {
        return Outcome::Skipped("no dead-letter destination".into());
    }
    let dest = c.dest("q");
    let mut consumer = consumer(&c, &dest).await;
    let before = c.broker.dead_letter_depth(&dest).await.unwrap();
    assert_eq!(before.total, 0, "a new dead-letter destination is empty");
    send_all(&c, &dest, 20).await;
    for _ in 0..DEAD {
        let d = c.recv(&mut consumer).await;
        d.dead_letter(DeadLetterReason::new("lag test").with_kind(ErrorKind::Handler))
            .await
            .unwrap();
    }
    consumer.close().await.unwrap();
    let depth = settle(
        || c.broker.dead_letter_depth(&dest),
        |l| within(accuracy, l.total, DEAD, 0),
    )
    .await;
    let lag = settle(
        || consumer.lag(),
        |l| within(accuracy, l.total, 20 - DEAD, 0),
    )
    .await;
    report(&format!(
        "LAG {}: dead-letter depth after dead-lettering {DEAD} of 20: {}; lag: {}",
        c.broker.adapter(),
        depth.total,
        lag.total
    ));
    assert!(
        within(accuracy, depth.total, DEAD, 0),
        "dead-letter depth {} ({accuracy}), want {DEAD}",
        depth.total
    );
    assert!(
        within(accuracy, lag.total, 20 - DEAD, 0),
        "lag {} ({accuracy}), want {}",
        lag.total,
        20 - DEAD
    );
    Outcome::Passed
}

/// A message nacked with a delay is still not acked: it stays in the lag while it waits
/// (a delayed queue, ack-pending, not-visible, a retry topic: wherever the adapter holds it;
/// a `WaitingOnly` accuracy says the held ones are not counted).
pub async fn nacked_still_counts(c: Ctx) -> Outcome {
    let caps = c.broker.capabilities().clone();
    let Some(accuracy) = caps.lag else {
        return Outcome::Skipped("the broker declares no consumer lag".into());
    };
    if !caps.delayed_redelivery.is_available() {
        return Outcome::Skipped("no delayed redelivery".into());
    }
    let dest = c.dest("q");
    let mut consumer = consumer(&c, &dest).await;
    send_all(&c, &dest, 10).await;
    let d = c.recv(&mut consumer).await;
    d.nack(Some(Duration::from_secs(30))).await.unwrap();
    consumer.close().await.unwrap();
    let lag = settle(|| consumer.lag(), |l| within(accuracy, l.total, 10, 1)).await;
    report(&format!(
        "LAG {}: 10 sent, 1 nacked with a 30 s delay, none acked: {} (waiting {:?}, in flight \
         {:?}, delayed {:?}, {} partitions)",
        c.broker.adapter(),
        lag.total,
        lag.waiting,
        lag.in_flight,
        lag.delayed,
        lag.partitions.len()
    ));
    assert!(
        within(accuracy, lag.total, 10, 1),
        "lag {} ({accuracy}), want 10",
        lag.total
    );
    Outcome::Passed
}

/// Lag of an invalid destination or group name is a `Config` error, before any I/O.
pub async fn lag_bad_names(c: Ctx) -> Outcome {
    if c.broker.capabilities().lag.is_none() {
        return Outcome::Skipped("the broker declares no consumer lag".into());
    }
    let e = c.broker.lag("bad name!", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let e = c.broker.lag(&c.dest("q"), Some("")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    Outcome::Passed
}
