//! A received message that must be settled exactly once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::capabilities::Capabilities;
use crate::dead_letter::DeadLetterReason;
use crate::error::Result;
use crate::message::Message;

/// How a delivery is settled.
#[derive(Debug)]
pub enum Settlement {
    /// Done: the broker forgets the message.
    Ack,
    /// Deliver again, no earlier than `delay` after now.
    Nack {
        /// Minimum wait before redelivery; `None` or zero for "as soon as possible".
        delay: Option<Duration>,
    },
    /// Move to the destination's dead-letter destination with an envelope.
    DeadLetter {
        /// Why.
        reason: DeadLetterReason,
        /// The message as received (payload and headers unchanged).
        message: Message,
    },
}

/// The adapter's half of a delivery: settles it with the broker.
///
/// # Behavior
/// - `settle` is called at most once (it consumes the box).
/// - If the box is dropped without `settle`, the message must be delivered again (immediately,
///   or once the broker's visibility timeout or connection loss makes it so); it is never lost
///   and never dead-lettered by a drop.
/// - The request has passed [`Capabilities`] checks already.
#[async_trait]
pub trait Settle: Send + 'static {
    /// Settles the delivery.
    async fn settle(self: Box<Self>, how: Settlement) -> Result<()>;

    /// Settles at once, without waiting or I/O, where the adapter can (an in-process
    /// broker): `Some` with the outcome, after which the box is dropped without `settle`
    /// (and must then not redeliver); `None` to go on with [`Settle::settle`]. Only asked for
    /// `Ack` and `Nack`. The default declines.
    fn settle_now(&mut self, how: &Settlement) -> Option<Result<()>> {
        let _ = how;
        None
    }

    /// Keeps the delivery from being handed to another consumer for at least `by` from now
    /// with the broker's own call (a visibility change, an in-progress ack).
    /// Only called when [`Capabilities::lease_extension`] is available; the default refuses.
    async fn extend(&mut self, by: Duration) -> Result<()> {
        let _ = by;
        Err(crate::Error::unsupported(
            "this broker has no lease to extend",
        ))
    }
}

/// A message handed to a consumer, with its attempt count.
///
/// # Behavior
/// - `attempt` is 1 on the first delivery and grows by one per redelivery.
/// - Settling (`ack`, `nack`, `dead_letter`) consumes the delivery, so it happens once.
/// - A request the adapter cannot honour (see [`Capabilities`]) fails with
///   [`crate::ErrorKind::Unsupported`] before any I/O; the delivery is then dropped unsettled,
///   so the broker delivers it again: nothing is lost.
/// - Dropping a delivery without settling it makes the broker deliver it again.
pub struct Delivery {
    message: Message,
    attempt: u32,
    destination: Arc<str>,
    capabilities: Arc<Capabilities>,
    settler: Box<dyn Settle>,
}

impl Delivery {
    /// Built by adapters.
    pub fn new(
        message: Message,
        attempt: u32,
        destination: Arc<str>,
        capabilities: Arc<Capabilities>,
        settler: Box<dyn Settle>,
    ) -> Self {
        Delivery {
            message,
            attempt,
            destination,
            capabilities,
            settler,
        }
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The message, to change before it is handed on (the SDK fills canonical headers of a
    /// foreign CloudEvent here). Settling is unaffected: it uses the broker's own handle.
    pub fn message_mut(&mut self) -> &mut Message {
        &mut self.message
    }

    /// 1 on first delivery, then 2, 3, …
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Where it was consumed from.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The capabilities of the adapter that delivered it.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Extends the delivery's lease (visibility timeout, `ack_wait`) to at least `by` from now,
    /// so a slow handler keeps it. The SDK's handler runner does this on its own; call it only
    /// when you settle deliveries of a raw [`crate::ConsumerBackend`] yourself.
    ///
    /// Errors: `Unsupported` where [`Capabilities::lease_extension`] is `No` (the broker
    /// never takes the delivery back while the consumer is connected).
    pub async fn extend(&mut self, by: Duration) -> Result<()> {
        self.capabilities.check_extend()?;
        self.settler.extend(by).await
    }

    /// Acknowledges: the message is done.
    pub async fn ack(mut self) -> Result<()> {
        if let Some(done) = self.settler.settle_now(&Settlement::Ack) {
            return done;
        }
        self.settler.settle(Settlement::Ack).await
    }

    /// Asks for redelivery, no earlier than `delay` from now.
    pub async fn nack(self, delay: Option<Duration>) -> Result<()> {
        self.capabilities.check_nack(delay)?;
        let how = Settlement::Nack { delay };
        let mut settler = self.settler;
        if let Some(done) = settler.settle_now(&how) {
            return done;
        }
        settler.settle(how).await
    }

    /// Moves the message to the dead-letter destination with an envelope.
    pub async fn dead_letter(self, reason: DeadLetterReason) -> Result<()> {
        self.capabilities.check_dead_letter()?;
        self.settler
            .settle(Settlement::DeadLetter {
                reason,
                message: self.message,
            })
            .await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("destination", &self.destination)
            .field("attempt", &self.attempt)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}
