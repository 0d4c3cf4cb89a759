//! JetStream consumer: one durable pull consumer per group, shared by the group's members.
//!
//! Each member owns an inbox subscription and keeps at most one pull request outstanding,
//! asking only for as many messages as it has free prefetch slots; so buffered, requested and
//! handed-out messages together never exceed `prefetch`. A request ends when it is filled, when
//! the server says it expired (408) or ended (404/409), when the connection is re-established
//! (the server forgot it), or at a client-side deadline. Messages received but not handed out
//! are nacked when the consumer closes or is dropped, so other members get them at once; its
//! inbox is unsubscribed, and nats-server drops a pull request whose inbox lost interest.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::{StatusCode, Subscriber};
use async_trait::async_trait;
use brokerkit_core::{ConsumerBackend, Delivery, ErrorKind, Result};
use futures_util::StreamExt;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::error::{error, from_client};
use crate::link::{Shared, Target};
use crate::names;
use crate::settle::{JsSettler, Slot};

/// How long the server keeps a pull request waiting for messages.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// Extra wait for the server's expiry notice before the request is given up client-side.
const PULL_GRACE: Duration = Duration::from_secs(2);
/// Pause before re-asking after the server refused a request (e.g. 409, 503).
const RETRY_PAUSE: Duration = Duration::from_millis(250);

pub(crate) struct JsConsumer {
    shared: Arc<Shared>,
    target: Arc<Target>,
    consumer: PullConsumer,
    inbox: String,
    sub: Option<Subscriber>,
    slots: Arc<Semaphore>,
    buffer: VecDeque<JsSettler>,
    /// Messages asked for by the outstanding request and not received yet.
    credit: usize,
    deadline: Option<Instant>,
    pause_until: Option<Instant>,
    /// One timer, reset when the wake-up time changes (not one per call).
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    timer_at: Option<Instant>,
    connections: watch::Receiver<u64>,
    closed: bool,
}

impl JsConsumer {
    /// Joins (creating if needed) the group's durable consumer and subscribes its inbox.
    pub async fn subscribe(
        shared: Arc<Shared>,
        destination: &str,
        group: &str,
        prefetch: usize,
    ) -> Result<Self> {
        let subject = names::subject(destination)?;
        let stream_name = shared.stream_for(destination).await?;
        let js = shared.js()?;
        let address = shared.address().to_string();
        let stream = js
            .get_stream(&stream_name)
            .await
            .map_err(|e| from_client(e, "get stream", &address).with_destination(destination))?;
        // The stream's first group also gets what was stored before it (like a queue);
        // later groups get what is sent after they subscribe.
        let deliver_policy = if stream.cached_info().state.consumer_count == 0 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::New
        };
        // A stream of its own needs no filter; a shared one (e.g. `orders.>`) does, and its
        // consumers are named per destination too.
        let own_stream = stream.cached_info().config.subjects == [subject.clone()];
        let durable = names::durable(destination, group, own_stream);
        let filter_subject = if own_stream { String::new() } else { subject };
        let config = pull::Config {
            durable_name: Some(durable.clone()),
            deliver_policy,
            ack_policy: AckPolicy::Explicit,
            ack_wait: shared.config.ack_wait,
            max_deliver: -1,
            filter_subject: filter_subject.clone(),
            max_ack_pending: -1,
            ..Default::default()
        };
        let consumer = match stream
            .get_or_create_consumer(&durable, config.clone())
            .await
        {
            Ok(c) => c,
            // Created meanwhile by another member with another start policy: join it.
            Err(_) => stream
                .get_or_create_consumer(&durable, config)
                .await
                .map_err(|e| {
                    from_client(e, "create durable consumer", &address)
                        .with_destination(destination)
                })?,
        };
        let found = &consumer.cached_info().config.filter_subject;
        if *found != filter_subject {
            return Err(error(
                ErrorKind::Config,
                format!(
                    "the durable consumer {durable:?} of stream {stream_name:?} filters \
                     {found:?}, not {filter_subject:?} as destination {destination:?} needs"
                ),
                &address,
            )
            .with_destination(destination));
        }
        let inbox = shared.client.new_inbox();
        let sub = shared
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| from_client(e, "subscribe", &address))?;
        let mut connections = shared.connections.clone();
        connections.mark_unchanged();
        let target = Arc::new(Target {
            destination: destination.into(),
            group: group.into(),
            id: format!("{stream_name}/{durable}").into(),
            stream: stream_name.into(),
            durable: durable.into(),
        });
        Ok(JsConsumer {
            shared,
            target,
            consumer,
            inbox,
            sub: Some(sub),
            slots: Arc::new(Semaphore::new(prefetch.max(1))),
            buffer: VecDeque::new(),
            credit: 0,
            deadline: None,
            pause_until: None,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            timer_at: None,
            connections,
            closed: false,
        })
    }

    /// The outstanding request is over: its unused slots are free again.
    fn end_request(&mut self) {
        if self.credit > 0 {
            self.slots.add_permits(self.credit);
            self.credit = 0;
        }
        self.deadline = None;
    }

    /// Sends a pull request for every free slot. Cancel-safe: the slots are taken only once
    /// the request was handed to the client.
    async fn request(&mut self) -> Result<bool> {
        let free = self.slots.available_permits();
        if free == 0 {
            return Ok(false);
        }
        let Ok(taken) = self.slots.clone().try_acquire_many_owned(free as u32) else {
            return Ok(false);
        };
        let batch = pull::BatchConfig {
            batch: free,
            expires: Some(PULL_EXPIRES),
            ..Default::default()
        };
        self.consumer
            .request_batch(batch, self.inbox.clone().into())
            .await
            .map_err(|e| from_client(e, "pull request", self.shared.address()))?;
        taken.forget();
        self.credit = free;
        self.deadline = Some(Instant::now() + PULL_EXPIRES + PULL_GRACE);
        Ok(true)
    }

    /// Handles one message of the inbox: a delivery is buffered, a status ends the request.
    fn receive(&mut self, message: async_nats::Message) -> Result<()> {
        match message.status {
            None => {}
            Some(StatusCode::IDLE_HEARTBEAT) => return Ok(()),
            Some(status) => {
                let detail = message.description.clone().unwrap_or_default();
                self.end_request();
                if status == StatusCode::REQUEST_TERMINATED
                    && detail.to_ascii_lowercase().contains("consumer deleted")
                {
                    return Err(error(
                        ErrorKind::NotFound,
                        format!(
                            "the durable consumer {} of stream {} was deleted",
                            self.target.durable, self.target.stream
                        ),
                        self.shared.address(),
                    ));
                }
                if status != StatusCode::TIMEOUT && status != StatusCode::NOT_FOUND {
                    tracing::debug!(%status, %detail, "pull request ended by the server");
                    self.pause_until = Some(Instant::now() + RETRY_PAUSE);
                }
                return Ok(());
            }
        }
        let slot = if self.credit > 0 {
            self.credit -= 1;
            if self.credit == 0 {
                self.deadline = None;
            }
            Slot::reserved(self.slots.clone())
        } else if let Ok(p) = self.slots.clone().try_acquire_owned() {
            // A late message of a request given up: keep it if a slot is free.
            p.forget();
            Slot::reserved(self.slots.clone())
        } else {
            // No slot: hand it back to the server at once.
            Slot::none()
        };
        let js_message = async_nats::jetstream::Message {
            message,
            context: self.shared.js()?.clone(),
        };
        let settler = JsSettler::new(self.shared.clone(), self.target.clone(), js_message, slot);
        if settler.has_slot() {
            self.buffer.push_back(settler);
        }
        Ok(())
    }

    fn deliver(&mut self, settler: JsSettler) -> Delivery {
        let (message, attempt) = settler.message();
        Delivery::new(
            message,
            attempt,
            self.target.destination.clone(),
            self.shared.caps.clone(),
            Box::new(settler),
        )
    }

    /// Nacks what was received but not handed out.
    fn release_buffer(&mut self) {
        self.buffer.clear();
    }
}

