//! Receiving from an SQS queue (also the consumer side of `sns://`): a background poller
//! long-polls `ReceiveMessage` for as many messages as prefetch slots are free (at most 10),
//! and hands deliveries over a channel so `next` is cancel-safe. Settlement: ack =
//! `DeleteMessage`, nack = `ChangeMessageVisibility` (0 or the delay), dead-letter = send to
//! the dead-letter queue/topic with the envelope, then delete.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::types::MessageSystemAttributeName as SysAttr;
use brokerkit_core::dead_letter::names as dlq_names;
use brokerkit_core::emulation::{self, DeadLetterPrimitives, FailureRecord};
use brokerkit_core::{
    ConsumerBackend, DeadLetterReason, Delivery, ErrorKind, Headers, Message, Result, Settle,
    Settlement,
};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use crate::error::from_sdk;
use crate::headers::{pack, unpack, Attr};
use crate::link::{Inner, Queue};
use crate::producer::{fifo_id, send_one, Prepared};

/// Most messages one ReceiveMessage returns.
const RECEIVE_MAX: usize = 10;
/// Upper bound on prefetch (a semaphore's permits are bounded).
const MAX_PREFETCH: usize = 100_000;
/// Pause after an empty short poll (`wait_time_secs=0`).
const SHORT_POLL_PAUSE: Duration = Duration::from_millis(200);
/// Pause after a failed receive before polling again.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// What the poller and the deliveries of one consumer share.
struct Shared {
    inner: Arc<Inner>,
    queue: Arc<Queue>,
    destination: Arc<str>,
    group: String,
    handle: Handle,
}

/// A consumer of one queue.
pub(crate) struct SqsConsumer {
    rx: mpsc::Receiver<Result<Delivery>>,
    stop: watch::Sender<bool>,
    shutdown: watch::Receiver<bool>,
    closed: bool,
}

impl SqsConsumer {
    /// Starts polling `queue` for `destination` (consumer group `group`).
    pub fn start(
        inner: Arc<Inner>,
        queue: Arc<Queue>,
        destination: &str,
        group: &str,
        prefetch: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(16);
        let (stop, stop_rx) = watch::channel(false);
        let shutdown = inner.shutdown.subscribe();
        let shared = Arc::new(Shared {
            inner,
            queue,
            destination: destination.into(),
            group: group.to_string(),
            handle: Handle::current(),
        });
        let permits = Arc::new(Semaphore::new(prefetch.clamp(1, MAX_PREFETCH)));
        tokio::spawn(poll(shared, permits, tx, stop_rx, shutdown.clone()));
        SqsConsumer {
            rx,
            stop,
            shutdown,
            closed: false,
        }
    }

    fn stop_intake(&mut self) {
        self.closed = true;
        self.stop.send_replace(true);
        self.rx.close();
        // Deliveries not handed out yet are dropped: each makes its message visible again.
        while self.rx.try_recv().is_ok() {}
    }
}

#[async_trait]
impl ConsumerBackend for SqsConsumer {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        if self.closed {
            return Ok(None);
        }
        let got = tokio::select! {
            biased;
            _ = self.shutdown.wait_for(|stop| *stop) => None,
            item = self.rx.recv() => item,
        };
        match got {
            Some(Ok(d)) => Ok(Some(d)),
            Some(Err(e)) => Err(e),
            None => {
                self.stop_intake();
                Ok(None)
            }
        }
    }

    async fn close(&mut self) -> Result<()> {
        self.stop_intake();
        Ok(())
    }
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: that is a stop too.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// The poll loop. A receive in flight is never abandoned: what it brings after a stop is
/// made visible again at once (by dropping the deliveries), so nothing waits for a timeout.
async fn poll(
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    tx: mpsc::Sender<Result<Delivery>>,
    mut stop: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            _ = stopped(&mut shutdown) => return,
            _ = tx.closed() => return,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let mut held = vec![first];
        while held.len() < RECEIVE_MAX {
            match permits.clone().try_acquire_owned() {
                Ok(p) => held.push(p),
                Err(_) => break,
            }
        }
        match shared.receive(held.len()).await {
            Ok(messages) if messages.is_empty() && shared.inner.config.wait_time_secs == 0 => {
                // Short polling found nothing: do not spin.
                drop(held);
                tokio::select! {
                    _ = stopped(&mut stop) => return,
                    _ = stopped(&mut shutdown) => return,
                    _ = tokio::time::sleep(SHORT_POLL_PAUSE) => {}
                }
            }
            Ok(messages) => {
                for m in messages {
                    // More messages than asked for would be a service bug; they are
                    // delivered anyway rather than left invisible.
                    let item = shared.to_delivery(m, held.pop());
                    // After a stop the delivery is dropped here: its message becomes visible.
                    if *stop.borrow() || *shutdown.borrow() || tx.send(item).await.is_err() {
                        continue;
                    }
                }
            }
            Err(e) => {
                if tx.send(Err(e)).await.is_err() {
                    return;
                }
                tokio::select! {
                    _ = stopped(&mut stop) => return,
                    _ = stopped(&mut shutdown) => return,
                    _ = tokio::time::sleep(ERROR_PAUSE) => {}
                }
            }
        }
    }
}

