//! `--peer omniqueue`: the SDK run's workload through omniqueue 0.3 — `--producers` tasks
//! sharing one producer (awaiting each `send_raw`, or `send_raw_batch` with `--batch`), one
//! consumer task taking deliveries (`receive`, or `receive_all` with `--receive-batch`) and
//! acking each. What is configured
//! differently from the SDK is in `Peer::settings`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerkit::{BrokerUrl, Error, ErrorKind, Result};
use omniqueue::{QueueConsumer, QueueProducer};

use crate::args::Args;
use crate::measure::{latency_us, stamped_payload, RunResult};

fn err(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unexpected, format!("omniqueue: {e}"))
}

pub async fn run(args: &Args) -> Result<RunResult> {
    let url = BrokerUrl::parse(&args.url)?;
    match url.scheme() {
        "memory" => {
            let (p, c) = omniqueue::backends::InMemoryBackend::builder()
                .build_pair()
                .await
                .map_err(err)?;
            drive(args, p, c, |v| v, |b| Some(b.to_vec())).await
        }
        #[cfg(feature = "rabbitmq")]
        "amqp" | "amqps" => rabbitmq(args).await,
        #[cfg(feature = "sqs")]
        "sqs" => sqs(args, &url).await,
        other => Err(Error::new(
            ErrorKind::Unsupported,
            format!("--peer omniqueue: no {other}:// backend built (omniqueue has memory, RabbitMQ and SQS; build with the broker's feature)"),
        )),
    }
}

/// The timed part, shared by every backend: `encode` turns the stamped payload into the
/// backend's payload type, `decode` gets the stamped bytes back from a delivery.
async fn drive<P, C>(
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
    // `--receive-batch`; SQS always batches (its `receive` is one ReceiveMessage call per
    // message, without long polling, while the SDK's poller takes 10 per call).
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

#[cfg(feature = "rabbitmq")]
async fn rabbitmq(args: &Args) -> Result<RunResult> {
    use omniqueue::backends::rabbitmq::{
        BasicConsumeOptions, BasicProperties, BasicPublishOptions, ConnectionProperties, FieldTable,
    };
    use omniqueue::backends::{RabbitMqBackend, RabbitMqConfig};

    // The same durable fanout exchange + durable queue the SDK declares, made with the bench's
    // lapin 4 (omniqueue declares nothing itself).
    let setup = crate::raw_rabbitmq::Topology::declare(&args.url, "bench-omniqueue").await?;
    let props = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    let config = RabbitMqConfig {
        uri: args.url.clone(),
        connection_properties: props,
        publish_exchange: setup.exchange.clone(),
        publish_routing_key: String::new(),
        publish_options: BasicPublishOptions::default(),
        publish_properties: BasicProperties::default().with_delivery_mode(2),
        consume_queue: setup.queue.clone(),
        consumer_tag: String::new(),
        consume_options: BasicConsumeOptions::default(),
        consume_arguments: FieldTable::default(),
        consume_prefetch_count: Some(args.prefetch.min(u16::MAX as usize) as u16),
        requeue_on_nack: true,
    };
    let (p, c) = RabbitMqBackend::builder(config)
        .build_pair()
        .await
        .map_err(err)?;
    let result = drive(args, p, c, |v| v, |b| Some(b.to_vec())).await;
    setup.delete().await;
    result
}

#[cfg(feature = "sqs")]
async fn sqs(args: &Args, url: &BrokerUrl) -> Result<RunResult> {
    use base64::Engine;
    use omniqueue::backends::{SqsBackend, SqsConfig};
    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    let (client, sdk_config) = crate::raw_sqs::client_and_config(url).await?;
    let name = crate::measure::unique_name("bench-omniqueue");
    let queue_url = client
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .map_err(err)?
        .queue_url
        .ok_or_else(|| err("no queue url"))?;
    let (p, c) = SqsBackend::builder(SqsConfig {
        queue_dsn: queue_url.clone(),
        override_endpoint: false,
    })
    .sqs_config(aws_sdk_sqs::Config::from(&sdk_config))
    .build_pair()
    .await
    .map_err(err)?;
    let result = drive(args, p, c, |v| B64.encode(v), |b| B64.decode(b).ok()).await;
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        client.delete_queue().queue_url(&queue_url).send(),
    )
    .await;
    result
}
