//! The delivery lifecycle, owned in one place: from the moment a delivery is received until
//! it is settled, once.
//!
//! - **Lease keeping.** On brokers with a lease ([`Capabilities::lease`]: a visibility
//!   timeout or ack wait), the delivery's lease is extended every
//!   third of it — while the delivery waits for a free handler slot (by the runner, for every
//!   waiting delivery at once) *and* while its handler runs (by [`deliver`]) — so a slow
//!   handler or a deep prefetch buffer never lets the broker hand the message to another
//!   consumer. Brokers with no such clock while the consumer is connected
//!   (`lease: None`) need none.
//! - **Settlement by disposition.** The receive layers decide ([`Disposition`]); this module
//!   settles, adapting to the broker: no delay where it has none, a nack where it has no
//!   dead-letter destination.
//! - **Bounded settle failures.** A message whose settle fails
//!   [`SETTLE_FAILURE_LIMIT`] times (counted per message, across its redeliveries, reset when
//!   one of its settles succeeds) stops the run with that error, logged at `error`, counted in
//!   [`RunReport::settle_given_up`] and `brokerkit.settle.given_up`: a dead-letter copy the
//!   broker refuses (too large, no dead-letter topic) or a nack that cannot be re-published
//!   would otherwise bring the message back and run the handler on it forever.
//! - **Cancellation.** On shutdown, a delivery not yet started is handed back at once; one
//!   whose handler is cancelled after the drain timeout is nacked. Shutdown never
//!   dead-letters.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use brokerkit_core::{Bytes, Capabilities, Delivery, Error, Message, Result};
use opentelemetry::KeyValue;
use tokio::sync::watch;

use super::report::{Outcome, RunReport};
use crate::context::Context;
use crate::layers::receive::{after_ack::AfterAck, Disposition, Incoming, ReceiveService};
use crate::metrics::{with_error, Instruments};

/// How many settles of one message may fail before the run stops (see the module docs).
pub const SETTLE_FAILURE_LIMIT: u32 = 5;

/// Most messages whose failed settles are remembered at once; beyond it the oldest counts are
/// forgotten (a message then needs `SETTLE_FAILURE_LIMIT` fresh failures).
const REMEMBERED_FAILURES: usize = 10_000;

/// Which message a delivery carries, to count its settle failures across redeliveries: the
/// `message-id` brokerkit stamps, else (foreign messages) the payload and key. Hashed only
/// when a settle fails or failures are being counted.
pub(crate) struct Who {
    id: Option<String>,
    payload: Bytes,
    key: Option<String>,
}

impl Who {
    pub(crate) fn of(message: &Message) -> Self {
        let id = message.headers.message_id().map(str::to_string);
        Who {
            payload: if id.is_some() {
                Bytes::new()
            } else {
                message.payload.clone()
            },
            key: if id.is_some() {
                None
            } else {
                message.key.clone()
            },
            id,
        }
    }

    fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match &self.id {
            Some(id) => (0u8, id).hash(&mut h),
            None => (1u8, &self.payload[..], &self.key).hash(&mut h),
        }
        h.finish()
    }
}

/// What every delivery of one handler run shares.
pub(crate) struct Lifecycle {
    pub service: ReceiveService,
    pub destination: Arc<str>,
    pub group: Option<Arc<str>>,
    /// Lease to keep, where the broker has one and can extend it.
    pub lease: Option<Duration>,
    instruments: Arc<Instruments>,
    attributes: Arc<[KeyValue]>,
    /// Live counts and the start time of each delivery being handled, for health.
    state: std::sync::Mutex<RunState>,
    /// A handler running longer than this is counted as stuck.
    stuck_after: Duration,
    /// Woken when a message's settles failed [`SETTLE_FAILURE_LIMIT`] times.
    gave_up: tokio::sync::Notify,
    /// Give each delivery an [`AfterAck`] and run it once the delivery is acked.
    pub after_ack: bool,
}

/// Hashes the run's own sequential delivery ids (never input): one multiply by an odd
/// constant (Fibonacci hashing), which spreads consecutive ids over the table's high bits
/// (its control bytes) and low bits (its buckets), instead of SipHash (about 250
/// instructions an insert or remove, twice per delivery).
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in.
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type ById<V> = std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct RunState {
    report: RunReport,
    running: ById<std::time::Instant>,
    next_id: u64,
    waiting: usize,
    /// Failed settles per message (by [`Who::fingerprint`]), oldest first when trimmed.
    settle_failures: std::collections::HashMap<u64, u32>,
    /// Why the run must stop: a message that could not be settled.
    stop: Option<Error>,
}

/// A live view of one running handler (see [`super::RunningHandler::health`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandlerHealth {
    /// Counts so far.
    pub report: RunReport,
    /// Deliveries being handled now.
    pub in_flight: usize,
    /// Deliveries received and waiting for a free handler slot.
    pub waiting: usize,
    /// Deliveries handled for longer than the lease (the broker's, or 30 s where the broker
    /// has none).
    pub stuck: usize,
    /// How long the oldest delivery being handled has been running.
    pub oldest: Option<Duration>,
}

