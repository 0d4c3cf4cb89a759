//! Raw-client baselines, one per broker scheme, run with the same settings as the SDK run.
//! Each adapter adds its raw client here behind its cargo feature.

use brokerkit::{BrokerUrl, Result};

use crate::args::Args;
use crate::measure::RunResult;

/// Runs the raw-client baseline for the URL's scheme; `None` when there is none.
pub async fn run(args: &Args) -> Result<Option<RunResult>> {
    let url = BrokerUrl::parse(&args.url)?;
    Ok(match url.scheme() {
        // memory:// is in-process: there is no separate client to compare with.
        "memory" => None,
        #[cfg(feature = "nats")]
        "nats+js" => Some(crate::raw_nats::run(args).await?),
        #[cfg(feature = "kafka")]
        "kafka" => Some(crate::raw_kafka::run(args).await?),
        #[cfg(feature = "sqs")]
        "sqs" => Some(crate::raw_sqs::run(args).await?),
        #[cfg(feature = "rabbitmq")]
        "amqp" | "amqps" => Some(crate::raw_rabbitmq::run(args).await?),
        _ => None,
    })
}
