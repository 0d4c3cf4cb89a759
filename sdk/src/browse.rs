//! Looking at a destination without consuming it: [`Broker::browse`] and
//! [`Broker::browse_dead_letters`] (what `brokerkit dlq list` and `dlq show` use).

use brokerkit_core::{BrowsedMessage, DeadLetterEnvelope, Error, Message, Result};

use crate::broker::Broker;

/// Most messages one browse returns.
pub const MAX_BROWSE: usize = 10_000;

/// One dead letter as browsed: its id, the message (payload, original headers and the `dlq-*`
/// envelope headers) and the envelope parsed, when the headers carry one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterView {
    /// The broker's id for the message (see [`BrowsedMessage::id`]).
    pub id: String,
    /// The message as stored.
    pub message: Message,
    /// Why it was dead-lettered; `None` for a message with no envelope (sent there by hand).
    pub envelope: Option<DeadLetterEnvelope>,
}

impl Broker {
    /// Up to `limit` messages that `destination` holds, oldest first, without consuming them:
    /// nothing is acked, moved, duplicated or reordered. How each broker does it is declared in
    /// [`brokerkit_core::Capabilities::browse`]; brokers that cannot give `Unsupported`.
    pub async fn browse(&self, destination: &str, limit: usize) -> Result<Vec<BrowsedMessage>> {
        if limit == 0 || limit > MAX_BROWSE {
            return Err(Error::config(format!(
                "browse limit must be 1 to {MAX_BROWSE}, not {limit}"
            )));
        }
        self.backend()
            .browse(destination, limit)
            .await
            .map_err(|e| e.or_context(self.adapter(), destination, "browse"))
    }

    /// [`Broker::browse`] of a dead-letter destination, with each envelope parsed.
    pub async fn browse_dead_letters(
        &self,
        dead_letter_destination: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetterView>> {
        Ok(self
            .browse(dead_letter_destination, limit)
            .await?
            .into_iter()
            .map(|b| DeadLetterView {
                envelope: DeadLetterEnvelope::read_from(&b.message.headers),
                id: b.id,
                message: b.message,
            })
            .collect())
    }
}
