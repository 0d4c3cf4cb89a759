//! The handler API: `consumer.handle(|ctx, event| …)` runs each delivery through the receive
//! layers ([`crate::layers::receive`]) with a concurrency limit, until shutdown.
//!
//! **Intake and leases.** The runner takes deliveries as the consumer hands them out (at most
//! `prefetch` unsettled at once) and each waits for a free handler slot. While it waits and
//! while its handler runs, the lifecycle keeps its lease (visibility timeout, `ack_wait`), so
//! a prefetched delivery never times out in the buffer and a slow handler never has its
//! message handed to another instance. See [`lifecycle`](self#lifecycle).
//!
//! **Shutdown drains**: intake stops, deliveries not yet started go back at once, in-flight
//! handlers finish (up to the drain timeout), and handlers still running then are cancelled
//! and their messages nacked. Shutdown never dead-letters a message.

mod catch_panic;
mod decode;
mod error;
mod lifecycle;
mod report;
pub mod router;
pub mod unaccepted;
pub mod versions;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use brokerkit_core::{Error, ErrorKind, Result};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub(crate) use catch_panic::{call_catching, CatchPanic};
pub use decode::{Decoder, JsonWithSchema, Raw, Rejection, Typed};
pub use error::{Classification, HandlerError, HandlerResult, ResultExt};
pub use report::RunReport;
pub use router::{Dispatch, Router};
pub use unaccepted::{Unaccepted, UnacceptedEvent};
pub use versions::Versions;

use crate::consumer_builder::{ConsumerBuilder, HandlerSettings};
use crate::context::Context;
use crate::layers::receive::{
    correlation::CorrelationLayer, decode::DecodeLayer, handler_fn::handler_service,
    idempotency::IdempotencyLayer, metrics::MetricsLayer, retry::RetryLayer, trace::TraceLayer,
    ReceiveService,
};
use crate::retry::RetryPolicy;
use lifecycle::{deliver, extend_period, extend_waiting, release, Lifecycle};
pub use lifecycle::{HandlerHealth, SETTLE_FAILURE_LIMIT};

/// A handler ready to run: see [`ConsumerBuilder::handle`].
pub struct Handler {
    consumer: ConsumerBuilder,
    instruments: Arc<crate::metrics::Instruments>,
    concurrency: usize,
    drain_timeout: Duration,
    retry: RetryPolicy,
    service: Result<ReceiveService>,
    after_ack: bool,
}

impl Handler {
    pub(crate) fn new<D, F, Fut>(
        consumer: ConsumerBuilder,
        settings: HandlerSettings,
        decoder: D,
        f: F,
    ) -> Self
    where
        D: Decoder,
        F: Fn(Context, D::Output) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::HandlerResult> + Send + 'static,
    {
        let delay = consumer.capabilities().delayed_redelivery.is_available();
        let retry = settings.retry.clone().unwrap_or_else(|| {
            if delay {
                RetryPolicy::default()
            } else {
                RetryPolicy::immediate(RetryPolicy::default().max_attempts)
            }
        });
        let decode = DecodeLayer::new(decoder);
        let idempotency = settings.idempotency.clone().map(IdempotencyLayer::new);
        let retry_layer = RetryLayer::new(retry.clone());
        let instruments = settings
            .instruments
            .clone()
            .unwrap_or_else(crate::metrics::Instruments::global);
        let metrics = MetricsLayer::new(
            instruments.clone(),
            consumer.adapter(),
            consumer.destination(),
            consumer.group_name(),
        );
        let service = settings.stack.build(handler_service(f), |name, inner| {
            use tower::Layer;
            Some(match name {
                "trace" => TraceLayer.layer(inner),
                "correlation" => CorrelationLayer.layer(inner),
                "metrics" => metrics.layer(inner),
                "retry" => retry_layer.layer(inner),
                "decode" => decode.layer(inner),
                "idempotency" => idempotency.as_ref()?.layer(inner),
                _ => return None,
            })
        });
        Handler {
            consumer,
            instruments,
            concurrency: settings.concurrency.max(1),
            drain_timeout: settings.drain_timeout,
            retry,
            service,
            after_ack: settings.after_ack,
        }
    }

