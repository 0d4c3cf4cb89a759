//! Consuming one group's queue, re-subscribing after a lost connection, and settling.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use brokerkit_core::emulation::{self, DeadLetterPrimitives, FailureRecord};
use brokerkit_core::{
    Bytes, Capabilities, ConsumerBackend, DeadLetterReason, Delivery, Error, ErrorKind, Message,
    Result, Settle, Settlement,
};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};

use crate::config::names;
use crate::error;
use crate::headers;
use crate::link::{bounded, declare_group, in_time, short, Link, Publisher, Refused};

/// What a consumer and its deliveries share.
pub struct Shared {
    pub link: Arc<Link>,
    pub destination: Arc<str>,
    pub group: String,
    pub queue: String,
    pub capabilities: Arc<Capabilities>,
    /// Backend-wide confirm channel for re-publishing (nack, delay, dead-letter).
    pub settle: Arc<Publisher>,
}

struct Live {
    channel: Channel,
    stream: lapin::Consumer,
}

/// One consumer of one group's queue.
pub struct RabbitConsumer {
    shared: Arc<Shared>,
    prefetch: u16,
    live: Option<Live>,
    closed: bool,
    failures: u32,
    backoff: Option<Pin<Box<Sleep>>>,
    watchdog: Interval,
}

impl RabbitConsumer {
    /// Declares the topology and subscribes; the subscription exists when this returns.
    pub async fn new(shared: Arc<Shared>, prefetch: usize) -> Result<Self> {
        let mut watchdog = tokio::time::interval(Duration::from_secs(1));
        watchdog.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut c = RabbitConsumer {
            shared,
            prefetch: prefetch.clamp(1, u16::MAX as usize) as u16,
            live: None,
            closed: false,
            failures: 0,
            backoff: None,
            watchdog,
        };
        c.live = Some(c.subscribe().await?);
        Ok(c)
    }

