//! The innermost send service: the broker's capability check on every message, then the
//! adapter. Batches larger than the broker's `max_batch` are split into chunks.

use std::sync::Arc;

use brokerkit_core::{Capabilities, Message, ProducerBackend, Result};

use super::{BoxFuture, Outgoing, SendService};
use crate::layers::{Call, SharedService};

/// The adapter behind the capability check, as the innermost [`SendService`].
pub fn adapter_service(
    backend: Arc<dyn ProducerBackend>,
    capabilities: Arc<Capabilities>,
) -> SendService {
    SharedService::from_arc(Arc::new(Adapter {
        backend,
        capabilities,
    }))
}

struct Adapter {
    backend: Arc<dyn ProducerBackend>,
    capabilities: Arc<Capabilities>,
}

impl Call<Outgoing, ()> for Adapter {
    fn call(self: Arc<Self>, request: Outgoing) -> BoxFuture<Result<()>> {
        for m in request.messages() {
            if let Err(e) = self.capabilities.check_send(m) {
                return Box::pin(std::future::ready(Err(e)));
            }
        }
        match request.into_messages() {
            Ok(one) => Box::pin(async move { self.backend.send(one).await }),
            Err(many) => Box::pin(async move { self.send_chunks(many).await }),
        }
    }
}

impl Adapter {
    async fn send_chunks(&self, messages: Vec<Message>) -> Result<()> {
        let size = self.capabilities.max_batch.max(1);
        if messages.len() <= size {
            return self.backend.send_batch(messages).await;
        }
        let mut rest = messages.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<Message> = rest.by_ref().take(size).collect();
            self.backend.send_batch(chunk).await?;
        }
        Ok(())
    }
}
