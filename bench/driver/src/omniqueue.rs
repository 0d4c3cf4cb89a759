//! `--peer omniqueue`: the SDK run's workload through omniqueue 0.3 — `--producers` tasks
//! sharing one producer (awaiting each `send_raw`, or `send_raw_batch` with `--batch`), one
//! consumer task taking deliveries (`receive`, or `receive_all` with `--receive-batch`) and
//! acking each. Each broker's bench crate builds its omniqueue backend and calls [`drive`];
//! what it configures differently from the SDK is in its peer settings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerkit::{Error, ErrorKind, Result};
use omniqueue::{QueueConsumer, QueueProducer};

use crate::args::Args;
use crate::measure::{latency_us, stamped_payload, RunResult};

/// An omniqueue error as a bench error.
pub fn err(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unexpected, format!("omniqueue: {e}"))
}

/// The timed part, shared by every backend: `encode` turns the stamped payload into the
/// backend's payload type, `decode` gets the stamped bytes back from a delivery.
pub async fn drive<P, C>(
    args: &Args,
    producer: P,
    mut consumer: C,
    encode: fn(Vec<u8>) -> P::Payload,
    decode: fn(&[u8]) -> Option<Vec<u8>>,
) -> Result<RunResult>
where
    P: QueueProducer + 'static,
    C: QueueConsumer,
{
    let producer = Arc::new(producer);
    // `receive` where the SDK run takes one delivery at a time, `receive_all` with
    // `--receive-batch`; a backend that states its `max_messages` always batches (one such
    // backend's `receive` is one call per message without long polling, while the SDK's
    // poller takes up to that many per call).
    let max = match consumer.max_messages() {
        Some(cap) => cap.get(),
        None => args.receive_batch,
    };
    let started = Instant::now();
    let mut senders = Vec::new();
    for p in 0..args.producers {
        let (producer, share, size, batch) =
            (producer.clone(), args.share(p), args.size, args.batch);
        senders.push(tokio::spawn(async move {
            let mut left = share;
            while left > 0 {
                let n = left.min(batch);
                if n == 1 {
                    producer.send_raw(&encode(stamped_payload(size))).await?;
                } else {
                    // `Box<T>: AsRef<T>` (omniqueue's batch takes `AsRef<Payload>` items).
                    let batch: Vec<_> = (0..n)
                        .map(|_| Box::new(encode(stamped_payload(size))))
                        .collect();
                    producer.send_raw_batch(batch).await?;
                }
                left -= n;
            }
            Ok::<_, omniqueue::QueueError>(())
        }));
    }
    let mut latencies = Vec::with_capacity(args.messages);
    while latencies.len() < args.messages {
        let batch = if max > 1 {
            consumer
                .receive_all(max, Duration::from_secs(1))
                .await
                .map_err(err)?
        } else {
            vec![consumer.receive().await.map_err(err)?]
        };
        for d in batch {
            let payload = decode(d.borrow_payload().unwrap_or_default())
                .filter(|p| p.len() >= 8)
                .ok_or_else(|| err("a delivery without the bench's stamped payload"))?;
            latencies.push(latency_us(&payload));
            d.ack().await.map_err(|(e, _)| err(e))?;
        }
    }
    let elapsed = started.elapsed();
    for s in senders {
        s.await.map_err(err)?.map_err(err)?;
    }
    Ok(RunResult::new(latencies.len(), elapsed, latencies))
}
