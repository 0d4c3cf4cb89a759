//! PostgreSQL idempotency store: one table, claims by conditional upsert.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use brokerkit_core::{BrokerUrl, Error, Result};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

use super::{unavailable, Claim, ClaimToken, IdempotencyStore};

const TABLE: &str = "brokerkit_idempotency";

/// Claims in a PostgreSQL table (`brokerkit_idempotency`, created if missing), shared by every
/// consumer instance using the same database. Reconnects after a lost connection.
///
/// Every query is bounded by `query_timeout_ms` (URL key, default 5 s): a database that stops
/// answering gives a retryable `Timeout` error (the message goes back, see the idempotency
/// layer) instead of stalling every handler, and the stuck connection is dropped so the next
/// call reconnects (connecting is bounded by 5 s). Each call is an ordinary future: dropping
/// it (shutdown, a timeout layer) cancels the wait.
pub struct PostgresStore {
    url: String,
    address: String,
    client: Mutex<Option<Arc<Client>>>,
    claims: std::sync::atomic::AtomicU64,
    query_timeout: Duration,
}

impl PostgresStore {
    /// Connects to `postgres://user[:password]@host[:port]/database[?query_timeout_ms=5000]`
    /// and creates the table.
    pub async fn connect(url: &BrokerUrl) -> Result<Self> {
        let (client_url, query_timeout) = super::split_query_timeout(url)?;
        let store = PostgresStore {
            url: client_url,
            address: url.redacted(),
            client: Mutex::new(None),
            claims: Default::default(),
            query_timeout,
        };
        let c = store.client().await?;
        store
            .timed(c.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {TABLE} (
                key TEXT PRIMARY KEY,
                state TEXT NOT NULL,
                token TEXT NOT NULL,
                expires_at TIMESTAMPTZ NOT NULL)"
            )))
            .await?;
        Ok(store)
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        unavailable("postgres", format!("{}: {e}", self.address))
    }

    /// Runs one query, at most the query timeout; on timeout the connection is dropped (it
    /// may be stuck) and the error is a retryable `Timeout`.
    async fn timed<T>(
        &self,
        query: impl std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.query_timeout, query).await {
            Ok(result) => result.map_err(|e| self.err(e)),
            Err(_) => {
                self.client.lock().await.take();
                Err(Error::new(
                    brokerkit_core::ErrorKind::Timeout,
                    format!(
                        "idempotency store postgres did not answer within {} ms ({})",
                        self.query_timeout.as_millis(),
                        self.address
                    ),
                )
                .retryable(true))
            }
        }
    }

    async fn client(&self) -> Result<Arc<Client>> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let connecting = tokio_postgres::connect(&self.url, NoTls);
        let (client, connection) = tokio::time::timeout(Duration::from_secs(5), connecting)
            .await
            .map_err(|_| self.err("connect timed out"))?
            .map_err(|e| self.err(e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "idempotency store connection to postgres ended");
            }
        });
        let c = Arc::new(client);
        *slot = Some(c.clone());
        Ok(c)
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[async_trait]
impl IdempotencyStore for PostgresStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim> {
        let c = self.client().await?;
        // Bound the table: expired rows go, now and then.
        if self
            .claims
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(1000)
        {
            self.timed(c.execute(
                &format!("DELETE FROM {TABLE} WHERE expires_at < now()"),
                &[],
            ))
            .await?;
        }
        let token = ClaimToken::new();
        let claimed = self
            .timed(c.query_opt(
                &format!(
                    "INSERT INTO {TABLE} (key, state, token, expires_at)
                     VALUES ($1, 'claimed', $2, now() + make_interval(secs => $3))
                     ON CONFLICT (key) DO UPDATE
                       SET state = 'claimed', token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
                       WHERE {TABLE}.expires_at < now()
                     RETURNING token"
                ),
                &[&key, &token.0, &secs(lease)],
            ))
            .await?;
        if claimed.is_some() {
            return Ok(Claim::Acquired(token));
        }
        let row = self
            .timed(c.query_opt(
                &format!("SELECT state FROM {TABLE} WHERE key = $1 AND expires_at >= now()"),
                &[&key],
            ))
            .await?;
        let state: Option<String> = row.map(|r| r.get(0));
        Ok(match state.as_deref() {
            Some("done") => Claim::Done,
            _ => Claim::InProgress,
        })
    }

    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<()> {
        let c = self.client().await?;
        self.timed(c.execute(
            &format!(
                "UPDATE {TABLE} SET state = 'done', expires_at = now() + make_interval(secs => $3)
                 WHERE key = $1 AND token = $2 AND state = 'claimed'"
            ),
            &[&key, &token.0, &secs(ttl)],
        ))
        .await?;
        Ok(())
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<()> {
        let c = self.client().await?;
        self.timed(c.execute(
            &format!("DELETE FROM {TABLE} WHERE key = $1 AND token = $2 AND state = 'claimed'"),
            &[&key, &token.0],
        ))
        .await?;
        Ok(())
    }

    async fn extend(&self, key: &str, token: &ClaimToken, lease: Duration) -> Result<bool> {
        let c = self.client().await?;
        let rows = self
            .timed(c.execute(
                &format!(
                    "UPDATE {TABLE} SET expires_at = now() + make_interval(secs => $3)
                     WHERE key = $1 AND token = $2 AND state = 'claimed' AND expires_at >= now()"
                ),
                &[&key, &token.0, &secs(lease)],
            ))
            .await?;
        Ok(rows == 1)
    }
}
