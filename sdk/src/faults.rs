//! A fault-injecting wrapper around any adapter, for tests: yours and the conformance suite's.
//!
//! [`FaultyBackend`] forwards every call to the backend it wraps, and on the way drops,
//! duplicates, delays or reorders messages, or fails the Nth call, as its [`FaultPlan`] says.
//! [`FaultConnector`] does the same for every backend a connector makes, so a [`Registry`]
//! can hand out faulty brokers by URL.
//!
//! ```
//! # async fn demo() -> brokerkit::Result<()> {
//! use brokerkit::faults::{FaultPlan, FaultyBackend};
//! use brokerkit::{Broker, ErrorKind, Message};
//!
//! let memory = std::sync::Arc::new(brokerkit::memory::MemoryBroker::new(Default::default()));
//! let plan = FaultPlan::default().fail_call(2, ErrorKind::Unavailable);
//! let broker = Broker::from_backend(FaultyBackend::wrap(memory, plan));
//! let orders = broker.producer("orders").build().await?;
//! orders.send(Message::new("first")).await?; // call 1
//! let second = orders.send(Message::new("second")).await; // call 2 fails, nothing sent
//! assert_eq!(second.unwrap_err().kind(), ErrorKind::Unavailable);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! [`Registry`]: crate::Registry

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use brokerkit_core::{
    Backend, BrokerUrl, Capabilities, Connector, ConsumerBackend, ConsumerOptions, Delivery, Error,
    ErrorKind, Message, ProducerBackend, Result,
};

/// Which faults to inject. Counts are per wrapped backend and start at 1; `every(n)` means
/// the n-th, 2n-th, … occurrence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultPlan {
    /// Wait this long before every send, batch and receive.
    pub delay: Option<Duration>,
    /// Every n-th message sent is dropped: `send` says `Ok`, nothing reaches the broker.
    pub drop_every: Option<u64>,
    /// Every n-th message sent is sent twice.
    pub duplicate_every: Option<u64>,
    /// Every n-th message sent is held back and sent right after the next message of the
    /// same producer (the two swap places).
    pub reorder_every: Option<u64>,
    /// Every n-th delivery received is dropped unsettled, so the broker delivers it again.
    pub drop_delivery_every: Option<u64>,
    /// The n-th data call (send, send_batch, next; counted together) fails with this kind
    /// before reaching the broker.
    pub fail_call: Option<(u64, ErrorKind)>,
    /// Declare this smaller batch limit, so producers split batches into more requests.
    pub max_batch: Option<usize>,
    /// The first n dead-letter settles fail with this kind without reaching the broker, as a
    /// dead-letter publish that failed: the delivery is dropped unsettled, so it comes again.
    pub fail_dead_letters: Option<(u64, ErrorKind)>,
}

impl FaultPlan {
    /// Adds a delay before every send, batch and receive.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Drops every n-th message sent (n ≥ 1).
    pub fn drop_every(mut self, n: u64) -> Self {
        self.drop_every = Some(n.max(1));
        self
    }

    /// Sends every n-th message twice (n ≥ 1).
    pub fn duplicate_every(mut self, n: u64) -> Self {
        self.duplicate_every = Some(n.max(1));
        self
    }

    /// Swaps every n-th message with the one sent after it (n ≥ 1).
    pub fn reorder_every(mut self, n: u64) -> Self {
        self.reorder_every = Some(n.max(1));
        self
    }

    /// Drops every n-th delivery unsettled (n ≥ 1): it comes back with a higher attempt.
    pub fn drop_delivery_every(mut self, n: u64) -> Self {
        self.drop_delivery_every = Some(n.max(1));
        self
    }

    /// Fails the n-th data call (n ≥ 1) with an error of `kind`.
    pub fn fail_call(mut self, n: u64, kind: ErrorKind) -> Self {
        self.fail_call = Some((n.max(1), kind));
        self
    }

    /// Fails the first `n` dead-letter settles with an error of `kind` (see
    /// [`FaultPlan::fail_dead_letters`](FaultPlan#structfield.fail_dead_letters)).
    pub fn fail_dead_letters(mut self, n: u64, kind: ErrorKind) -> Self {
        self.fail_dead_letters = Some((n, kind));
        self
    }

