//! Testing handlers without a broker (feature `test-kit`): build a handler's [`Context`](crate::Context) with
//! [`Context::builder`](crate::Context::builder) and call the handler directly, or run it on `memory://` in a
//! [`TestHarness`] and assert what was published, acked, retried and dead-lettered. A
//! [`FaultPlan`] injects broker faults (see [`crate::faults`]). The guide is
//! `docs/guides/testing.md`.
//!
//! ```
//! # async fn demo() -> brokerkit::Result<()> {
//! use brokerkit::testing::TestHarness;
//! use brokerkit::{Context, Event, HandlerError, RetryPolicy};
//!
//! #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! struct StockReserved { sku: String, quantity: u32 }
//! impl Event for StockReserved { const NAME: &'static str = "stock.reserved"; const VERSION: u32 = 1; }
//!
//! let harness = TestHarness::new();
//! let handler = harness.broker().consumer("stock").group("audit")
//!     .retry(RetryPolicy::immediate(3))
//!     .handle(|ctx: Context, e: StockReserved| async move {
//!         if e.quantity == 0 {
//!             return Err(HandlerError::permanent(brokerkit::Error::config("quantity 0")));
//!         }
//!         Ok(())
//!     });
//! let running = harness.start(handler).await?;
//! let id = harness.send_event("stock", &StockReserved { sku: "A-1".into(), quantity: 2 }).await?;
//! harness.send_event("stock", &StockReserved { sku: "B-2".into(), quantity: 0 }).await?;
//! let report = running.wait_until(|r| r.acked == 1 && r.dead_lettered == 1).await?;
//! assert_eq!(report.retried, 0);
//! let dead = harness.dead_letters("stock", "audit").await?;
//! assert_eq!(dead.len(), 1);
//! let published: Vec<StockReserved> = harness.published_events("stock")?;
//! assert_eq!(published.len(), 2);
//! assert_eq!(harness.published("stock")[0].headers.message_id(), Some(id.as_str()));
//! running.stop().await?;
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```

mod context;
mod recording;

use std::sync::Arc;
use std::time::Duration;

use brokerkit_core::{dead_letter_destination, Error, ErrorKind, Message, Result};
use tokio::sync::Notify;

pub use context::ContextBuilder;

use crate::broker::Broker;
use crate::browse::DeadLetterView;
use crate::event::Event;
use crate::faults::{FaultPlan, FaultyBackend};
use crate::handler::{Decoder, Handler, RunReport, RunningHandler, Typed};
use recording::{lock, Recording, Sent};

/// How long [`RunningTest::wait_until`] waits by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// An in-memory broker that records what is published, for running handlers in tests.
pub struct TestHarness {
    broker: Broker,
    sent: Sent,
}

impl Default for TestHarness {
    fn default() -> Self {
        TestHarness::new()
    }
}

impl TestHarness {
    /// A fresh `memory://` broker.
    pub fn new() -> Self {
        TestHarness::wrapping(Arc::new(crate::memory::MemoryBroker::new(
            Default::default(),
        )))
    }

    /// A fresh `memory://` broker behind a [`FaultyBackend`] with `plan` (messages it drops
    /// on send are still recorded as published: the producer believed it sent them).
    pub fn with_faults(plan: FaultPlan) -> Self {
        let memory = Arc::new(crate::memory::MemoryBroker::new(Default::default()));
        TestHarness::wrapping(FaultyBackend::wrap(memory, plan))
    }

    /// Records the sends of any backend (e.g. a real broker's, for an integration test).
    pub fn wrapping(backend: Arc<dyn brokerkit_core::Backend>) -> Self {
        let sent = Sent::default();
        let recording = Recording {
            inner: backend,
            sent: sent.clone(),
        };
        TestHarness {
            broker: Broker::from_backend(Arc::new(recording)),
            sent,
        }
    }

    /// The broker: build producers, consumers and handlers on it as in production.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Sends `event` to `destination` through a default producer; returns its message id.
    pub async fn send_event<E: Event>(&self, destination: &str, event: &E) -> Result<String> {
        self.broker
            .producer(destination)
            .build()
            .await?
            .send_event(event)
            .await
    }

    /// Sends a raw message to `destination` through a default producer.
    pub async fn send(&self, destination: &str, message: Message) -> Result<()> {
        self.broker
            .producer(destination)
            .build()
            .await?
            .send(message)
            .await
    }

    /// Every message sent to `destination` so far, in order, with the headers the send layers
    /// stamped (message id, correlation and causation ids, trace context).
    pub fn published(&self, destination: &str) -> Vec<Message> {
        lock(&self.sent)
            .get(destination)
            .cloned()
            .unwrap_or_default()
    }

    /// The messages sent to `destination` that are events `E`, decoded. A message of another
    /// event type is skipped; one of type `E` that does not decode is an error.
    pub fn published_events<E: Event>(&self, destination: &str) -> Result<Vec<E>> {
        let decoder = Typed::<E>::default();
        self.published(destination)
            .iter()
            .filter(|m| m.headers.event_type() == Some(E::NAME))
            .map(|m| decoder.decode(m).map_err(|r| r.error))
            .collect()
    }

    /// The dead letters `group` left on `destination`'s dead-letter destination, with their
    /// envelopes (reason, error kind, attempts, schema violations).
    pub async fn dead_letters(
        &self,
        destination: &str,
        group: &str,
    ) -> Result<Vec<DeadLetterView>> {
        let dlq = dead_letter_destination(destination);
        let all = self
            .broker
            .browse_dead_letters(&dlq, crate::browse::MAX_BROWSE)
            .await?;
        Ok(all
            .into_iter()
            .filter(|d| {
                d.envelope
                    .as_ref()
                    .and_then(|e| e.original_group.as_deref())
                    == Some(group)
            })
            .collect())
    }

    /// Starts `handler` (built on [`TestHarness::broker`]); messages sent after this returns
    /// reach it.
    pub async fn start(&self, handler: Handler) -> Result<RunningTest> {
        let stop = Arc::new(Notify::new());
        let signal = stop.clone();
        let running = handler
            .start(async move { signal.notified().await })
            .await?;
        Ok(RunningTest { running, stop })
    }
}

