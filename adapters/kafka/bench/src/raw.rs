//! Raw rdkafka baseline for `kafka://`: the same producer settings as the adapter (idempotent,
//! `acks=all`, linger/batch from the URL, round-robin partitions for keyless records), one
//! producer task awaiting each delivery report (or each batch), one consumer task that
//! "acks" every message and commits the settled offsets asynchronously every
//! `commit_interval_ms`, like the adapter's consumer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use brokerkit::{BrokerUrl, Error, ErrorKind, Result};
use brokerkit_kafka::KafkaConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use brokerkit_bench_driver::measure::{latency_us, stamped_payload, RunResult};
use brokerkit_bench_driver::Args;

fn err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unexpected, format!("raw kafka: {what}: {e}"))
}

fn base(c: &KafkaConfig) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &c.bootstrap)
        .set("client.id", "brokerkit-bench-raw")
        .set("allow.auto.create.topics", "false")
        .set("message.max.bytes", c.message_max_bytes.to_string());
    cc
}

/// One measured run of the raw client with the SDK run's settings.
pub async fn run(args: &Args) -> Result<RunResult> {
    let c = KafkaConfig::from_url(&BrokerUrl::parse(&args.url)?)?;
    let topic = brokerkit_bench_driver::measure::unique_name("bench-raw");
    // Made at connect time, like the backend's shared producer.
    let producer: FutureProducer = base(&c)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", c.linger.as_millis().to_string())
        .set("batch.size", c.batch_size.to_string())
        .set("batch.num.messages", c.batch_num_messages.to_string())
        .set(
            "delivery.timeout.ms",
            c.send_timeout.as_millis().to_string(),
        )
        .set("partitioner", "murmur2_random")
        .create()
        .map_err(|e| err("producer", e))?;
    let admin: AdminClient<DefaultClientContext> =
        base(&c).create().map_err(|e| err("admin", e))?;
    let spec = NewTopic::new(
        &topic,
        c.partitions,
        TopicReplication::Fixed(c.replication_factor),
    );
    admin
        .create_topics([&spec], &AdminOptions::new())
        .await
        .map_err(|e| err("create topic", e))?;

    let session = c.session_timeout.as_millis();
    let consumer: StreamConsumer = base(&c)
        .set("group.id", format!("{topic}:bench"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", session.to_string())
        .set("heartbeat.interval.ms", (session / 10).max(100).to_string())
        .set("partition.assignment.strategy", "range")
        .set("fetch.wait.max.ms", c.fetch_wait.as_millis().to_string())
        .create()
        .map_err(|e| err("consumer", e))?;
    consumer
        .subscribe(&[&topic])
        .map_err(|e| err("subscribe", e))?;
    // Like the adapter: the subscription is in place (assignment received) before sending.
    let deadline = Instant::now() + c.assignment_timeout;
    while consumer.assignment().map(|a| a.count()).unwrap_or(0) == 0 {
        if Instant::now() > deadline {
            return Err(err("join", "no assignment in time"));
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), consumer.recv()).await;
    }

    // Like the adapter's producer handle: look the topic up before the first send.
    let probe = producer.clone();
    let t = topic.clone();
    let timeout = c.connect_timeout;
    tokio::task::spawn_blocking(move || {
        use rdkafka::producer::Producer as _;
        probe.client().fetch_metadata(Some(&t), timeout)
    })
    .await
    .map_err(|e| err("metadata", e))?
    .map_err(|e| err("metadata", e))?;

    let (messages, size, batch, partitions) = (args.messages, args.size, args.batch, c.partitions);
    let started = Instant::now();
    let sender = {
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut left = messages;
            let mut next = 0i32;
            while left > 0 {
                let n = left.min(batch);
                let mut pending = Vec::with_capacity(n);
                for _ in 0..n {
                    let payload = stamped_payload(size);
                    let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&topic)
                        .payload(payload.as_slice())
                        .partition(next % partitions);
                    next = next.wrapping_add(1);
                    pending.push(
                        producer
                            .send_result(record)
                            .map_err(|(e, _)| err("send", e))?,
                    );
                }
                for p in pending {
                    p.await
                        .map_err(|e| err("send", e))?
                        .map_err(|(e, _)| err("send", e))?;
                }
                left -= n;
            }
            Ok::<_, Error>(())
        })
    };
    let mut latencies = Vec::with_capacity(messages);
    let mut settled: HashMap<i32, i64> = HashMap::new();
    let mut last_commit = Instant::now();
    while latencies.len() < messages {
        let m = consumer.recv().await.map_err(|e| err("receive", e))?;
        latencies.push(latency_us(m.payload().unwrap_or_default()));
        settled.insert(m.partition(), m.offset() + 1);
        if last_commit.elapsed() >= c.commit_interval {
            let mut tpl = TopicPartitionList::new();
            for (p, o) in settled.drain() {
                let _ = tpl.add_partition_offset(&topic, p, Offset::Offset(o));
            }
            let _ = consumer.commit(&tpl, CommitMode::Async);
            last_commit = Instant::now();
        }
    }
    let elapsed = started.elapsed();
    sender.await.map_err(|e| err("sender", e))??;
    Ok(RunResult::new(latencies.len(), elapsed, latencies))
}
