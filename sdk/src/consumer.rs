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
        if self.closed {
            return Ok(None);
        }
        let got = tokio::select! {
            biased;
            _ = self.shutdown.wait_for(|stop| *stop) => None,
            got = self.backend.next() => Some(got),
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