    /// Declares a batch limit of `n` (≥ 1) messages.
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = Some(n.max(1));
        self
    }
}

fn hits(every: Option<u64>, count: u64) -> bool {
    every.is_some_and(|n| count.is_multiple_of(n))
}

/// The counters of one wrapped backend, shared by its producers and consumers.
#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    dead_letters: AtomicU64,
}

/// Wraps a backend and injects the faults of a [`FaultPlan`].
pub struct FaultyBackend {
    inner: Arc<dyn Backend>,
    plan: Arc<FaultPlan>,
    capabilities: Capabilities,
    counters: Arc<Counters>,
}

impl FaultyBackend {
    /// `inner` with the faults of `plan`.
    pub fn wrap(inner: Arc<dyn Backend>, plan: FaultPlan) -> Arc<dyn Backend> {
        let mut capabilities = inner.capabilities().clone();
        if let Some(n) = plan.max_batch {
            capabilities.max_batch = capabilities.max_batch.min(n);
        }
        Arc::new(FaultyBackend {
            inner,
            plan: Arc::new(plan),
            capabilities,
            counters: Arc::default(),
        })
    }
}

/// What producers and consumers of one faulty backend share.
#[derive(Clone)]
struct Injector {
    plan: Arc<FaultPlan>,
    counters: Arc<Counters>,
}

