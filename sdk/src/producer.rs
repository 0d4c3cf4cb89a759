//! The user's producer handle: always-on capability checks in front of the adapter.

use std::sync::Arc;

use brokerkit_core::{BatchError, Capabilities, Message, ProducerBackend, Result};

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
    ///
    /// On partial failure the error's source is a [`brokerkit_core::BatchError`] whose indexes
    /// are positions in `messages` (shifted across chunks): entries it names as failed or not
    /// attempted were not sent, every other entry was.
    pub async fn send_batch(&self, mut messages: Vec<Message>) -> Result<()> {
        for m in &mut messages {
            self.prepare(m, "send_batch")?;
        }
        let total = messages.len();
        let size = self.capabilities.max_batch.max(1);
        let mut rest = messages.into_iter().peekable();
        let mut offset = 0;
        while rest.peek().is_some() {
            let chunk: Vec<Message> = rest.by_ref().take(size).collect();
            let len = chunk.len();
            if let Err(e) = self.backend.send_batch(chunk).await {
                let e = self.context(e, "send_batch");
                if offset == 0 && len == total {
                    return Err(e);
                }
                return Err(self.context(chunk_failure(e, offset, len, total), "send_batch"));
            }
            offset += len;
        }
        Ok(())
    }

    fn context(&self, e: brokerkit_core::Error, op: &'static str) -> brokerkit_core::Error {
        e.or_context(self.broker, &self.destination, op)
    }
}

/// The error of the chunk at `offset` (of `len` entries) as a report over the whole batch:
/// the chunk's own report shifted, or every entry of the chunk failed when the adapter gave a
/// plain error; the later chunks were not attempted.
fn chunk_failure(
    e: brokerkit_core::Error,
    offset: usize,
    len: usize,
    total: usize,
) -> brokerkit_core::Error {
    let mut report = match BatchError::take(e) {
        Ok(report) => report.shifted(offset, total),
        Err(e) => {
            let mut r = BatchError::new(total);
            let mut first = Some(e);
            for i in offset..offset + len {
                // One failure carries the error; the others of the chunk share its kind.
                let err = first.take().unwrap_or_else(|| {
                    brokerkit_core::Error::new(
                        r.failed[0].1.kind(),
                        "failed with the entry before it",
                    )
                    .retryable(r.failed[0].1.is_retryable())
                });
                r.fail(i, err);
            }
            r
        }
    };
    report.skip(offset + len..total);
    match report.into_result() {
        Err(e) => e,
        Ok(()) => {
            brokerkit_core::Error::new(brokerkit_core::ErrorKind::Unexpected, "empty batch report")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brokerkit_core::{Error, ErrorKind};

    #[test]
    fn chunk_report_is_shifted_and_later_chunks_not_attempted() {
        let mut r = BatchError::new(3);
        r.fail(1, Error::new(ErrorKind::Rejected, "refused"));
        let e = chunk_failure(r.into_result().unwrap_err(), 6, 3, 12);
        let report = BatchError::of(&e).unwrap();
        assert_eq!(report.failed[0].0, 7);
        assert_eq!(report.not_attempted, (9..12).collect::<Vec<_>>());
        assert_eq!(report.total, 12);
    }

    #[test]
    fn plain_chunk_error_fails_the_whole_chunk() {
        let e = chunk_failure(Error::new(ErrorKind::Unavailable, "down"), 3, 3, 9);
        let report = BatchError::of(&e).unwrap();
        assert_eq!(report.unsent(), (3..9).collect::<Vec<_>>());
        assert!(e.is_retryable());
    }
}
