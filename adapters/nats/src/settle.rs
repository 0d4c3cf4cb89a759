//! Settling JetStream deliveries: ack, nak (with delay), dead-letter (publish to
//! `<destination>.dlq` with the envelope, then terminate the original), and the nak of a
//! delivery dropped unsettled.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{AckKind, Message as JsMessage};
use async_nats::Subscriber;
use async_trait::async_trait;
use brokerkit_core::emulation::{self, DeadLetterPrimitives, FailureRecord};
use brokerkit_core::{DeadLetterReason, ErrorKind, Message, Result, Settle, Settlement};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::Semaphore;

use crate::error::error;
use crate::link::{Failure, FailureKey, Shared, Target};
use crate::{headers, names, producer};

/// Redelivery delay of a delivery dropped unsettled.
const DROP_NAK_DELAY: Duration = Duration::from_millis(100);

/// One prefetch slot held by a buffered or handed-out delivery; freed when dropped.
pub(crate) struct Slot(Option<Arc<Semaphore>>);

impl Slot {
    pub fn reserved(slots: Arc<Semaphore>) -> Self {
        Slot(Some(slots))
    }

    pub fn none() -> Self {
        Slot(None)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.add_permits(1);
        }
    }
}

/// The settlement half of one JetStream delivery.
pub(crate) struct JsSettler {
    shared: Arc<Shared>,
    target: Arc<Target>,
    /// `None` once settled.
    msg: Option<JsMessage>,
    slot: Slot,
    attempt: u32,
    seq: u64,
    /// The failure record taken while dead-lettering (restored if publishing fails).
    taken_failure: Option<Failure>,
}

impl JsSettler {
    pub fn new(shared: Arc<Shared>, target: Arc<Target>, msg: JsMessage, slot: Slot) -> Self {
        let (attempt, seq) = match msg.info() {
            Ok(info) => (
                u32::try_from(info.delivered.max(1)).unwrap_or(u32::MAX),
                info.stream_sequence,
            ),
            Err(e) => {
                tracing::warn!(error = %e, "JetStream delivery without metadata; attempt 1 assumed");
                (1, 0)
            }
        };
        // Never count lower than a failure this process saw (see `Failure::attempts`).
        let attempt = match shared.failed_attempts(&(target.id.clone(), seq)) {
            Some(failed) => attempt.max(failed.saturating_add(1)),
            None => attempt,
        };
        JsSettler {
            shared,
            target,
            msg: Some(msg),
            slot,
            attempt,
            seq,
            taken_failure: None,
        }
    }

    pub fn has_slot(&self) -> bool {
        self.slot.0.is_some()
    }

    /// The brokerkit message and attempt of this delivery.
    pub fn message(&self) -> (Message, u32) {
        let message = match &self.msg {
            Some(m) => {
                let (headers, key) = headers::from_nats(m.headers.as_ref());
                Message {
                    payload: m.payload.clone(),
                    headers,
                    key,
                }
            }
            None => Message::default(),
        };
        (message, self.attempt)
    }

    fn key(&self) -> FailureKey {
        (self.target.id.clone(), self.seq)
    }

    /// Sends `kind` for the delivery (nothing once settled). Bounded by `request_timeout`:
    /// while the server does not read the connection (stopped, or its socket full) the
    /// client's outgoing buffer fills and a reply would wait for room forever.
    async fn send_reply(&self, kind: AckKind, operation: &'static str) -> Result<()> {
        let Some(msg) = self.msg.as_ref() else {
            return Ok(());
        };
        let limit = self.shared.config.request_timeout;
        let (kind, why) = match tokio::time::timeout(limit, msg.ack_with(kind)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => (
                ErrorKind::Closed,
                format!("cannot {operation}: {e}; the message will be delivered again"),
            ),
            Err(_) => (
                ErrorKind::Timeout,
                format!(
                    "cannot {operation}: the connection took nothing for {limit:?} \
                     (request_timeout_ms); the reply may still reach the server, or the \
                     message is delivered again"
                ),
            ),
        };
        Err(error(kind, why, self.shared.address())
            .with_destination(&*self.target.destination)
            .with_operation(operation))
    }

    /// [`Self::send_reply`], then the delivery is settled.
    async fn reply(&mut self, kind: AckKind, operation: &'static str) -> Result<()> {
        self.send_reply(kind, operation).await?;
        self.msg = None;
        Ok(())
    }

