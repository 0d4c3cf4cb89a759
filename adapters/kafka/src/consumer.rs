//! Consumer handle: joins the group, starts the driver, hands out deliveries (settled in
//! [`crate::settle`]).
//!
//! A brokerkit consumer is one Kafka consumer-group member (group id `<destination>:<group>`)
//! subscribed to the destination and to the group's retry topic. A driver thread
//! ([`crate::driver`]) polls it; deliveries are handed out from the shared [`State`].

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex};

use async_trait::async_trait;
use brokerkit_core::{ConsumerBackend, ConsumerOptions, Delivery, ErrorKind, Result};
use tokio::runtime::Handle;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::driver;
use crate::error::error;
use crate::link::Shared;
use crate::settle::{ConsumerShared, KafkaSettler};
use crate::state::{Fetched, State};
use crate::topics::{group_id, retry_topic, DEFAULT_GROUP};

/// Creates the topics, joins the group and waits for the first assignment.
pub async fn start(
    backend: Arc<Shared>,
    destination: &str,
    options: &ConsumerOptions,
) -> Result<(Box<dyn ConsumerBackend>, Arc<ConsumerShared>)> {
    let group = options
        .group
        .as_deref()
        .unwrap_or(DEFAULT_GROUP)
        .to_string();
    let retry = retry_topic(destination, &group);
    backend.ensure_topic(destination).await?;
    let retry_partitions = backend.ensure_topic(&retry).await?;
    let shared = Arc::new(ConsumerShared {
        destination: destination.into(),
        group_id: group_id(destination, &group),
        group,
        retry_topic: retry,
        retry_partitions,
        prefetch: options.prefetch.max(1),
        state: Mutex::new(State::default()),
        settled: Condvar::new(),
        ready: Notify::new(),
        assigned: Notify::new(),
        rebalances: AtomicU64::new(0),
        runtime: Handle::current(),
        finished: tokio::sync::watch::channel(false).0,
        backend,
    });
    driver::spawn(shared.clone())?;
    let timeout = shared.backend.config.assignment_timeout;
    let waited = tokio::time::timeout(timeout, async {
        loop {
            let notified = shared.assigned.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shared.lock().assigned_once {
                return;
            }
            notified.await;
        }
    })
    .await;
    if waited.is_err() {
        shared.close();
        return Err(error(
            ErrorKind::Timeout,
            format!(
                "joining consumer group {:?} took longer than {timeout:?} (assignment_timeout_ms)",
                shared.group_id
            ),
            &shared.backend.config.redacted,
            "consumer",
        )
        .with_destination(destination));
    }
    let consumer = KafkaConsumer {
        prefetch: Arc::new(Semaphore::new(shared.prefetch)),
        shared: shared.clone(),
        closed: false,
    };
    Ok((Box::new(consumer), shared))
}

/// How long, beyond the drain timeout, a close waits for the final commit and the group leave.
pub(crate) const FINISH_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

struct KafkaConsumer {
    shared: Arc<ConsumerShared>,
    prefetch: Arc<Semaphore>,
    closed: bool,
}

impl KafkaConsumer {
    fn delivery(&self, f: Fetched, permit: OwnedSemaphorePermit) -> Delivery {
        let message = f.message.clone();
        let attempt = f.info.attempt;
        Delivery::new(
            message,
            attempt,
            self.shared.destination.clone(),
            self.shared.backend.capabilities.clone(),
            Box::new(KafkaSettler {
                shared: self.shared.clone(),
                fetched: Some(f),
                permit: Some(permit),
            }),
        )
    }
}

#[async_trait]
impl ConsumerBackend for KafkaConsumer {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        let mut permit: Option<OwnedSemaphorePermit> = None;
        loop {
            if self.closed {
                return Ok(None);
            }
            let notified = self.shared.ready.notified();
            if permit.is_none() {
                permit = self.prefetch.clone().try_acquire_owned().ok();
            }
            {
                let mut st = self.shared.lock();
                if st.closed {
                    return Ok(None);
                }
                if let Some(p) = permit.take() {
                    match st.pop_ready() {
                        Some(f) => {
                            drop(st);
                            return Ok(Some(self.delivery(f, p)));
                        }
                        None => permit = Some(p),
                    }
                }
            }
            if permit.is_none() {
                tokio::select! {
                    p = self.prefetch.clone().acquire_owned() => permit = p.ok(),
                    _ = notified => {}
                }
            } else {
                notified.await;
            }
        }
    }

    /// Stops intake. When no delivery is in hand, waits for the driver's final synchronous
    /// commit and its leaving the group, so acks made before `close` are committed when it
    /// returns (a process may exit right after). With deliveries still in hand it returns at
    /// once: they can still be settled, and the driver commits once they are (or after
    /// `drain_timeout_ms`); `Backend::close` waits for that.
    async fn close(&mut self) -> Result<()> {
        self.closed = true;
        self.shared.close();
        if self.shared.out_count() == 0 && !self.shared.wait_finished(FINISH_GRACE).await {
            tracing::warn!(group = %self.shared.group_id, "kafka: the consumer did not commit and leave its group in time on close");
        }
        Ok(())
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        self.shared.close();
    }
}
