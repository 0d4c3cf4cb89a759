//! In-process idempotency store (the default): one process only.
//!
//! **Memory per key.** A key is kept as an 88-bit keyed fingerprint (SipHash-1-3 under two
//! random per-process keys), not as text. A done key is one 16-byte slot (fingerprint and
//! expiry in milliseconds) in an open-addressing table kept 60 % to 80 % full (see [`table`]):
//! **20 to 27 bytes a key**, whatever the key's length, so 1,000,000 remembered keys take 20
//! to 27 MB (plus, while one of the up to 64 shards grows, that shard's new table). A key
//! being handled (claimed, not yet completed) is instead in a small map of claims in flight
//! with its claim token's fingerprint (about 40 bytes each). Two different keys taking the
//! same fingerprint (one would be answered as done) has a chance of about n / 2^88 per new
//! key with n remembered (3.4 × 10^-21 at 1,000,000).
//!
//! **Time.** Leases and TTLs count in whole milliseconds from the store's creation: a key
//! is kept at least as long as asked and at most 2 ms longer; a done key's expiry is capped
//! 34 years after the store's creation.
//!
//! **Eviction.** Expired keys are dropped by a background sweep every second (started on
//! the first claim made inside a Tokio runtime; it ends with the store), which also gives
//! memory back, and at the cap. A claim finding its own key expired treats it as absent.

mod table;

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use brokerkit_core::Result;

use super::{Claim, ClaimToken, IdempotencyStore};
use table::{Fp, Table};

/// Fingerprints are already uniform: the claims map hashes them by taking their low bits.
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

/// A key's 88-bit fingerprint ([`table::FP_BITS`]); never 0 (an empty slot).
fn fingerprint(text: &str) -> Fp {
    let (a, b) = fingerprint_keys();
    let high = u128::from(a.hash_one(text) >> (128 - table::FP_BITS)) << 64;
    (high | u128::from(b.hash_one(text))).max(1)
}

/// A claim token's fingerprint (64 bits: tokens are random, a match by chance needs a stale
/// holder's token to collide). A token of 32 bytes (what [`ClaimToken::new`] makes: 32 hex
/// digits of a random UUID) is mixed as four 8-byte words with two 128-bit multiplies, about 20
/// instructions (parsing the hex digits took about 540); any other text is hashed.
fn token_fp(token: &ClaimToken) -> u64 {
    /// The high and low halves of the 128-bit product, folded.
    fn fold(a: u64, b: u64) -> u64 {
        let p = u128::from(a) * u128::from(b);
        (p as u64) ^ ((p >> 64) as u64)
    }
    let t = token.0.as_bytes();
    if t.len() == 32 {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&t[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        // Odd constants (the fractional digits of pi), so no word is multiplied by zero.
        return fold(
            word(0) ^ 0x243f_6a88_85a3_08d3,
            word(1) ^ 0x1319_8a2e_0370_7345,
        ) ^ fold(
            word(2) ^ 0xa409_3822_299f_31d1,
            word(3) ^ 0x082e_fa98_ec4e_6c89,
        );
    }
    fingerprint_keys().0.hash_one(&token.0)
}

/// A claim in flight: held by `token` until `expires` (milliseconds after the store's epoch).
#[derive(Clone, Copy)]
struct Held {
    expires: u64,
    token: u64,
}

/// One shard: its done keys and its claims in flight (a key is in at most one of them).
struct Shard {
    done: Table,
    claims: HashMap<Fp, Held, BuildHasherDefault<FpHasher>>,
    /// No key here expires before this: the sweep skips the shard until then.
    next_expiry: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            done: Table::default(),
            claims: HashMap::default(),
            next_expiry: u64::MAX,
        }
    }
}

/// A shard on its own cache lines, so two shards' locks do not share one.
#[repr(align(128))]
#[derive(Default)]
struct Padded(Mutex<Shard>);

struct Inner {
    epoch: Instant,
    shards: Box<[Padded]>,
    /// Keys held across the shards (done and claimed).
    keys: AtomicUsize,
}

/// Default most keys a [`MemoryStore`] remembers.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// How often the background sweep drops expired keys.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Most shards (each with its own lock and table). Many small tables also keep the
/// allocator's holes small: a growing table frees one the size of a sixty-fourth of the store.
const MAX_SHARDS: usize = 64;

/// Keys a shard is meant for before the cap splits the store into more shards.
const KEYS_PER_SHARD: usize = 16_384;

