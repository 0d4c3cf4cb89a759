//! Producer handle: one topic, the backend's idempotent producer.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use brokerkit_core::{BatchError, Error, Message, ProducerBackend, Result};

use crate::headers;
use crate::link::Shared;

pub struct KafkaProducer {
    shared: Arc<Shared>,
    topic: String,
    partitions: i32,
    next: AtomicU32,
}

impl KafkaProducer {
    pub fn new(shared: Arc<Shared>, topic: &str, partitions: i32) -> Self {
        KafkaProducer {
            shared,
            topic: topic.to_string(),
            partitions: partitions.max(1),
            next: AtomicU32::new(0),
        }
    }

    /// Keyed records go where the key hashes to (murmur2, as the Java client); records
    /// without a key are spread round-robin over the partitions.
    fn partition(&self, m: &Message) -> Option<i32> {
        match m.key {
            Some(_) => None,
            None => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                Some((n % self.partitions as u32) as i32)
            }
        }
    }

    async fn enqueue(&self, m: &Message) -> Result<rdkafka::producer::DeliveryFuture> {
        self.shared
            .enqueue(
                &self.topic,
                self.partition(m),
                m.key.as_deref(),
                &m.payload,
                headers::to_kafka(&m.headers, &[]),
            )
            .await
    }
}

#[async_trait]
impl ProducerBackend for KafkaProducer {
    async fn send(&self, message: Message) -> Result<()> {
        self.shared.check_open(&self.topic, "send")?;
        self.shared.check_size(&message, &self.topic)?;
        let f = self.enqueue(&message).await?;
        self.shared.delivered(f, &self.topic).await
    }

    async fn send_batch(&self, messages: Vec<Message>) -> Result<()> {
        self.shared.check_open(&self.topic, "send_batch")?;
        // Refuse oversized entries before sending anything.
        for (i, m) in messages.iter().enumerate() {
            self.shared.check_size(m, &self.topic).map_err(|e| {
                Error::new(
                    e.kind(),
                    format!("batch entry {i}: {}; nothing was sent", e.message()),
                )
                .with_broker(crate::error::NAME)
                .with_destination(&self.topic)
                .with_operation("send_batch")
            })?;
        }
        let mut pending = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            pending.push((i, self.enqueue(m).await));
        }
        let mut report = BatchError::new(messages.len());
        for (i, p) in pending {
            let result = match p {
                Ok(f) => self.shared.delivered(f, &self.topic).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                report.fail(i, e);
            }
        }
        report.into_result()
    }
}
