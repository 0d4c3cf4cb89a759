//! `claim_check`: a message with a [`REFERENCE_HEADER`] gets its payload back from the object
//! store, checked against the reference's size and SHA-256, before `decode` sees it. A
//! missing or corrupt object is an error with a [`crate::claim_check::ClaimCheckError`]
//! source; the `retry` layer outside dead-letters it with the reason, and the dead letter
//! keeps the reference (the delivery's own message is what is dead-lettered). Messages
//! without the header pass with no store I/O. Where the set-up deletes after ack, the delete
//! is queued on [`AfterAck`] and runs once the broker has the ack.

use std::sync::Arc;

use brokerkit_core::Result;

use super::after_ack::AfterAck;
use super::{BoxFuture, Call, Disposition, Incoming, ReceiveService};
use crate::claim_check::{ClaimCheck, ClaimCheckError, Problem, Reference, REFERENCE_HEADER};

/// See the [module docs](self).
#[derive(Clone)]
pub struct ClaimCheckLayer {
    config: ClaimCheck,
    delete_after_ack: bool,
}

impl ClaimCheckLayer {
    /// Fetches through `config`; deletes objects after ack when `delete_after_ack` (see
    /// [`ClaimCheck::deletes_after_ack`]).
    pub fn new(config: ClaimCheck, delete_after_ack: bool) -> Self {
        ClaimCheckLayer {
            config,
            delete_after_ack,
        }
    }
}

impl tower::Layer<ReceiveService> for ClaimCheckLayer {
    type Service = ReceiveService;

    fn layer(&self, inner: ReceiveService) -> ReceiveService {
        ReceiveService::from_arc(Arc::new(Fetch {
            inner,
            layer: self.clone(),
        }))
    }
}

struct Fetch {
    inner: ReceiveService,
    layer: ClaimCheckLayer,
}

impl Call<Incoming, Disposition> for Fetch {
    fn call(self: Arc<Self>, request: Incoming) -> BoxFuture<Result<Disposition>> {
        if request.message.headers.get(REFERENCE_HEADER).is_none() {
            return self.inner.run(request);
        }
        Box::pin(async move {
            let mut request = request;
            let value = request
                .message
                .headers
                .remove(REFERENCE_HEADER)
                .unwrap_or_default();
            let reference = Reference::parse(&value)?;
            let store = self.layer.config.store();
            if reference.store != store.kind() || reference.bucket != store.bucket() {
                return Err(ClaimCheckError::new(
                    Problem::BadReference,
                    format!(
                        "object {} is not in this consumer's store {}://{}",
                        reference.location(),
                        store.kind(),
                        store.bucket()
                    ),
                )
                .into_error());
            }
            let Some(bytes) = store.get(&reference.key).await? else {
                return Err(ClaimCheckError::new(
                    Problem::Missing,
                    format!(
                        "object {} is missing (deleted, expired by the bucket's lifecycle rule, \
                         or never written)",
                        reference.location()
                    ),
                )
                .into_error());
            };
            reference.verify(&bytes)?;
            request.message.payload = bytes;
            let hooks = self
                .layer
                .delete_after_ack
                .then(|| request.extensions().get::<AfterAck>().cloned())
                .flatten();
            let key = reference.key.clone();
            request.extensions_mut().insert(reference);
            let disposition = self.inner.run(request).await?;
            if let (Some(hooks), Disposition::Ack | Disposition::Duplicate | Disposition::Drop) =
                (hooks, &disposition)
            {
                let store = store.clone();
                hooks.push(async move {
                    if let Err(e) = store.delete(&key).await {
                        tracing::warn!(error = %e, key, "claim-check: could not delete the object after ack; the bucket's expiry rule will");
                    }
                });
            }
            Ok(disposition)
        })
    }
}
