//! Redis idempotency store: `SET NX PX` claims, token-checked Lua for complete and release.

use std::time::Duration;

use async_trait::async_trait;
use brokerkit_core::{BrokerUrl, ErrorKind, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

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
///
/// Every query is bounded by `query_timeout_ms` (URL key, default 5 s, as for PostgreSQL): a
/// server that stops answering gives a retryable `Timeout` error (the message goes back, see
/// the idempotency layer) instead of stalling every handler. The connection manager
/// reconnects by itself once the server answers again. Each call is an ordinary future:
/// dropping it (shutdown, a timeout layer) cancels the wait.
pub struct RedisStore {
    conn: ConnectionManager,
    address: String,
    query_timeout: Duration,
}

impl RedisStore {
    /// Connects to `redis://host:port[/db][?query_timeout_ms=5000]`.
    pub async fn connect(url: &BrokerUrl) -> Result<Self> {
        let address = url.redacted();
        let (client_url, query_timeout) = super::split_query_timeout(url)?;
        let fail = |e: redis::RedisError| unavailable("redis", format!("{address}: {e}"));
        let client = redis::Client::open(client_url.as_str()).map_err(fail)?;
        // The client library's own response timeout (500 ms by default) is set to ours, so a
        // slow but live server is not cut off early and a dead one is cut off at our bound.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(query_timeout))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| unavailable("redis", format!("{address}: connect timed out")))?
        .map_err(fail)?;
        Ok(RedisStore {
            conn,
            address,
            query_timeout,
        })
    }

    fn timeout_error(&self) -> brokerkit_core::Error {
        brokerkit_core::Error::new(
            ErrorKind::Timeout,
            format!(
                "idempotency store redis did not answer within {} ms ({})",
                self.query_timeout.as_millis(),
                self.address
            ),
        )
        .retryable(true)
    }

    fn err(&self, e: redis::RedisError) -> brokerkit_core::Error {
        if e.is_timeout() {
            return self.timeout_error();
        }
        unavailable("redis", format!("{}: {e}", self.address))
    }

    /// Runs one query, at most the query timeout.
    async fn timed<T>(
        &self,
        query: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.query_timeout, query).await {
            Ok(result) => result.map_err(|e| self.err(e)),
            Err(_) => Err(self.timeout_error()),
        }
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
        let set: Option<String> = self
            .timed(
                redis::cmd("SET")
                    .arg(&k)
                    .arg(&token.0)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(lease))
                    .query_async(&mut c),
            )
            .await?;
        if set.is_some() {
            return Ok(Claim::Acquired(token));
        }
        let current: Option<String> = self
            .timed(redis::cmd("GET").arg(&k).query_async(&mut c))
            .await?;
        Ok(match current.as_deref() {
            Some(DONE) => Claim::Done,
            // Expired between SET and GET: let the caller come back.
            _ => Claim::InProgress,
        })
    }

    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<()> {
        let mut c = self.conn.clone();
        let script = redis::Script::new(COMPLETE);
        let mut call = script.key(format!("{PREFIX}{key}"));
        call.arg(&token.0).arg(millis(ttl));
        let _: Option<String> = self.timed(call.invoke_async(&mut c)).await?;
        Ok(())
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<()> {
        let mut c = self.conn.clone();
        let script = redis::Script::new(RELEASE);
        let mut call = script.key(format!("{PREFIX}{key}"));
        call.arg(&token.0);
        let _: i64 = self.timed(call.invoke_async(&mut c)).await?;
        Ok(())
    }

    async fn extend(&self, key: &str, token: &ClaimToken, lease: Duration) -> Result<bool> {
        let mut c = self.conn.clone();
        let script = redis::Script::new(EXTEND);
        let mut call = script.key(format!("{PREFIX}{key}"));
        call.arg(&token.0).arg(millis(lease));
        let extended: i64 = self.timed(call.invoke_async(&mut c)).await?;
        Ok(extended == 1)
    }
}
