//! `idempotency`: runs the inner layers and the handler once per idempotency key, per
//! destination and group, across redeliveries and across instances sharing the store.
//!
//! - A key handled before: [`Disposition::Duplicate`] (acked, handler not run).
//! - A key another consumer holds now: retried after 200 ms.
//! - The store unreachable: [`Disposition::RetryLater`]: the message goes back, never counted
//!   as handled.
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

/// Delay before looking again at a message whose key another consumer is handling.
const IN_PROGRESS_DELAY: Duration = Duration::from_millis(200);

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
fn scoped_key(ctx: &Context, key: &str) -> String {
    format!(
        "{}/{}/{key}",
        ctx.destination(),
        ctx.group().unwrap_or(crate::DEFAULT_GROUP)
    )
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
            let token = match idem.store.claim(&key, idem.lease).await {
                Ok(Claim::Acquired(token)) => token,
                Ok(Claim::Done) => return Ok(Disposition::Duplicate),
                Ok(Claim::InProgress) => {
                    return Ok(Disposition::Retry {
                        delay: Some(IN_PROGRESS_DELAY),
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
                Ok(Disposition::Ack) => claim.complete(idem.ttl).await,
                _ => claim.release().await,
            }
            result
        })
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

    async fn complete(&mut self, ttl: Duration) {
        let Some(token) = self.token.take() else {
            return;
        };
        if let Err(e) = self.store.complete(&self.key, &token, ttl).await {
            tracing::warn!(error = %e, key = self.key, "handled, but the idempotency store did not record it");
        }
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