impl Shared {
    async fn receive(&self, max: usize) -> Result<Vec<aws_sdk_sqs::types::Message>> {
        let c = &self.inner.config;
        let wait = c.wait_time_secs;
        // A long poll takes up to `wait` seconds on top of the request timeout.
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(c.timeout + Duration::from_secs(wait.max(0) as u64))
            .build();
        let out = self
            .inner
            .sqs
            .receive_message()
            .queue_url(&self.queue.url)
            .max_number_of_messages(max.clamp(1, RECEIVE_MAX) as i32)
            .wait_time_seconds(wait)
            .set_visibility_timeout(c.visibility_timeout_secs)
            .message_system_attribute_names(SysAttr::ApproximateReceiveCount)
            .message_system_attribute_names(SysAttr::ApproximateFirstReceiveTimestamp)
            .message_system_attribute_names(SysAttr::MessageGroupId)
            .message_attribute_names("All")
            .customize()
            .config_override(aws_sdk_sqs::config::Builder::default().timeout_config(timeouts))
            .send()
            .await
            .map_err(|e| from_sdk(e, self.inner.site(&self.destination, "receive")))?;
        Ok(out.messages.unwrap_or_default())
    }

    fn to_delivery(
        self: &Arc<Self>,
        m: aws_sdk_sqs::types::Message,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Delivery> {
        let site = self.inner.site(&self.destination, "receive");
        let receipt = m.receipt_handle.clone().ok_or_else(|| {
            site.error(
                ErrorKind::Unexpected,
                format!(
                    "ReceiveMessage returned message {:?} without a receipt handle; it is \
                     delivered again after the visibility timeout",
                    m.message_id.as_deref().unwrap_or("?")
                ),
            )
        })?;
        let system = m.attributes.as_ref();
        let sys = |name: &SysAttr| system.and_then(|a| a.get(name)).map(String::as_str);
        let attempt = sys(&SysAttr::ApproximateReceiveCount)
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(1)
            .max(1);
        let first_receive = sys(&SysAttr::ApproximateFirstReceiveTimestamp)
            .and_then(|v| v.parse::<u64>().ok())
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
        let group_id = sys(&SysAttr::MessageGroupId).map(str::to_string);
        let attrs = m.message_attributes.iter().flatten().map(|(name, v)| Attr {
            name,
            data_type: v.data_type(),
            string_value: v.string_value(),
        });
        let message = unpack(m.body().unwrap_or_default(), attrs, group_id.as_deref());
        let settler = SqsSettler {
            shared: self.clone(),
            receipt,
            sqs_id: m.message_id.unwrap_or_default(),
            attempt,
            first_receive,
            group_id,
            settled: false,
            _permit: permit,
        };
        Ok(Delivery::new(
            message,
            attempt,
            self.destination.clone(),
            self.inner.capabilities.clone(),
            Box::new(settler),
        ))
    }
}

/// Settles one received message by its receipt handle.
struct SqsSettler {
    shared: Arc<Shared>,
    receipt: String,
    sqs_id: String,
    attempt: u32,
    first_receive: Option<SystemTime>,
    group_id: Option<String>,
    settled: bool,
    _permit: Option<OwnedSemaphorePermit>,
}

/// Delay rounded up to whole seconds (SQS's unit), so redelivery is never early.
fn visibility_secs(delay: Option<Duration>) -> i32 {
    let d = delay.unwrap_or_default();
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.min(crate::config::MAX_DELAY.as_secs()) as i32
}

/// Makes the envelope smaller (it is ours, the original headers are not touched): drops the
/// validation errors, then halves the reason. `false` once there is nothing left to cut.
fn shrink_envelope(headers: &mut Headers) -> bool {
    if headers.remove(dlq_names::VALIDATION_ERRORS).is_some() {
        return true;
    }
    let Some(reason) = headers.get(dlq_names::REASON).map(str::to_string) else {
        return false;
    };
    if reason.len() <= 64 {
        return false;
    }
    let mut cut = reason.len() / 2;
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    headers
        .insert(dlq_names::REASON, format!("{}…", &reason[..cut]))
        .is_ok()
}

impl SqsSettler {
    async fn change_visibility(&self, secs: i32, operation: &'static str) -> Result<()> {
        let s = &self.shared;
        s.inner
            .sqs
            .change_message_visibility()
            .queue_url(&s.queue.url)
            .receipt_handle(&self.receipt)
            .visibility_timeout(secs)
            .send()
            .await
            .map(drop)
            .map_err(|e| from_sdk(e, s.inner.site(&s.destination, operation)))
    }

