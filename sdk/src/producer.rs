//! The user's producer handle: always-on capability checks in front of the adapter.

use std::sync::Arc;

use brokerkit_core::{Capabilities, Message, ProducerBackend, Result};

use crate::event::{encode_event, Event};
use crate::layers::SendLayer;

/// Sends messages to one destination. Cheap to clone.
#[derive(Clone)]
pub struct Producer {
    backend: Arc<dyn ProducerBackend>,
    capabilities: Arc<Capabilities>,
    broker: &'static str,
    destination: Arc<str>,
    layers: Arc<[Arc<dyn SendLayer>]>,
}

impl Producer {
    pub(crate) fn new(
        backend: Arc<dyn ProducerBackend>,
        capabilities: Arc<Capabilities>,
        broker: &'static str,
        destination: &str,
        layers: Arc<[Arc<dyn SendLayer>]>,
    ) -> Self {
        Producer {
            backend,
            capabilities,
            broker,
            destination: destination.into(),
            layers,
        }
    }

    fn prepare(&self, message: &mut Message, op: &'static str) -> Result<()> {
        for layer in self.layers.iter() {
            layer.on_send(message).map_err(|e| self.context(e, op))?;
        }
        self.capabilities
            .check_send(message)
            .map_err(|e| self.context(e, op))
    }

    /// Sends a typed event: validated against its schema (each violation listed in the
    /// error), encoded as JSON, with event type, version and content type headers.
    pub async fn send_event<E: Event>(&self, event: &E) -> Result<()> {
        let message = encode_event(event).map_err(|e| self.context(e, "send"))?;
        self.send(message).await
    }

    /// The destination.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Sends one message through the layers; returns once the broker has taken it.
    ///
    /// Errors: [`brokerkit_core::ErrorKind::PayloadTooLarge`] (with both sizes),
    /// `Unsupported` or `InvalidHeader` before any I/O when the broker cannot carry the message.
    pub async fn send(&self, mut message: Message) -> Result<()> {
        self.prepare(&mut message, "send")?;
        self.backend
            .send(message)
            .await
            .map_err(|e| self.context(e, "send"))
    }

    /// Sends many messages, split into the broker's batch size. Every message is checked
    /// before the first is sent.
    pub async fn send_batch(&self, mut messages: Vec<Message>) -> Result<()> {
        for m in &mut messages {
            self.prepare(m, "send_batch")?;
        }
        let size = self.capabilities.max_batch.max(1);
        if messages.len() <= size {
            return self
                .backend
                .send_batch(messages)
                .await
                .map_err(|e| self.context(e, "send_batch"));
        }
        let mut rest = messages.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<Message> = rest.by_ref().take(size).collect();
            self.backend
                .send_batch(chunk)
                .await
                .map_err(|e| self.context(e, "send_batch"))?;
        }
        Ok(())
    }

    fn context(&self, e: brokerkit_core::Error, op: &'static str) -> brokerkit_core::Error {
        e.or_context(self.broker, &self.destination, op)
    }
}
