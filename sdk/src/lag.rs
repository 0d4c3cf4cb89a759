//! Consumer lag and dead-letter depth on the user's handles: [`Broker::lag`],
//! [`Broker::dead_letter_depth`] and [`Consumer::lag`], all answered by the adapter's
//! [`brokerkit_core::Backend::lag`] from the broker's own figure.

use std::sync::Arc;

use brokerkit_core::{dead_letter_destination, Backend, Error, Lag, Result};

use crate::broker::{check_destination, Broker};
use crate::consumer::Consumer;

/// What a [`Consumer`] needs to ask for its own lag: the backend and its group.
#[derive(Clone)]
pub(crate) struct LagSource {
    backend: Arc<dyn Backend>,
    group: Option<Arc<str>>,
}

impl LagSource {
    pub(crate) fn new(backend: Arc<dyn Backend>, group: Option<&str>) -> Self {
        LagSource {
            backend,
            group: group.map(Into::into),
        }
    }
}

/// Checks and asks the backend.
async fn lag_of(backend: &dyn Backend, destination: &str, group: Option<&str>) -> Result<Lag> {
    let context = |e: Error| e.or_context(backend.name(), destination, "lag");
    backend.capabilities().check_lag().map_err(context)?;
    check_destination(destination).map_err(context)?;
    if let Some(g) = group {
        check_destination(g)
            .map_err(|e| context(Error::config(format!("group: {}", e.message()))))?;
    }
    backend.lag(destination, group).await.map_err(context)
}

impl Broker {
    /// How many messages of `destination` the consumer `group` (`None`: the default group)
    /// has not acked yet: waiting, delayed and in flight, from the broker's own figure
    /// (offsets, consumer info, queue attributes or counts; each adapter's README says which).
    /// [`brokerkit_core::Lag::accuracy`] says how exact it is.
    ///
    /// Read-only: it creates nothing. Errors: `Unsupported` where
    /// [`brokerkit_core::Capabilities::lag`] is `None`.
    pub async fn lag(&self, destination: &str, group: Option<&str>) -> Result<Lag> {
        lag_of(self.backend().as_ref(), destination, group).await
    }

    /// Messages waiting in `destination`'s dead-letter destination (`<destination>.dlq`),
    /// for its default group: the lag of that destination.
    pub async fn dead_letter_depth(&self, destination: &str) -> Result<Lag> {
        self.lag(&dead_letter_destination(destination), None).await
    }
}

impl Consumer {
    /// This consumer's group lag on its destination: see [`Broker::lag`]. Works after
    /// shutdown too (it asks the broker, not the consumer).
    pub async fn lag(&self) -> Result<Lag> {
        match self.lag_source() {
            Some(s) => lag_of(s.backend.as_ref(), self.destination(), s.group.as_deref()).await,
            None => Err(Error::unsupported(
                "this consumer was not built by a broker handle; use Broker::lag",
            )
            .or_context("unknown", self.destination(), "lag")),
        }
    }
}
