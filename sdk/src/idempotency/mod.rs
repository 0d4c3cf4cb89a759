//! Idempotency: with the same key, a handler runs once, across redeliveries and across
//! consumer instances sharing a store.
//!
//! Protocol: **claim** the key (with a lease) before handling; **complete** it after success
//! (kept for a TTL, so the store stays bounded); **release** it on failure so a retry can run.
//! A consumer that crashes while holding a claim blocks the key only until the lease expires.

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use brokerkit_core::{BrokerUrl, Error, ErrorKind, Message, Result};

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "redis")]
pub use redis::RedisStore;

/// URL key of the Redis and PostgreSQL stores: longest wait for one store query, in milliseconds (default
/// [`DEFAULT_QUERY_TIMEOUT`]). Taken out of the URL before it reaches the client library.
pub const QUERY_TIMEOUT_KEY: &str = "query_timeout_ms";

/// Default per-query timeout: 5 s.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest idempotency key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 256;

/// Proof of a claim, needed to complete or release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToken(pub String);

impl ClaimToken {
    /// A fresh random token.
    pub fn new() -> Self {
        // Encoded into a buffer: `to_string` would go through the formatting machinery.
        let mut buf = uuid::Uuid::encode_buffer();
        ClaimToken(
            uuid::Uuid::new_v4()
                .simple()
                .encode_lower(&mut buf)
                .to_owned(),
        )
    }
}

impl Default for ClaimToken {
    fn default() -> Self {
        ClaimToken::new()
    }
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This caller holds the key until the lease expires: run the handler.
    Acquired(ClaimToken),
    /// The key was handled successfully already: skip and ack.
    Done,
    /// Another caller holds the key now: try again later.
    InProgress,
}

/// Where claims are kept.
///
/// # Behavior
/// - `claim` is atomic across every caller sharing the store.
/// - A claim not completed or released within its lease can be claimed again.
/// - `complete` and `release` with a stale token (the lease expired and someone else claimed)
///   change nothing.
/// - Errors reaching the store are `Unavailable` (retryable): callers must then not treat the
///   message as handled.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Store name for logs, e.g. `redis`.
    fn name(&self) -> &'static str;
    /// Claims `key` for `lease`.
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim>;
    /// Marks `key` done, remembered for `ttl`.
    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<()>;
    /// Gives up the claim so the key can be claimed again.
    async fn release(&self, key: &str, token: &ClaimToken) -> Result<()>;
    /// Keeps a claim held for `lease` from now (the handler is still running). `Ok(false)`:
    /// the token is stale, the claim was lost (its lease expired and someone else may hold
    /// it). The default refuses with `Unsupported`; the SDK then logs once per key and relies
    /// on a lease longer than the handler.
    async fn extend(&self, key: &str, token: &ClaimToken, lease: Duration) -> Result<bool> {
        let _ = (key, token, lease);
        Err(Error::unsupported(format!(
            "idempotency store {} cannot extend a claim",
            self.name()
        )))
    }
}

/// Opens a store by URL: `memory://`, `redis://host:port[/db]`, `postgres://user@host/db`.
pub async fn connect_store(url: &str) -> Result<Arc<dyn IdempotencyStore>> {
    let parsed = BrokerUrl::parse(url)?;
    match parsed.scheme() {
        "memory" => {
            parsed.params(&[])?;
            Ok(Arc::new(MemoryStore::new()))
        }
        #[cfg(feature = "redis")]
        "redis" | "rediss" => Ok(Arc::new(RedisStore::connect(&parsed).await?)),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(PostgresStore::connect(&parsed).await?)),
        other => Err(Error::config(format!(
            "no idempotency store for scheme {other:?} in {parsed}; available: {}{}",
            available_schemes().join(", "),
            crate::features::store_hint(other)
        ))),
    }
}

fn available_schemes() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut s = vec!["memory"];
    #[cfg(feature = "postgres")]
    s.push("postgres");
    #[cfg(feature = "redis")]
    s.push("redis");
    s
}

