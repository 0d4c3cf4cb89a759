//! `schema`: a typed event ([`crate::Producer::send_event`]) is validated against its JSON
//! Schema before it leaves; each violation is listed in the `Validation` error, with its JSON
//! pointer. Messages sent as bytes carry no schema and pass unchanged.

use std::sync::Arc;

use brokerkit_core::{Error, ErrorKind, Result};

use super::{BoxFuture, Outgoing, SendService};
use crate::layers::{Call, SharedService};
use crate::schema::SchemaValidator;

/// The schema the messages of an [`Outgoing`] must follow (set by `send_event`).
#[derive(Clone)]
pub struct EventSchema(pub Arc<SchemaValidator>);

/// See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct SchemaLayer;

impl tower::Layer<SendService> for SchemaLayer {
    type Service = SendService;

    fn layer(&self, inner: SendService) -> SendService {
        SharedService::from_arc(Arc::new(Validate { inner }))
    }
}

struct Validate {
    inner: SendService,
}

impl Call<Outgoing, ()> for Validate {
    fn call(self: Arc<Self>, request: Outgoing) -> BoxFuture<Result<()>> {
        if let Some(EventSchema(schema)) = request.extensions().get::<EventSchema>() {
            for m in request.messages() {
                if let Err(e) = check(schema, &m.payload) {
                    return Box::pin(std::future::ready(Err(e)));
                }
            }
        }
        self.inner.run(request)
    }
}

fn check(schema: &SchemaValidator, payload: &[u8]) -> Result<()> {
    let value: serde_json::Value = serde_json::from_slice(payload).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            format!("payload is not JSON for {}: {e}", schema.name()),
        )
    })?;
    schema.check(&value)
}
