//! The adapter contract: what every broker implements. Behaviour is defined here once and
//! checked by the conformance suite in `integration-tests/` against every adapter.

use std::sync::Arc;

use async_trait::async_trait;

use crate::browse::BrowsedMessage;
use crate::capabilities::Capabilities;
use crate::config::BrokerUrl;
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::lag::Lag;
use crate::message::Message;
use crate::profile::SchemeProfile;

/// The group a consumer joins when [`ConsumerOptions::group`] is `None`.
pub const DEFAULT_GROUP: &str = "default";

/// Options for a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerOptions {
    /// Consumer group. Each group receives every message sent to the destination after the
    /// group was first subscribed (fan-out); consumers of one group share them (competing
    /// consumers). `None` means the adapter's default group for the destination.
    pub group: Option<String>,
    /// Most deliveries this consumer holds unsettled at once (prefetch); at least 1.
    pub prefetch: usize,
}

impl ConsumerOptions {
    /// The group to join: the one asked for, else [`DEFAULT_GROUP`].
    pub fn group_or_default(&self) -> &str {
        self.group.as_deref().unwrap_or(DEFAULT_GROUP)
    }
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            group: None,
            prefetch: 64,
        }
    }
}

/// A connected broker: makes producers and consumers.
///
/// # Behavior
/// - `capabilities` is fixed for the life of the backend and describes what its producers,
///   consumers and deliveries can do. Requests outside it never reach the backend: the SDK
///   refuses them with [`crate::ErrorKind::Unsupported`] first.
/// - Destinations are created on first use where the broker allows it; otherwise a missing
///   destination is [`crate::ErrorKind::NotFound`].
/// - Each destination `d` has a dead-letter destination `d.dlq`
///   ([`crate::dead_letter_destination`]) that can be consumed like any other.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Adapter name, e.g. `memory`.
    fn name(&self) -> &'static str;

    /// The wire conventions of this backend's scheme (see [`crate::profile`]); the same as
    /// its connector's [`Connector::profile`]. Wrappers forward it.
    fn profile(&self) -> SchemeProfile {
        SchemeProfile::default()
    }

    /// What this backend can do.
    fn capabilities(&self) -> &Capabilities;

    /// A producer for `destination`.
    async fn producer(&self, destination: &str) -> Result<Box<dyn ProducerBackend>>;

    /// A consumer of `destination`. The group subscription exists once this returns: messages
    /// sent afterwards reach it.
    async fn consumer(
        &self,
        destination: &str,
        options: &ConsumerOptions,
    ) -> Result<Box<dyn ConsumerBackend>>;

    /// Up to `limit` messages that `destination` holds, oldest first, without consuming them:
    /// browsing twice in a row returns the same messages and moves, acks, duplicates or
    /// reorders nothing. Where the broker cannot do this, [`Capabilities::browse`] says so and
    /// the default refuses with [`crate::ErrorKind::Unsupported`].
    async fn browse(&self, destination: &str, limit: usize) -> Result<Vec<BrowsedMessage>> {
        let _ = (destination, limit);
        Err(crate::Error::unsupported(format!(
            "{} cannot browse a destination without consuming it",
            self.name()
        )))
    }

    /// How many messages of `destination` the consumer `group` (`None`: the adapter's default
    /// group) has not acked yet, from the broker's own figure. The dead-letter depth of `d` is
    /// `lag(&dead_letter_destination(d), None)`.
    ///
    /// # Behavior
    /// - Only called when [`Capabilities::lag`] is set (the SDK refuses otherwise); the
    ///   default refuses with [`crate::ErrorKind::Unsupported`].
    /// - Read-only: it never creates a destination, a group or a subscription. A group the
    ///   broker has not seen yet reports what it would receive on subscribing (the backlog
    ///   kept for a destination's first group, or nothing).
    /// - `accuracy` is the one declared in [`Capabilities::lag`].
    async fn lag(&self, destination: &str, group: Option<&str>) -> Result<Lag> {
        let _ = (destination, group);
        Err(Error::unsupported(
            "this broker keeps no count of unacked messages; consumer lag is not available",
        ))
    }

    /// Closes connections. Later calls fail with [`crate::ErrorKind::Closed`].
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// Sends to one destination.
///
/// # Behavior
/// - `send` returns once the broker has taken the message (publisher confirm, delivery report,
///   HTTP 200); an `Ok` message is not lost by a broker restart where the broker persists.
/// - Messages from one producer with the same ordering key are stored in send order.
/// - Payload, headers and key arrive unchanged at consumers (headers within the declared limits).
/// - Messages have passed [`Capabilities::check_send`] already.
#[async_trait]
pub trait ProducerBackend: Send + Sync + 'static {
    /// Sends one message.
    async fn send(&self, message: Message) -> Result<()>;

    /// Sends without waiting or I/O where the adapter can (an in-process broker with room),
    /// with `send`'s behaviour: [`SendNow::Done`] with the outcome, or [`SendNow::Wait`] with
    /// the message back when sending it would have to wait (the caller then uses `send`).
    /// The default always hands the message back.
    fn send_now(&self, message: Message) -> SendNow {
        SendNow::Wait(message)
    }

    /// [`ProducerBackend::send`] as a future that owns the backend, so a caller holding an
    /// `Arc` needs no future of its own around it. The default wraps `send`; an adapter may
    /// override it to save that second boxed future per message (same behaviour as `send`).
    fn send_owned(
        self: Arc<Self>,
        message: Message,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'static>> {
        Box::pin(async move { self.send(message).await })
    }

    /// Sends at most [`Capabilities::max_batch`] messages. On partial failure the error names
    /// the failed entries; entries it does not name were sent.
    async fn send_batch(&self, messages: Vec<Message>) -> Result<()> {
        for m in messages {
            self.send(m).await?;
        }
        Ok(())
    }
}

