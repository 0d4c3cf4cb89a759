//! `memory://`: an in-process broker with the semantics of a real one.
//!
//! - Destinations act as topics with durable consumer groups: every group receives each
//!   message sent after it first subscribed; consumers of one group compete. Messages sent
//!   before any group subscribed wait for the first group (so a destination also works as a
//!   plain queue). A consumer without a group joins the group `default`.
//! - At-least-once: a delivery nacked, dropped unsettled, or held past the visibility timeout
//!   is delivered again with its attempt count increased.
//! - `nack` with a delay; per-key ordering (one message per key in flight, like SQS FIFO
//!   message groups); dead-lettering to `<destination>.dlq` with the envelope.
//! - Each group holds at most `capacity` messages; senders wait for room (backpressure).
//!
//! URL: `memory://[name][?capacity=N&visibility_timeout_ms=N&max_payload_bytes=N]`.
//! Without a name every `connect` makes a private broker; with a name, connections in one
//! process share the broker of that name (its settings come from the first connection).

mod consumer;
mod destination;
mod group;
mod lag;
mod queue;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use brokerkit_core::{
    Backend, BrokerUrl, Capabilities, ConsumerBackend, ConsumerOptions, Error, ErrorKind, Message,
    ProducerBackend, Result, Support,
};
use tokio::sync::Notify;

use destination::{Destination, DEFAULT_GROUP};

const NAME: &str = "memory";
const KEYS: &[&str] = &["capacity", "visibility_timeout_ms", "max_payload_bytes"];

/// Settings of a memory broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Messages each consumer group holds before senders wait (default 10,000).
    pub capacity: usize,
    /// How long a delivery may stay unsettled before it is delivered again (default 30 s).
    pub visibility_timeout: Duration,
    /// Largest payload (default 1 MiB).
    pub max_payload_bytes: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            capacity: 10_000,
            visibility_timeout: Duration::from_secs(30),
            max_payload_bytes: 1024 * 1024,
        }
    }
}

impl MemoryConfig {
    /// Reads the settings from a `memory://` URL.
    pub fn from_url(url: &BrokerUrl) -> Result<Self> {
        let p = url.params(KEYS)?;
        let d = MemoryConfig::default();
        let positive = "a positive integer";
        let cfg = MemoryConfig {
            capacity: p.parse("capacity", positive)?.unwrap_or(d.capacity),
            visibility_timeout: p
                .millis("visibility_timeout_ms")?
                .unwrap_or(d.visibility_timeout),
            max_payload_bytes: p
                .parse("max_payload_bytes", positive)?
                .unwrap_or(d.max_payload_bytes),
        };
        if cfg.capacity == 0 || cfg.max_payload_bytes == 0 || cfg.visibility_timeout.is_zero() {
            return Err(Error::config(format!(
                "capacity, visibility_timeout_ms and max_payload_bytes must be positive in {url}"
            )));
        }
        Ok(cfg)
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_payload_bytes = self.max_payload_bytes;
        caps.max_batch = 1000;
        caps.redelivery = true;
        caps.delayed_redelivery = Support::Native;
        caps.ordering_key = Support::Native;
        caps.dead_letter = Support::Native;
        caps.fan_out = true;
        caps.competing_consumers = true;
        caps.lease_extension = Support::Native;
        caps.lease = Some(self.visibility_timeout);
        caps.browse = Support::Native;
        caps.lag = Some(brokerkit_core::LagAccuracy::Exact);
        caps
    }
}

pub(crate) struct Inner {
    config: MemoryConfig,
    capabilities: Arc<Capabilities>,
    destinations: Mutex<HashMap<String, Arc<Destination>>>,
    closed: AtomicBool,
    shutdown: Notify,
}

impl Inner {
    fn destination(&self, name: &str) -> Arc<Destination> {
        let mut map = self.destinations.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(Destination::new(
                    name,
                    self.config.capacity,
                    self.config.visibility_timeout,
                ))
            })
            .clone()
    }

    fn check_open(&self, destination: &str, operation: &'static str) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(
                Error::new(ErrorKind::Closed, "the memory broker was closed")
                    .with_broker(NAME)
                    .with_destination(destination)
                    .with_operation(operation),
            );
        }
        Ok(())
    }
}