/// Claims in a sharded open-addressing table with lease and TTL expiry, holding at most
/// `max_keys` keys (1,000,000 unless [`MemoryStore::with_max_keys`]); see the module docs for
/// the memory a key takes.
///
/// Expired keys are dropped in the background every second and at the cap. At the cap, a new
/// key first evicts the expired keys of its shard, then that shard's oldest done keys (those
/// expiring first, to the millisecond: the oldest set when every key has the same TTL), a
/// 64th of the shard at a time, with a warning (at most one per 10 s); claims in flight go
/// only when the shard has no done key left. A store with a cap of 32,768 keys or more is split into up to 64 shards,
/// each evicting its own keys, so it may hold up to one key per shard over the cap. A
/// forgotten done key is handled again if its message comes back; a forgotten claim lets a
/// duplicate run beside it. Size the cap above the keys you see within the TTL.
pub struct MemoryStore {
    inner: Arc<Inner>,
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
        let max_keys = max_keys.max(1);
        let shards = (max_keys / KEYS_PER_SHARD)
            .clamp(1, MAX_SHARDS)
            .next_power_of_two()
            .min(MAX_SHARDS);
        MemoryStore {
            inner: Arc::new(Inner {
                epoch: Instant::now(),
                shards: (0..shards).map(|_| Padded::default()).collect(),
                keys: AtomicUsize::new(0),
            }),
            max_keys,
            sweeping: OnceLock::new(),
        }
    }

    /// Keys currently remembered (claimed or done), after dropping the expired ones (this
    /// scans the store: for tests and diagnostics, not for a hot path).
    pub fn len(&self) -> usize {
        self.inner.sweep_once();
        self.inner.keys.load(Ordering::Relaxed)
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drops expired keys every [`SWEEP_EVERY`] until the store is dropped.
async fn sweep(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.sweep_once();
    }
}

impl Inner {
    /// Drops every shard's expired keys and gives memory back, one shard locked at a time.
    fn sweep_once(&self) {
        let inner = self;
        for shard in inner.shards.iter() {
            let now = inner.now();
            let mut g = lock(&shard.0);
            let gone = g.evict_expired(now);
            g.done.shrink();
            let claims = g.claims.len();
            if g.claims.capacity() > 4 * claims + 64 {
                g.claims.shrink_to(2 * claims);
            }
            drop(g);
            inner.keys.fetch_sub(gone, Ordering::Relaxed);
        }
    }

    /// Whole milliseconds since the epoch.
    fn now(&self) -> u64 {
        u64::try_from(
            Instant::now()
                .saturating_duration_since(self.epoch)
                .as_millis(),
        )
        .unwrap_or(u64::MAX)
    }

    /// The expiry of something kept `by` (at most [`super::MAX_TTL`]) from `now`, in
    /// milliseconds: `now` is rounded down and the time may be up to a millisecond later,
    /// so `by` rounded up plus one; a key is then alive while `now() < expiry`, for at least
    /// `by` and at most 2 ms more.
    fn later(now: u64, by: Duration) -> u64 {
        let by = by.min(super::MAX_TTL).as_nanos().div_ceil(1_000_000) + 1;
        now.saturating_add(u64::try_from(by).unwrap_or(u64::MAX))
    }

    /// The shard of `fp` (by its high word; the table places keys by the low ones).
    fn shard(&self, fp: Fp) -> &Mutex<Shard> {
        let n = self.shards.len();
        &self.shards[((fp >> 64) as usize) & (n - 1)].0
    }
}

impl Shard {
    /// Drops this shard's expired keys (a scan, only once one may have expired); how many
    /// went.
    fn evict_expired(&mut self, now: u64) -> usize {
        if now < self.next_expiry {
            return 0;
        }
        let before = self.claims.len();
        self.claims.retain(|_, h| h.expires > now);
        let gone = before - self.claims.len() + self.done.remove_where(|at| at <= now);
        let claims = self.claims.values().map(|h| h.expires);
        self.next_expiry = self
            .done
            .iter()
            .map(|(_, at)| at)
            .chain(claims)
            .min()
            .unwrap_or(u64::MAX);
        gone
    }

    /// Remembers that something here expires at `at`.
    fn expires(&mut self, at: u64) {
        self.next_expiry = self.next_expiry.min(at);
    }

