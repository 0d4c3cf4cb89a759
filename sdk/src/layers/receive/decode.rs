//! `decode`: decodes and schema-validates the payload with the handler's [`Decoder`] and
//! passes the result inward as an extension. A payload that does not decode or validate is an
//! error of kind `Decode`/`Validation` whose source, [`ValidationFailed`], lists each
//! violation: the `retry` layer puts them in the dead-letter envelope. An event the decoder
//! does not accept ([`crate::handler::Unaccepted`]) is dead-lettered, retried later or, with
//! `Skip`, answered [`Disposition::Drop`] here (acked, one `warn` line).

use std::sync::Arc;

use brokerkit_core::{ErrorKind, Result, ValidationIssue};

use super::{BoxFuture, Call, Disposition, Incoming, ReceiveService};
use crate::handler::{Decoder, Rejection};

/// See the [module docs](self).
pub struct DecodeLayer<D> {
    decoder: Arc<D>,
}

impl<D> Clone for DecodeLayer<D> {
    fn clone(&self) -> Self {
        DecodeLayer {
            decoder: self.decoder.clone(),
        }
    }
}

impl<D: Decoder> DecodeLayer<D> {
    /// Decodes with `decoder`.
    pub fn new(decoder: D) -> Self {
        DecodeLayer {
            decoder: Arc::new(decoder),
        }
    }
}

impl<D: Decoder> tower::Layer<ReceiveService> for DecodeLayer<D> {
    type Service = ReceiveService;

    fn layer(&self, inner: ReceiveService) -> ReceiveService {
        ReceiveService::from_arc(Arc::new(Decode {
            inner,
            decoder: self.decoder.clone(),
        }))
    }
}

struct Decode<D> {
    inner: ReceiveService,
    decoder: Arc<D>,
}

impl<D: Decoder> Call<Incoming, Disposition> for Decode<D> {
    fn call(self: Arc<Self>, mut request: Incoming) -> BoxFuture<Result<Disposition>> {
        let decoded = crate::handler::call_catching("the decoder", ErrorKind::Decode, || {
            self.decoder.decode(&request.message)
        });
        match decoded.map_err(Rejection::from).and_then(|r| r) {
            Ok(input) => {
                request.extensions_mut().insert(input);
                self.inner.run(request)
            }
            Err(rejection) => {
                if crate::handler::unaccepted::policy_of(&rejection.error)
                    == Some(crate::handler::Unaccepted::Skip)
                {
                    skipped(&request, &rejection.error);
                    return Box::pin(std::future::ready(Ok(Disposition::Drop)));
                }
                let mut error = rejection.error;
                if !rejection.issues.is_empty() {
                    error = error.with_source(ValidationFailed {
                        issues: rejection.issues,
                    });
                }
                Box::pin(std::future::ready(Err(error)))
            }
        }
    }
}

/// Logs an event skipped by [`crate::handler::Unaccepted::Skip`].
fn skipped(request: &Incoming, error: &brokerkit_core::Error) {
    let ctx = &request.context;
    tracing::warn!(
        destination = ctx.destination(),
        group = ctx.group().unwrap_or("default"),
        message_id = ctx.message_id().unwrap_or(""),
        reason = error.message(),
        "skipping an event no handler accepts (Unaccepted::Skip)"
    );
}

/// The schema violations of a payload, as the source of its validation error.
#[derive(Debug, Clone)]
pub struct ValidationFailed {
    /// Each violation with its JSON pointer.
    pub issues: Vec<ValidationIssue>,
}

impl std::fmt::Display for ValidationFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} schema violation(s)", self.issues.len())
    }
}

impl std::error::Error for ValidationFailed {}
