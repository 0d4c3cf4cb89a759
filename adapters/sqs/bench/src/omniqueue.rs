//! The omniqueue peer on SQS: its `SqsBackend` on a fresh queue, with the raw baseline's
//! client config, run by the shared [`brokerkit_bench_driver::omniqueue::drive`].

use std::time::Duration;

use base64::Engine;
use brokerkit::{BrokerUrl, Result};
use brokerkit_bench_driver::omniqueue::{drive, err};
use brokerkit_bench_driver::{Args, RunResult};
use omniqueue::backends::{SqsBackend, SqsConfig};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub async fn run(args: &Args) -> Result<RunResult> {
    let url = BrokerUrl::parse(&args.url)?;
    let (client, sdk_config) = crate::raw::client_and_config(&url).await?;
    let queue_url = crate::raw::create_queue(&client, "bench-omniqueue").await?;
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
