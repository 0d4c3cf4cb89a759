//! Settling Kafka deliveries, and what a consumer's handle, deliveries and driver thread
//! share.
//!
//! - `ack` marks the offset settled; the driver commits each partition's contiguous settled
//!   prefix (never past an unsettled offset).
//! - `nack(delay)` and a dropped delivery produce a copy to the retry topic with the attempt,
//!   the first-failure time and the not-before time in headers, then mark the original settled.
//!   If that produce fails, or its future is dropped before it finished, the message is
//!   queued again locally (attempt + 1): a handed-out offset never stays unsettled.
//! - `dead_letter` goes through the core emulation: the message with the envelope to
//!   `<destination>.dlq`, then the original marked settled.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use brokerkit_core::emulation::{self, DeadLetterPrimitives, FailureRecord};
use brokerkit_core::{DeadLetterReason, Error, ErrorKind, Message, Result, Settle, Settlement};
use tokio::runtime::Handle;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use crate::error::error;
use crate::headers::{self, ATTEMPT, FIRST_FAILURE, NOT_BEFORE};
use crate::link::Shared;
use crate::state::{Fetched, State};

/// What a consumer's handle, deliveries and driver thread share.
pub struct ConsumerShared {
    pub backend: Arc<Shared>,
    pub destination: Arc<str>,
    pub group: String,
    pub group_id: String,
    pub retry_topic: String,
    pub retry_partitions: i32,
    pub prefetch: usize,
    pub(crate) state: Mutex<State>,
    /// Wakes threads waiting for settlements (the driver while draining or revoking).
    pub settled: Condvar,
    /// Wakes `next` when something is ready or the consumer closed.
    pub ready: Notify,
    /// Wakes `start` when the first assignment arrived.
    pub assigned: Notify,
    /// Counts rebalance callbacks (the driver drops messages polled across one).
    pub rebalances: AtomicU64,
    pub(crate) runtime: Handle,
    /// Set by the driver thread once it made its final commit and left the group.
    pub(crate) finished: tokio::sync::watch::Sender<bool>,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl ConsumerShared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops intake: queued and held messages are abandoned (redelivered by Kafka to the next
    /// owner); deliveries in hand can still be settled while the driver drains.
    pub fn close(&self) {
        {
            let mut st = self.lock();
            if !st.closed {
                st.closed = true;
                st.abandon_queued(None);
            }
        }
        self.settled.notify_all();
        self.ready.notify_one();
    }

    /// Waits until the driver thread made its final synchronous commit and left the group,
    /// at most the drain timeout plus `extra`; false when it did not finish in time.
    pub async fn wait_finished(&self, extra: Duration) -> bool {
        let mut done = self.finished.subscribe();
        let bound = self.backend.config.drain_timeout + extra;
        let waited = tokio::time::timeout(bound, done.wait_for(|f| *f)).await;
        matches!(waited, Ok(Ok(_)))
    }

    /// Deliveries handed out and not settled yet.
    pub fn out_count(&self) -> usize {
        self.lock().out_count(None)
    }

    fn expired(&self, operation: &'static str) -> Error {
        error(
            ErrorKind::DeliveryExpired,
            "this consumer no longer owns the delivery's partition (rebalance or close); \
             Kafka delivers it again from the last committed offset",
            &self.backend.config.redacted,
            operation,
        )
        .with_destination(&*self.destination)
    }

    fn mark_settled(&self, f: &Fetched) -> bool {
        let ok = self.lock().settle(f.tp, f.offset, f.generation);
        self.settled.notify_all();
        ok
    }

    fn requeue(&self, f: Fetched, not_before_ms: Option<u64>) {
        self.lock().requeue(f, not_before_ms);
        self.settled.notify_all();
        self.ready.notify_one();
    }

    /// `nack`: a copy to the retry topic, then the original is settled. If this future is
    /// dropped mid-produce, the original is queued again here (see [`InHand`]).
    async fn redeliver(&self, mut f: Fetched, delay: Option<Duration>) -> Result<()> {
        if !self.lock().is_current(f.tp, f.offset, f.generation) {
            return Err(self.expired("nack"));
        }
        let now = now_ms();
        // Rounded up, plus 1 ms for wall-clock jitter: never earlier than the delay.
        let not_before = delay.filter(|d| !d.is_zero()).map(|d| {
            let micros = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |t| t.as_micros() as u64);
            (micros.saturating_add(d.as_micros() as u64)).div_ceil(1000) + 1
        });
        let first_failure = *f.info.first_failure_ms.get_or_insert(now);
        let mut extra = vec![
            (ATTEMPT, f.info.attempt.saturating_add(1).to_string()),
            (FIRST_FAILURE, first_failure.to_string()),
        ];
        if let Some(nb) = not_before {
            extra.push((NOT_BEFORE, nb.to_string()));
        }
        let m = &f.message;
        let (key, payload) = (m.key.clone(), m.payload.clone());
        let kafka_headers = headers::to_kafka(&m.headers, &extra);
        let partition = f.tp.partition % self.retry_partitions.max(1);
        let mut held = InHand::new(self, f);
        let sent = self
            .backend
            .send_record(
                &self.retry_topic,
                Some(partition),
                key.as_deref(),
                &payload,
                kafka_headers,
            )
            .await;
        let Some(f) = held.take() else {
            return sent;
        };
        match sent {
            Ok(()) => {
                // Stale by now (revoked while sending) only means a duplicate later.
                self.mark_settled(&f);
                Ok(())
            }
            Err(e) => {
                self.requeue(f, not_before);
                Err(Error::new(
                    e.kind(),
                    format!(
                        "nack: the retry copy could not be sent ({}); the delivery is queued \
                         again in this consumer",
                        e.message()
                    ),
                )
                .with_broker(crate::error::NAME)
                .with_destination(&*self.destination)
                .with_operation("nack")
                .with_boxed_source(Box::new(e)))
            }
        }
    }

