//! `--layers`: the same publish+consume run through the handler API twice, with every layer
//! off and with every layer on (trace context + correlation + schema validation on both ends +
//! idempotency with the memory store), in one process, and the ratio on/off.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use brokerkit::{encode_event, Broker, Event, Idempotency, Message, Result};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::args::Args;
use crate::measure::{now_ns, Latencies, RunResult};

/// The benchmark's event.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
struct BenchEvent {
    seq: u64,
    sent_ns: u64,
    pad: String,
}

impl Event for BenchEvent {
    const NAME: &'static str = "bench.event";
    const VERSION: u32 = 1;
}

fn event(seq: u64, size: usize) -> BenchEvent {
    let overhead = 48; // the JSON around `pad`
    BenchEvent {
        seq,
        sent_ns: now_ns(),
        pad: "x".repeat(size.saturating_sub(overhead)),
    }
}

/// What the handlers record: a latency histogram (30 KB, not 16 bytes a message, so the
/// peak RSS reported is the SDK's) and how many messages arrived.
struct Sink {
    latencies: Latencies,
    expected: usize,
    done: AtomicUsize,
    all_done: Notify,
}

impl Sink {
    fn record(&self, sent_ns: u64) {
        self.latencies
            .record(now_ns().saturating_sub(sent_ns) / 1_000);
        if self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.expected {
            self.all_done.notify_one();
        }
    }
}

/// Runs the handler-API benchmark with all layers `on` or off.
pub async fn run(args: &Args, on: bool) -> Result<RunResult> {
    let broker = Broker::connect(&args.url).await?;
    let dest = crate::measure::unique_name(if on {
        "bench-layers-on"
    } else {
        "bench-layers-off"
    });
    let sink = Arc::new(Sink {
        latencies: Latencies::default(),
        expected: args.messages,
        done: AtomicUsize::new(0),
        all_done: Notify::new(),
    });
    let stop = Arc::new(Notify::new());
    let consumer = broker
        .consumer(&dest)
        .group("bench")
        .prefetch(args.prefetch)
        .concurrency(args.concurrency);
    let stop_in = stop.clone();
    let shutdown = async move { stop_in.notified().await };
    let handler = if on {
        let s = sink.clone();
        let store = brokerkit::connect_store("memory://").await?;
        tokio::spawn(
            consumer
                .idempotency(Idempotency::new(store))
                .handle(move |_ctx, ev: BenchEvent| {
                    s.record(ev.sent_ns);
                    async { Ok(()) }
                })
                .run_until(shutdown),
        )
    } else {
        let s = sink.clone();
        tokio::spawn(
            consumer
                .handle_raw(move |_ctx, m: Message| {
                    if let Ok(ev) = serde_json::from_slice::<BenchEvent>(&m.payload) {
                        s.record(ev.sent_ns);
                    }
                    async { Ok(()) }
                })
                .run_until(shutdown),
        )
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let builder = broker.producer(&dest);
    let producer = if on {
        builder.build().await?
    } else {
        builder.without_default_layers().build().await?
    };
    let (messages, size) = (args.messages as u64, args.size);
    let started = Instant::now();
    let finished = sink.all_done.notified();
    tokio::pin!(finished);
    finished.as_mut().enable();
    let sender = tokio::spawn(async move {
        for seq in 0..messages {
            let ev = event(seq, size);
            let message = if on {
                let mut m = encode_event(&ev)?;
                m.headers.set_idempotency_key(format!("bench-{seq}"))?;
                m
            } else {
                let body = serde_json::to_vec(&ev).map_err(|e| {
                    brokerkit::Error::new(brokerkit::ErrorKind::Decode, e.to_string())
                })?;
                Message::new(body)
            };
            producer.send(message).await?;
        }
        Ok::<_, brokerkit::Error>(())
    });
    if sink.done.load(Ordering::Acquire) < args.messages {
        finished.await;
    }
    let elapsed = started.elapsed();
    stop.notify_one();
    sender
        .await
        .map_err(|e| brokerkit::Error::new(brokerkit::ErrorKind::Unexpected, e.to_string()))??;
    handler
        .await
        .map_err(|e| brokerkit::Error::new(brokerkit::ErrorKind::Unexpected, e.to_string()))??;
    broker.close().await?;
    Ok(RunResult::from_latencies(
        args.messages,
        elapsed,
        &sink.latencies,
    ))
}
