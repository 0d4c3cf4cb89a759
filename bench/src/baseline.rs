//! Raw-client baselines: the one of the broker bench crate that covers the URL's scheme (each
//! in `adapters/<b>/bench`, behind the bench's cargo feature `<b>`), run with the same
//! settings as the SDK run.

use brokerkit::{BrokerUrl, Result};
use brokerkit_bench_driver::{Args, RunResult};

/// Runs the raw-client baseline for the URL's scheme; `None` when there is none.
pub async fn run(args: &Args) -> Result<Option<RunResult>> {
    let url = BrokerUrl::parse(&args.url)?;
    match crate::brokers::for_scheme(url.scheme()).and_then(|b| b.raw(args)) {
        Some(run) => Ok(Some(run.await?)),
        None => Ok(None),
    }
}
