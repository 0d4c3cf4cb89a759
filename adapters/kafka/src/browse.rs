//! Browse: read a topic by offset with a consumer that is assigned partitions (it never joins
//! or rebalances a group) and never commits, so nothing any group sees changes (declared
//! `Native`).
//!
//! A topic keeps records after groups consume them, so a browse shows what the default group
//! (the one consumers without a group and redrive use) has not committed yet: from that group's
//! committed offset per partition, or from the low watermark when it has none, up to the high
//! watermark read at the start. The default group's retry topic (`<d>.retry.default`, where
//! its nacked records wait, e.g. dead letters a filtered redrive left in place) is read the
//! same way. Records are merged oldest first (timestamp, then id); ids are `partition:offset`,
//! or `retry/partition:offset` for the retry topic.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerkit_core::{BrowsedMessage, Error, ErrorKind, Message, Result};
use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::error::from_kafka;
use crate::headers;
use crate::link::{base_client_config, Shared};
use crate::topics::{group_id, retry_topic, DEFAULT_GROUP};

/// Longest a browse reads before it reports what it has.
const READ_BUDGET: Duration = Duration::from_secs(20);

/// Up to `limit` records of `destination` the default group has not committed, oldest first.
pub async fn browse(
    shared: Arc<Shared>,
    destination: &str,
    limit: usize,
) -> Result<Vec<BrowsedMessage>> {
    shared.check_open(destination, "browse")?;
    let topic = destination.to_string();
    tokio::task::spawn_blocking(move || read(&shared, &topic, limit))
        .await
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("browse task failed: {e}")))?
}

fn read(shared: &Shared, topic: &str, limit: usize) -> Result<Vec<BrowsedMessage>> {
    // Records the default group nacked (a redrive leaves filtered-out dead letters this way)
    // wait in its retry topic: they are still held, so they are shown too.
    let retry = retry_topic(topic, DEFAULT_GROUP);
    let mut got = read_topic(shared, topic, topic, false, limit)?;
    got.extend(read_topic(shared, topic, &retry, true, limit)?);
    got.sort_by_key(|(ts, id, _)| (*ts, id.clone()));
    Ok(got
        .into_iter()
        .take(limit)
        .map(|(_, id, m)| BrowsedMessage::new(id, m))
        .collect())
}

fn read_topic(
    shared: &Shared,
    destination: &str,
    topic: &str,
    retry: bool,
    limit: usize,
) -> Result<Vec<(i64, String, Message)>> {
    let addr = shared.config.redacted.clone();
    let timeout = shared.config.connect_timeout.max(Duration::from_secs(5));
    let kafka = |e: KafkaError, what: &str| from_kafka(e, what, &addr, "browse");
    let mut cc = base_client_config(&shared.config);
    // The default group's id, only to read its committed offsets: `assign` does not join the
    // group, and with auto commit off nothing is ever committed.
    cc.set("group.id", group_id(destination, DEFAULT_GROUP))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true");
    let consumer: BaseConsumer = cc
        .create()
        .map_err(|e| kafka(e, "creating the browse consumer"))?;
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| kafka(e, "metadata request"))?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(Vec::new());
    };
    if t.error().is_some() || t.partitions().is_empty() {
        // Unknown topic: nothing stored.
        return Ok(Vec::new());
    }
    let mut all = TopicPartitionList::new();
    for p in t.partitions() {
        all.add_partition(topic, p.id());
    }
    let committed = consumer
        .committed_offsets(all, timeout)
        .map_err(|e| kafka(e, "reading committed offsets"))?;
    let mut ends: HashMap<i32, i64> = HashMap::new();
    let mut assign = TopicPartitionList::new();
    for p in t.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(topic, p.id(), timeout)
            .map_err(|e| kafka(e, "reading watermarks"))?;
        let from = match committed.find_partition(topic, p.id()).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o.max(low),
            _ => low,
        };
        if from < high {
            ends.insert(p.id(), high);
            assign
                .add_partition_offset(topic, p.id(), Offset::Offset(from))
                .map_err(|e| kafka(e, "assigning a partition"))?;
        }
    }
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    consumer
        .assign(&assign)
        .map_err(|e| kafka(e, "assigning partitions"))?;
    let mut got: Vec<(i64, String, Message)> = Vec::new();
    let mut per_partition: HashMap<i32, usize> = HashMap::new();
    let deadline = Instant::now() + READ_BUDGET;
    while !ends.is_empty() && Instant::now() < deadline {
        let Some(r) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = match r {
            Ok(m) => m,
            Err(KafkaError::PartitionEOF(p)) => {
                ends.remove(&p);
                continue;
            }
            Err(e) => return Err(kafka(e, "reading records")),
        };
        let (p, off) = (m.partition(), m.offset());
        let Some(&end) = ends.get(&p) else { continue };
        if off >= end {
            ends.remove(&p);
            continue;
        }
        let (hdrs, _) = headers::from_kafka(headers::raw_headers(&m), retry);
        let mut message = Message::new(Bytes::copy_from_slice(m.payload().unwrap_or_default()))
            .with_headers(hdrs);
        message.key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
        let id = if retry {
            format!("retry/{p}:{off}")
        } else {
            format!("{p}:{off}")
        };
        got.push((m.timestamp().to_millis().unwrap_or(0), id, message));
        let n = per_partition.entry(p).or_default();
        *n += 1;
        if off + 1 >= end || *n >= limit {
            ends.remove(&p);
        }
    }
    Ok(got)
}