/// What [`ProducerBackend::send_now`] did.
#[derive(Debug)]
pub enum SendNow {
    /// Sent, or refused, without waiting: the outcome, as `send` would give it.
    Done(Result<()>),
    /// Not sent: it would have to wait. The message, for `send`.
    Wait(Message),
}

/// Receives from one destination for one group.
///
/// # Behavior
/// - `next` waits for a delivery; it never holds more than `prefetch` unsettled deliveries
///   from this consumer at once (it waits for settlements instead).
/// - At-least-once: a delivery that is nacked, dropped unsettled, or held past the broker's
///   visibility timeout is delivered again with `attempt` increased.
/// - After `close`, `next` returns `Ok(None)`; deliveries already handed out can still be
///   settled, and those never settled are delivered again. Closing never dead-letters.
#[async_trait]
pub trait ConsumerBackend: Send + 'static {
    /// The next delivery, or `None` once closed. Cancel-safe: dropping the future loses no
    /// message.
    async fn next(&mut self) -> Result<Option<Delivery>>;

    /// Appends to `out` up to `max` deliveries the consumer can hand out now, without
    /// waiting or I/O, within the same `prefetch` bound and with the same rules as `next`
    /// (a caller tries this before `next`, and for the rest of a batch). The default hands
    /// out none, so the caller goes on with `next`; an adapter that holds messages in
    /// process overrides it (the memory broker takes a batch under one lock).
    fn ready(&mut self, max: usize, out: &mut Vec<Delivery>) {
        let _ = (max, out);
    }

    /// Stops intake (graceful shutdown).
    async fn close(&mut self) -> Result<()>;
}

/// Makes backends from URLs; registered per URL scheme.
///
/// # Behavior
/// - Rejects unknown query keys with [`crate::ErrorKind::Config`] naming the accepted ones
///   (see [`BrokerUrl::params`]).
/// - An unreachable broker is a retryable [`crate::ErrorKind::Unavailable`] error whose
///   address has secrets redacted.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// URL schemes handled, e.g. `["amqp", "amqps"]`.
    fn schemes(&self) -> &'static [&'static str];

    /// The wire conventions of `scheme` (one of [`Connector::schemes`]), known without
    /// connecting: AsyncAPI protocol and bindings, CloudEvents header names, the lease key
    /// (see [`crate::profile`]). The default declares nothing.
    fn profile(&self, scheme: &str) -> SchemeProfile {
        let _ = scheme;
        SchemeProfile::default()
    }

    /// Connects.
    async fn connect(&self, url: &BrokerUrl) -> Result<Arc<dyn Backend>>;
}
