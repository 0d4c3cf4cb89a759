//! The Redis and PostgreSQL idempotency stores against the running servers
//! (`BROKERKIT_REDIS_URL`, default `redis://127.0.0.1:6379`; `BROKERKIT_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`), and the fail-safe when a store is down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokerkit::idempotency::{Claim, IdempotencyStore};
use brokerkit::{connect_store, Broker, ErrorKind, Idempotency, Message, RetryPolicy};
use tokio::sync::Notify;

/// The store's URL, or `None` (a printed skip) when `name` is in `BROKERKIT_SKIP_BROKERS`.
fn url(name: &str, var: &str, default: &str) -> Option<String> {
    let skipped = std::env::var("BROKERKIT_SKIP_BROKERS").unwrap_or_default();
    if skipped.split(',').any(|s| s.trim() == name) {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP {name}: listed in BROKERKIT_SKIP_BROKERS"
        );
        return None;
    }
    Some(std::env::var(var).unwrap_or_else(|_| default.to_string()))
}

async fn store_contract(store: Arc<dyn IdempotencyStore>) {
    let key = format!("contract-{}", uuid::Uuid::new_v4());
    let lease = Duration::from_millis(400);
    let Claim::Acquired(t1) = store.claim(&key, lease).await.unwrap() else {
        panic!("first claim")
    };
    assert_eq!(store.claim(&key, lease).await.unwrap(), Claim::InProgress);
    store.release(&key, &t1).await.unwrap();
    let Claim::Acquired(t2) = store.claim(&key, lease).await.unwrap() else {
        panic!("claim after release")
    };
    // The holder "crashes": after the lease another caller gets the key.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let Claim::Acquired(t3) = store.claim(&key, lease).await.unwrap() else {
        panic!("claim after lease expiry")
    };
    store
        .complete(&key, &t2, Duration::from_secs(60))
        .await
        .unwrap(); // stale: no effect
    assert_eq!(store.claim(&key, lease).await.unwrap(), Claim::InProgress);
    store
        .complete(&key, &t3, Duration::from_millis(600))
        .await
        .unwrap();
    assert_eq!(store.claim(&key, lease).await.unwrap(), Claim::Done);
    tokio::time::sleep(Duration::from_millis(700)).await; // TTL keeps the store bounded
    assert!(matches!(
        store.claim(&key, lease).await.unwrap(),
        Claim::Acquired(_)
    ));

    // A running handler keeps its claim past the first lease by extending it. The lease
    // leaves 700 ms for each extend's round trip (a loaded CI machine took more than 150 ms).
    let key = format!("extend-{}", uuid::Uuid::new_v4());
    let lease = Duration::from_millis(1200);
    let Claim::Acquired(t) = store.claim(&key, lease).await.unwrap() else {
        panic!("claim to extend")
    };
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(store.extend(&key, &t, lease).await.unwrap(), "extend");
    }
    // 1.5 s after the claim, past its first lease: still held.
    assert_eq!(store.claim(&key, lease).await.unwrap(), Claim::InProgress);
    let stranger = brokerkit::idempotency::ClaimToken::new();
    assert!(!store.extend(&key, &stranger, lease).await.unwrap());
}

