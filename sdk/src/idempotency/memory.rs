//! In-process idempotency store (the default): one process only.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use brokerkit_core::Result;

use super::{Claim, ClaimToken, IdempotencyStore};

enum State {
    Claimed(ClaimToken),
    Done,
}

struct Slot {
    state: State,
    expires: Instant,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<Arc<str>, Slot>,
    /// Expiry records in insertion order; stale ones are skipped. Keeps memory bounded by
    /// the keys seen within the TTL.
    expiries: VecDeque<(Instant, Arc<str>)>,
}

/// Default most keys a [`MemoryStore`] remembers.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// Claims in a hash map with lease and TTL expiry, holding at most `max_keys` keys
/// (1,000,000 unless [`MemoryStore::with_max_keys`]).
///
/// At the cap, a new key first evicts expired keys, then the oldest keys by when they were
/// last set (claimed or completed), with a warning (at most one per 10 s). A forgotten done
/// key is handled again if its message comes back; a forgotten claim lets a duplicate run
/// beside it. Size the cap above the keys you see within the TTL.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    max_keys: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            inner: Mutex::default(),
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// Rate limit of the "keys forgotten at the cap" warning.
static EVICTION_WARNINGS: brokerkit_core::foreign_headers::WarnLimit =
    brokerkit_core::foreign_headers::WarnLimit::new();

impl MemoryStore {
    /// An empty store with the default cap.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// An empty store remembering at most `max_keys` keys (at least 1).
    pub fn with_max_keys(max_keys: usize) -> Self {
        MemoryStore {
            inner: Mutex::default(),
            max_keys: max_keys.max(1),
        }
    }

    /// Keys currently remembered (claimed or done).
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn evict(&mut self, now: Instant) {
        while let Some((at, _)) = self.expiries.front() {
            if *at > now {
                break;
            }
            let Some((at, key)) = self.expiries.pop_front() else {
                break;
            };
            if self.slots.get(&*key).is_some_and(|s| s.expires <= at) {
                self.slots.remove(&*key);
            }
        }
    }

    /// Room for one new key under `max`: expired keys go first, then the oldest set.
    fn make_room(&mut self, now: Instant, max: usize) {
        if self.slots.len() < max {
            return;
        }
        self.evict(now);
        let mut forgotten = 0usize;
        while self.slots.len() >= max {
            let Some((at, key)) = self.expiries.pop_front() else {
                break;
            };
            // A stale record (the key was set again later) is skipped.
            if self.slots.get(&*key).is_some_and(|s| s.expires == at) {
                self.slots.remove(&*key);
                forgotten += 1;
            }
        }
        if forgotten > 0 {
            if let Some(suppressed) = EVICTION_WARNINGS.due() {
                tracing::warn!(
                    forgotten,
                    suppressed,
                    max_keys = max,
                    "idempotency memory store is full; the oldest live keys were forgotten"
                );
            }
        }
    }

    fn set(&mut self, key: &str, state: State, expires: Instant) {
        // One shared allocation per key, reused when the key is set again.
        let key: Arc<str> = match self.slots.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => Arc::from(key),
        };
        self.expiries.push_back((expires, key.clone()));
        self.slots.insert(key, Slot { state, expires });
    }
}

