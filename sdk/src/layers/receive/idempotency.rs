//! `idempotency`: runs the inner layers and the handler once per idempotency key, per
//! destination and group, across redeliveries and across instances sharing the store.
//!
//! - A key handled before: [`Disposition::Duplicate`] (acked, handler not run).
//! - A key another consumer holds now: the delivery waits here (its lease kept by the handler
//!   runner), asking the store again at 50 ms doubling to 1 s, for up to the claim's lease:
//!   then the holder has completed (duplicate), released (this one runs) or lost its claim
//!   (this one runs). No nack, so waiting never uses up the message's attempts. Only when the
//!   holder still renews after a whole lease (a handler slower than the lease) does the
//!   message go back, delayed by the lease.
//! - The store unreachable: [`Disposition::RetryLater`]: the message goes back, never counted
//!   as handled.
//! - `complete` failing after the handler succeeded: retried 4 times over about 1.5 s; if it
//!   still fails the message is **not** acked ([`Disposition::RetryLater`]) and the claim
//!   stays until its lease expires. Acking would forget the only durable sign that the work
//!   is not recorded, so a duplicate arriving later would run again anyway; this way the
//!   broker redelivers, and the handler runs again only after the lease (at-least-once, the
//!   broker's own promise), never silently.
//! - While the handler runs the claim is renewed every third of its lease, so a handler slower
//!   than the lease keeps it. The claim is completed on success and released on failure or
//!   cancellation (also when the future is dropped, e.g. by a timeout layer).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use brokerkit_core::Result;

use super::{BoxFuture, Call, Disposition, Incoming, ReceiveService};
use crate::context::Context;
use crate::idempotency::{Claim, ClaimToken, Idempotency, IdempotencyStore};

/// First wait before asking again about a key another consumer holds; doubles up to
/// [`BUSY_POLL_MAX`].
const BUSY_POLL_FIRST: Duration = Duration::from_millis(50);
/// Longest wait between two looks at a busy key.
const BUSY_POLL_MAX: Duration = Duration::from_secs(1);
/// Waits before the retries of a failed `complete`.
const COMPLETE_RETRIES: [Duration; 4] = [
    Duration::from_millis(50),
    Duration::from_millis(150),
    Duration::from_millis(400),
    Duration::from_millis(900),
];

/// See the [module docs](self).
#[derive(Clone)]
pub struct IdempotencyLayer {
    settings: Arc<Idempotency>,
}

impl IdempotencyLayer {
    /// Uses these settings (store, key source, lease, TTL).
    pub fn new(settings: Idempotency) -> Self {
        IdempotencyLayer {
            settings: Arc::new(settings),
        }
    }
}

impl tower::Layer<ReceiveService> for IdempotencyLayer {
    type Service = ReceiveService;

    fn layer(&self, inner: ReceiveService) -> ReceiveService {
        ReceiveService::from_arc(Arc::new(IdempotentService {
            inner,
            settings: self.settings.clone(),
        }))
    }
}

struct IdempotentService {
    inner: ReceiveService,
    settings: Arc<Idempotency>,
}

/// Keys are per destination and group: billing and email each handle an event once.
/// Built by hand: `format!` took about 1,100 instructions a delivery.
fn scoped_key(ctx: &Context, key: &str) -> String {
    let (destination, group) = (
        ctx.destination(),
        ctx.group().unwrap_or(crate::DEFAULT_GROUP),
    );
    let mut scoped = String::with_capacity(destination.len() + group.len() + key.len() + 2);
    for part in [destination, "/", group, "/", key] {
        scoped.push_str(part);
    }
    scoped
}

impl Call<Incoming, Disposition> for IdempotentService {
    fn call(self: Arc<Self>, request: Incoming) -> BoxFuture<Result<Disposition>> {
        Box::pin(async move {
            let idem = &self.settings;
            let key = crate::handler::call_catching(
                "the idempotency key function",
                brokerkit_core::ErrorKind::Decode,
                || idem.key_of(&request.message),
            )??;
            let key = scoped_key(&request.context, &key);
            let token = match claim_waiting(idem, &key).await {
                Ok(Claim::Acquired(token)) => token,
                Ok(Claim::Done) => return Ok(Disposition::Duplicate),
                Ok(Claim::InProgress) => {
                    return Ok(Disposition::Retry {
                        delay: Some(idem.lease),
                    })
                }
                // Fail safe: the store is down, so the message must not count as handled.
                Err(e) => {
                    tracing::warn!(error = %e, "idempotency store unavailable; message goes back");
                    return Ok(Disposition::RetryLater);
                }
            };
            let mut claim = HeldClaim {
                store: idem.store.clone(),
                key,
                token: Some(token),
            };
            let result = claim.renew_while(idem.lease, self.inner.run(request)).await;
            match &result {
                Ok(Disposition::Ack) => {
                    if !claim.complete(idem.ttl).await {
                        return Ok(Disposition::RetryLater);
                    }
                }
                _ => claim.release().await,
            }
            result
        })
    }
}

