//! Sending: JetStream publish with the publish ack awaited, or a core publish followed by a
//! flush (the server has taken it).

use std::sync::Arc;

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_trait::async_trait;
use brokerkit_core::{BatchError, Error, Message, ProducerBackend, Result};

use crate::config::Mode;
use crate::error::from_client;
use crate::headers;
use crate::link::Shared;

/// Sends to one destination (one subject).
pub(crate) struct NatsProducer {
    shared: Arc<Shared>,
    destination: Arc<str>,
    subject: String,
}

impl NatsProducer {
    pub fn new(shared: Arc<Shared>, destination: &str, subject: String) -> Self {
        NatsProducer {
            shared,
            destination: destination.into(),
            subject,
        }
    }

    fn ctx(&self, e: Error) -> Error {
        e.with_destination(&*self.destination)
    }

    /// Checks the size and starts a JetStream publish; the returned future gives the ack.
    async fn start_js(&self, message: Message) -> Result<PublishAckFuture> {
        let out = headers::to_nats(&message, true, None)?;
        headers::check_size(message.payload.len(), &out, self.shared.max_payload)?;
        publish_js(&self.shared, &self.subject, message.payload, out).await
    }

    async fn send_core(&self, message: Message) -> Result<()> {
        let out = headers::to_nats(&message, false, None)?;
        headers::check_size(message.payload.len(), &out, self.shared.max_payload)?;
        let client = &self.shared.client;
        let sent = match out.map {
            Some(map) => {
                client
                    .publish_with_headers(self.subject.clone(), map, message.payload)
                    .await
            }
            None => client.publish(self.subject.clone(), message.payload).await,
        };
        sent.map_err(|e| from_client(e, "publish", self.shared.address()))
    }

    async fn flush(&self) -> Result<()> {
        self.shared
            .client
            .flush()
            .await
            .map_err(|e| from_client(e, "flush", self.shared.address()))
    }
}

/// Starts a JetStream publish of a checked message.
pub(crate) async fn publish_js(
    shared: &Shared,
    subject: &str,
    payload: bytes::Bytes,
    out: headers::Outgoing,
) -> Result<PublishAckFuture> {
    let mut publish = PublishMessage::build().payload(payload);
    if let Some(map) = out.map {
        publish = publish.headers(map);
    }
    shared
        .js()?
        .send_publish(subject.to_string(), publish)
        .await
        .map_err(|e| from_client(e, "publish", shared.address()))
}

/// Waits for a JetStream publish ack.
pub(crate) async fn await_ack(shared: &Shared, ack: PublishAckFuture) -> Result<()> {
    ack.await
        .map(|_| ())
        .map_err(|e| from_client(e, "publish ack", shared.address()))
}

#[async_trait]
impl ProducerBackend for NatsProducer {
    async fn send(&self, message: Message) -> Result<()> {
        self.shared.check_open().map_err(|e| self.ctx(e))?;
        let sent = match self.shared.config.mode {
            Mode::JetStream => match self.start_js(message).await {
                Ok(ack) => await_ack(&self.shared, ack).await,
                Err(e) => Err(e),
            },
            Mode::Core => match self.send_core(message).await {
                Ok(()) => self.flush().await,
                Err(e) => Err(e),
            },
        };
        sent.map_err(|e| self.ctx(e))
    }

    /// Publishes the whole batch before waiting for the acks (pipelined).
    async fn send_batch(&self, messages: Vec<Message>) -> Result<()> {
        self.shared.check_open().map_err(|e| self.ctx(e))?;
        let total = messages.len();
        let mut report = BatchError::new(total);
        match self.shared.config.mode {
            Mode::JetStream => {
                let mut acks = Vec::with_capacity(total);
                for (i, m) in messages.into_iter().enumerate() {
                    match self.start_js(m).await {
                        Ok(ack) => acks.push((i, ack)),
                        Err(e) => report.fail(i, e),
                    }
                }
                // Awaited together: each ack's timeout runs from when it is awaited, so
                // awaiting them one by one made a batch whose acks were lost with the
                // connection take one `request_timeout` per entry (34 × 2 s in the fault suite).
                let shared = &self.shared;
                let results = futures_util::future::join_all(
                    acks.into_iter()
                        .map(|(i, ack)| async move { (i, await_ack(shared, ack).await) }),
                )
                .await;
                for (i, result) in results {
                    if let Err(e) = result {
                        report.fail(i, e);
                    }
                }
            }
            Mode::Core => {
                for (i, m) in messages.into_iter().enumerate() {
                    if let Err(e) = self.send_core(m).await {
                        report.fail(i, e);
                    }
                }
                if let Err(e) = self.flush().await {
                    // Nothing is known to have reached the server.
                    return Err(self.ctx(e));
                }
            }
        }
        report.into_result().map_err(|e| self.ctx(e))
    }
}
