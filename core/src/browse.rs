//! Browsing: reading what a destination holds without consuming it (the dead-letter viewer's
//! primitive). Nothing is acked, moved, duplicated or reordered by looking.

use crate::message::Message;

/// One message seen by [`crate::Backend::browse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowsedMessage {
    /// A stable id for this message within its destination, as the broker knows it (a
    /// sequence number, `partition:offset`, the position in the queue, the broker's message
    /// id; each adapter's README says which). Shown by `brokerkit dlq list` and accepted by
    /// `brokerkit dlq show`.
    pub id: String,
    /// Payload, headers and key as stored.
    pub message: Message,
}

impl BrowsedMessage {
    /// A browsed message.
    pub fn new(id: impl Into<String>, message: Message) -> Self {
        BrowsedMessage {
            id: id.into(),
            message,
        }
    }
}
