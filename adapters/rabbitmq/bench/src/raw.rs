//! Raw lapin baseline, mirroring the bench's SDK run (`bench/src/sdk_run.rs`): one
//! connection, `--producers` tasks (a channel
//! each) publishing persistent messages with the mandatory flag and waiting for each publisher
//! confirm (or a batch's confirms), a consumer task with the same prefetch acking each message.

use std::time::Instant;

use brokerkit::{Error, ErrorKind, Result};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties, ExchangeKind};

use brokerkit_bench_driver::measure::{latency_us, stamped_payload, RunResult};
use brokerkit_bench_driver::Args;

fn err(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unexpected, format!("raw lapin: {e}"))
}

/// A durable fanout exchange and a durable queue bound to it, as the SDK declares for a
/// destination and its consumer group; removed again by [`Topology::delete`].
pub struct Topology {
    /// The connection it was declared on.
    pub conn: Connection,
    /// The channel that declared it.
    pub setup: lapin::Channel,
    /// The exchange (the destination).
    pub exchange: String,
    /// The queue (the consumer group's).
    pub queue: String,
}

impl Topology {
    /// Declares a fresh exchange and queue named after `prefix` on a new connection.
    pub async fn declare(url: &str, prefix: &str) -> Result<Topology> {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .map_err(err)?;
        let dest = brokerkit_bench_driver::measure::unique_name(prefix);
        let queue = format!("{dest}:bench");
        let setup = conn.create_channel().await.map_err(err)?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        setup
            .exchange_declare(
                dest.as_str().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(err)?;
        let qopts = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        setup
            .queue_declare(queue.as_str().into(), qopts, FieldTable::default())
            .await
            .map_err(err)?;
        setup
            .queue_bind(
                queue.as_str().into(),
                dest.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(err)?;
        Ok(Topology {
            conn,
            setup,
            exchange: dest,
            queue,
        })
    }

    /// Deletes the queue and the exchange and closes the connection (best effort).
    pub async fn delete(self) {
        let _ = self
            .setup
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await;
        let _ = self
            .setup
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        let _ = self.conn.close(200, "bench done".into()).await;
    }
}

/// One measured run of the raw client with the SDK run's settings.
pub async fn run(args: &Args) -> Result<RunResult> {
    let topology = Topology::declare(&args.url, "bench-raw").await?;
    let (conn, dest, queue) = (
        &topology.conn,
        topology.exchange.clone(),
        topology.queue.clone(),
    );
    let consumer_ch = conn.create_channel().await.map_err(err)?;
    let prefetch = args.prefetch.min(u16::MAX as usize) as u16;
    consumer_ch
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(err)?;
    let mut stream = consumer_ch
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(err)?;
    let (messages, size, batch) = (args.messages, args.size, args.batch);
    let mut channels = Vec::new();
    for _ in 0..args.producers {
        let ch = conn.create_channel().await.map_err(err)?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(err)?;
        channels.push(ch);
    }
    let started = Instant::now();
    let mut senders = Vec::new();
    for (p, producer_ch) in channels.into_iter().enumerate() {
        let (exchange, share) = (dest.clone(), args.share(p));
        senders.push(tokio::spawn(async move {
            let options = BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            };
            let props = || {
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_headers(FieldTable::default())
            };
            let mut left = share;
            while left > 0 {
                let n = left.min(batch);
                let mut confirms = Vec::with_capacity(n);
                for _ in 0..n {
                    let c = producer_ch
                        .basic_publish(
                            exchange.as_str().into(),
                            "".into(),
                            options,
                            &stamped_payload(size),
                            props(),
                        )
                        .await
                        .map_err(err)?;
                    confirms.push(c);
                }
                for c in confirms {
                    match c.await.map_err(err)? {
                        Confirmation::Ack(None) => {}
                        other => return Err(err(format!("publish not confirmed: {other:?}"))),
                    }
                }
                left -= n;
            }
            Ok::<_, Error>(())
        }));
    }
    let mut latencies = Vec::with_capacity(messages);
    while latencies.len() < messages {
        let Some(d) = stream.next().await else { break };
        let d = d.map_err(err)?;
        latencies.push(latency_us(&d.data));
        d.ack(BasicAckOptions::default()).await.map_err(err)?;
    }
    let elapsed = started.elapsed();
    for sender in senders {
        sender.await.map_err(err)??;
    }
    topology.delete().await;
    Ok(RunResult::new(latencies.len(), elapsed, latencies))
}
