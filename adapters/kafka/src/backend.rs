//! The broker handle: connects, makes producers and consumers, and closes them.

use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use brokerkit_core::{
    Backend, Capabilities, ConsumerBackend, ConsumerOptions, Error, ErrorKind, ProducerBackend,
    Result,
};
use rdkafka::producer::{FutureProducer, Producer};

use crate::config::KafkaConfig;
use crate::consumer;
use crate::error::{from_kafka, NAME};
use crate::link::{lock, producer_config, Shared};
use crate::producer::KafkaProducer;
use crate::settle::ConsumerShared;

/// A connection to a Kafka-protocol broker.
pub struct KafkaBackend {
    shared: Arc<Shared>,
    /// The consumers made, stopped on close.
    consumers: Mutex<Vec<Weak<ConsumerShared>>>,
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
            shared: Shared::new(config, producer),
            consumers: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl Backend for KafkaBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn profile(&self) -> brokerkit_core::SchemeProfile {
        crate::profile::profile("kafka")
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
        let mut list = lock(&self.consumers);
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&shared));
        drop(list);
        if self.shared.closed.is_closed() {
            shared.close();
        }
        Ok(backend)
    }

    async fn lag(&self, destination: &str, group: Option<&str>) -> Result<brokerkit_core::Lag> {
        crate::lag::lag(&self.shared, destination, group).await
    }

    /// Stops every consumer and waits for their driver threads: each commits what was settled
    /// (waiting up to `drain_timeout_ms` for deliveries still in hand) and leaves its group,
    /// so a process may exit when this returns. Then flushes the producer.
    async fn close(&self) -> Result<()> {
        self.shared.closed.close();
        let consumers: Vec<_> = lock(&self.consumers)
            .drain(..)
            .filter_map(|w| w.upgrade())
            .collect();
        for c in &consumers {
            c.close();
        }
        for c in &consumers {
            if !c.wait_finished(consumer::FINISH_GRACE).await {
                tracing::warn!(group = %c.group_id, "kafka: a consumer did not commit and leave its group in time on close");
            }
        }
        let producer = self.shared.producer.clone();
        let timeout = self.shared.config.send_timeout;
        let _ = tokio::task::spawn_blocking(move || producer.flush(timeout)).await;
        Ok(())
    }
}