/// Claims `key`, waiting while another consumer holds it, for up to one lease: `InProgress`
/// only when the holder still has it after that.
async fn claim_waiting(idem: &Idempotency, key: &str) -> Result<Claim> {
    let give_up = tokio::time::Instant::now() + idem.lease;
    let mut wait = BUSY_POLL_FIRST;
    loop {
        let claim = idem.store.claim(key, idem.lease).await?;
        let now = tokio::time::Instant::now();
        if claim != Claim::InProgress || now >= give_up {
            return Ok(claim);
        }
        tokio::time::sleep(wait.min(give_up - now)).await;
        wait = (wait * 2).min(BUSY_POLL_MAX);
    }
}

/// A claim this consumer holds; released in the background if dropped while held.
struct HeldClaim {
    store: Arc<dyn IdempotencyStore>,
    key: String,
    token: Option<ClaimToken>,
}

impl HeldClaim {
    /// Runs `work`, extending the claim every third of `lease` until it completes.
    async fn renew_while<F: Future>(&self, lease: Duration, work: F) -> F::Output {
        let Some(token) = &self.token else {
            return work.await;
        };
        tokio::pin!(work);
        if let Some(out) = crate::layers::poll_once(work.as_mut()).await {
            return out;
        }
        Box::pin(self.renew_until_done(token, lease, work)).await
    }

    async fn renew_until_done<F: Future>(
        &self,
        token: &ClaimToken,
        lease: Duration,
        mut work: std::pin::Pin<&mut F>,
    ) -> F::Output {
        let period = (lease / 3).max(Duration::from_millis(10));
        let mut renewing = true;
        loop {
            if !renewing {
                return work.await;
            }
            tokio::select! {
                biased;
                out = &mut work => return out,
                _ = tokio::time::sleep(period) => {}
            }
            let extend = self.store.extend(&self.key, token, lease);
            tokio::pin!(extend);
            let answer = tokio::select! {
                biased;
                out = &mut work => return out,
                answer = &mut extend => answer,
            };
            match answer {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    key = self.key,
                    "idempotency claim lost while the handler ran (lease expired); another consumer may run it too"
                ),
                Err(e) if e.kind() == brokerkit_core::ErrorKind::Unsupported => {
                    tracing::warn!(error = %e, "idempotency claim cannot be renewed; set a lease longer than the handler");
                    renewing = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, key = self.key, "could not renew idempotency claim")
                }
            }
        }
    }

    /// Records the key as done, retrying a failing store; `false` when it never succeeded
    /// (the claim is then left to expire with its lease, not released: the work was done).
    async fn complete(&mut self, ttl: Duration) -> bool {
        let Some(token) = self.token.take() else {
            return true;
        };
        let mut last = None;
        for wait in std::iter::once(Duration::ZERO).chain(COMPLETE_RETRIES) {
            // Not for the first try: a zero sleep still waits for the timer's next tick (about
            // 1 ms), which capped a handler slot at ~1,000 deliveries a second.
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            match self.store.complete(&self.key, &token, ttl).await {
                Ok(()) => return true,
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            tracing::error!(
                error = %e,
                key = self.key,
                "handled, but the idempotency store did not record it after 5 tries; the message \
                 is not acked and runs again once the claim's lease expires"
            );
        }
        false
    }

    async fn release(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        if let Err(e) = self.store.release(&self.key, &token).await {
            tracing::warn!(error = %e, key = self.key, "could not release idempotency claim; it expires with its lease");
        }
    }
}

impl Drop for HeldClaim {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        let (store, key) = (self.store.clone(), std::mem::take(&mut self.key));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = store.release(&key, &token).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::MemoryStore;

    /// `complete` answered at once must not wait on the timer: a zero `sleep` still waits for
    /// the timer's next tick (about 1 ms), which held every handler with idempotency to about
    /// 900 messages a second per worker (`brokerkit-bench --layers`: 1,749 msgs/s with
    /// concurrency 2). On a runtime without a timer any `sleep` panics.
    #[test]
    fn completing_a_claim_the_store_accepts_uses_no_timer() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let store: Arc<dyn IdempotencyStore> = Arc::new(MemoryStore::new());
            let lease = Duration::from_secs(30);
            let Claim::Acquired(token) = store.claim("k", lease).await.unwrap() else {
                panic!("a fresh key is acquired");
            };
            let mut held = HeldClaim {
                store: store.clone(),
                key: "k".into(),
                token: Some(token),
            };
            assert!(held.complete(Duration::from_secs(60)).await);
            assert_eq!(store.claim("k", lease).await.unwrap(), Claim::Done);
        });
    }
}
