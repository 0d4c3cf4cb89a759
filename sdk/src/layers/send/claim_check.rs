//! `claim_check`: a payload the broker cannot carry (or above the configured threshold) is
//! written to the object store and replaced by a reference header. See
//! [`crate::claim_check`]. Innermost of the named layers, right before the capability check.

use std::sync::Arc;

use brokerkit_core::{Bytes, Capabilities, Error, ErrorKind, Message, Result};

use super::{BoxFuture, Outgoing, SendService};
use crate::claim_check::{sha256_hex, ClaimCheck, Reference, REFERENCE_HEADER};
use crate::layers::{Call, SharedService};

/// See the [module docs](self).
#[derive(Clone)]
pub struct ClaimCheckLayer {
    config: ClaimCheck,
    capabilities: Arc<Capabilities>,
}

impl ClaimCheckLayer {
    /// Offloads through `config` what a broker with `capabilities` cannot carry.
    pub fn new(config: ClaimCheck, capabilities: Arc<Capabilities>) -> Self {
        ClaimCheckLayer {
            config,
            capabilities,
        }
    }
}

impl tower::Layer<SendService> for ClaimCheckLayer {
    type Service = SendService;

    fn layer(&self, inner: SendService) -> SendService {
        SharedService::from_arc(Arc::new(Offload {
            inner,
            layer: self.clone(),
        }))
    }
}

struct Offload {
    inner: SendService,
    layer: ClaimCheckLayer,
}

impl Call<Outgoing, ()> for Offload {
    fn call(self: Arc<Self>, request: Outgoing) -> BoxFuture<Result<()>> {
        let cc = &self.layer.config;
        let caps = &self.layer.capabilities;
        let any = request
            .messages()
            .iter()
            .any(|m| cc.offloads(m, caps) && m.headers.get(REFERENCE_HEADER).is_none());
        if !any {
            // Small payloads: no store I/O, no extra allocation.
            return self.inner.run(request);
        }
        Box::pin(async move {
            let mut request = request;
            let destination = request.destination().to_string();
            for m in request.messages_mut() {
                let cc = &self.layer.config;
                if cc.offloads(m, &self.layer.capabilities)
                    && m.headers.get(REFERENCE_HEADER).is_none()
                {
                    offload(cc, &destination, m).await?;
                }
            }
            self.inner.run(request).await
        })
    }
}

/// Writes `message`'s payload to the store and swaps it for the reference header.
async fn offload(cc: &ClaimCheck, destination: &str, message: &mut Message) -> Result<()> {
    let store = cc.store();
    let size = message.payload.len();
    if size as u64 > store.max_object_bytes() {
        return Err(Error::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "payload is {size} bytes; the maximum is {} bytes (the claim-check {} store's \
                 limit, which replaces the broker's with claim-check on)",
                store.max_object_bytes(),
                store.kind()
            ),
        ));
    }
    let key = format!(
        "{}/{destination}/{}",
        cc.key_prefix(),
        uuid::Uuid::now_v7().simple()
    );
    let payload = std::mem::take(&mut message.payload);
    let content_type = message.headers.content_type().map(str::to_string);
    let reference = Reference {
        v: 1,
        store: store.kind().to_string(),
        bucket: store.bucket().to_string(),
        key: key.clone(),
        size: size as u64,
        sha256: sha256_hex(&payload),
        content_type: content_type.clone(),
    };
    if let Err(e) = store
        .put(&key, payload.clone(), content_type.as_deref())
        .await
    {
        message.payload = payload;
        return Err(e);
    }
    if let Err(e) = message
        .headers
        .insert(REFERENCE_HEADER, reference.to_header())
    {
        message.payload = payload;
        return Err(e);
    }
    message.payload = Bytes::new();
    Ok(())
}
