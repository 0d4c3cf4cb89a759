//! The client and the shared state: one idempotent producer shared by every producer handle
//! and by the retry and dead-letter paths of consumers, an admin client for topic creation,
//! the known topics and the closed flag. Imports nothing from the crate but `config`, `error`
//! and `headers`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brokerkit_core::{Capabilities, ClosedFlag, ErrorKind, Message, Result, Support};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::config::{KafkaConfig, MAX_HEADER_BYTES};
use crate::error::{error, from_kafka};
use crate::headers;

/// Record bytes beyond payload, key and headers (record batch header and record framing).
const RECORD_OVERHEAD: usize = 128;

/// What the backend's parts share.
pub struct Shared {
    pub config: KafkaConfig,
    pub capabilities: Arc<Capabilities>,
    pub producer: FutureProducer,
    admin: Mutex<Option<Arc<AdminClient<DefaultClientContext>>>>,
    topics: Mutex<HashMap<String, i32>>,
    pub closed: ClosedFlag,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
    /// The shared state of a connected producer.
    pub fn new(config: KafkaConfig, producer: FutureProducer) -> Arc<Self> {
        Arc::new(Shared {
            capabilities: Arc::new(Shared::capabilities(&config)),
            config,
            producer,
            admin: Mutex::new(None),
            topics: Mutex::new(HashMap::new()),
            closed: ClosedFlag::new(),
        })
    }

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
        self.closed
            .check(operation)
            .map_err(|e| e.with_destination(destination))?;
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