    /// Room for a new key in a store holding `keys` of `max`: this shard's expired keys go
    /// first, then its oldest done keys (a 64th of them), then, with no done key, its
    /// oldest claim. How many keys went.
    fn make_room(&mut self, now: u64, keys: usize, max: usize) -> usize {
        let mut gone = self.evict_expired(now);
        if keys.saturating_sub(gone) < max {
            return gone;
        }
        let mut forgotten = 0;
        if self.done.len() > 0 {
            // Exactly a 64th: expiries are whole milliseconds, so many keys may share one.
            let mut oldest: Vec<(u64, Fp)> = self.done.iter().map(|(fp, at)| (at, fp)).collect();
            let count = (oldest.len() / 64).max(1);
            oldest.select_nth_unstable(count - 1);
            for &(_, fp) in &oldest[..count] {
                self.done.remove(fp);
            }
            forgotten = count;
        } else if let Some((&fp, _)) = self.claims.iter().min_by_key(|(_, h)| h.expires) {
            self.claims.remove(&fp);
            forgotten = 1;
        }
        gone += forgotten;
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
        gone
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim> {
        self.sweep_in_background();
        let fp = fingerprint(key);
        let inner = &*self.inner;
        let mut g = lock(inner.shard(fp));
        let now = inner.now();
        // A key expired here but not yet swept counts as absent.
        let mut gone = 0;
        if let Some(at) = g.done.get(fp) {
            if at > now {
                return Ok(Claim::Done);
            }
            g.done.remove(fp);
            gone += 1;
        }
        if let Some(h) = g.claims.remove(&fp) {
            if h.expires > now {
                g.claims.insert(fp, h);
                return Ok(Claim::InProgress);
            }
            gone += 1;
        }
        let keys = inner.keys.load(Ordering::Relaxed).saturating_sub(gone);
        if keys >= self.max_keys {
            gone += g.make_room(now, keys, self.max_keys);
        }
        let token = ClaimToken::new();
        let held = Held {
            expires: Inner::later(now, lease),
            token: token_fp(&token),
        };
        g.expires(held.expires);
        g.claims.insert(fp, held);
        drop(g);
        match gone {
            0 => inner.keys.fetch_add(1, Ordering::Relaxed),
            n => inner.keys.fetch_sub(n - 1, Ordering::Relaxed),
        };
        Ok(Claim::Acquired(token))
    }

    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<()> {
        let (fp, t) = (fingerprint(key), token_fp(token));
        let inner = &*self.inner;
        let mut g = lock(inner.shard(fp));
        if g.claims.get(&fp).is_some_and(|h| h.token == t) {
            g.claims.remove(&fp);
            let at = Inner::later(inner.now(), ttl);
            g.expires(at);
            g.done.insert(fp, at);
        }
        Ok(())
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<()> {
        let (fp, t) = (fingerprint(key), token_fp(token));
        let inner = &*self.inner;
        let mut g = lock(inner.shard(fp));
        if g.claims.get(&fp).is_some_and(|h| h.token == t) {
            g.claims.remove(&fp);
            drop(g);
            inner.keys.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn extend(&self, key: &str, token: &ClaimToken, lease: Duration) -> Result<bool> {
        let (fp, t) = (fingerprint(key), token_fp(token));
        let inner = &*self.inner;
        let mut g = lock(inner.shard(fp));
        let now = inner.now();
        match g.claims.get_mut(&fp) {
            Some(h) if h.token == t && h.expires > now => {
                h.expires = Inner::later(now, lease);
                Ok(true)
            }
            _ => Ok(false),
        }
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
            // Expiries count in milliseconds: one apart each, so "first" is one key.
            let ttl = Duration::from_secs(60) + Duration::from_millis(i);
            s.complete(&format!("k{i}"), &t, ttl).await.unwrap();
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
        for shard in s.inner.shards.iter() {
            assert_eq!(lock(&shard.0).done.capacity(), 0, "memory given back");
        }
    }

    /// The sweep scans a shard only once something in it may have expired.
    #[test]
    fn a_shard_knows_its_next_expiry() {
        let mut shard = Shard::default();
        assert_eq!(shard.evict_expired(5), 0);
        shard.done.insert(7, 100);
        shard.expires(100);
        shard.claims.insert(
            9,
            Held {
                expires: 50,
                token: 1,
            },
        );
        shard.expires(50);
        assert_eq!(shard.next_expiry, 50);
        assert_eq!(shard.evict_expired(49), 0);
        assert_eq!(shard.evict_expired(50), 1, "the claim");
        assert_eq!(shard.next_expiry, 100);
        assert_eq!(shard.evict_expired(100), 1, "the done key");
        assert_eq!(shard.next_expiry, u64::MAX);
    }

    /// `now()` is rounded down, so an expiry counted from it must cover the part of a
    /// millisecond already gone: kept at least `by`, at most 2 ms more.
    #[test]
    fn expiries_in_milliseconds_are_never_early() {
        assert_eq!(Inner::later(5, Duration::ZERO), 6);
        assert_eq!(Inner::later(5, Duration::from_millis(1)), 7);
        assert_eq!(Inner::later(5, Duration::from_micros(1_500)), 8);
        for (start_ns, by_ns) in [
            (5_999_999u64, 1u64),
            (5_000_000, 1_000_000),
            (5_400_000, 2_700_000),
        ] {
            let at = Inner::later(start_ns / 1_000_000, Duration::from_nanos(by_ns));
            // Alive while the rounded-down time is before `at`: until `at` ms exactly.
            let alive_until_ns = at * 1_000_000;
            assert!(
                alive_until_ns >= start_ns + by_ns,
                "{start_ns} + {by_ns}: {at}"
            );
            assert!(
                alive_until_ns <= start_ns + by_ns + 2_000_000,
                "{start_ns} + {by_ns}: {at}"
            );
        }
        assert_eq!(Inner::later(u64::MAX - 1, super::super::MAX_TTL), u64::MAX);
    }

    #[test]
    fn token_fingerprints_change_with_any_byte() {
        let base = ClaimToken::new().0;
        let fp = token_fp(&ClaimToken(base.clone()));
        let mut seen = std::collections::HashSet::from([fp]);
        for at in 0..base.len() {
            for with in [b'0', b'7', b'a', b'f', b'F'] {
                let mut b = base.clone().into_bytes();
                if b[at] == with {
                    continue;
                }
                b[at] = with;
                let changed = ClaimToken(String::from_utf8(b).unwrap());
                assert!(seen.insert(token_fp(&changed)), "{changed:?}");
            }
        }
    }

    #[test]
    fn token_fingerprints_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(token_fp(&ClaimToken::new())));
        }
        let odd = [ClaimToken("x".into()), ClaimToken("+".repeat(32))];
        assert_ne!(token_fp(&odd[0]), token_fp(&odd[1]));
        let upper = ClaimToken(ClaimToken::new().0.to_uppercase());
        assert_eq!(token_fp(&upper), token_fp(&upper));
    }

    #[test]
    fn fingerprints_differ_and_claims_are_small() {
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint("a"), fingerprint("a"));
        for i in 0..10_000 {
            let fp = fingerprint(&format!("key-{i}"));
            assert!(fp != 0 && fp >> table::FP_BITS == 0, "{fp:x} fits its bits");
        }
        assert_eq!(std::mem::size_of::<(Fp, Held)>(), 32);
    }