impl crate::health::Reporting for Lifecycle {
    fn health(&self) -> HandlerHealth {
        let st = self.lock();
        let now = std::time::Instant::now();
        let ages = st
            .running
            .values()
            .map(|t| now.saturating_duration_since(*t));
        HandlerHealth {
            report: st.report.clone(),
            in_flight: st.running.len(),
            waiting: st.waiting,
            stuck: ages.clone().filter(|a| *a > self.stuck_after).count(),
            oldest: ages.max(),
        }
    }
}

/// Takes a delivery off the running list however its processing ends.
struct Running<'a>(&'a Lifecycle, u64);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.lock().running.remove(&self.1);
    }
}

impl Lifecycle {
    fn lock(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn running(&self) -> Running<'_> {
        let mut st = self.lock();
        st.next_id += 1;
        let id = st.next_id;
        st.running.insert(id, std::time::Instant::now());
        Running(self, id)
    }

    /// Counts an outcome in the live report.
    pub fn record(&self, outcome: Outcome) {
        self.lock().report.add(outcome);
    }

    /// Counts handlers aborted at shutdown.
    pub fn aborted(&self, n: u64) {
        self.lock().report.cancelled += n;
    }

    /// The report so far.
    pub fn report(&self) -> RunReport {
        self.lock().report.clone()
    }

    /// How many received deliveries wait for a slot.
    pub fn set_waiting(&self, n: usize) {
        self.lock().waiting = n;
    }

    pub fn new(
        service: ReceiveService,
        destination: &str,
        group: Option<&str>,
        caps: &Capabilities,
        instruments: Arc<Instruments>,
        attributes: Arc<[KeyValue]>,
    ) -> Self {
        Lifecycle {
            service,
            destination: Arc::from(destination),
            group: group.map(Arc::from),
            lease: caps.lease.filter(|_| caps.lease_extension.is_available()),
            instruments,
            attributes,
            state: Default::default(),
            stuck_after: caps.lease.unwrap_or(Duration::from_secs(30)),
            gave_up: tokio::sync::Notify::new(),
            after_ack: false,
        }
    }

    /// Completes once a message's settles failed [`SETTLE_FAILURE_LIMIT`] times; returns why.
    pub async fn given_up(&self) -> Error {
        loop {
            let woken = self.gave_up.notified();
            if let Some(e) = self.lock().stop.take() {
                return e;
            }
            woken.await;
        }
    }

    fn extended(&self, result: &Result<()>) {
        match result {
            Ok(()) => self.instruments.lease_extensions.add(1, &self.attributes),
            Err(e) => {
                tracing::warn!(error = %e, "could not extend a delivery's lease; the broker may deliver it again");
                let attrs = with_error(&self.attributes, e.kind().as_str());
                self.instruments.lease_extensions.add(1, &attrs);
            }
        }
    }

    fn settle(&self, result: Result<()>, outcome: Outcome, who: &Who) -> Outcome {
        match result {
            Ok(()) => {
                let mut st = self.lock();
                if !st.settle_failures.is_empty() {
                    st.settle_failures.remove(&who.fingerprint());
                }
                outcome
            }
            Err(e) => {
                let attrs = with_error(&self.attributes, e.kind().as_str());
                self.instruments.settle_failures.add(1, &attrs);
                let failures = {
                    let mut st = self.lock();
                    if st.settle_failures.len() >= REMEMBERED_FAILURES {
                        st.settle_failures.clear();
                    }
                    let n = st.settle_failures.entry(who.fingerprint()).or_insert(0);
                    *n += 1;
                    *n
                };
                if failures < SETTLE_FAILURE_LIMIT {
                    tracing::warn!(error = %e, failures, "settling the delivery failed; the broker will redeliver it");
                    return Outcome::SettleFailed;
                }
                tracing::error!(
                    error = %e,
                    failures,
                    message_id = who.id.as_deref().unwrap_or("-"),
                    "settling this message failed {failures} times; stopping the handler run so \
                     the handler does not run on it forever (fix the cause and restart)"
                );
                self.instruments.settle_given_up.add(1, &attrs);
                let stop = Error::new(
                    e.kind(),
                    format!(
                        "settling one message failed {failures} times in a row (last: {e}); the \
                         handler run stopped so it does not run the handler on that message forever"
                    ),
                )
                .retryable(false);
                let mut st = self.lock();
                st.settle_failures.remove(&who.fingerprint());
                st.report.settle_given_up += 1;
                st.stop.get_or_insert(stop);
                drop(st);
                self.gave_up.notify_one();
                Outcome::SettleFailed
            }
        }
    }
}

/// Extends the lease of deliveries waiting for a free handler slot (they are not running, so
/// nothing else does it). Failures are logged: the broker may deliver such a message again.
pub(crate) async fn extend_waiting<'a>(
    life: &Lifecycle,
    waiting: impl Iterator<Item = &'a mut Delivery>,
) {
    let Some(lease) = life.lease else {
        return;
    };
    for delivery in waiting {
        life.extended(&delivery.extend(lease).await);
    }
}