    /// Runs until the consumer ends (e.g. the broker closes).
    pub async fn run(self) -> Result<RunReport> {
        self.run_until(std::future::pending::<()>()).await
    }

    /// Runs until `shutdown` completes, then drains.
    ///
    /// Errors before any message is taken: the consumer cannot be built, a layer name given
    /// to the builder is unknown, or the retry policy needs a delayed redelivery this broker
    /// does not have (`Unsupported`). Errors after draining: a receive error that is not
    /// retryable, or a message whose settle failed [`SETTLE_FAILURE_LIMIT`] times (its kind
    /// is the last failure's).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<RunReport> {
        let (consumer, life, concurrency) = self.subscribe().await?;
        serve(consumer, life, concurrency, self.drain_timeout, shutdown).await
    }

    /// Subscribes, then runs on a new task until `shutdown` completes. When this returns the
    /// subscription is in place: messages sent afterwards reach the handler.
    pub async fn start(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<RunningHandler> {
        let (consumer, life, concurrency) = self.subscribe().await?;
        let drain = self.drain_timeout;
        let task = tokio::spawn(serve(consumer, life.clone(), concurrency, drain, shutdown));
        Ok(RunningHandler(task, life))
    }

    async fn subscribe(&self) -> Result<(crate::Consumer, Arc<Lifecycle>, usize)> {
        let caps = self.consumer.capabilities();
        if self.retry.needs_delay() && !caps.delayed_redelivery.is_available() {
            return Err(Error::unsupported(
                "the retry policy backs off through delayed redelivery, which this broker lacks; \
                 use RetryPolicy::immediate",
            ));
        }
        let service = match &self.service {
            Ok(s) => s.clone(),
            Err(e) => return Err(Error::config(e.message().to_string())),
        };
        let life = Lifecycle::new(
            service,
            self.consumer.destination(),
            self.consumer.group_name(),
            caps,
            self.instruments.clone(),
            crate::metrics::attributes(
                self.consumer.adapter(),
                self.consumer.destination(),
                self.consumer.group_name(),
            ),
        );
        let consumer = self.consumer.build().await?;
        let mut life = life;
        life.after_ack = self.after_ack;
        let life = Arc::new(life);
        let weak: std::sync::Weak<dyn crate::health::Reporting> =
            Arc::downgrade(&life) as std::sync::Weak<dyn crate::health::Reporting>;
        self.consumer.stats().register(weak);
        Ok((consumer, life, self.concurrency))
    }
}

/// Received deliveries waiting for a free handler slot, oldest first. Workers take from the
/// front; the runner extends the leases of those still here every third of the lease.
type Waiting = Arc<std::sync::Mutex<VecDeque<brokerkit_core::Delivery>>>;

fn lock(waiting: &Waiting) -> std::sync::MutexGuard<'_, VecDeque<brokerkit_core::Delivery>> {
    waiting.lock().unwrap_or_else(|p| p.into_inner())
}

/// Wakes idle workers: one per delivery queued, all when the run stops.
#[derive(Default)]
struct Wake {
    more: tokio::sync::Notify,
    stopping: std::sync::atomic::AtomicBool,
}

/// One handler slot: runs waiting deliveries one after another, and waits for more while
/// idle (a task per slot, not per delivery), until the run stops.
async fn worker(
    life: Arc<Lifecycle>,
    waiting: Waiting,
    wake: Arc<Wake>,
    cancel: watch::Receiver<bool>,
) {
    use std::sync::atomic::Ordering;
    loop {
        let next = {
            let mut queue = lock(&waiting);
            let next = queue.pop_front();
            life.set_waiting(queue.len());
            next
        };
        if let Some(delivery) = next {
            life.record(deliver(life.clone(), delivery, cancel.clone()).await);
            continue;
        }
        let more = wake.more.notified();
        tokio::pin!(more);
        more.as_mut().enable();
        if wake.stopping.load(Ordering::Acquire) {
            return;
        }
        if lock(&waiting).is_empty() {
            more.await;
        }
    }
}