    /// The documented 20 to 27 bytes a done key (one 16-byte slot in a table 60 % to 80 %
    /// full), here with 150,000 keys across the shards of a 1,000,000-key store.
    #[tokio::test]
    async fn a_done_key_takes_twenty_to_twenty_seven_bytes() {
        let s = MemoryStore::new();
        let n = 150_000;
        for i in 0..n {
            let key = format!("order-{i}");
            let Claim::Acquired(t) = s.claim(&key, Duration::from_secs(30)).await.unwrap() else {
                panic!()
            };
            s.complete(&key, &t, Duration::from_secs(3600))
                .await
                .unwrap();
        }
        assert_eq!(s.len(), n);
        let bytes: usize = s
            .inner
            .shards
            .iter()
            .map(|sh| lock(&sh.0).done.capacity() * table::SLOT_BYTES)
            .sum();
        let per_key = bytes as f64 / n as f64;
        assert!((20.0..=27.0).contains(&per_key), "{per_key} bytes a key");
    }

    /// With more than one shard the cap still holds (up to one key per shard over it), and
    /// the keys forgotten are the oldest.
    #[tokio::test]
    async fn a_sharded_store_keeps_its_cap() {
        let max = 200_000;
        let s = MemoryStore::with_max_keys(max);
        assert!(s.inner.shards.len() > 1);
        let shards = s.inner.shards.len();
        for i in 0..max + 20_000 {
            let key = format!("k{i}");
            let Claim::Acquired(t) = s.claim(&key, Duration::from_secs(30)).await.unwrap() else {
                panic!("k{i} was not new")
            };
            s.complete(&key, &t, Duration::from_secs(3600))
                .await
                .unwrap();
            let held = s.inner.keys.load(Ordering::Relaxed); // `len` would scan
            assert!(held <= max + shards, "{held} keys");
        }
        assert!(s.len() > max * 9 / 10, "{} keys", s.len());
        let last = format!("k{}", max + 19_999);
        assert_eq!(
            s.claim(&last, Duration::from_secs(1)).await.unwrap(),
            Claim::Done
        );
        assert!(matches!(
            s.claim("k0", Duration::from_secs(1)).await.unwrap(),
            Claim::Acquired(_)
        ));
    }
}
