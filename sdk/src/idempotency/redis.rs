//! Redis idempotency store: `SET NX PX` claims, token-checked Lua for complete and release.

use std::time::Duration;

use async_trait::async_trait;
use brokerkit_core::{BrokerUrl, Result};
use redis::aio::ConnectionManager;

use super::{unavailable, Claim, ClaimToken, IdempotencyStore};

const PREFIX: &str = "brokerkit:idem:";
const DONE: &str = "done";

const COMPLETE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
end
return nil";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

/// Claims in Redis, shared by every consumer instance using the same server.
pub struct RedisStore {
    conn: ConnectionManager,
    address: String,
}

impl RedisStore {
    /// Connects to `redis://host:port[/db]`.
    pub async fn connect(url: &BrokerUrl) -> Result<Self> {
        let address = url.redacted();
        let fail = |e: redis::RedisError| unavailable("redis", format!("{address}: {e}"));
        let client = redis::Client::open(url.expose().as_str()).map_err(fail)?;
        let conn = tokio::time::timeout(Duration::from_secs(5), client.get_connection_manager())
            .await
            .map_err(|_| unavailable("redis", format!("{address}: connect timed out")))?
            .map_err(fail)?;
        Ok(RedisStore { conn, address })
    }

    fn err(&self, e: redis::RedisError) -> brokerkit_core::Error {
        unavailable("redis", format!("{}: {e}", self.address))
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().clamp(1, u64::MAX as u128) as u64
}

#[async_trait]
impl IdempotencyStore for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim> {
        let k = format!("{PREFIX}{key}");
        let mut c = self.conn.clone();
        let token = ClaimToken::new();
        let set: Option<String> = redis::cmd("SET")
            .arg(&k)
            .arg(&token.0)
            .arg("NX")
            .arg("PX")
            .arg(millis(lease))
            .query_async(&mut c)
            .await
            .map_err(|e| self.err(e))?;
        if set.is_some() {
            return Ok(Claim::Acquired(token));
        }
        let current: Option<String> = redis::cmd("GET")
            .arg(&k)
            .query_async(&mut c)
            .await
            .map_err(|e| self.err(e))?;
        Ok(match current.as_deref() {
            Some(DONE) => Claim::Done,
            // Expired between SET and GET: let the caller come back.
            _ => Claim::InProgress,
        })
    }

    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<()> {
        let mut c = self.conn.clone();
        let _: Option<String> = redis::Script::new(COMPLETE)
            .key(format!("{PREFIX}{key}"))
            .arg(&token.0)
            .arg(millis(ttl))
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<()> {
        let mut c = self.conn.clone();
        let _: i64 = redis::Script::new(RELEASE)
            .key(format!("{PREFIX}{key}"))
            .arg(&token.0)
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn extend(&self, key: &str, token: &ClaimToken, lease: Duration) -> Result<bool> {
        let mut c = self.conn.clone();
        let extended: i64 = redis::Script::new(EXTEND)
            .key(format!("{PREFIX}{key}"))
            .arg(&token.0)
            .arg(millis(lease))
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.err(e))?;
        Ok(extended == 1)
    }
}