/// Two consumer instances share `store_url`; visibility timeouts shorter than the handler
/// force redeliveries; each key must be handled exactly once.
async fn two_instances_run_each_key_once(store_url: &str) {
    let name = format!(
        "memory://idem-{}?visibility_timeout_ms=150",
        uuid::Uuid::new_v4().simple()
    );
    let dest = "payments";
    let runs: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let stop = Arc::new(Notify::new());
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let broker = Broker::connect(&name).await.unwrap();
        let store = connect_store(store_url).await.unwrap();
        let runs = runs.clone();
        let stop = stop.clone();
        let handler = broker
            .consumer(dest)
            .group("billing")
            .concurrency(4)
            .retry(RetryPolicy::exponential(Duration::from_millis(20), 50))
            .idempotency(Idempotency::new(store).lease(Duration::from_secs(5)))
            .handle_raw(move |ctx, _m: Message| {
                let runs = runs.clone();
                async move {
                    let key = ctx.idempotency_key().unwrap_or_default().to_string();
                    *runs.lock().unwrap().entry(key).or_default() += 1;
                    // Longer than the visibility timeout: the broker redelivers meanwhile.
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    Ok(())
                }
            });
        tasks.push(tokio::spawn(
            handler.run_until(async move { stop.notified().await }),
        ));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let broker = Broker::connect(&name).await.unwrap();
    let p = broker.producer(dest).build().await.unwrap();
    let keys: Vec<String> = (0..10)
        .map(|i| format!("{}-{i}", uuid::Uuid::new_v4()))
        .collect();
    for k in &keys {
        for _ in 0..2 {
            let mut m = Message::new("charge");
            m.headers.set_idempotency_key(k.clone()).unwrap();
            p.send(m).await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.notify_waiters();
    let mut redelivered = 0;
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        redelivered += r.retried + r.duplicates;
    }
    let runs = runs.lock().unwrap();
    for k in &keys {
        assert_eq!(
            runs.get(k),
            Some(&1),
            "key {k} handled {:?} times",
            runs.get(k)
        );
    }
    assert!(redelivered > 0, "the test must force redeliveries");
}

#[cfg(feature = "redis")]
mod redis_store {
    use super::*;

    fn redis() -> Option<String> {
        url("redis", "BROKERKIT_REDIS_URL", "redis://127.0.0.1:6379")
    }

    #[tokio::test]
    async fn contract() {
        let Some(u) = redis() else { return };
        store_contract(connect_store(&u).await.unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shared_by_two_instances() {
        let Some(u) = redis() else { return };
        two_instances_run_each_key_once(&u).await;
    }

    #[tokio::test]
    async fn unreachable_is_a_retryable_error() {
        let e = connect_store("redis://:s3cret@127.0.0.1:1")
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}

#[cfg(feature = "postgres")]
mod postgres_store {
    use super::*;

    fn pg() -> Option<String> {
        url(
            "postgres",
            "BROKERKIT_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        )
    }

    #[tokio::test]
    async fn contract() {
        let Some(u) = pg() else { return };
        store_contract(connect_store(&u).await.unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shared_by_two_instances() {
        let Some(u) = pg() else { return };
        two_instances_run_each_key_once(&u).await;
    }

    #[tokio::test]
    async fn unreachable_is_a_retryable_error() {
        let e = connect_store("postgres://u:s3cret@127.0.0.1:1/test")
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}

#[tokio::test]
async fn memory_store_contract() {
    store_contract(connect_store("memory://").await.unwrap()).await;
}

#[tokio::test]
async fn unknown_store_scheme_lists_available() {
    let e = connect_store("mongodb://x").await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("memory"), "{e}");
}

/// A store that is down: the handler does not run, the message is not acked as done and
/// comes back; once the store is back it is handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_store_fails_safe() {
    struct Flaky {
        inner: brokerkit::idempotency::MemoryStore,
        down: std::sync::atomic::AtomicBool,
    }
    #[async_trait::async_trait]
    impl IdempotencyStore for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        async fn claim(&self, key: &str, lease: Duration) -> brokerkit::Result<Claim> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(brokerkit::Error::new(ErrorKind::Unavailable, "store down"));
            }
            self.inner.claim(key, lease).await
        }
        async fn complete(
            &self,
            k: &str,
            t: &brokerkit::idempotency::ClaimToken,
            ttl: Duration,
        ) -> brokerkit::Result<()> {
            self.inner.complete(k, t, ttl).await
        }
        async fn release(
            &self,
            k: &str,
            t: &brokerkit::idempotency::ClaimToken,
        ) -> brokerkit::Result<()> {
            self.inner.release(k, t).await
        }
    }
    let store = Arc::new(Flaky {
        inner: Default::default(),
        down: true.into(),
    });
    let broker = Broker::connect("memory://").await.unwrap();
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let runs_in = runs.clone();
    let stop = Arc::new(Notify::new());
    let stop_in = stop.clone();
    let handler = broker
        .consumer("q")
        .retry(RetryPolicy::exponential(Duration::from_millis(20), 3))
        .idempotency(Idempotency::new(store.clone()))
        .handle_raw(move |_ctx, _m| {
            let runs = runs_in.clone();
            async move {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
        });
    let run = tokio::spawn(handler.run_until(async move { stop_in.notified().await }));
    let mut m = Message::new("x");
    m.headers.set_idempotency_key("k").unwrap();
    broker
        .producer("q")
        .build()
        .await
        .unwrap()
        .send(m)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        runs.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no handling while the store is down"
    );
    store.down.store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.notify_one();
    let report = run.await.unwrap().unwrap();
    assert_eq!(
        runs.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "{report:?}"
    );
    assert_eq!(
        report.dead_lettered, 0,
        "store outages never dead-letter: {report:?}"
    );
    assert!(report.retried >= 2, "{report:?}");
}
