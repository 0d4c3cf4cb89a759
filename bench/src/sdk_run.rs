//! The measured run through the SDK: `--producers` sending tasks (awaiting each send, or
//! `send_batch`, or feeding a `SendBatcher` with `--pipelined`), one consumer task that acks
//! each delivery (taken one by one, or up to `--receive-batch` per `next_batch`).

use std::time::Instant;

use brokerkit::{BatcherOptions, Broker, Message, Producer, Result};

use crate::args::Args;
use crate::measure::{latency_us, stamped_payload, RunResult};

pub async fn run(args: &Args) -> Result<RunResult> {
    let broker = Broker::connect(&args.url).await?;
    let dest = crate::measure::unique_name("bench");
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
    let messages = args.messages;
    let started = Instant::now();
    let mut senders = Vec::new();
    for p in 0..args.producers {
        let (producer, share, args) = (producer.clone(), args.share(p), args.clone());
        senders.push(tokio::spawn(async move {
            send_share(&producer, share, &args).await
        }));
    }
    let mut latencies = Vec::with_capacity(messages);
    while latencies.len() < messages {
        if args.receive_batch <= 1 {
            // One by one, without a batch `Vec` per delivery.
            let Some(d) = consumer.next().await? else {
                break;
            };
            latencies.push(latency_us(&d.message().payload));
            d.ack().await?;
            continue;
        }
        let batch = consumer
            .next_batch(args.receive_batch, std::time::Duration::ZERO)
            .await?;
        if batch.is_empty() {
            break;
        }
        for d in batch {
            latencies.push(latency_us(&d.message().payload));
            d.ack().await?;
        }
    }
    let elapsed = started.elapsed();
    for sender in senders {
        sender.await.map_err(|e| {
            brokerkit::Error::new(brokerkit::ErrorKind::Unexpected, e.to_string())
        })??;
    }
    broker.close().await?;
    Ok(RunResult::new(latencies.len(), elapsed, latencies))
}

/// One sending task's share: awaited sends, batches, or a pipelined window of receipts.
async fn send_share(producer: &Producer, share: usize, args: &Args) -> Result<()> {
    let size = args.size;
    if args.pipelined {
        let batcher = producer.batcher(BatcherOptions::default())?;
        let mut receipts = std::collections::VecDeque::new();
        for _ in 0..share {
            receipts.push_back(batcher.feed(Message::new(stamped_payload(size))).await?);
            // Keep the window bounded without waiting on every message.
            while receipts.len() > 2048 {
                receipts.pop_front().expect("non-empty").await?;
            }
        }
        for r in receipts {
            r.await?;
        }
        return Ok(());
    }
    let mut left = share;
    while left > 0 {
        let n = left.min(args.batch);
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
    Ok(())
}
