//! The connected backend: one idempotent producer shared by every producer handle and by the
//! retry and dead-letter paths of consumers, an admin client for topic creation, and the
//! consumers made from it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use brokerkit_core::{
    Backend, Capabilities, ConsumerBackend, ConsumerOptions, Error, ErrorKind, Message,
    ProducerBackend, Result, Support,
};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use crate::config::{KafkaConfig, MAX_HEADER_BYTES};
use crate::consumer::{self, ConsumerShared};
use crate::error::{error, from_kafka, NAME};
use crate::headers;
use crate::producer::KafkaProducer;

/// Record bytes beyond payload, key and headers (record batch header and record framing).
const RECORD_OVERHEAD: usize = 128;

/// What the backend's parts share.
pub struct Shared {
    pub config: KafkaConfig,
    pub capabilities: Arc<Capabilities>,
    pub producer: FutureProducer,
    admin: Mutex<Option<Arc<AdminClient<DefaultClientContext>>>>,
    topics: Mutex<HashMap<String, i32>>,
    closed: AtomicBool,
    consumers: Mutex<Vec<Weak<ConsumerShared>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Client settings common to producer, admin client and consumers.
pub fn base_client_config(c: &KafkaConfig) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &c.bootstrap)
        .set("client.id", &c.client_id)
        .set("allow.auto.create.topics", "false")
        .set("message.max.bytes", c.message_max_bytes.to_string())
        .set(
            "socket.connection.setup.timeout.ms",
            c.connect_timeout.as_millis().to_string(),
        );
    cc
}

/// Producer settings: idempotent, `acks=all`, batching from the URL, Java-compatible key
/// partitioning (murmur2).
pub fn producer_config(c: &KafkaConfig) -> ClientConfig {
    let mut cc = base_client_config(c);
    cc.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", c.linger.as_millis().to_string())
        .set("batch.size", c.batch_size.to_string())
        .set("batch.num.messages", c.batch_num_messages.to_string())
        .set(
            "delivery.timeout.ms",
            c.send_timeout.as_millis().to_string(),
        )
        .set("partitioner", "murmur2_random");
    cc
}

impl Shared {
    fn capabilities(c: &KafkaConfig) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_payload_bytes = c.max_payload_bytes();
        caps.max_batch = 1000;
        caps.redelivery = true;
        caps.delayed_redelivery = Support::Emulated;
        caps.max_delay = Some(c.max_delay);
        caps.ordering_key = Support::Native;
        caps.dead_letter = Support::Emulated;
        caps.max_header_bytes = Some(MAX_HEADER_BYTES);
        caps.fan_out = true;
        caps.competing_consumers = true;
        caps.browse = Support::Native;
        caps.lag = Some(brokerkit_core::LagAccuracy::Exact);
        caps
    }

    pub fn check_open(&self, destination: &str, operation: &'static str) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(error(
                ErrorKind::Closed,
                "the kafka broker handle was closed",
                &self.config.redacted,
                operation,
            )
            .with_destination(destination));
        }
        Ok(())
    }

    pub(crate) fn known_topic(&self, topic: &str) -> Option<i32> {
        lock(&self.topics).get(topic).copied()
    }

    pub(crate) fn remember_topic(&self, topic: &str, partitions: i32) {
        lock(&self.topics).insert(topic.to_string(), partitions);
    }

    pub(crate) fn admin(&self) -> Result<Arc<AdminClient<DefaultClientContext>>> {
        let mut slot = lock(&self.admin);
        if let Some(a) = slot.as_ref() {
            return Ok(a.clone());
        }
        let admin: AdminClient<DefaultClientContext> =
            base_client_config(&self.config).create().map_err(|e| {
                from_kafka(
                    e,
                    "creating the admin client",
                    &self.config.redacted,
                    "connect",
                )
            })?;
        let admin = Arc::new(admin);
        *slot = Some(admin.clone());
        Ok(admin)
    }

    /// Refuses, before any I/O, a record that would exceed `message.max.bytes` once brokerkit's
    /// retry or dead-letter headers are added.
    pub fn check_size(&self, m: &Message, topic: &str) -> Result<()> {
        let key = m.key.as_ref().map_or(0, String::len);
        let hdrs = headers::encoded_len(&m.headers);
        let size = m.payload.len() + key + hdrs + RECORD_OVERHEAD;
        let max = self.config.max_user_record_bytes();
        if size > max {
            return Err(error(
                ErrorKind::PayloadTooLarge,
                format!(
                    "record of {size} bytes (payload {}, key {key}, headers {hdrs}) is larger \
                     than {max} bytes (message_max_bytes {} less room for retry and \
                     dead-letter headers)",
                    m.payload.len(),
                    self.config.message_max_bytes
                ),
                &self.config.redacted,
                "send",
            )
            .with_destination(topic));
        }
        Ok(())
    }

    /// Queues one record; waits (up to the send timeout) while the client's queue is full.
    pub async fn enqueue(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&str>,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<DeliveryFuture> {
        let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).payload(payload);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        let started = Instant::now();
        loop {
            match self.producer.send_result(record) {
                Ok(f) => return Ok(f),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if started.elapsed() < self.config.send_timeout =>
                {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => {
                    return Err(from_kafka(
                        e,
                        &format!("send to topic {topic:?}"),
                        &self.config.redacted,
                        "send",
                    )
                    .with_destination(topic))
                }
            }
        }
    }

    /// Waits for the delivery report of a queued record.
    pub async fn delivered(&self, f: DeliveryFuture, topic: &str) -> Result<()> {
        match f.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(from_kafka(
                e,
                &format!("send to topic {topic:?}"),
                &self.config.redacted,
                "send",
            )
            .with_destination(topic)),
            Err(_) => Err(error(
                ErrorKind::Closed,
                "the producer was closed before the delivery report",
                &self.config.redacted,
                "send",
            )
            .with_destination(topic)),
        }
    }

    /// Sends one record and waits for its delivery report.
    pub async fn send_record(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&str>,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<()> {
        let f = self
            .enqueue(topic, partition, key, payload, headers)
            .await?;
        self.delivered(f, topic).await
    }
}

