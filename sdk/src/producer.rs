//! The user's producer handle: the send layers in front of the adapter.

use std::sync::Arc;

use brokerkit_core::{Error, Message, Result};

use crate::event::{encode_event_unchecked, Event};
use crate::layers::send::schema::EventSchema;
use crate::layers::send::{Outgoing, SendService};

/// Sends messages to one destination through its send layers (see [`crate::layers::send`]).
/// Cheap to clone.
#[derive(Clone)]
pub struct Producer {
    service: SendService,
    stats: Arc<crate::health::Stats>,
    broker: &'static str,
    destination: Arc<str>,
}

impl Producer {
    pub(crate) fn new(
        service: SendService,
        stats: Arc<crate::health::Stats>,
        broker: &'static str,
        destination: &str,
    ) -> Self {
        Producer {
            service,
            stats,
            broker,
            destination: destination.into(),
        }
    }

    /// Sends a typed event: encoded as JSON with event type, version and content type
    /// headers, and validated against its schema by the `schema` layer (each violation listed
    /// in the error). Returns the message id it was sent with (a handler of it sees that id as
    /// `ctx.message_id()`, and messages sent from that handler carry it as causation id).
    pub async fn send_event<E: Event>(&self, event: &E) -> Result<String> {
        let mut message = encode_event_unchecked(event).map_err(|e| self.context(e, "send"))?;
        let id = crate::layers::send::correlation::new_message_id();
        message
            .headers
            .set_message_id(id.clone())
            .map_err(|e| self.context(e, "send"))?;
        let mut out = Outgoing::one(self.destination.clone(), message);
        out.extensions_mut().insert(EventSchema(E::schema()));
        self.run(out, "send").await?;
        Ok(id)
    }

    /// The destination.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Sends one message through the layers; returns once the broker has taken it.
    ///
    /// Errors: [`brokerkit_core::ErrorKind::PayloadTooLarge`] (with both sizes),
    /// `Unsupported` or `InvalidHeader` before any I/O when the broker cannot carry the message.
    pub async fn send(&self, message: Message) -> Result<()> {
        self.run(Outgoing::one(self.destination.clone(), message), "send")
            .await
    }

    /// Sends many messages, split into the broker's batch size. Every message is checked
    /// before the first is sent.
    pub async fn send_batch(&self, messages: Vec<Message>) -> Result<()> {
        self.run(
            Outgoing::batch(self.destination.clone(), messages),
            "send_batch",
        )
        .await
    }

    /// A [`SendBatcher`](crate::SendBatcher) over this producer: single sends, from one task
    /// or many, gathered into batches with a per-message result. Needs a Tokio runtime (it
    /// spawns the task that sends the batches).
    ///
    /// # Errors
    /// `Config` when an option is out of range.
    pub fn batcher(&self, options: crate::BatcherOptions) -> Result<crate::SendBatcher> {
        crate::SendBatcher::start(self.clone(), options)
    }

    async fn run(&self, out: Outgoing, op: &'static str) -> Result<()> {
        self.service
            .run(out)
            .await
            .map_err(|e| self.context(e, op))?;
        self.stats.round_trip();
        Ok(())
    }

    fn context(&self, e: Error, op: &'static str) -> Error {
        e.or_context(self.broker, &self.destination, op)
    }
}