/// A function deriving a key from a message.
pub type KeyFn = Arc<dyn Fn(&Message) -> Option<String> + Send + Sync>;

/// Where a message's idempotency key comes from.
#[derive(Clone)]
pub enum KeySource {
    /// The `idempotency-key` header.
    Header,
    /// A function of the message.
    Function(KeyFn),
}

/// Longest claim lease: a longer one (e.g. `Duration::MAX`) is clamped to it. One day: a
/// handler running longer keeps its claim through renewal anyway.
pub const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);

/// Longest time a done key is remembered: a longer TTL is clamped to it (one year).
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Idempotent handling settings for a consumer.
#[derive(Clone)]
pub struct Idempotency {
    pub(crate) store: Arc<dyn IdempotencyStore>,
    pub(crate) key: KeySource,
    pub(crate) lease: Duration,
    pub(crate) ttl: Duration,
}

impl Idempotency {
    /// Keys from the `idempotency-key` header; lease 30 s; done keys kept 24 h.
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        Idempotency {
            store,
            key: KeySource::Header,
            lease: Duration::from_secs(30),
            ttl: Duration::from_secs(24 * 3600),
        }
    }

    /// Derives the key with `f` instead of the header.
    pub fn key_fn(
        mut self,
        f: impl Fn(&Message) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.key = KeySource::Function(Arc::new(f));
        self
    }

    /// How long a claim blocks others (set it above the handler's longest run). Clamped to
    /// 1 ms ..= [`MAX_LEASE`].
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.clamp(Duration::from_millis(1), MAX_LEASE);
        self
    }

    /// How long a done key is remembered. Clamped to 1 ms ..= [`MAX_TTL`].
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.clamp(Duration::from_millis(1), MAX_TTL);
        self
    }

    /// The message's key, checked: missing or longer than [`MAX_KEY_LEN`] is an error
    /// naming the problem.
    pub fn key_of(&self, message: &Message) -> Result<String> {
        let key = match &self.key {
            KeySource::Header => message.headers.idempotency_key().map(str::to_string),
            KeySource::Function(f) => f(message),
        };
        match key {
            None => Err(Error::new(
                ErrorKind::Decode,
                "message has no idempotency key (header idempotency-key or the key function)",
            )),
            Some(k) if k.is_empty() => {
                Err(Error::new(ErrorKind::Decode, "idempotency key is empty"))
            }
            Some(k) if k.len() > MAX_KEY_LEN => Err(Error::new(
                ErrorKind::Decode,
                format!(
                    "idempotency key is {} bytes; the maximum is {MAX_KEY_LEN}",
                    k.len()
                ),
            )),
            Some(k) => Ok(k),
        }
    }
}

/// Wraps a store error as retryable `Unavailable` with the store's name.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn unavailable(store: &'static str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!(
            "idempotency store {store} unreachable: {}",
            brokerkit_core::config::redact_text(&e.to_string())
        ),
    )
}

#[cfg(any(feature = "postgres", feature = "redis"))]
/// The timeout from `url` and the URL without that key (for the client library).
pub(crate) fn split_query_timeout(url: &BrokerUrl) -> Result<(String, Duration)> {
    let mut u = url.expose().clone();
    let mut timeout = DEFAULT_QUERY_TIMEOUT;
    let mut rest: Vec<(String, String)> = Vec::new();
    for (k, v) in u.query_pairs() {
        if k == QUERY_TIMEOUT_KEY {
            timeout = match v.parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms).min(crate::idempotency::MAX_LEASE),
                _ => {
                    return Err(Error::config(format!(
                        "{QUERY_TIMEOUT_KEY} must be a positive integer (milliseconds), got \
                         {v:?} in {url}"
                    )))
                }
            };
        } else {
            rest.push((k.into_owned(), v.into_owned()));
        }
    }
    if rest.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(rest);
    }
    Ok((u.to_string(), timeout))
}
