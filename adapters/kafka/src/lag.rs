//! Consumer lag of a Kafka group: per partition of the destination topic and of the group's
//! retry topic, high watermark minus the group's committed offset (from the low watermark
//! where the group never committed), summed.
//!
//! Read-only: a short-lived, unsubscribed consumer with the group's id asks for the committed
//! offsets (OffsetFetch) and the watermarks (ListOffsets); it never joins the group, so it
//! causes no rebalance. Missing topics count as empty.

use std::time::Duration;

use brokerkit_core::{Error, ErrorKind, Lag, LagAccuracy, PartitionLag, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use crate::backend::{base_client_config, Shared};
use crate::error::from_kafka;
use crate::topics::{group_id, retry_topic, DEFAULT_GROUP};

/// The lag of `group` (default group when `None`) on `destination`.
pub(crate) async fn lag(shared: &Shared, destination: &str, group: Option<&str>) -> Result<Lag> {
    shared.check_open(destination, "lag")?;
    let group = group.unwrap_or(DEFAULT_GROUP);
    let address = shared.config.redacted.clone();
    let fail = |e: KafkaError| {
        from_kafka(
            e,
            &format!("lag of group {group:?} on topic {destination:?}"),
            &address,
            "lag",
        )
        .with_destination(destination)
    };
    let mut cc = base_client_config(&shared.config);
    cc.set("group.id", group_id(destination, group))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    let consumer: BaseConsumer = cc.create().map_err(fail)?;
    let topics = vec![destination.to_string(), retry_topic(destination, group)];
    let timeout = shared.config.connect_timeout;
    let read = tokio::task::spawn_blocking(move || read(&consumer, &topics, timeout))
        .await
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("lag task failed: {e}")))?;
    Ok(Lag::from_partitions(
        read.map_err(fail)?,
        LagAccuracy::Exact,
    ))
}

/// Partitions of `topic`; empty when the topic does not exist.
fn partitions(consumer: &BaseConsumer, topic: &str, timeout: Duration) -> KafkaResult<Vec<i32>> {
    let md = consumer.fetch_metadata(Some(topic), timeout)?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(Vec::new());
    };
    match t.error().map(RDKafkaErrorCode::from) {
        None => Ok(t.partitions().iter().map(|p| p.id()).collect()),
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::LeaderNotAvailable,
        ) => Ok(Vec::new()),
        Some(code) => Err(KafkaError::MetadataFetch(code)),
    }
}

/// Blocking: watermarks and committed offsets of every partition of `topics`.
fn read(
    consumer: &BaseConsumer,
    topics: &[String],
    timeout: Duration,
) -> KafkaResult<Vec<PartitionLag>> {
    let mut tpl = TopicPartitionList::new();
    let mut marks = Vec::new();
    for topic in topics {
        for p in partitions(consumer, topic, timeout)? {
            let (low, high) = consumer.fetch_watermarks(topic, p, timeout)?;
            tpl.add_partition(topic, p);
            marks.push((topic.as_str(), p, low, high));
        }
    }
    if marks.is_empty() {
        return Ok(Vec::new());
    }
    let committed = consumer.committed_offsets(tpl, timeout)?;
    Ok(marks
        .into_iter()
        .map(|(topic, p, low, high)| {
            let c = committed
                .find_partition(topic, p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) if o >= 0 => Some(o),
                    _ => None,
                });
            PartitionLag::from_offsets(topic, p, low, high, c)
        })
        .collect())
}
