//! The idempotency layer's loss and duplicate windows (issue 12, item 4): a failed `complete`
//! must not end in an ack that forgets the key, and a key busy with another consumer must not
//! use up the waiting message's attempts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use brokerkit::idempotency::{Claim, ClaimToken, IdempotencyStore, MemoryStore};
use brokerkit::{Broker, Error, ErrorKind, Idempotency, Message, Result};

/// Fault injection: a memory store whose first `fail_completes` completes fail.
struct FlakyComplete {
    inner: MemoryStore,
    fail_completes: AtomicUsize,
}

#[async_trait]
impl IdempotencyStore for FlakyComplete {
    fn name(&self) -> &'static str {
        "flaky"
    }
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim> {
        self.inner.claim(key, lease).await
    }
    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<()> {
        if self
            .fail_completes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Error::new(ErrorKind::Unavailable, "store blip"));
        }
        self.inner.complete(key, token, ttl).await
    }
    async fn release(&self, key: &str, token: &ClaimToken) -> Result<()> {
        self.inner.release(key, token).await
    }
    async fn extend(&self, key: &str, token: &ClaimToken, lease: Duration) -> Result<bool> {
        self.inner.extend(key, token, lease).await
    }
}

fn keyed(payload: &str, key: &str) -> Message {
    let mut m = Message::new(payload.to_string());
    m.headers.set_idempotency_key(key).unwrap();
    m
}

#[tokio::test]
async fn a_failed_complete_is_retried_so_a_later_duplicate_is_skipped() {
    let store = Arc::new(FlakyComplete {
        inner: MemoryStore::new(),
        fail_completes: AtomicUsize::new(2),
    });
    let b = Broker::connect("memory://").await.unwrap();
    let p = b.producer("orders").build().await.unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let running = b
        .consumer("orders")
        .idempotency(Idempotency::new(store.clone()).lease(Duration::from_millis(300)))
        .handle_raw(move |_ctx, _m| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .start(std::future::pending())
        .await
        .unwrap();
    p.send(keyed("first", "K")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Well past the lease: a duplicate of K must be recognised as handled.
    p.send(keyed("resent", "K")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the key was not recorded as done"
    );
    drop(running);
}

#[tokio::test]
async fn waiting_for_a_busy_key_does_not_use_up_attempts() {
    let b = Broker::connect("memory://").await.unwrap();
    let p = b.producer("orders").build().await.unwrap();
    let seen: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let log = seen.clone();
    let running = b
        .consumer("orders")
        .concurrency(2)
        .idempotency(Idempotency::new(Arc::new(MemoryStore::new())).lease(Duration::from_secs(5)))
        .handle_raw(move |ctx, m| {
            let text = String::from_utf8_lossy(&m.payload).to_string();
            log.lock().unwrap().push((text.clone(), ctx.attempt()));
            async move {
                if text == "a" {
                    // Holds the key a while, then gives up on it for good (claim released).
                    tokio::time::sleep(Duration::from_millis(900)).await;
                    return Err(Error::new(ErrorKind::Rejected, "no").into());
                }
                Ok(())
            }
        })
        .start(std::future::pending())
        .await
        .unwrap();
    p.send(keyed("a", "K")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    p.send(keyed("b", "K")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while seen.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("b runs once a released the key");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [("a".to_string(), 1), ("b".to_string(), 1)],
        "b's attempts were used up waiting"
    );
    drop(running);
}
