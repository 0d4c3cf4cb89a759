//! The user's consumer handle, with graceful shutdown from any task.

use std::sync::Arc;

use brokerkit_core::{ConsumerBackend, Delivery, Result};
use tokio::sync::watch;

/// Receives deliveries from one destination for one group.
pub struct Consumer {
    backend: Box<dyn ConsumerBackend>,
    stats: Arc<crate::health::Stats>,
    broker: &'static str,
    destination: Arc<str>,
    shutdown: watch::Receiver<bool>,
    trigger: Arc<watch::Sender<bool>>,
    closed: bool,
    lag_source: Option<crate::lag::LagSource>,
    /// A receive error met while a batch was being collected, returned by the next call.
    pending_error: Option<brokerkit_core::Error>,
    /// Deliveries the adapter handed out at once ([`ConsumerBackend::ready`]), in order;
    /// empty between calls.
    ready: Vec<Delivery>,
}

/// Stops a consumer's intake from another task. Cheap to clone.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    /// Stops intake: the consumer's `next` returns `None` from now on. Deliveries already
    /// handed out can still be settled; those never settled are delivered again.
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

impl Consumer {
    pub(crate) fn new(
        backend: Box<dyn ConsumerBackend>,
        stats: Arc<crate::health::Stats>,
        broker: &'static str,
        destination: &str,
    ) -> Self {
        let (tx, rx) = watch::channel(false);
        stats.consumer_opened();
        Consumer {
            backend,
            stats,
            broker,
            destination: destination.into(),
            shutdown: rx,
            trigger: Arc::new(tx),
            closed: false,
            lag_source: None,
            pending_error: None,
            ready: Vec::with_capacity(1),
        }
    }

    /// Lets [`Consumer::lag`] ask the broker for this consumer's group.
    pub(crate) fn with_lag_source(mut self, source: crate::lag::LagSource) -> Self {
        self.lag_source = Some(source);
        self
    }

    pub(crate) fn lag_source(&self) -> Option<&crate::lag::LagSource> {
        self.lag_source.as_ref()
    }

    /// The destination.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// A handle that shuts this consumer down gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.trigger.clone())
    }

    /// The next delivery; `None` after shutdown. Waits while `prefetch` deliveries are
    /// unsettled. Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<Delivery>> {
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        if self.closed {
            return Ok(None);
        }
        let got = if *self.shutdown.borrow() {
            None
        } else if let Some(d) = self.take_ready() {
            // Handed out at once by the adapter: no future for the receive.
            Some(Ok(Some(d)))
        } else {
            // Most calls find a delivery at once: no shutdown watch is set up for them.
            let next = self.backend.next();
            tokio::pin!(next);
            match crate::layers::poll_once(next.as_mut()).await {
                Some(got) => Some(got),
                None => tokio::select! {
                    biased;
                    _ = self.shutdown.wait_for(|stop| *stop) => None,
                    got = &mut next => Some(got),
                },
            }
        };
        match got {
            Some(Ok(Some(mut d))) => {
                self.stats.round_trip();
                crate::cloudevents::accept(&mut d.message_mut().headers);
                Ok(Some(d))
            }
            Some(Ok(None)) | None => {
                self.close().await?;
                Ok(None)
            }
            Some(Err(e)) => Err(e.or_context(self.broker, &self.destination, "receive")),
        }
    }

    /// One delivery the adapter can hand out now without waiting, if any.
    fn take_ready(&mut self) -> Option<Delivery> {
        self.backend.ready(1, &mut self.ready);
        self.ready.pop()
    }

    /// Up to `max` deliveries: waits for the first one as [`Consumer::next`] does, then takes
    /// what else arrives within `wait` of it, returning early once `max` are in hand. An empty
    /// batch means the consumer has shut down.
    ///
    /// The broker's own batching is underneath: adapters already pull or are pushed messages
    /// in batches (up to `prefetch`, or the broker's limit per call), so a
    /// batch usually comes from what the adapter holds without another round trip. `max` is
    /// also bounded by `prefetch`: a consumer never holds more unsettled deliveries than that.
    /// Settle each delivery on its own, or all at once with [`ack_all`].
    ///
    /// Cancel-safe as `next` is: deliveries collected when the future is dropped are dropped
    /// unsettled and delivered again.
    ///
    /// # Errors
    /// `Config` when `max` is 0; a receive error after some deliveries were collected is
    /// returned on the next call, so the collected ones are not lost.
    ///
    /// ```no_run
    /// # async fn run(broker: brokerkit::Broker) -> brokerkit::Result<()> {
    /// use std::time::Duration;
    /// let mut consumer = broker.consumer("orders").group("billing").build().await?;
    /// loop {
    ///     let batch = consumer.next_batch(100, Duration::from_millis(50)).await?;
    ///     if batch.is_empty() {
    ///         break; // shut down
    ///     }
    ///     // ... write the whole batch to a database in one statement ...
    ///     brokerkit::ack_all(batch).await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn next_batch(
        &mut self,
        max: usize,
        wait: std::time::Duration,
    ) -> Result<Vec<Delivery>> {
        if max == 0 {
            return Err(brokerkit_core::Error::config(
                "next_batch: max must be at least 1",
            ));
        }
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        let Some(first) = self.next().await? else {
            return Ok(Vec::new());
        };
        let mut batch = Vec::with_capacity(max.min(1024));
        batch.push(first);
        // What the adapter can hand out at once (one lock for the memory broker), then the
        // rest one by one.
        if batch.len() < max && !*self.shutdown.borrow() {
            let before = batch.len();
            self.backend.ready(max - before, &mut batch);
            if batch.len() > before {
                self.stats.round_trip();
            }
            for d in &mut batch[before..] {
                crate::cloudevents::accept(&mut d.message_mut().headers);
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Ok(Some(d))) => batch.push(d),
                Ok(Ok(None)) | Err(_) => break,
                Ok(Err(e)) => {
                    self.pending_error = Some(e);
                    break;
                }
            }
        }
        Ok(batch)
    }

    /// Stops intake now (same as [`ShutdownHandle::shutdown`], then closes the subscription).
    pub async fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.stats.consumer_closed();
        self.trigger.send_replace(true);
        self.backend
            .close()
            .await
            .map_err(|e| e.or_context(self.broker, &self.destination, "close"))
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if !self.closed {
            self.stats.consumer_closed();
        }
    }
}

/// Acks every delivery of a batch, concurrently. All are attempted; the first error is
/// returned with the number that failed (those are delivered again, as any unsettled
/// delivery is).
pub async fn ack_all(deliveries: Vec<Delivery>) -> Result<()> {
    let total = deliveries.len();
    let results = futures_util::future::join_all(deliveries.into_iter().map(Delivery::ack)).await;
    let mut failed = results.into_iter().filter_map(Result::err);
    match failed.next() {
        None => Ok(()),
        Some(first) => {
            let others = failed.count();
            if others == 0 {
                Err(first)
            } else {
                let kind = first.kind();
                Err(brokerkit_core::Error::new(
                    kind,
                    format!("{} of {total} acks failed; the first: {first}", others + 1),
                )
                .with_source(first))
            }
        }
    }
}