/// A handler running in a [`TestHarness`].
pub struct RunningTest {
    running: RunningHandler,
    stop: Arc<Notify>,
}

impl RunningTest {
    /// The counts so far.
    pub fn report(&self) -> RunReport {
        self.running.health().report
    }

    /// Waits (up to [`DEFAULT_WAIT`]) until `done` holds for the counts; returns them.
    pub async fn wait_until(&self, done: impl Fn(&RunReport) -> bool) -> Result<RunReport> {
        self.wait_until_for(DEFAULT_WAIT, done).await
    }

    /// Waits up to `timeout` until `done` holds for the counts. Errors: a `Timeout` error that
    /// shows the counts reached.
    pub async fn wait_until_for(
        &self,
        timeout: Duration,
        done: impl Fn(&RunReport) -> bool,
    ) -> Result<RunReport> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let report = self.report();
            if done(&report) {
                return Ok(report);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("the handler did not reach the expected counts within {timeout:?}; it reached {report:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until `n` deliveries reached a final outcome (acked, duplicate, dead-lettered or
    /// dropped).
    pub async fn settled(&self, n: u64) -> Result<RunReport> {
        self.wait_until(|r| r.acked + r.duplicates + r.dead_lettered + r.dropped >= n)
            .await
    }

    /// Stops the handler (draining) and returns its final counts.
    pub async fn stop(self) -> Result<RunReport> {
        self.stop.notify_one();
        self.running.join().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, HandlerError};

    #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema, Debug, PartialEq)]
    struct Ping {
        n: u32,
    }
    impl Event for Ping {
        const NAME: &'static str = "test.ping";
        const VERSION: u32 = 1;
    }

    #[tokio::test]
    async fn records_acks_retries_dead_letters_and_causation() {
        let harness = TestHarness::new();
        let producer = harness.broker().producer("pongs").build().await.unwrap();
        let handler = harness
            .broker()
            .consumer("pings")
            .group("g")
            .retry(crate::RetryPolicy::immediate(2))
            .handle(move |ctx: Context, p: Ping| {
                let producer = producer.clone();
                async move {
                    match p.n {
                        0 => Err(HandlerError::permanent(Error::config("zero"))),
                        1 if ctx.attempt() == 1 => Err(HandlerError::msg("flaky")),
                        _ => {
                            producer.send_event(&Ping { n: p.n * 10 }).await?;
                            Ok(())
                        }
                    }
                }
            });
        let running = harness.start(handler).await.unwrap();
        let id = harness.send_event("pings", &Ping { n: 1 }).await.unwrap();
        harness.send_event("pings", &Ping { n: 0 }).await.unwrap();
        let report = running.settled(2).await.unwrap();
        assert_eq!(
            (report.acked, report.retried, report.dead_lettered),
            (1, 1, 1)
        );
        let pongs = harness.published("pongs");
        assert_eq!(pongs.len(), 1);
        assert_eq!(pongs[0].headers.causation_id(), Some(id.as_str()));
        assert_eq!(
            harness.published_events::<Ping>("pongs").unwrap(),
            vec![Ping { n: 10 }]
        );
        let dead = harness.dead_letters("pings", "g").await.unwrap();
        assert_eq!(dead.len(), 1);
        let envelope = dead[0].envelope.clone().unwrap();
        assert_eq!(envelope.reason.error_kind, Some(ErrorKind::Rejected));
        assert!(
            envelope.reason.reason.contains("zero"),
            "{}",
            envelope.reason.reason
        );
        let final_report = running.stop().await.unwrap();
        assert_eq!(final_report.dead_lettered, 1);
    }

    #[tokio::test]
    async fn waiting_times_out_with_the_counts() {
        let harness = TestHarness::new();
        let handler = harness
            .broker()
            .consumer("pings")
            .handle(|_ctx: Context, _p: Ping| async { Ok(()) });
        let running = harness.start(handler).await.unwrap();
        let e = running
            .wait_until_for(Duration::from_millis(50), |r| r.acked == 1)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(e.message().contains("acked: 0"), "{e}");
        running.stop().await.unwrap();
    }

    #[tokio::test]
    async fn faults_are_injected_under_the_recording() {
        let plan = FaultPlan::default().fail_call(1, ErrorKind::Unavailable);
        let harness = TestHarness::with_faults(plan);
        let e = harness
            .send_event("pings", &Ping { n: 1 })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(harness.published("pings").is_empty());
        harness.send_event("pings", &Ping { n: 2 }).await.unwrap();
        assert_eq!(harness.published("pings").len(), 1);
    }

    #[tokio::test]
    async fn context_builder_defaults_and_scope() {
        let ctx = Context::builder("orders").build().unwrap();
        assert_eq!(ctx.attempt(), 1);
        assert!(ctx.message_id().is_some());
        assert_eq!(ctx.correlation_id(), ctx.message_id());
        assert_eq!(ctx.group(), None);
        let bad = Context::builder("orders").header("bad name", "x").build();
        assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidHeader);
        // Sends made in the context's scope carry its ids.
        let harness = TestHarness::new();
        let producer = harness.broker().producer("out").build().await.unwrap();
        let ctx = Context::builder("orders")
            .message_id("m-1")
            .correlation_id("c-1")
            .build()
            .unwrap();
        ctx.scope(producer.send(Message::new("x"))).await.unwrap();
        let out = &harness.published("out")[0];
        assert_eq!(out.headers.causation_id(), Some("m-1"));
        assert_eq!(out.headers.correlation_id(), Some("c-1"));
    }
}
