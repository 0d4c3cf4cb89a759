//! The handler API: `consumer.handle(|ctx, event| …)` decodes the input, applies the layers
//! in order (see [`crate::layers`]) and runs handlers with a concurrency limit, until shutdown.
//!
//! Shutdown drains: intake stops, in-flight handlers finish (up to the drain timeout), and
//! handlers still running then are cancelled and their messages nacked. Shutdown never
//! dead-letters a message.

mod catch_panic;
mod decode;
mod pipeline;
mod report;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use brokerkit_core::{Error, Result};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

pub use decode::{Decoder, JsonWithSchema, Raw, Rejection, Typed};
pub use report::RunReport;

use crate::broker::ConsumerBuilder;
use crate::context::Context;
use crate::idempotency::Idempotency;
use crate::retry::RetryPolicy;
use pipeline::{process, Shared};

/// Settings of a handler run, set on the [`ConsumerBuilder`].
#[derive(Clone)]
pub(crate) struct HandlerSettings {
    /// `None`: the default policy for the broker (see [`ConsumerBuilder::retry`]).
    pub retry: Option<RetryPolicy>,
    pub idempotency: Option<Idempotency>,
    pub concurrency: usize,
    pub drain_timeout: Duration,
}

impl Default for HandlerSettings {
    fn default() -> Self {
        HandlerSettings {
            retry: None,
            idempotency: None,
            concurrency: 1,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// A handler ready to run: see [`ConsumerBuilder::handle`].
pub struct Handler<D: Decoder, F> {
    builder: ConsumerBuilder,
    settings: HandlerSettings,
    shared: Arc<Shared<D, F>>,
}

impl<D, F, Fut> Handler<D, F>
where
    D: Decoder,
    F: Fn(Context, D::Output) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    pub(crate) fn new(
        builder: ConsumerBuilder,
        settings: HandlerSettings,
        decoder: D,
        handler: F,
    ) -> Self {
        let delay = builder.capabilities().delayed_redelivery.is_available();
        let retry = settings.retry.clone().unwrap_or_else(|| {
            if delay {
                RetryPolicy::default()
            } else {
                RetryPolicy::immediate(RetryPolicy::default().max_attempts)
            }
        });
        let shared = Arc::new(Shared {
            decoder,
            handler,
            retry,
            idempotency: settings.idempotency.clone(),
            group: builder.group_name().map(str::to_string),
        });
        Handler {
            builder,
            settings,
            shared,
        }
    }

    /// Runs until the consumer ends (e.g. the broker closes).
    pub async fn run(self) -> Result<RunReport> {
        self.run_until(std::future::pending::<()>()).await
    }

    /// Runs until `shutdown` completes, then drains.
    ///
    /// Errors before any message is taken: the consumer cannot be built, or the retry policy
    /// needs a delayed redelivery this broker does not have (`Unsupported`).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<RunReport> {
        let consumer = self.subscribe().await?;
        self.serve(consumer, shutdown).await
    }

    /// Subscribes, then runs on a new task until `shutdown` completes. When this returns the
    /// subscription is in place: messages sent afterwards reach the handler.
    pub async fn start(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<RunningHandler> {
        let consumer = self.subscribe().await?;
        Ok(RunningHandler(tokio::spawn(self.serve(consumer, shutdown))))
    }

    async fn subscribe(&self) -> Result<crate::Consumer> {
        let caps = self.builder.capabilities();
        if self.shared.retry.needs_delay() && !caps.delayed_redelivery.is_available() {
            return Err(Error::unsupported(
                "the retry policy backs off through delayed redelivery, which this broker lacks; \
                 use RetryPolicy::immediate",
            ));
        }
        self.builder.build().await
    }

    async fn serve(
        self,
        mut consumer: crate::Consumer,
        shutdown: impl Future<Output = ()>,
    ) -> Result<RunReport> {
        let concurrency = self.settings.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut report = RunReport::default();
        tokio::pin!(shutdown);
        loop {
            while let Some(done) = tasks.try_join_next() {
                report.add(done.map_err(join_error)?);
            }
            let permit = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                p = permits.clone().acquire_owned() => p.map_err(|_| Error::new(brokerkit_core::ErrorKind::Closed, "handler closed"))?,
            };
            let next = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                n = consumer.next() => n,
            };
            let delivery = match next {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) if e.is_retryable() => {
                    tracing::warn!(error = %e, "receive failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let shared = self.shared.clone();
            let cancel = cancel_rx.clone();
            tasks.spawn(async move {
                let outcome = process(shared, delivery, cancel).await;
                drop(permit);
                outcome
            });
        }
        consumer.close().await?;
        let drained = tokio::time::timeout(self.settings.drain_timeout, async {
            while let Some(done) = tasks.join_next().await {
                report.add(done.map_err(join_error)?);
            }
            Ok::<_, Error>(())
        })
        .await;
        match drained {
            Ok(r) => r?,
            Err(_) => {
                cancel_tx.send_replace(true);
                // Cancelled handlers settle (nack) promptly; one stuck in its broker call is
                // aborted after a bound, which drops its delivery: the broker redelivers it.
                let settle_bound = self.settings.drain_timeout.max(Duration::from_secs(5));
                let settled = tokio::time::timeout(settle_bound, async {
                    while let Some(done) = tasks.join_next().await {
                        report.add(done.map_err(join_error)?);
                    }
                    Ok::<_, Error>(())
                })
                .await;
                match settled {
                    Ok(r) => r?,
                    Err(_) => {
                        report.cancelled += tasks.len() as u64;
                        tasks.abort_all();
                        tracing::warn!("handlers did not settle after cancellation; aborted");
                    }
                }
            }
        }
        Ok(report)
    }
}

/// A handler running on its own task (see [`Handler::start`]).
pub struct RunningHandler(tokio::task::JoinHandle<Result<RunReport>>);

impl RunningHandler {
    /// Waits for the run to end (after its shutdown signal) and returns its report.
    pub async fn join(self) -> Result<RunReport> {
        self.0.await.map_err(join_error)?
    }
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::new(
        brokerkit_core::ErrorKind::Handler,
        format!("a handler task panicked: {e}"),
    )
}