    /// `dead_letter`: the core emulation over [`DeadLetterCopy`].
    async fn dead_letter(
        &self,
        f: Fetched,
        reason: DeadLetterReason,
        message: Message,
    ) -> Result<()> {
        if !self.lock().is_current(f.tp, f.offset, f.generation) {
            return Err(self.expired("dead_letter"));
        }
        let failure = FailureRecord {
            attempts: f.info.attempt,
            destination: self.destination.to_string(),
            group: Some(self.group.clone()),
            first_failure: f.info.first_failure_ms.map(emulation::time_from_ms),
        };
        let mut copy = DeadLetterCopy {
            shared: self,
            fetched: Some(f),
        };
        emulation::dead_letter(&mut copy, failure, reason, message)
            .await
            .map_err(|e| e.with_operation("dead_letter"))
    }
}

/// A handed-out delivery being settled. If the settling future is dropped before it decided
/// (a user timeout, the shutdown abort, mid-produce), the delivery is queued again in this
/// consumer with its attempt raised: its offset never stays "out" (which would stop every
/// later commit of its partition), and the message is not lost. The copy may also have been
/// produced: a duplicate, never a loss.
pub(crate) struct InHand<'a> {
    shared: &'a ConsumerShared,
    fetched: Option<Fetched>,
}

impl<'a> InHand<'a> {
    fn new(shared: &'a ConsumerShared, f: Fetched) -> Self {
        InHand {
            shared,
            fetched: Some(f),
        }
    }

    /// The delivery, now decided by the caller (`None` only if taken before).
    fn take(&mut self) -> Option<Fetched> {
        self.fetched.take()
    }
}

impl Drop for InHand<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.fetched.take() {
            tracing::warn!(
                destination = %self.shared.destination,
                "kafka: a settlement was cancelled before it finished; the delivery is queued again"
            );
            self.shared.requeue(f, None);
        }
    }
}

/// The dead-letter primitives of a Kafka delivery: produce the copy to `<destination>.dlq`,
/// then settle the original (its offset may be committed); on failure it is queued again.
struct DeadLetterCopy<'a> {
    shared: &'a ConsumerShared,
    fetched: Option<Fetched>,
}

#[async_trait]
impl DeadLetterPrimitives for DeadLetterCopy<'_> {
    async fn publish_dead_letter(&mut self, dlq: &str, message: Message) -> Result<()> {
        let backend = &self.shared.backend;
        backend.ensure_topic(dlq).await?;
        backend
            .send_record(
                dlq,
                None,
                message.key.as_deref(),
                &message.payload,
                headers::to_kafka(&message.headers, &[]),
            )
            .await
    }

    async fn remove_original(&mut self) -> Result<()> {
        if let Some(f) = self.fetched.take() {
            self.shared.mark_settled(&f);
        }
        Ok(())
    }

    fn publish_failed(&mut self) {
        if let Some(f) = self.fetched.take() {
            self.shared.requeue(f, None);
        }
    }
}

impl Drop for DeadLetterCopy<'_> {
    /// Neither published nor failed: the `dead_letter` future was dropped mid-produce (or
    /// the emulation stopped before publishing). Queued again, as [`InHand`] does.
    fn drop(&mut self) {
        if let Some(f) = self.fetched.take() {
            tracing::warn!(
                destination = %self.shared.destination,
                "kafka: a dead-letter was cancelled before it finished; the delivery is queued again"
            );
            self.shared.requeue(f, None);
        }
    }
}

pub(crate) struct KafkaSettler {
    pub(crate) shared: Arc<ConsumerShared>,
    pub(crate) fetched: Option<Fetched>,
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

#[async_trait]
impl Settle for KafkaSettler {
    async fn settle(mut self: Box<Self>, how: Settlement) -> Result<()> {
        let Some(f) = self.fetched.take() else {
            return Err(self.shared.expired("settle"));
        };
        let shared = self.shared.clone();
        match how {
            Settlement::Ack => {
                if shared.mark_settled(&f) {
                    Ok(())
                } else {
                    Err(shared.expired("ack"))
                }
            }
            Settlement::Nack { delay } => shared.redeliver(f, delay).await,
            Settlement::DeadLetter { reason, message } => {
                shared.dead_letter(f, reason, message).await
            }
        }
    }
}

impl Drop for KafkaSettler {
    fn drop(&mut self) {
        let Some(f) = self.fetched.take() else {
            return;
        };
        // Dropped unsettled: deliver again through the retry topic, like `nack(None)`.
        let shared = self.shared.clone();
        let permit = self.permit.take();
        let runtime = shared.runtime.clone();
        runtime.spawn(async move {
            let _permit = permit;
            if let Err(e) = shared.redeliver(f, None).await {
                tracing::warn!(error = %e, "kafka: redelivering a dropped delivery failed");
            }
        });
    }
}
