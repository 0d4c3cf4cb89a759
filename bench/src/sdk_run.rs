//! The measured run through the SDK: one producer task, one consumer task that acks.

use std::time::Instant;

use brokerkit::{Broker, Message, Result};

use crate::args::Args;
use crate::measure::{latency_us, stamped_payload, RunResult};

pub async fn run(args: &Args) -> Result<RunResult> {
    let broker = Broker::connect(&args.url).await?;
    let dest = format!("bench-{}", std::process::id());
    let mut consumer = broker
        .consumer(&dest)
        .group("bench")
        .prefetch(args.prefetch)
        .build()
        .await?;
    let builder = broker.producer(&dest);
    let builder = if args.no_layers {
        builder.without_default_layers()
    } else {
        builder
    };
    let producer = builder.build().await?;
    let (messages, size, batch) = (args.messages, args.size, args.batch);
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        let mut left = messages;
        while left > 0 {
            let n = left.min(batch);
            if n == 1 {
                producer.send(Message::new(stamped_payload(size))).await?;
            } else {
                let msgs = (0..n)
                    .map(|_| Message::new(stamped_payload(size)))
                    .collect();
                producer.send_batch(msgs).await?;
            }
            left -= n;
        }
        Ok::<_, brokerkit::Error>(())
    });
    let mut latencies = Vec::with_capacity(messages);
    while latencies.len() < messages {
        let Some(d) = consumer.next().await? else {
            break;
        };
        latencies.push(latency_us(&d.message().payload));
        d.ack().await?;
    }
    let elapsed = started.elapsed();
    sender
        .await
        .map_err(|e| brokerkit::Error::new(brokerkit::ErrorKind::Unexpected, e.to_string()))??;
    broker.close().await?;
    Ok(RunResult::new(latencies.len(), elapsed, latencies))
}
