//! Topic names (retry topics, group ids) and "create the topic when missing".

use std::time::{Duration, Instant};

use brokerkit_core::{ErrorKind, Result};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer;

use crate::error::{error, from_kafka};
use crate::link::Shared;

/// Longest Kafka topic name.
const MAX_TOPIC_LEN: usize = 249;

/// Group used when a consumer names none.
pub use brokerkit_core::DEFAULT_GROUP;

/// Kafka consumer group id of brokerkit group `group` on `destination`. Kafka groups are
/// cluster-wide, so the destination is part of the id; `:` cannot occur in either name, so
/// ids never collide.
pub fn group_id(destination: &str, group: &str) -> String {
    format!("{destination}:{group}")
}

/// The retry topic of `group` on `destination`: `<destination>.retry.<group>`, or, when
/// that is longer than Kafka allows, `<destination>.retry.<hash of group>`.
pub fn retry_topic(destination: &str, group: &str) -> String {
    let name = format!("{destination}.retry.{group}");
    if name.len() <= MAX_TOPIC_LEN {
        return name;
    }
    // FNV-1a: stable across builds and platforms.
    let hash = group.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{destination}.retry.{hash:016x}")
}

impl Shared {
    /// Partitions of `topic`, creating it when it is missing and creation is allowed.
    pub async fn ensure_topic(&self, topic: &str) -> Result<i32> {
        if let Some(n) = self.known_topic(topic) {
            return Ok(n);
        }
        let partitions = match self.topic_partitions(topic).await? {
            Some(n) => n,
            None if !self.config.create_topics => {
                return Err(error(
                    ErrorKind::NotFound,
                    format!(
                        "topic {topic:?} does not exist and create_topics=false; create it \
                         (for a consumer, also its retry topic) or allow creation"
                    ),
                    &self.config.redacted,
                    "create_topic",
                )
                .with_destination(topic));
            }
            None => self.create_topic(topic).await?,
        };
        self.remember_topic(topic, partitions);
        Ok(partitions)
    }

    /// Partition count of `topic`, or `None` when it does not exist.
    async fn topic_partitions(&self, topic: &str) -> Result<Option<i32>> {
        let producer = self.producer.clone();
        let name = topic.to_string();
        let timeout = self.config.connect_timeout;
        let md = tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(Some(&name), timeout)
        })
        .await
        .map_err(|e| {
            error(
                ErrorKind::Unexpected,
                format!("metadata task failed: {e}"),
                &self.config.redacted,
                "metadata",
            )
        })?
        .map_err(|e| {
            from_kafka(
                e,
                &format!("metadata of topic {topic:?}"),
                &self.config.redacted,
                "metadata",
            )
            .with_destination(topic)
        })?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        match t.error().map(RDKafkaErrorCode::from) {
            None if !t.partitions().is_empty() => Ok(Some(t.partitions().len() as i32)),
            None
            | Some(RDKafkaErrorCode::UnknownTopicOrPartition)
            | Some(RDKafkaErrorCode::UnknownTopic)
            | Some(RDKafkaErrorCode::LeaderNotAvailable) => Ok(None),
            Some(code) => Err(from_kafka(
                KafkaError::MetadataFetch(code),
                &format!("metadata of topic {topic:?}"),
                &self.config.redacted,
                "metadata",
            )
            .with_destination(topic)),
        }
    }

    async fn create_topic(&self, topic: &str) -> Result<i32> {
        let c = &self.config;
        let admin = self.admin()?;
        let spec = NewTopic::new(
            topic,
            c.partitions,
            TopicReplication::Fixed(c.replication_factor),
        );
        let opts = AdminOptions::new().operation_timeout(Some(c.connect_timeout));
        let fail = |e: KafkaError| {
            from_kafka(
                e,
                &format!("creating topic {topic:?}"),
                &c.redacted,
                "create_topic",
            )
            .with_destination(topic)
        };
        let results = admin.create_topics([&spec], &opts).await.map_err(fail)?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(fail(KafkaError::AdminOp(code))),
            }
        }
        // Wait until the metadata shows it, so producers and consumers can use it at once.
        let deadline = Instant::now() + c.connect_timeout;
        loop {
            if let Some(n) = self.topic_partitions(topic).await? {
                return Ok(n);
            }
            if Instant::now() >= deadline {
                return Err(error(
                    ErrorKind::Timeout,
                    format!(
                        "topic {topic:?} was created but its metadata did not appear within {:?}",
                        c.connect_timeout
                    ),
                    &c.redacted,
                    "create_topic",
                )
                .with_destination(topic));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(group_id("orders", "billing"), "orders:billing");
        assert_eq!(retry_topic("orders", "billing"), "orders.retry.billing");
        let long = "g".repeat(200);
        let t = retry_topic(&"d".repeat(200), &long);
        assert!(t.len() <= MAX_TOPIC_LEN && t.starts_with(&"d".repeat(200)));
        assert_eq!(t, retry_topic(&"d".repeat(200), &long));
        assert_ne!(t, retry_topic(&"d".repeat(200), &"h".repeat(200)));
    }
}
