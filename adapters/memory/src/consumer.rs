//! Receiving from a memory consumer group.

use std::sync::Arc;

use async_trait::async_trait;
use brokerkit_core::{ConsumerBackend, Delivery, Error, ErrorKind, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::engine::group::Group;
use crate::engine::queue::{Entry, Ticket};
use crate::link::Link;
use crate::settle::MemorySettler;

pub(crate) struct MemoryConsumer {
    link: Arc<Link>,
    destination: Arc<str>,
    group_name: Arc<str>,
    group: Arc<Group>,
    prefetch: Arc<Semaphore>,
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
            link,
            destination,
            group_name,
            group,
            prefetch: Arc::new(Semaphore::new(prefetch.max(1))),
            closed: false,
        }
    }

    /// Slow path: waits for a permit and a message, or for the broker to close (`None`).
    /// Cancel-safe: nothing leaves the queue until `pop` returns.
    async fn wait(&self) -> Result<Option<(OwnedSemaphorePermit, Ticket, Entry)>> {
        let shutdown = self.link.shutdown.notified();
        tokio::pin!(shutdown);
        shutdown.as_mut().enable();
        if self.link.closed.is_closed() {
            return Ok(None);
        }
        let received = async {
            let permit = self
                .prefetch
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Error::new(ErrorKind::Closed, "consumer closed"))?;
            let (ticket, entry) = self.group.pop().await;
            Ok::<_, Error>((permit, ticket, entry))
        };
        tokio::select! {
            biased;
            _ = &mut shutdown => Ok(None),
            got = received => got.map(Some),
        }
    }
}

#[async_trait]
impl ConsumerBackend for MemoryConsumer {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        if self.closed {
            return Ok(None);
        }
        if self.link.closed.is_closed() {
            return Ok(None);
        }
        // Fast path: a permit and a message are available now.
        let ready = match self.prefetch.clone().try_acquire_owned() {
            Ok(permit) => self.group.try_pop().map(|(t, e)| (permit, t, e)),
            Err(_) => None,
        };
        let (permit, ticket, entry) = match ready {
            Some(got) => got,
            None => match self.wait().await? {
                Some(got) => got,
                None => return Ok(None),
            },
        };
        let settler = MemorySettler::new(
            self.link.clone(),
            self.group.clone(),
            self.group_name.clone(),
            self.destination.clone(),
            (ticket, entry.deliveries, entry.first_failure),
            permit,
        );
        Ok(Some(Delivery::new(
            entry.message,
            entry.deliveries,
            self.destination.clone(),
            self.link.capabilities.clone(),
            Box::new(settler),
        )))
    }

    async fn close(&mut self) -> Result<()> {
        self.closed = true;
        Ok(())
    }
}