/// A connection to a Kafka-protocol broker.
pub struct KafkaBackend {
    shared: Arc<Shared>,
}

impl KafkaBackend {
    /// Connects: creates the producer and checks that the broker answers a metadata request
    /// within `connect_timeout_ms`.
    pub async fn connect(config: KafkaConfig) -> Result<Self> {
        let producer: FutureProducer = producer_config(&config)
            .create()
            .map_err(|e| from_kafka(e, "creating the producer", &config.redacted, "connect"))?;
        let probe = producer.clone();
        let timeout = config.connect_timeout;
        let md = tokio::task::spawn_blocking(move || probe.client().fetch_metadata(None, timeout))
            .await
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("connect task failed: {e}")))?;
        if let Err(e) = md {
            let cause = from_kafka(e, "metadata request", &config.redacted, "connect");
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "cannot reach the Kafka broker at {} within {:?}: {}",
                    config.bootstrap,
                    timeout,
                    cause.message()
                ),
            )
            .with_broker(NAME)
            .with_operation("connect")
            .with_address(config.redacted.clone())
            .with_boxed_source(Box::new(cause)));
        }
        Ok(KafkaBackend {
            shared: Arc::new(Shared {
                capabilities: Arc::new(Shared::capabilities(&config)),
                config,
                producer,
                admin: Mutex::new(None),
                topics: Mutex::new(HashMap::new()),
                closed: AtomicBool::new(false),
                consumers: Mutex::new(Vec::new()),
            }),
        })
    }
}

#[async_trait]
impl Backend for KafkaBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> &Capabilities {
        &self.shared.capabilities
    }

    async fn browse(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<brokerkit_core::BrowsedMessage>> {
        crate::browse::browse(self.shared.clone(), destination, limit).await
    }

    async fn producer(&self, destination: &str) -> Result<Box<dyn ProducerBackend>> {
        self.shared.check_open(destination, "producer")?;
        let partitions = self.shared.ensure_topic(destination).await?;
        Ok(Box::new(KafkaProducer::new(
            self.shared.clone(),
            destination,
            partitions,
        )))
    }

    async fn consumer(
        &self,
        destination: &str,
        options: &ConsumerOptions,
    ) -> Result<Box<dyn ConsumerBackend>> {
        self.shared.check_open(destination, "consumer")?;
        let (backend, shared) = consumer::start(self.shared.clone(), destination, options).await?;
        let mut list = lock(&self.shared.consumers);
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&shared));
        drop(list);
        if self.shared.closed.load(Ordering::Acquire) {
            shared.close();
        }
        Ok(backend)
    }

    async fn lag(&self, destination: &str, group: Option<&str>) -> Result<brokerkit_core::Lag> {
        crate::lag::lag(&self.shared, destination, group).await
    }

    async fn close(&self) -> Result<()> {
        self.shared.closed.store(true, Ordering::Release);
        let consumers: Vec<_> = lock(&self.shared.consumers).drain(..).collect();
        for c in consumers.iter().filter_map(Weak::upgrade) {
            c.close();
        }
        let producer = self.shared.producer.clone();
        let timeout = self.shared.config.send_timeout;
        let _ = tokio::task::spawn_blocking(move || producer.flush(timeout)).await;
        Ok(())
    }
}
