//! Out-of-range options are `Config` errors or clamped, never panics (issue 12, item 10).

use std::time::Duration;

use brokerkit::idempotency::{MAX_LEASE, MAX_TTL};
use brokerkit::retry::MAX_DELAY;
use brokerkit::{Broker, ErrorKind, Message, RedriveOptions, RetryPolicy, MAX_PREFETCH};

#[tokio::test]
async fn huge_prefetch_and_concurrency_are_config_errors() {
    let b = Broker::connect("memory://").await.unwrap();
    for n in [usize::MAX, usize::MAX / 2, MAX_PREFETCH + 1] {
        let Err(e) = b.consumer("q").prefetch(n).build().await else {
            panic!("prefetch {n} accepted");
        };
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        let e = b
            .consumer("q")
            .concurrency(n)
            .handle_raw(|_ctx, _m| async { Ok(()) })
            .run_until(async {})
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    }
    b.consumer("q")
        .prefetch(MAX_PREFETCH)
        .build()
        .await
        .unwrap();
}

#[test]
fn huge_retry_delays_are_clamped() {
    let p = RetryPolicy::exponential(Duration::MAX, 3).max_delay(Duration::MAX);
    assert_eq!(p.backoff.max, MAX_DELAY);
    for attempt in [1, 2, 64, u32::MAX] {
        assert!(p.backoff.delay(attempt) <= MAX_DELAY);
    }
    let p = RetryPolicy::exponential(Duration::from_secs(1), 3)
        .max_delay(Duration::MAX)
        .without_jitter();
    assert_eq!(p.backoff.delay(u32::MAX), MAX_DELAY);
}

#[tokio::test]
async fn huge_idempotency_lease_and_ttl_are_clamped() {
    let store = std::sync::Arc::new(brokerkit::idempotency::MemoryStore::new());
    let idem = brokerkit::Idempotency::new(store)
        .lease(Duration::MAX)
        .ttl(Duration::MAX);
    let b = Broker::connect("memory://").await.unwrap();
    let p = b.producer("q").build().await.unwrap();
    let mut m = Message::new("x");
    m.headers.set_idempotency_key("k1").unwrap();
    p.send(m).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let running = b
        .consumer("q")
        .idempotency(idem)
        .handle_raw(move |_ctx, _m| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(());
                Ok(())
            }
        })
        .start(std::future::pending())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("handled with a Duration::MAX lease")
        .unwrap();
    drop(running);
    assert!(MAX_LEASE <= MAX_TTL);
}

#[tokio::test]
async fn redrive_with_no_limit_and_a_tiny_rate_works() {
    let b = Broker::connect("memory://").await.unwrap();
    let report = brokerkit::redrive(
        &b,
        "q.dlq",
        RedriveOptions::default()
            .limit(usize::MAX)
            .rate(f64::MIN_POSITIVE),
    )
    .await
    .unwrap();
    assert_eq!(report.total_moved(), 0);
}
