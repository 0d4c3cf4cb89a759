//! The omniqueue peer on RabbitMQ: its `RabbitMqBackend` on the exchange and queue the raw
//! baseline declares (omniqueue declares nothing itself), run by the shared
//! [`brokerkit_bench_driver::omniqueue::drive`].

use brokerkit::Result;
use brokerkit_bench_driver::omniqueue::{drive, err};
use brokerkit_bench_driver::{Args, RunResult};
use omniqueue::backends::rabbitmq::{
    BasicConsumeOptions, BasicProperties, BasicPublishOptions, ConnectionProperties, FieldTable,
};
use omniqueue::backends::{RabbitMqBackend, RabbitMqConfig};

pub async fn run(args: &Args) -> Result<RunResult> {
    // The same durable fanout exchange + durable queue the SDK declares, made with the bench's
    // lapin 4.
    let setup = crate::raw::Topology::declare(&args.url, "bench-omniqueue").await?;
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
