//! Raw aws-sdk-sqs baseline for `sqs://` URLs, shaped like the SDK run: one producer task
//! sending batches of `--batch`, one consumer task that receives through a poller bounded by
//! `--prefetch` (long polling, at most 10 per ReceiveMessage) and deletes each message.
//! Payloads are base64-encoded (SQS bodies must be text), as the adapter does for binary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use base64::Engine;
use brokerkit::{BrokerUrl, Error, ErrorKind, Result};
use tokio::sync::{mpsc, Semaphore};

use brokerkit_bench_driver::measure::{latency_us, stamped_payload, RunResult};
use brokerkit_bench_driver::Args;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn err(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unexpected, format!("raw sqs: {e}"))
}

async fn client(url: &BrokerUrl) -> Result<aws_sdk_sqs::Client> {
    Ok(client_and_config(url).await?.0)
}

/// The client for the URL's region, endpoint and credentials, and the config it was made
/// from (the omniqueue peer builds its own client from the same config).
pub async fn client_and_config(
    url: &BrokerUrl,
) -> Result<(aws_sdk_sqs::Client, aws_config::SdkConfig)> {
    let q = |k: &str| {
        url.expose()
            .query_pairs()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.into_owned())
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = q("region") {
        loader = loader.region(Region::new(r));
    }
    if let Some(e) = q("endpoint") {
        loader = loader.endpoint_url(e);
    }
    if let (Some(id), Some(secret)) = (q("access_key_id"), q("secret_access_key")) {
        loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
            id, secret, None, None, "bench",
        ));
    }
    let config = loader.load().await;
    Ok((aws_sdk_sqs::Client::new(&config), config))
}

/// Creates a queue with a fresh name starting with `prefix`; returns its URL.
pub(crate) async fn create_queue(sqs: &aws_sdk_sqs::Client, prefix: &str) -> Result<String> {
    let name = brokerkit_bench_driver::measure::unique_name(prefix);
    sqs.create_queue()
        .queue_name(&name)
        .send()
        .await
        .map_err(err)?
        .queue_url
        .ok_or_else(|| err("no queue url"))
}

/// One measured run of the raw client with the SDK run's settings.
pub async fn run(args: &Args) -> Result<RunResult> {
    let url = BrokerUrl::parse(&args.url)?;
    let sqs = client(&url).await?;
    let queue_url = create_queue(&sqs, "bench-raw").await?;
    let (messages, size, batch) = (args.messages, args.size, args.batch.clamp(1, 10));
    let started = Instant::now();

    let producer = {
        let (sqs, queue_url) = (sqs.clone(), queue_url.clone());
        tokio::spawn(async move {
            let mut left = messages;
            while left > 0 {
                let n = left.min(batch);
                if n == 1 {
                    sqs.send_message()
                        .queue_url(&queue_url)
                        .message_body(B64.encode(stamped_payload(size)))
                        .send()
                        .await
                        .map_err(err)?;
                } else {
                    let mut entries = Vec::with_capacity(n);
                    for i in 0..n {
                        entries.push(
                            SendMessageBatchRequestEntry::builder()
                                .id(i.to_string())
                                .message_body(B64.encode(stamped_payload(size)))
                                .build()
                                .map_err(err)?,
                        );
                    }
                    let out = sqs
                        .send_message_batch()
                        .queue_url(&queue_url)
                        .set_entries(Some(entries))
                        .send()
                        .await
                        .map_err(err)?;
                    if !out.failed.is_empty() {
                        return Err(err(format!("{} batch entries failed", out.failed.len())));
                    }
                }
                left -= n;
            }
            Ok::<_, Error>(())
        })
    };

    // Poller: receives while fewer than `prefetch` messages are unsettled.
    let permits = Arc::new(Semaphore::new(args.prefetch.max(1)));
    let (tx, mut rx) = mpsc::channel(16);
    let poller = {
        let (sqs, queue_url, permits) = (sqs.clone(), queue_url.clone(), permits.clone());
        tokio::spawn(async move {
            loop {
                let Ok(first) = permits.clone().acquire_owned().await else {
                    return Ok::<_, Error>(());
                };
                let mut held = vec![first];
                while held.len() < 10 {
                    match permits.clone().try_acquire_owned() {
                        Ok(p) => held.push(p),
                        Err(_) => break,
                    }
                }
                let out = sqs
                    .receive_message()
                    .queue_url(&queue_url)
                    .max_number_of_messages(held.len() as i32)
                    .wait_time_seconds(20)
                    .send()
                    .await
                    .map_err(err)?;
                for m in out.messages.unwrap_or_default() {
                    let permit = held.pop();
                    if tx.send((m, permit)).await.is_err() {
                        return Ok(());
                    }
                }
            }
        })
    };

    let mut latencies = Vec::with_capacity(messages);
    while latencies.len() < messages {
        let Some((m, permit)) = rx.recv().await else {
            break;
        };
        let payload = B64.decode(m.body().unwrap_or_default()).map_err(err)?;
        latencies.push(latency_us(&payload));
        sqs.delete_message()
            .queue_url(&queue_url)
            .receipt_handle(m.receipt_handle().unwrap_or_default())
            .send()
            .await
            .map_err(err)?;
        drop(permit);
    }
    let elapsed = started.elapsed();
    producer.await.map_err(err)??;
    poller.abort();
    drop(rx);
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        sqs.delete_queue().queue_url(&queue_url).send(),
    )
    .await;
    Ok(RunResult::new(latencies.len(), elapsed, latencies))
}