async fn serve(
    mut consumer: crate::Consumer,
    life: Arc<Lifecycle>,
    concurrency: usize,
    drain_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<RunReport> {
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let waiting: Waiting = Arc::default();
    let wake = Arc::new(Wake::default());
    let period = life.lease.map(extend_period);
    let mut next_extend = tokio::time::Instant::now();
    // One timer for the whole run, re-armed when it fires before `next_extend` (which moves
    // with every delivery queued while none waited): a `sleep_until` made per delivery
    // registered and dropped a timer entry each time.
    let extend_timer = tokio::time::sleep_until(next_extend);
    tokio::pin!(extend_timer);
    let mut fatal = None;
    tokio::pin!(shutdown);
    loop {
        while tasks.len() < concurrency && !lock(&waiting).is_empty() {
            tasks.spawn(worker(
                life.clone(),
                waiting.clone(),
                wake.clone(),
                cancel_rx.clone(),
            ));
        }
        let extend_due = period.is_some() && !lock(&waiting).is_empty();
        let next = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            e = life.given_up() => {
                // A message that cannot be settled: stop taking more, drain, report it.
                fatal = Some(e);
                break;
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done {
                    // Panics are caught per delivery; this is a bug, but the run goes on.
                    tracing::error!(error = %e, "a handler worker ended abnormally");
                }
                continue;
            }
            _ = &mut extend_timer, if extend_due => {
                if extend_timer.deadline() < next_extend {
                    extend_timer.as_mut().reset(next_extend);
                    continue;
                }
                // Out of the queue while the broker answers, then back in front, in order.
                let mut batch = std::mem::take(&mut *lock(&waiting));
                extend_waiting(&life, batch.iter_mut()).await;
                let mut queue = lock(&waiting);
                while let Some(d) = batch.pop_back() {
                    queue.push_front(d);
                }
                drop(queue);
                wake.more.notify_waiters();
                next_extend = tokio::time::Instant::now() + period.unwrap_or_default();
                extend_timer.as_mut().reset(next_extend);
                continue;
            }
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
            Err(e) => {
                // Still drain what was taken and close before reporting it.
                tracing::error!(error = %e, "receive failed for good; draining and stopping");
                fatal = Some(e);
                break;
            }
        };
        let mut queue = lock(&waiting);
        if queue.is_empty() {
            next_extend = tokio::time::Instant::now() + period.unwrap_or_default();
        }
        queue.push_back(delivery);
        life.set_waiting(queue.len());
        drop(queue);
        wake.more.notify_one();
    }
    let unstarted = std::mem::take(&mut *lock(&waiting));
    // Idle workers end; busy ones end after their delivery.
    wake.stopping
        .store(true, std::sync::atomic::Ordering::Release);
    wake.more.notify_waiters();
    for d in unstarted {
        life.record(release(&life, d).await);
    }
    consumer.close().await?;
    let drained = tokio::time::timeout(drain_timeout, async {
        while let Some(done) = tasks.join_next().await {
            done.map_err(join_error)?;
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
            let settle_bound = drain_timeout.max(Duration::from_secs(5));
            let settled = tokio::time::timeout(settle_bound, async {
                while let Some(done) = tasks.join_next().await {
                    done.map_err(join_error)?;
                }
                Ok::<_, Error>(())
            })
            .await;
            match settled {
                Ok(r) => r?,
                Err(_) => {
                    life.aborted(tasks.len() as u64);
                    tasks.abort_all();
                    tracing::warn!("handlers did not settle after cancellation; aborted");
                }
            }
        }
    }
    match fatal {
        Some(e) => Err(e),
        None => Ok(life.report()),
    }
}

/// A handler running on its own task (see [`Handler::start`]).
pub struct RunningHandler(tokio::task::JoinHandle<Result<RunReport>>, Arc<Lifecycle>);

impl RunningHandler {
    /// A live view: the report so far, deliveries in flight and waiting, stuck handlers.
    pub fn health(&self) -> HandlerHealth {
        crate::health::Reporting::health(&*self.1)
    }

    /// Whether the run has ended (its shutdown signal, the consumer's end, or an error such
    /// as a message that could not be settled, see [`SETTLE_FAILURE_LIMIT`]).
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// Waits for the run to end (after its shutdown signal) and returns its report.
    pub async fn join(self) -> Result<RunReport> {
        self.0.await.map_err(join_error)?
    }
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::new(ErrorKind::Handler, format!("a handler task panicked: {e}"))
}
