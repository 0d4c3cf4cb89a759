//! Raw async-nats JetStream baseline, mirroring the bench's SDK run (`bench/src/sdk_run.rs`):
//! `--producers` tasks publishing with the
//! publish ack awaited (a batch is published, then its acks awaited), one task reading a
//! durable pull consumer (at most `prefetch` messages per pull) and acking each message.

use std::time::Instant;

use async_nats::jetstream::{self, consumer::pull, stream};
use brokerkit::{BrokerUrl, Error, ErrorKind, Result};
use futures_util::StreamExt;

use brokerkit_bench_driver::measure::{latency_us, stamped_payload, RunResult};
use brokerkit_bench_driver::Args;

fn err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unexpected, format!("raw async-nats {what}: {e}"))
}

/// One measured run of the raw client with the SDK run's settings.
pub async fn run(args: &Args) -> Result<RunResult> {
    let url = BrokerUrl::parse(&args.url)?;
    let u = url.expose();
    let address = format!(
        "nats://{}:{}",
        u.host_str().unwrap_or("127.0.0.1"),
        u.port().unwrap_or(4222)
    );
    let client = async_nats::connect(address)
        .await
        .map_err(|e| err("connect", e))?;
    let js = jetstream::new(client);
    let name = brokerkit_bench_driver::measure::unique_name("bench-raw");
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![name.clone()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| err("create stream", e))?;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("bench".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .map_err(|e| err("create consumer", e))?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(args.prefetch)
        .messages()
        .await
        .map_err(|e| err("pull", e))?;
    let (count, size, batch, with_headers) =
        (args.messages, args.size, args.batch, args.raw_headers);
    let started = Instant::now();
    let mut senders = Vec::new();
    for p in 0..args.producers {
        let (publisher, subject, share) = (js.clone(), name.clone(), args.share(p));
        senders.push(tokio::spawn(async move {
            let mut left = share;
            while left > 0 {
                let n = left.min(batch);
                let mut acks = Vec::with_capacity(n);
                for i in 0..n {
                    let payload = stamped_payload(size).into();
                    let ack = if with_headers {
                        let seq = share - left + i;
                        let headers = layer_like_headers(p, seq);
                        publisher
                            .publish_with_headers(subject.clone(), headers, payload)
                            .await
                    } else {
                        publisher.publish(subject.clone(), payload).await
                    }
                    .map_err(|e| err("publish", e))?;
                    acks.push(ack);
                }
                for ack in acks {
                    ack.await.map_err(|e| err("publish ack", e))?;
                }
                left -= n;
            }
            Ok::<_, Error>(())
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    while latencies.len() < count {
        let Some(m) = messages.next().await else {
            break;
        };
        let m = m.map_err(|e| err("receive", e))?;
        latencies.push(latency_us(&m.payload));
        m.ack().await.map_err(|e| err("ack", e))?;
    }
    let elapsed = started.elapsed();
    for sender in senders {
        sender.await.map_err(|e| err("sender task", e))??;
    }
    let _ = js.delete_stream(&name).await;
    Ok(RunResult::new(latencies.len(), elapsed, latencies))
}

/// The headers the SDK's default send layers add, with values of the same lengths: a
/// message-id and a correlation-id shaped like a UUID (36 characters) and a millisecond
/// timestamp (13 digits). `--raw-headers` only.
fn layer_like_headers(producer: usize, seq: usize) -> async_nats::HeaderMap {
    let id = format!("{producer:08x}-0000-7000-8000-{seq:012x}");
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut h = async_nats::HeaderMap::new();
    h.insert("message-id", id.as_str());
    h.insert("correlation-id", id.as_str());
    h.insert("timestamp", ms.to_string().as_str());
    h
}
