//! The innermost send service: the broker's capability check on every message, then the
//! adapter. Batches larger than the broker's `max_batch` are split into chunks.

use std::sync::Arc;

use brokerkit_core::{BatchError, Capabilities, Message, ProducerBackend, Result, SendNow};

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
            // In-process brokers store most messages at once: no future for those.
            Ok(one) => match self.backend.send_now(one) {
                SendNow::Done(result) => crate::layers::finished(result),
                SendNow::Wait(one) => self.backend.clone().send_owned(one),
            },
            Err(many) => Box::pin(async move { self.send_chunks(many).await }),
        }
    }
}

impl Adapter {
    /// Sends in chunks of `max_batch`. On partial failure the error's source is a
    /// [`BatchError`] whose indexes are positions in `messages` (shifted across chunks):
    /// entries it names as failed or not attempted were not sent, every other entry was.
    async fn send_chunks(&self, messages: Vec<Message>) -> Result<()> {
        let total = messages.len();
        let size = self.capabilities.max_batch.max(1);
        if total <= size {
            return self.backend.send_batch(messages).await;
        }
        let mut rest = messages.into_iter().peekable();
        let mut offset = 0;
        while rest.peek().is_some() {
            let chunk: Vec<Message> = rest.by_ref().take(size).collect();
            let len = chunk.len();
            if let Err(e) = self.backend.send_batch(chunk).await {
                return Err(chunk_failure(e, offset, len, total));
            }
            offset += len;
        }
        Ok(())
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