    async fn subscribe(&self) -> Result<Live> {
        let s = &self.shared;
        let addr = s.link.address();
        let channel = s.link.channel("consumer").await?;
        let regular = !s.destination.ends_with(".dlq");
        if regular {
            s.link.ensure_dead_letter(&channel, &s.destination).await?;
        }
        declare_group(&s.link, &channel, &s.destination, &s.group, regular).await?;
        bounded(
            "consumer",
            addr,
            channel.basic_qos(self.prefetch, BasicQosOptions::default()),
        )
        .await?;
        let queue = short(&s.queue, "queue", &s.link)?;
        let stream = bounded(
            "consumer",
            addr,
            channel.basic_consume(
                queue,
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
        Ok(Live { channel, stream })
    }

    fn lost(&mut self, why: &str) {
        tracing::warn!(
            queue = %self.shared.queue,
            address = %self.shared.link.address(),
            "rabbitmq: consumer lost its subscription ({why}); re-subscribing"
        );
        self.live = None;
        self.pause(Duration::from_millis(100));
    }

    fn pause(&mut self, wait: Duration) {
        self.backoff = Some(Box::pin(tokio::time::sleep_until(Instant::now() + wait)));
    }

    fn delivery(&self, d: lapin::message::Delivery, channel: Channel) -> Delivery {
        let decoded = headers::decode(&d.properties);
        // Broker redeliveries (a consumer crashed, a channel or connection was lost) count:
        // every one on quorum queues (`x-delivery-count`), at most one on classic queues,
        // which only say `redelivered`.
        let redeliveries = if self.shared.link.config.quorum_queues {
            decoded.delivery_count.max(u32::from(d.redelivered))
        } else {
            u32::from(d.redelivered)
        };
        let attempt = decoded
            .attempts_before
            .saturating_add(1)
            .saturating_add(redeliveries);
        let payload = Bytes::from(d.data);
        let message = Message {
            payload: payload.clone(),
            headers: decoded.headers,
            key: decoded.key,
        };
        let settler = RabbitSettler {
            pending: Some(Pending {
                shared: self.shared.clone(),
                _channel: channel,
                acker: d.acker,
                props: d.properties,
                payload,
                attempt,
                first_failure_ms: decoded.first_failure_ms,
            }),
            runtime: tokio::runtime::Handle::try_current().ok(),
        };
        Delivery::new(
            message,
            attempt,
            self.shared.destination.clone(),
            self.shared.capabilities.clone(),
            Box::new(settler),
        )
    }
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis((100u64 << failures.min(5)).min(2_000))
}

#[async_trait]
impl ConsumerBackend for RabbitConsumer {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        loop {
            if self.closed || self.shared.link.is_closed() {
                return Ok(None);
            }
            if let Some(sleep) = self.backoff.as_mut() {
                sleep.await;
                self.backoff = None;
            }
            if self.live.is_none() {
                match self.subscribe().await {
                    Ok(live) => {
                        tracing::info!(queue = %self.shared.queue, "rabbitmq: consumer re-subscribed");
                        self.live = Some(live);
                        self.failures = 0;
                    }
                    Err(e) => {
                        // Wait before the next try, also when the error is returned.
                        self.failures = self.failures.saturating_add(1);
                        self.pause(backoff(self.failures));
                        if !e.is_retryable() {
                            return Err(e.with_destination(self.shared.destination.to_string()));
                        }
                        tracing::warn!(error = %e, "rabbitmq: re-subscribing failed; retrying");
                        continue;
                    }
                }
            }
            let Some(live) = self.live.as_mut() else {
                continue;
            };
            tokio::select! {
                got = live.stream.next() => match got {
                    Some(Ok(d)) => {
                        let channel = live.channel.clone();
                        return Ok(Some(self.delivery(d, channel)));
                    }
                    Some(Err(e)) => self.lost(&e.to_string()),
                    None => self.lost("cancelled by the broker or channel closed"),
                },
                _ = self.watchdog.tick() => {
                    if !live.channel.status().connected() {
                        self.lost("channel closed");
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<()> {
        self.closed = true;
        let Some(mut live) = self.live.take() else {
            return Ok(());
        };
        let tag = live.stream.tag();
        let _ = tokio::time::timeout(
            crate::link::CLOSE_WAIT,
            live.channel
                .basic_cancel(tag, BasicCancelOptions::default()),
        )
        .await;
        // Deliveries prefetched but never handed out go back to the queue now.
        while let Ok(Some(Ok(d))) =
            tokio::time::timeout(Duration::from_millis(500), live.stream.next()).await
        {
            let requeue = d.acker.nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            });
            if in_time("close", self.shared.link.address(), requeue)
                .await
                .is_err()
            {
                break; // the channel closes with the consumer: the broker requeues the rest
            }
        }
        Ok(())
    }
}

struct Pending {
    shared: Arc<Shared>,
    /// Keeps the channel open until the delivery is settled (acks need it).
    _channel: Channel,
    acker: lapin::Acker,
    props: BasicProperties,
    payload: Bytes,
    attempt: u32,
    first_failure_ms: Option<u64>,
}

/// Settles one delivery. Dropped unsettled, it re-publishes the message (attempt + 1) and
/// acks the original from a spawned task; if that cannot run, RabbitMQ redelivers the
/// message once the channel closes.
struct RabbitSettler {
    pending: Option<Pending>,
    runtime: Option<tokio::runtime::Handle>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl Pending {
    fn addr(&self) -> &str {
        self.shared.link.address()
    }

    fn expired(&self, op: &'static str) -> Error {
        error::new(
            ErrorKind::DeliveryExpired,
            "the channel this delivery came on has closed; RabbitMQ delivers the message again",
            op,
            self.addr(),
        )
        .with_destination(self.shared.destination.to_string())
    }

    /// Acks within [`OPERATION_TIMEOUT`](crate::link::OPERATION_TIMEOUT): an ack frame the connection cannot take in time
    /// is a retryable `Timeout` (if it never reaches the broker, the message comes again).
    async fn ack(&self, op: &'static str) -> Result<()> {
        let acking = self.acker.ack(BasicAckOptions::default());
        let acked = in_time(op, self.addr(), acking)
            .await
            .map_err(|e| e.with_destination(self.shared.destination.to_string()))?;
        match acked {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.expired(op)),
            Err(e) if error::is_link_failure(&e) => Err(self.expired(op)),
            Err(e) => Err(error::map(e, op, self.addr())),
        }
    }

    /// Puts the original back on failure of a settlement, so it is not stuck unacked (at
    /// most [`OPERATION_TIMEOUT`](crate::link::OPERATION_TIMEOUT): if the nack cannot be sent, the broker redelivers the
    /// message when the channel closes).
    async fn give_back(&self) {
        let requeue = self.acker.nack(BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        });
        let _ = in_time("nack", self.addr(), requeue).await;
    }

    /// Re-publishes with the attempt count (to the group queue, or through a hold queue
    /// after `delay`), then acks the original.
    async fn retry(self, delay: Option<Duration>) -> Result<()> {
        let op = "nack";
        let first = self.first_failure_ms.unwrap_or_else(now_ms);
        let props = headers::for_retry(&self.props, self.attempt, first);
        let settle = &self.shared.settle;
        let link = &self.shared.link;
        let mut tries = 0;
        let result = loop {
            tries += 1;
            let target = match delay {
                None => Ok(self.shared.queue.clone()),
                Some(d) => match settle.channel(op).await {
                    Ok(ch) => {
                        link.ensure_hold_queue(&ch, &self.shared.queue, names::delay_bucket(d))
                            .await
                    }
                    Err(e) => Err(e),
                },
            };
            let target = match target {
                Ok(t) => t,
                Err(e) => break Err(e),
            };
            match settle
                .publish(op, "", &target, &self.payload, props.clone())
                .await
            {
                Ok(()) => break Ok(()),
                Err(Refused::Unroutable(_)) if delay.is_some() && tries < 2 => {
                    link.forget(&target); // the hold queue expired: declare it again
                }
                Err(r) => break Err(r.into_error(op, self.addr())),
            }
        };
        match result {
            Ok(()) => {
                // If this ack fails the original comes back too: a duplicate, never a loss.
                let _ = self.ack(op).await;
                Ok(())
            }
            Err(e) => {
                self.give_back().await;
                Err(e.with_destination(self.shared.destination.to_string()))
            }
        }
    }

    /// Dead-letters through the core emulation over [`DeadLetterCopy`]; if the copy could not
    /// be published, the original is put back.
    async fn dead_letter(self, reason: DeadLetterReason, message: Message) -> Result<()> {
        let failure = FailureRecord {
            attempts: self.attempt,
            destination: self.shared.destination.to_string(),
            group: Some(self.shared.group.clone()),
            first_failure: self.first_failure_ms.map(emulation::time_from_ms),
        };
        let mut copy = DeadLetterCopy {
            pending: &self,
            publish_failed: false,
        };
        let result = emulation::dead_letter(&mut copy, failure, reason, message).await;
        if copy.publish_failed {
            self.give_back().await;
        }
        result.map_err(|e| e.with_destination(self.shared.destination.to_string()))
    }
}

/// The dead-letter primitives of a RabbitMQ delivery: publish the original body and
/// properties plus the envelope to the `<destination>.dlq` exchange, then ack.
struct DeadLetterCopy<'a> {
    pending: &'a Pending,
    publish_failed: bool,
}

#[async_trait]
impl DeadLetterPrimitives for DeadLetterCopy<'_> {
    async fn publish_dead_letter(&mut self, dlq: &str, message: Message) -> Result<()> {
        let op = "dead_letter";
        let p = self.pending;
        let mut envelope = message.headers;
        let others: Vec<String> = envelope
            .iter()
            .filter(|(n, _)| !brokerkit_core::dead_letter::is_envelope_header(n))
            .map(|(n, _)| n.to_string())
            .collect();
        for n in others {
            envelope.remove(&n);
        }
        let props = headers::for_dead_letter(&p.props, &envelope);
        let exchange = names::exchange(dlq);
        let settle = &p.shared.settle;
        let link = &p.shared.link;
        let mut tries = 0;
        loop {
            tries += 1;
            let ch = settle.channel(op).await?;
            link.ensure_dead_letter(&ch, &p.shared.destination).await?;
            match settle
                .publish(op, &exchange, "", &p.payload, props.clone())
                .await
            {
                Ok(()) => return Ok(()),
                Err(r) if tries < 2 => {
                    // The DLQ exchange or queue was deleted behind our back: declare again.
                    tracing::warn!(error = %r.into_error(op, p.addr()), "rabbitmq: dead-letter publish failed; re-declaring");
                    link.forget(dlq);
                }
                Err(r) => return Err(r.into_error(op, p.addr())),
            }
        }
    }

    async fn remove_original(&mut self) -> Result<()> {
        // The dead letter is stored; if the ack fails the original comes back (a duplicate).
        if let Err(e) = self.pending.ack("dead_letter").await {
            tracing::warn!(error = %e, "rabbitmq: ack after dead-lettering failed");
        }
        Ok(())
    }

    fn publish_failed(&mut self) {
        self.publish_failed = true;
    }
}

#[async_trait]
impl Settle for RabbitSettler {
    async fn settle(mut self: Box<Self>, how: Settlement) -> Result<()> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        match how {
            Settlement::Ack => p.ack("ack").await,
            Settlement::Nack { delay } => p.retry(delay.filter(|d| !d.is_zero())).await,
            Settlement::DeadLetter { reason, message } => p.dead_letter(reason, message).await,
        }
    }
}

impl Drop for RabbitSettler {
    fn drop(&mut self) {
        let Some(p) = self.pending.take() else { return };
        match &self.runtime {
            Some(rt) => {
                rt.spawn(async move {
                    if let Err(e) = p.retry(None).await {
                        tracing::warn!(error = %e, "rabbitmq: re-queueing a dropped delivery failed; the broker redelivers it when the channel closes");
                    }
                });
            }
            None => drop(p), // the channel closes with the last handle: RabbitMQ redelivers
        }
    }
}