/// The in-process broker.
#[derive(Clone)]
pub struct MemoryBroker {
    inner: Arc<Inner>,
}

impl MemoryBroker {
    /// A private broker with these settings.
    pub fn new(config: MemoryConfig) -> Self {
        MemoryBroker {
            inner: Arc::new(Inner {
                capabilities: Arc::new(config.capabilities()),
                config,
                destinations: Mutex::new(HashMap::new()),
                closed: AtomicBool::new(false),
                shutdown: Notify::new(),
            }),
        }
    }

    /// The broker for a `memory://` URL: private, or shared by name within the process.
    pub fn from_url(url: &BrokerUrl) -> Result<Self> {
        let config = MemoryConfig::from_url(url)?;
        let name = url.expose().host_str().unwrap_or_default().to_string();
        if name.is_empty() {
            return Ok(MemoryBroker::new(config));
        }
        static SHARED: OnceLock<Mutex<HashMap<String, Weak<Inner>>>> = OnceLock::new();
        let mut shared = SHARED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        shared.retain(|_, w| w.strong_count() > 0);
        if let Some(inner) = shared.get(&name).and_then(Weak::upgrade) {
            return Ok(MemoryBroker { inner });
        }
        let broker = MemoryBroker::new(config);
        shared.insert(name, Arc::downgrade(&broker.inner));
        Ok(broker)
    }
}

struct MemoryProducer {
    destination: Arc<Destination>,
    inner: Arc<Inner>,
}

#[async_trait]
impl ProducerBackend for MemoryProducer {
    async fn send(&self, message: Message) -> Result<()> {
        self.inner.check_open(&self.destination.name, "send")?;
        self.destination.send(message).await;
        Ok(())
    }

    async fn send_batch(&self, messages: Vec<Message>) -> Result<()> {
        self.inner
            .check_open(&self.destination.name, "send_batch")?;
        self.destination.send_batch(messages).await;
        Ok(())
    }
}

#[async_trait]
impl Backend for MemoryBroker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.capabilities
    }

    async fn producer(&self, destination: &str) -> Result<Box<dyn ProducerBackend>> {
        self.inner.check_open(destination, "producer")?;
        Ok(Box::new(MemoryProducer {
            destination: self.inner.destination(destination),
            inner: self.inner.clone(),
        }))
    }

    async fn consumer(
        &self,
        destination: &str,
        options: &ConsumerOptions,
    ) -> Result<Box<dyn ConsumerBackend>> {
        self.inner.check_open(destination, "consumer")?;
        let dest = self.inner.destination(destination);
        let group_name = options.group.as_deref().unwrap_or(DEFAULT_GROUP);
        let group = dest.subscribe(group_name);
        Ok(Box::new(consumer::MemoryConsumer::new(
            self.inner.clone(),
            dest.name.clone(),
            group_name.into(),
            group,
            options.prefetch,
        )))
    }

    async fn browse(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<brokerkit_core::BrowsedMessage>> {
        self.inner.check_open(destination, "browse")?;
        let group = self.inner.destination(destination).browsed_group();
        let held = group.map(|g| g.peek(limit)).unwrap_or_default();
        Ok(held
            .into_iter()
            .enumerate()
            .map(|(i, m)| brokerkit_core::BrowsedMessage::new((i + 1).to_string(), m))
            .collect())
    }

    async fn lag(&self, destination: &str, group: Option<&str>) -> Result<brokerkit_core::Lag> {
        self.inner.check_open(destination, "lag")?;
        Ok(lag::lag(&self.inner, destination, group))
    }

    async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.shutdown.notify_waiters();
        let dests: Vec<_> = self
            .inner
            .destinations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for d in dests {
            d.wake_all();
        }
        Ok(())
    }
}

/// Connects `memory://` URLs.
pub struct MemoryConnector;

#[async_trait]
impl brokerkit_core::Connector for MemoryConnector {
    fn schemes(&self) -> &'static [&'static str] {
        &["memory"]
    }

    async fn connect(&self, url: &BrokerUrl) -> Result<Arc<dyn Backend>> {
        Ok(Arc::new(MemoryBroker::from_url(url)?))
    }
}
