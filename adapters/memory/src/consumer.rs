//! Receiving from a memory consumer group.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use brokerkit_core::{ConsumerBackend, Delivery, Result};
use tokio::sync::Notify;

use crate::engine::group::Group;
use crate::engine::queue::{Entry, Ticket};
use crate::link::Link;
use crate::settle::MemorySettler;

/// What a consumer and its unsettled deliveries share: one `Arc` per delivery.
pub(crate) struct Shared {
    pub link: Arc<Link>,
    pub destination: Arc<str>,
    pub group_name: Arc<str>,
    pub group: Arc<Group>,
    /// Most unsettled deliveries at once.
    prefetch: usize,
    /// Deliveries handed out and not yet settled (or dropped). Only the consumer's `next`
    /// (which has `&mut self`) adds; settlers take away from any thread.
    outstanding: AtomicUsize,
    /// Signalled when `outstanding` falls from `prefetch`.
    room: Notify,
}

impl Shared {
    fn has_room(&self) -> bool {
        self.outstanding.load(Ordering::Acquire) < self.prefetch
    }

    /// A delivery ended (settled or dropped): its prefetch place is free again.
    pub fn release(&self) {
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == self.prefetch {
            self.room.notify_one();
        }
    }
}

pub(crate) struct MemoryConsumer {
    shared: Arc<Shared>,
    closed: bool,
}

impl MemoryConsumer {
    pub fn new(
        link: Arc<Link>,
        destination: Arc<str>,
        group_name: Arc<str>,
        group: Arc<Group>,
        prefetch: usize,
    ) -> Self {
        MemoryConsumer {
            shared: Arc::new(Shared {
                link,
                destination,
                group_name,
                group,
                prefetch: prefetch.max(1),
                outstanding: AtomicUsize::new(0),
                room: Notify::new(),
            }),
            closed: false,
        }
    }

    /// Waits for a prefetch place, then for a message. Only this consumer takes places,
    /// so the room seen stays until it takes one.
    async fn room_then_pop(&self) -> (Ticket, Entry) {
        let s = &self.shared;
        loop {
            let room = s.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if s.has_room() {
                break;
            }
            room.await;
        }
        s.group.pop().await
    }

    /// Slow path: waits for room and a message, or for the broker to close (`None`).
    /// Cancel-safe: nothing leaves the queue until `pop` returns.
    async fn wait(&self) -> Option<(Ticket, Entry)> {
        let link = &self.shared.link;
        let shutdown = link.shutdown.notified();
        tokio::pin!(shutdown);
        shutdown.as_mut().enable();
        if link.closed.is_closed() {
            return None;
        }
        tokio::select! {
            biased;
            _ = &mut shutdown => None,
            got = self.room_then_pop() => Some(got),
        }
    }

    /// A delivery of a popped entry; takes a prefetch place.
    fn deliver(&self, (ticket, entry): (Ticket, Entry)) -> Delivery {
        let s = &self.shared;
        s.outstanding.fetch_add(1, Ordering::AcqRel);
        let settler =
            MemorySettler::new(s.clone(), (ticket, entry.deliveries, entry.first_failure));
        Delivery::new(
            entry.message,
            entry.deliveries,
            s.destination.clone(),
            s.link.capabilities.clone(),
            Box::new(settler),
        )
    }
}

#[async_trait]
impl ConsumerBackend for MemoryConsumer {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        if self.closed || self.shared.link.closed.is_closed() {
            return Ok(None);
        }
        // Fast path: room and a message now.
        let ready = if self.shared.has_room() {
            self.shared.group.try_pop()
        } else {
            None
        };
        let got = match ready {
            Some(got) => got,
            None => match self.wait().await {
                Some(got) => got,
                None => return Ok(None),
            },
        };
        Ok(Some(self.deliver(got)))
    }

    fn ready(&mut self, max: usize, out: &mut Vec<Delivery>) {
        if self.closed || self.shared.link.closed.is_closed() {
            return;
        }
        let room = self
            .shared
            .prefetch
            .saturating_sub(self.shared.outstanding.load(Ordering::Acquire));
        let this = &*self;
        this.shared
            .group
            .try_pop_many(max.min(room), |got| out.push(this.deliver(got)));
    }

    async fn close(&mut self) -> Result<()> {
        self.closed = true;
        Ok(())
    }
}