/// `now + by`, at most a year ahead (`Instant + Duration::MAX` panics).
fn later(now: Instant, by: Duration) -> Instant {
    now.checked_add(by.min(super::MAX_TTL)).unwrap_or(now)
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim> {
        let now = Instant::now();
        let mut g = self.lock();
        g.evict(now);
        match g.slots.get(key) {
            Some(s) if s.expires > now => Ok(match s.state {
                State::Done => Claim::Done,
                State::Claimed(_) => Claim::InProgress,
            }),
            _ => {
                let token = ClaimToken::new();
                if !g.slots.contains_key(key) {
                    g.make_room(now, self.max_keys);
                }
                g.set(key, State::Claimed(token.clone()), later(now, lease));
                Ok(Claim::Acquired(token))
            }
        }
    }

    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<()> {
        let mut g = self.lock();
        if matches!(g.slots.get(key), Some(Slot { state: State::Claimed(t), .. }) if t == token) {
            g.set(key, State::Done, later(Instant::now(), ttl));
        }
        Ok(())
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<()> {
        let mut g = self.lock();
        if matches!(g.slots.get(key), Some(Slot { state: State::Claimed(t), .. }) if t == token) {
            g.slots.remove(key);
        }
        Ok(())
    }

    async fn extend(&self, key: &str, token: &ClaimToken, lease: Duration) -> Result<bool> {
        let now = Instant::now();
        let mut g = self.lock();
        let held = matches!(g.slots.get(key), Some(Slot { state: State::Claimed(t), expires }) if t == token && *expires > now);
        if held {
            g.set(key, State::Claimed(token.clone()), later(now, lease));
        }
        Ok(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn claim_complete_release_and_lease_expiry() {
        let s = MemoryStore::new();
        let lease = Duration::from_millis(50);
        let Claim::Acquired(t) = s.claim("k", lease).await.unwrap() else {
            panic!()
        };
        assert_eq!(s.claim("k", lease).await.unwrap(), Claim::InProgress);
        s.release("k", &t).await.unwrap();
        let Claim::Acquired(t2) = s.claim("k", lease).await.unwrap() else {
            panic!()
        };
        s.complete("k", &t, Duration::from_secs(60)).await.unwrap(); // stale token: no effect
        assert_eq!(s.claim("k", lease).await.unwrap(), Claim::InProgress);
        tokio::time::sleep(Duration::from_millis(60)).await; // crashed holder: lease expires
        let Claim::Acquired(t3) = s.claim("k", lease).await.unwrap() else {
            panic!()
        };
        assert_ne!(t2, t3);
        s.complete("k", &t3, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(s.claim("k", lease).await.unwrap(), Claim::Done);
        tokio::time::sleep(Duration::from_millis(60)).await; // TTL bounds the store
        assert!(matches!(
            s.claim("other", lease).await.unwrap(),
            Claim::Acquired(_)
        ));
        assert_eq!(s.len(), 1, "expired keys are evicted");
    }

    #[tokio::test]
    async fn extend_keeps_a_claim_past_its_first_lease() {
        let s = MemoryStore::new();
        let lease = Duration::from_millis(50);
        let Claim::Acquired(t) = s.claim("k", lease).await.unwrap() else {
            panic!()
        };
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            assert!(s.extend("k", &t, lease).await.unwrap());
        }
        assert_eq!(s.claim("k", lease).await.unwrap(), Claim::InProgress);
        assert!(!s.extend("k", &ClaimToken::new(), lease).await.unwrap());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(
            !s.extend("k", &t, lease).await.unwrap(),
            "lost after expiry"
        );
    }

    #[tokio::test]
    async fn the_cap_holds_and_forgets_the_oldest_first() {
        let s = MemoryStore::with_max_keys(100);
        let lease = Duration::from_secs(60);
        for i in 0..250 {
            let Claim::Acquired(t) = s.claim(&format!("k{i}"), lease).await.unwrap() else {
                panic!()
            };
            s.complete(&format!("k{i}"), &t, Duration::from_secs(60))
                .await
                .unwrap();
            assert!(s.len() <= 100);
        }
        assert_eq!(s.len(), 100);
        assert_eq!(s.claim("k249", lease).await.unwrap(), Claim::Done);
        assert_eq!(s.claim("k150", lease).await.unwrap(), Claim::Done);
        // k0 was forgotten: it can be claimed again (and that evicts the oldest left).
        assert!(matches!(
            s.claim("k0", lease).await.unwrap(),
            Claim::Acquired(_)
        ));
        assert_eq!(s.len(), 100);
    }

    #[tokio::test]
    async fn duration_max_lease_and_ttl_do_not_panic() {
        let s = MemoryStore::new();
        let Claim::Acquired(t) = s.claim("k", Duration::MAX).await.unwrap() else {
            panic!()
        };
        assert!(s.extend("k", &t, Duration::MAX).await.unwrap());
        s.complete("k", &t, Duration::MAX).await.unwrap();
        assert_eq!(s.claim("k", Duration::MAX).await.unwrap(), Claim::Done);
    }
}