    async fn delete(&self, operation: &'static str) -> Result<()> {
        let s = &self.shared;
        s.inner
            .sqs
            .delete_message()
            .queue_url(&s.queue.url)
            .receipt_handle(&self.receipt)
            .send()
            .await
            .map(drop)
            .map_err(|e| from_sdk(e, s.inner.site(&s.destination, operation)))
    }

    async fn dead_letter(&self, reason: DeadLetterReason, message: Message) -> Result<()> {
        let s = &self.shared;
        let failure = FailureRecord {
            attempts: self.attempt,
            destination: s.destination.to_string(),
            group: Some(s.group.clone()),
            first_failure: self.first_receive,
        };
        emulation::dead_letter(&mut DeadLetterCopy(self), failure, reason, message).await
    }
}

/// The dead-letter primitives of an SQS delivery: send the copy, delete the original.
struct DeadLetterCopy<'a>(&'a SqsSettler);

#[async_trait]
impl DeadLetterPrimitives for DeadLetterCopy<'_> {
    async fn publish_dead_letter(&mut self, _dlq: &str, mut message: Message) -> Result<()> {
        let s = &self.0.shared;
        let inner = &s.inner;
        let site = inner.site(&s.destination, "dead_letter");
        let target = inner.dead_letter_target(&s.destination).await?;
        let limit = inner.config.max_message_bytes;
        let mut packed = pack(&message);
        while packed.size() > limit && shrink_envelope(&mut message.headers) {
            packed = pack(&message);
        }
        packed.check_size(limit, &site)?;
        let (group_id, dedup_id) = if target.fifo() {
            let group = message
                .key
                .as_deref()
                .and_then(fifo_id)
                .or_else(|| self.0.group_id.clone())
                .unwrap_or_else(|| "dead-letter".to_string());
            // Sending twice (a retried dead-letter) gives one dead letter.
            (Some(group), fifo_id(&format!("dlq-{}", self.0.sqs_id)))
        } else {
            (None, None)
        };
        let prepared = Prepared {
            packed,
            group_id,
            dedup_id,
            message_id: None,
        };
        send_one(inner, &target, prepared, &site).await
    }

    async fn remove_original(&mut self) -> Result<()> {
        let s = &self.0.shared;
        self.0.delete("dead_letter").await.map_err(|e| {
            let text = format!(
                "the message was copied to the dead-letter destination but could not be \
                 deleted from {:?}, so it is delivered again: {}",
                s.queue.name,
                e.message()
            );
            s.inner
                .site(&s.destination, "dead_letter")
                .error(e.kind(), text)
                .retryable(e.is_retryable())
                .with_source(e)
        })
    }
}

#[async_trait]
impl Settle for SqsSettler {
    async fn settle(mut self: Box<Self>, how: Settlement) -> Result<()> {
        // From here a failure leaves the message invisible until its visibility timeout ends,
        // then it is delivered again: never lost, never acked by mistake.
        self.settled = true;
        match how {
            Settlement::Ack => self.delete("ack").await,
            Settlement::Nack { delay } => {
                self.change_visibility(visibility_secs(delay), "nack").await
            }
            Settlement::DeadLetter { reason, message } => self.dead_letter(reason, message).await,
        }
    }

    async fn extend(&mut self, by: Duration) -> Result<()> {
        // Whole seconds, rounded up, within SQS's 12-hour limit.
        self.change_visibility(visibility_secs(Some(by)), "extend")
            .await
    }
}

impl Drop for SqsSettler {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // Dropped unsettled: make the message visible again now.
        let s = self.shared.clone();
        let receipt = std::mem::take(&mut self.receipt);
        s.handle.clone().spawn(async move {
            let result = s
                .inner
                .sqs
                .change_message_visibility()
                .queue_url(&s.queue.url)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await;
            if let Err(e) = result {
                let e = from_sdk(e, s.inner.site(&s.destination, "release"));
                tracing::debug!(error = %e, "could not release a dropped delivery; it is delivered again after its visibility timeout");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_to_seconds() {
        assert_eq!(visibility_secs(None), 0);
        assert_eq!(visibility_secs(Some(Duration::from_millis(1500))), 2);
        assert_eq!(visibility_secs(Some(Duration::from_secs(3))), 3);
        assert_eq!(visibility_secs(Some(Duration::from_secs(99_999))), 43_200);
    }

    #[test]
    fn envelope_shrinks_but_original_headers_stay() {
        let mut h = Headers::new().with("x-order", "42").unwrap();
        h.insert(dlq_names::REASON, "r".repeat(1000)).unwrap();
        h.insert(dlq_names::VALIDATION_ERRORS, "[]").unwrap();
        assert!(shrink_envelope(&mut h));
        assert!(h.get(dlq_names::VALIDATION_ERRORS).is_none());
        assert!(shrink_envelope(&mut h));
        assert!(h.get(dlq_names::REASON).unwrap().len() < 600);
        while shrink_envelope(&mut h) {}
        assert_eq!(h.get("x-order"), Some("42"));
    }
}