/// Every third of the lease: how often leases are extended.
pub(crate) fn extend_period(lease: Duration) -> Duration {
    (lease / 3).max(Duration::from_millis(50))
}

/// Hands back a delivery that was received but not started (shutdown).
pub(crate) async fn release(life: &Lifecycle, delivery: Delivery) -> Outcome {
    let who = Who::of(delivery.message());
    life.settle(delivery.nack(None).await, Outcome::Released, &who)
}

/// Runs one delivery through the layers and settles it. `cancel` fires when the drain
/// timed out.
pub(crate) async fn deliver(
    life: Arc<Lifecycle>,
    mut delivery: Delivery,
    mut cancel: watch::Receiver<bool>,
) -> Outcome {
    let context = Context::new(
        delivery.message().headers.clone(),
        life.destination.clone(),
        life.group.clone(),
        delivery.attempt(),
    );
    let mut incoming = Incoming::new(delivery.message().clone(), context);
    let who = Who::of(delivery.message());
    let after_ack = life.after_ack.then(AfterAck::default);
    if let Some(hooks) = &after_ack {
        incoming.extensions_mut().insert(hooks.clone());
    }
    let running = life.running();
    let run = super::CatchPanic::layers(life.service.run(incoming));
    let work = async {
        tokio::select! {
            biased;
            r = run => Step::Done(r),
            _ = cancel.wait_for(|c| *c) => Step::Cancelled,
        }
    };
    let step = keep_lease(&life, &mut delivery, work).await;
    drop(running);
    match step {
        Step::Cancelled => life.settle(delivery.nack(None).await, Outcome::Cancelled, &who),
        Step::Done(Ok(d)) => {
            let outcome = settle_by(&life, delivery, d, &who).await;
            if let Some(hooks) = after_ack {
                if matches!(
                    outcome,
                    Outcome::Acked | Outcome::Duplicate | Outcome::Dropped
                ) {
                    hooks.run().await;
                }
            }
            outcome
        }
        Step::Done(Err(e)) => {
            // The `retry` layer was removed, or a layer outside it panicked: never lose the
            // message.
            tracing::error!(error = %e, "no retry layer decided for this failure; delivering again");
            life.settle(delivery.nack(None).await, Outcome::Retried, &who)
        }
    }
}

enum Step {
    Cancelled,
    Done(Result<Disposition>),
}

/// Runs `work`, extending `delivery`'s lease every third of `lease` until it completes.
async fn keep_lease<F: Future>(life: &Lifecycle, delivery: &mut Delivery, work: F) -> F::Output {
    let Some(lease) = life.lease else {
        return work.await;
    };
    tokio::pin!(work);
    // Most work finishes in its first poll: no timer, no clock read for it. The rest keeps
    // the lease in a boxed loop, so the common path's future stays small.
    if let Some(out) = crate::layers::poll_once(work.as_mut()).await {
        return out;
    }
    Box::pin(extend_until_done(life, delivery, lease, work)).await
}

async fn extend_until_done<F: Future>(
    life: &Lifecycle,
    delivery: &mut Delivery,
    lease: Duration,
    mut work: std::pin::Pin<&mut F>,
) -> F::Output {
    let period = extend_period(lease);
    loop {
        tokio::select! {
            biased;
            out = &mut work => return out,
            _ = tokio::time::sleep(period) => {}
        }
        let extend = delivery.extend(lease);
        tokio::pin!(extend);
        // Keep polling the work while the broker answers.
        let answer = tokio::select! {
            biased;
            out = &mut work => return out,
            answer = &mut extend => answer,
        };
        life.extended(&answer);
    }
}

/// Settles as the layers decided, within what the broker can do.
async fn settle_by(
    life: &Lifecycle,
    delivery: Delivery,
    disposition: Disposition,
    who: &Who,
) -> Outcome {
    let caps = delivery.capabilities();
    match disposition {
        Disposition::Ack => life.settle(delivery.ack().await, Outcome::Acked, who),
        Disposition::Duplicate => life.settle(delivery.ack().await, Outcome::Duplicate, who),
        Disposition::Drop => life.settle(delivery.ack().await, Outcome::Dropped, who),
        Disposition::Retry { delay } => {
            let delay = delay.filter(|d| !d.is_zero()).and_then(|d| {
                if !caps.delayed_redelivery.is_available() {
                    return None;
                }
                Some(caps.max_delay.map_or(d, |max| d.min(max)))
            });
            life.settle(delivery.nack(delay).await, Outcome::Retried, who)
        }
        Disposition::RetryLater => life.settle(delivery.nack(None).await, Outcome::Retried, who),
        Disposition::DeadLetter(reason) => {
            if !caps.dead_letter.is_available() {
                tracing::error!(reason = %reason.reason, "cannot dead-letter on this broker; message goes back");
                return life.settle(delivery.nack(None).await, Outcome::Retried, who);
            }
            life.settle(
                delivery.dead_letter(reason).await,
                Outcome::DeadLettered,
                who,
            )
        }
        // Dispositions added later default to "deliver again": nothing is lost.
        #[allow(unreachable_patterns)]
        _ => life.settle(delivery.nack(None).await, Outcome::Retried, who),
    }
}
