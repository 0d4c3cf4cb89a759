//! Receiving for one group. A task per consumer reads with its own connection and hands
//! deliveries to `next` through a channel (so `next` is cancel-safe): each round it takes the
//! free `prefetch` slots, claims entries of the group idle past the lease (`XPENDING … IDLE`
//! then `XCLAIM`: released, delayed or abandoned ones, with their delivery count), and otherwise
//! reads new entries (`XREADGROUP … BLOCK`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brokerkit_core::{async_trait, ConsumerBackend, Delivery, ErrorKind, Result};
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::headers;
use crate::link::Link;
use crate::reply::Entry;
use crate::settle::{Held, RedisStreamsSettler};

/// How often the group's idle entries are looked for.
const CLAIM_EVERY: Duration = Duration::from_millis(100);

/// Receives from one stream for one group.
pub(crate) struct RedisStreamsConsumer {
    rx: mpsc::UnboundedReceiver<Delivery>,
    closed: bool,
}

/// What the reading task needs.
pub(crate) struct Reader {
    pub link: Arc<Link>,
    pub conn: ConnectionManager,
    pub key: Arc<str>,
    pub group: Arc<str>,
    pub consumer: Arc<str>,
    pub prefetch: usize,
}

impl RedisStreamsConsumer {
    /// Starts the reading task.
    pub fn start(reader: Reader) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let runtime = reader.link.runtime.clone();
        runtime.spawn(reader.run(tx));
        RedisStreamsConsumer { rx, closed: false }
    }
}

impl Reader {
    async fn run(mut self, tx: mpsc::UnboundedSender<Delivery>) {
        let slots = Arc::new(Semaphore::new(self.prefetch.max(1)));
        let held: Held = Arc::new(Mutex::new(HashSet::new()));
        let mut last_claim: Option<Instant> = None;
        loop {
            let first = tokio::select! {
                p = slots.clone().acquire_owned() => p,
                _ = tx.closed() => return,
            };
            let Ok(first) = first else { return };
            if self.link.closed.is_closed() {
                return;
            }
            let mut permits = vec![first];
            while let Ok(p) = slots.clone().try_acquire_owned() {
                permits.push(p);
            }
            let got = self.round(&mut last_claim, permits.len(), &held).await;
            let entries = match got {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    // The stream or group was deleted: subscribe again.
                    let _ = self.link.ensure_group(&self.key, &self.group).await;
                    continue;
                }
                Err(_) => {
                    // Redis unreachable: the connection manager reconnects; try again.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            for ((entry, attempt), permit) in entries.into_iter().zip(permits.drain(..)) {
                let d = self.delivery(entry, attempt, permit, &held);
                if tx.send(d).is_err() {
                    return; // the delivery was dropped: it is released
                }
            }
        }
    }

    /// Claimed idle entries, else new ones; at most `n`.
    async fn round(
        &mut self,
        last_claim: &mut Option<Instant>,
        n: usize,
        held: &Held,
    ) -> Result<Vec<(Entry, u32)>> {
        if last_claim.is_none_or(|t| t.elapsed() >= CLAIM_EVERY) {
            *last_claim = Some(Instant::now());
            let skip = held.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let claimed = Link::claim(
                &mut self.conn,
                self.link.config.lease,
                &self.key,
                &self.group,
                &self.consumer,
                n,
                &skip,
            )
            .await?;
            if !claimed.is_empty() {
                return Ok(claimed);
            }
        }
        let new = Link::read_new(&mut self.conn, &self.key, &self.group, &self.consumer, n).await?;
        Ok(new.into_iter().map(|e| (e, 1)).collect())
    }

    fn delivery(
        &self,
        entry: Entry,
        attempt: u32,
        permit: OwnedSemaphorePermit,
        held: &Held,
    ) -> Delivery {
        held.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(entry.id.clone());
        let settler = RedisStreamsSettler {
            link: self.link.clone(),
            key: self.key.clone(),
            group: self.group.clone(),
            consumer: self.consumer.clone(),
            id: entry.id,
            attempt,
            held: held.clone(),
            permit: Some(permit),
            done: false,
        };
        Delivery::new(
            headers::decode(entry.fields),
            attempt,
            self.key.clone(),
            self.link.caps.clone(),
            Box::new(settler),
        )
    }
}

#[async_trait]
impl ConsumerBackend for RedisStreamsConsumer {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        if self.closed {
            return Ok(None);
        }
        Ok(self.rx.recv().await)
    }

    async fn close(&mut self) -> Result<()> {
        self.closed = true;
        self.rx.close();
        // Read but not handed out: dropped, so released to the group.
        while self.rx.try_recv().is_ok() {}
        Ok(())
    }
}