impl Injector {
    /// Delays, then fails the call if it is the planned one.
    async fn call(&self, operation: &'static str) -> Result<()> {
        if let Some(d) = self.plan.delay {
            tokio::time::sleep(d).await;
        }
        let n = self.counters.calls.fetch_add(1, Ordering::AcqRel) + 1;
        match self.plan.fail_call {
            Some((at, kind)) if at == n => Err(Error::new(
                kind,
                format!("fault injected: call {n} ({operation}) fails"),
            )
            .with_operation(operation)),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Backend for FaultyBackend {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn profile(&self) -> brokerkit_core::SchemeProfile {
        self.inner.profile()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn producer(&self, destination: &str) -> Result<Box<dyn ProducerBackend>> {
        Ok(Box::new(FaultyProducer {
            inner: self.inner.producer(destination).await?,
            faults: self.injector(),
            held: Mutex::new(None),
        }))
    }

    async fn consumer(
        &self,
        destination: &str,
        options: &ConsumerOptions,
    ) -> Result<Box<dyn ConsumerBackend>> {
        Ok(Box::new(FaultyConsumer {
            inner: self.inner.consumer(destination, options).await?,
            faults: self.injector(),
        }))
    }

    async fn browse(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<brokerkit_core::BrowsedMessage>> {
        self.inner.browse(destination, limit).await
    }

    async fn lag(&self, destination: &str, group: Option<&str>) -> Result<brokerkit_core::Lag> {
        self.inner.lag(destination, group).await
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

impl FaultyBackend {
    fn injector(&self) -> Injector {
        Injector {
            plan: self.plan.clone(),
            counters: self.counters.clone(),
        }
    }
}

struct FaultyProducer {
    inner: Box<dyn ProducerBackend>,
    faults: Injector,
    /// A message held back for reordering.
    held: Mutex<Option<Message>>,
}

impl FaultyProducer {
    /// The messages to really send in place of `message`, in order.
    fn plan_send(&self, message: Message) -> Vec<Message> {
        let plan = &self.faults.plan;
        let n = self.faults.counters.sent.fetch_add(1, Ordering::AcqRel) + 1;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if hits(plan.drop_every, n) {
            return Vec::new();
        }
        if hits(plan.reorder_every, n) && held.is_none() {
            *held = Some(message);
            return Vec::new();
        }
        let mut out = vec![message.clone()];
        if hits(plan.duplicate_every, n) {
            out.push(message);
        }
        out.extend(held.take());
        out
    }
}

#[async_trait]
impl ProducerBackend for FaultyProducer {
    async fn send(&self, message: Message) -> Result<()> {
        self.faults.call("send").await?;
        for m in self.plan_send(message) {
            self.inner.send(m).await?;
        }
        Ok(())
    }

    async fn send_batch(&self, messages: Vec<Message>) -> Result<()> {
        self.faults.call("send_batch").await?;
        let out: Vec<Message> = messages
            .into_iter()
            .flat_map(|m| self.plan_send(m))
            .collect();
        if out.is_empty() {
            return Ok(());
        }
        self.inner.send_batch(out).await
    }
}

struct FaultyConsumer {
    inner: Box<dyn ConsumerBackend>,
    faults: Injector,
}

#[async_trait]
impl ConsumerBackend for FaultyConsumer {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        self.faults.call("next").await?;
        loop {
            let Some(d) = self.inner.next().await? else {
                return Ok(None);
            };
            let n = self.faults.counters.received.fetch_add(1, Ordering::AcqRel) + 1;
            if !hits(self.faults.plan.drop_delivery_every, n) {
                if self.faults.plan.fail_dead_letters.is_some() {
                    return Ok(Some(FaultySettle::wrap(d, self.faults.clone())));
                }
                return Ok(Some(d));
            }
            drop(d); // unsettled: the broker delivers it again
            tokio::task::yield_now().await;
        }
    }

    async fn close(&mut self) -> Result<()> {
        self.inner.close().await
    }
}

/// The settle half of a delivery whose dead-letter settles may fail: holds the original
/// delivery and settles through it.
struct FaultySettle {
    inner: Delivery,
    faults: Injector,
}

impl FaultySettle {
    fn wrap(d: Delivery, faults: Injector) -> Delivery {
        Delivery::new(
            d.message().clone(),
            d.attempt(),
            d.destination().into(),
            Arc::new(d.capabilities().clone()),
            Box::new(FaultySettle { inner: d, faults }),
        )
    }
}

#[async_trait]
impl brokerkit_core::Settle for FaultySettle {
    async fn settle(self: Box<Self>, how: brokerkit_core::Settlement) -> Result<()> {
        use brokerkit_core::Settlement;
        match how {
            Settlement::Ack => self.inner.ack().await,
            Settlement::Nack { delay } => self.inner.nack(delay).await,
            Settlement::DeadLetter { reason, .. } => {
                let n = self
                    .faults
                    .counters
                    .dead_letters
                    .fetch_add(1, Ordering::AcqRel)
                    + 1;
                match self.faults.plan.fail_dead_letters {
                    Some((failing, kind)) if n <= failing => {
                        drop(self.inner); // unsettled: the broker delivers it again
                        Err(Error::new(
                            kind,
                            format!("fault injected: dead-letter publish {n} fails"),
                        )
                        .with_operation("dead_letter"))
                    }
                    _ => self.inner.dead_letter(reason).await,
                }
            }
        }
    }

    async fn extend(&mut self, by: Duration) -> Result<()> {
        self.inner.extend(by).await
    }
}

/// Wraps every backend a connector makes in a [`FaultyBackend`] with one plan.
///
/// ```
/// use brokerkit::faults::{FaultConnector, FaultPlan};
/// use brokerkit::memory::MemoryConnector;
/// let registry = brokerkit::Registry::default()
///     .with(FaultConnector::new(MemoryConnector, FaultPlan::default().drop_every(10)));
/// ```
pub struct FaultConnector<C> {
    inner: C,
    plan: FaultPlan,
}

impl<C: Connector> FaultConnector<C> {
    /// `inner`'s backends, wrapped with `plan`.
    pub fn new(inner: C, plan: FaultPlan) -> Self {
        FaultConnector { inner, plan }
    }
}

#[async_trait]
impl<C: Connector> Connector for FaultConnector<C> {
    fn schemes(&self) -> &'static [&'static str] {
        self.inner.schemes()
    }

    fn profile(&self, scheme: &str) -> brokerkit_core::SchemeProfile {
        self.inner.profile(scheme)
    }

    async fn connect(&self, url: &BrokerUrl) -> Result<Arc<dyn Backend>> {
        let backend = self.inner.connect(url).await?;
        Ok(FaultyBackend::wrap(backend, self.plan.clone()))
    }
}