#[async_trait]
impl ConsumerBackend for JsConsumer {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        loop {
            if self.closed || self.shared.check_open().is_err() {
                return Ok(None);
            }
            if let Some(s) = self.buffer.pop_front() {
                return Ok(Some(self.deliver(s)));
            }
            let paused = self.pause_until.filter(|t| *t > Instant::now());
            if self.credit == 0 && paused.is_none() && !self.request().await? {
                // Every slot is held by a delivery: wait for one to be settled.
                let _ = self.slots.acquire().await;
                continue;
            }
            let Some(sub) = self.sub.as_mut() else {
                return Ok(None);
            };
            let wake = paused.or(self.deadline);
            if let Some(at) = wake.filter(|at| self.timer_at != Some(*at)) {
                self.timer.as_mut().reset(at);
                self.timer_at = Some(at);
            }
            let timer = &mut self.timer;
            tokio::select! {
                got = sub.next() => match got {
                    Some(message) => self.receive(message)?,
                    None => return Err(error(
                        ErrorKind::Closed,
                        "the NATS connection was closed",
                        self.shared.address(),
                    )),
                },
                changed = self.connections.changed() => {
                    if changed.is_err() {
                        return Ok(None); // the client is gone
                    }
                    // Reconnected: the server has forgotten the outstanding request.
                    self.end_request();
                }
                _ = timer.as_mut(), if wake.is_some() => {
                    if paused.is_none() {
                        self.end_request();
                    }
                    self.pause_until = None;
                }
            }
        }
    }

    async fn close(&mut self) -> Result<()> {
        self.closed = true;
        self.release_buffer();
        if let Some(sub) = self.sub.take() {
            crate::settle::drain_inbox(self.shared.clone(), sub);
        }
        self.end_request();
        Ok(())
    }
}

impl Drop for JsConsumer {
    fn drop(&mut self) {
        self.release_buffer();
        if let Some(sub) = self.sub.take() {
            crate::settle::drain_inbox(self.shared.clone(), sub);
        }
    }
}
