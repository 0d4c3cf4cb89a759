//! Raw async-nats JetStream baseline, mirroring `sdk_run`: `--producers` tasks publishing with the
//! publish ack awaited (a batch is published, then its acks awaited), one task reading a
//! durable pull consumer (at most `prefetch` messages per pull) and acking each message.

use std::time::Instant;

use async_nats::jetstream::{self, consumer::pull, stream};
use brokerkit::{BrokerUrl, Error, ErrorKind, Result};
use futures_util::StreamExt;

use crate::args::Args;
use crate::measure::{latency_us, stamped_payload, RunResult};

fn err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unexpected, format!("raw async-nats {what}: {e}"))
}

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
    let name = crate::measure::unique_name("bench-raw");
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
    let (count, size, batch) = (args.messages, args.size, args.batch);
    let started = Instant::now();
    let mut senders = Vec::new();
    for p in 0..args.producers {
        let (publisher, subject, share) = (js.clone(), name.clone(), args.share(p));
        senders.push(tokio::spawn(async move {
            let mut left = share;
            while left > 0 {
                let n = left.min(batch);
                let mut acks = Vec::with_capacity(n);
                for _ in 0..n {
                    let ack = publisher
                        .publish(subject.clone(), stamped_payload(size).into())
                        .await
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