    async fn dead_letter(&mut self, reason: DeadLetterReason, message: Message) -> Result<()> {
        let record = self.shared.take_failure(&self.key());
        self.taken_failure = record;
        let failure = FailureRecord {
            attempts: self.attempt,
            destination: self.target.destination.to_string(),
            group: Some(self.target.group.to_string()),
            first_failure: record.map(|r| r.first),
        };
        emulation::dead_letter(self, failure, reason, message).await
    }
}

#[async_trait]
impl DeadLetterPrimitives for JsSettler {
    async fn publish_dead_letter(&mut self, dlq: &str, message: Message) -> Result<()> {
        let subject = names::subject(dlq)?;
        self.shared.stream_for(dlq).await?;
        // One dedup id per original delivery and group: a repeated dead-lettering of the same
        // message (after a lost terminate) is stored once.
        let id = format!("dlq:{}:{}", self.target.id, self.seq);
        let out = headers::to_nats(&message, true, Some(&id))?;
        headers::check_size(message.payload.len(), &out, self.shared.max_payload)?;
        let ack = producer::publish_js(&self.shared, &subject, message.payload, out).await?;
        producer::await_ack(&self.shared, ack)
            .await
            .map_err(|e| e.with_destination(dlq))
    }

    async fn remove_original(&mut self) -> Result<()> {
        self.reply(AckKind::Term, "dead_letter").await
    }

    fn publish_failed(&mut self) {
        // Keep the record for the next attempt.
        if let Some(record) = self.taken_failure.take() {
            self.shared.restore_failure(self.key(), record);
        }
    }
}

#[async_trait]
impl Settle for JsSettler {
    async fn settle(mut self: Box<Self>, how: Settlement) -> Result<()> {
        match how {
            Settlement::Ack => {
                self.reply(AckKind::Ack, "ack").await?;
                self.shared.take_failure(&self.key());
                Ok(())
            }
            Settlement::Nack { delay } => {
                if let Some(max) = self.shared.config.max_deliver {
                    if self.attempt >= max {
                        let (message, attempt) = self.message();
                        let reason = DeadLetterReason::new(format!(
                            "max_deliver of {max} reached: delivery {attempt} was nacked"
                        ));
                        return self.dead_letter(reason, message).await;
                    }
                }
                self.shared.record_failure(self.key(), self.attempt);
                let delay = delay.filter(|d| !d.is_zero());
                self.reply(AckKind::Nak(delay), "nack").await
            }
            Settlement::DeadLetter { reason, message } => self.dead_letter(reason, message).await,
        }
    }

    /// `+WPI`: the server restarts the delivery's `ack_wait` clock. JetStream cannot set
    /// another duration, so `by` longer than `ack_wait` is met by the caller extending again.
    async fn extend(&mut self, _by: Duration) -> Result<()> {
        self.send_reply(AckKind::Progress, "extend").await
    }
}

impl Drop for JsSettler {
    fn drop(&mut self) {
        if let Some(msg) = self.msg.take() {
            // Dropped unsettled: hand it back now instead of after ack_wait. The short delay
            // lets a consumer dropped right after it unsubscribe first, so the server does not
            // send the message back to that consumer's pull request.
            self.shared.record_failure(self.key(), self.attempt);
            self.shared.runtime.spawn(async move {
                if let Err(e) = msg.ack_with(AckKind::Nak(Some(DROP_NAK_DELAY))).await {
                    tracing::debug!(error = %e, "nak of a dropped delivery failed; ack_wait will redeliver it");
                }
            });
        }
    }
}

/// After a consumer closed: nak what the client already received for it, and unsubscribe its
/// inbox at once (in order with later naks): nats-server then drops the outstanding pull
/// request, so nothing more is sent to it.
pub(crate) fn drain_inbox(shared: Arc<Shared>, mut sub: Subscriber) {
    let mut received = Vec::new();
    while let Some(Some(message)) = sub.next().now_or_never() {
        if message.status.is_none() {
            received.push(message);
        }
    }
    drop(sub); // sends UNSUB now
    if received.is_empty() {
        return;
    }
    let Ok(context) = shared.js().cloned() else {
        return;
    };
    shared.runtime.spawn(async move {
        for message in received {
            let msg = JsMessage {
                message,
                context: context.clone(),
            };
            let _ = msg.ack_with(AckKind::Nak(None)).await;
        }
    });
}
