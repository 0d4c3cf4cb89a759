//! In-process idempotency store (the default): one process only.
//!
//! **Memory per key.** A key is kept as a 128-bit keyed fingerprint (SipHash-1-3 under two
//! random per-process keys), not as text, with its expiry and the fingerprint of its claim
//! token: 32 bytes in a hash table (hashbrown: 33 bytes a bucket, 1.14 to 2.3 buckets a key as
//! the table doubles), plus a 24-byte expiry record, compacted by the background sweep to at
//! most about 1.5 a key. About 65 to 115 bytes a key whatever the key's length: 1,000,000
//! remembered keys take 70 to 115 MB. Two different keys taking the same fingerprint (one
//! would be answered as done) has a chance of about n / 2^128 per new key with n remembered.
//!
//! **Eviction.** Expired keys are dropped by a background sweep every second (started on
//! the first claim made inside a Tokio runtime; it ends with the store) and on each claim.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use brokerkit_core::Result;

use super::{Claim, ClaimToken, IdempotencyStore};

/// A key's fingerprint.
type Fp = u128;

/// Fingerprints are already uniform: the table hashes them by taking their low bits.
#[derive(Default)]
struct FpHasher(u64);

impl Hasher for FpHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used; fold anything else in.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

/// The random keys of the fingerprints (two independent SipHash-1-3 keys).
fn fingerprint_keys() -> &'static (
    std::collections::hash_map::RandomState,
    std::collections::hash_map::RandomState,
) {
    static KEYS: OnceLock<(
        std::collections::hash_map::RandomState,
        std::collections::hash_map::RandomState,
    )> = OnceLock::new();
    KEYS.get_or_init(Default::default)
}

fn fingerprint(text: &str) -> Fp {
    let (a, b) = fingerprint_keys();
    (u128::from(a.hash_one(text)) << 64) | u128::from(b.hash_one(text))
}

/// A claim token's fingerprint (64 bits: tokens are random, a match by chance needs a stale
/// holder's token to collide); never 0 (0 marks a done key).
fn token_fp(token: &ClaimToken) -> u64 {
    fingerprint_keys().0.hash_one(&token.0).max(1)
}

/// A key's state: done (`token == 0`) or claimed by `token`, until `expires` (nanoseconds
/// after the store's epoch).
#[derive(Clone, Copy)]
struct Slot {
    expires: u64,
    token: u64,
}

struct Inner {
    epoch: Instant,
    slots: HashMap<Fp, Slot, BuildHasherDefault<FpHasher>>,
    /// Expiry records in the order set; a record whose key was set again later is stale and
    /// skipped. `(expires, fingerprint high, fingerprint low)`: 24 bytes.
    expiries: VecDeque<(u64, u64, u64)>,
}

/// Default most keys a [`MemoryStore`] remembers.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// How often the background sweep drops expired keys.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Claims in a hash map with lease and TTL expiry, holding at most `max_keys` keys
/// (1,000,000 unless [`MemoryStore::with_max_keys`]); see the module docs for the memory a
/// key takes.
///
/// Expired keys are dropped in the background every second and on claims. At the cap, a new
/// key first evicts expired keys, then the oldest keys by when they were last set (claimed or
/// completed), with a warning (at most one per 10 s). A forgotten done key is handled again if
/// its message comes back; a forgotten claim lets a duplicate run beside it. Size the cap above
/// the keys you see within the TTL.
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    max_keys: usize,
    sweeping: OnceLock<()>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::with_max_keys(DEFAULT_MAX_KEYS)
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
            inner: Arc::new(Mutex::new(Inner {
                epoch: Instant::now(),
                slots: HashMap::default(),
                expiries: VecDeque::new(),
            })),
            max_keys: max_keys.max(1),
            sweeping: OnceLock::new(),
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
        lock(&self.inner)
    }

    /// Starts the background sweep once, if there is a Tokio runtime to run it.
    fn sweep_in_background(&self) {
        if self.sweeping.get().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.sweeping.set(()).is_err() {
            return;
        }
        runtime.spawn(sweep(Arc::downgrade(&self.inner)));
    }
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drops expired keys every [`SWEEP_EVERY`] until the store is dropped.
async fn sweep(inner: Weak<Mutex<Inner>>) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let mut g = lock(&inner);
        let now = g.now();
        g.evict(now);
        // A stale record not yet expired (a claim's, its key since completed with a shorter
        // TTL) holds up the expired records behind it: compact, then evict again.
        let blocked = g
            .expiries
            .front()
            .is_some_and(|&(at, hi, lo)| g.get(join(hi, lo)).is_none_or(|s| s.expires != at));
        g.compact(blocked);
        g.evict(now);
    }
}

impl Inner {
    /// Nanoseconds since the epoch (584 years fit).
    fn now(&self) -> u64 {
        self.at(Instant::now())
    }

    fn at(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// `now + by`, at most [`super::MAX_TTL`] ahead.
    fn later(now: u64, by: Duration) -> u64 {
        let by = by.min(super::MAX_TTL).as_nanos();
        now.saturating_add(u64::try_from(by).unwrap_or(u64::MAX))
    }

    fn get(&self, fp: Fp) -> Option<Slot> {
        self.slots.get(&fp).copied()
    }

    fn evict(&mut self, now: u64) {
        while let Some(&(at, hi, lo)) = self.expiries.front() {
            if at > now {
                break;
            }
            self.expiries.pop_front();
            let fp = join(hi, lo);
            if self.get(fp).is_some_and(|s| s.expires <= at) {
                self.slots.remove(&fp);
            }
        }
    }

    /// Drops stale expiry records (always with `force`, else once they outnumber keys by
    /// half), and gives back memory.
    fn compact(&mut self, force: bool) {
        if force || self.expiries.len() > self.slots.len() + self.slots.len() / 2 + 1024 {
            let slots = &self.slots;
            self.expiries
                .retain(|&(at, hi, lo)| slots.get(&join(hi, lo)).is_some_and(|s| s.expires == at));
        }
        if self.expiries.capacity() > 4 * self.expiries.len() + 1024 {
            self.expiries.shrink_to(2 * self.expiries.len());
        }
        if self.slots.capacity() > 4 * self.slots.len() + 1024 {
            self.slots.shrink_to(2 * self.slots.len());
        }
    }

    /// Room for one new key under `max`: expired keys go first, then the oldest set.
    fn make_room(&mut self, now: u64, max: usize) {
        if self.slots.len() < max {
            return;
        }
        self.evict(now);
        let mut forgotten = 0usize;
        while self.slots.len() >= max {
            let Some((at, hi, lo)) = self.expiries.pop_front() else {
                break;
            };
            // A stale record (the key was set again later) is skipped.
            let fp = join(hi, lo);
            if self.get(fp).is_some_and(|s| s.expires == at) {
                self.slots.remove(&fp);
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

    fn set(&mut self, fp: Fp, token: u64, expires: u64) {
        self.expiries
            .push_back((expires, (fp >> 64) as u64, fp as u64));
        self.slots.insert(fp, Slot { expires, token });
    }
}

fn join(hi: u64, lo: u64) -> Fp {
    (u128::from(hi) << 64) | u128::from(lo)
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim> {
        self.sweep_in_background();
        let fp = fingerprint(key);
        let mut g = self.lock();
        let now = g.now();
        g.evict(now);
        match g.get(fp) {
            Some(s) if s.expires > now => Ok(if s.token == 0 {
                Claim::Done
            } else {
                Claim::InProgress
            }),
            existing => {
                let token = ClaimToken::new();
                if existing.is_none() {
                    g.make_room(now, self.max_keys);
                }
                g.set(fp, token_fp(&token), Inner::later(now, lease));
                Ok(Claim::Acquired(token))
            }
        }
    }

    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<()> {
        let (fp, t) = (fingerprint(key), token_fp(token));
        let mut g = self.lock();
        if g.get(fp).is_some_and(|s| s.token == t) {
            let now = g.now();
            g.set(fp, 0, Inner::later(now, ttl));
        }
        Ok(())
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<()> {
        let (fp, t) = (fingerprint(key), token_fp(token));
        let mut g = self.lock();
        if g.get(fp).is_some_and(|s| s.token == t) {
            g.slots.remove(&fp);
        }
        Ok(())
    }

    async fn extend(&self, key: &str, token: &ClaimToken, lease: Duration) -> Result<bool> {
        let (fp, t) = (fingerprint(key), token_fp(token));
        let mut g = self.lock();
        let now = g.now();
        let held = g.get(fp).is_some_and(|s| s.token == t && s.expires > now);
        if held {
            g.set(fp, t, Inner::later(now, lease));
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

    #[tokio::test]
    async fn expired_keys_go_in_the_background_without_new_claims() {
        let s = MemoryStore::new();
        for i in 0..100 {
            let key = format!("k{i}");
            let Claim::Acquired(t) = s.claim(&key, Duration::from_secs(5)).await.unwrap() else {
                panic!()
            };
            s.complete(&key, &t, Duration::from_millis(20))
                .await
                .unwrap();
        }
        assert_eq!(s.len(), 100);
        tokio::time::sleep(SWEEP_EVERY + Duration::from_millis(300)).await;
        assert_eq!(s.len(), 0, "the sweep dropped the expired keys");
        assert!(
            lock(&s.inner).expiries.is_empty(),
            "stale records compacted"
        );
    }

    #[test]
    fn fingerprints_differ_and_slots_are_small() {
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint("a"), fingerprint("a"));
        assert_eq!(std::mem::size_of::<(Fp, Slot)>(), 32);
        assert_eq!(std::mem::size_of::<(u64, u64, u64)>(), 24);
    }
}
