//! The generic part of `brokerkit-bench` that each broker's bench crate builds on: the
//! arguments ([`Args`]), timing ([`measure`]), and [`BrokerBench`], the trait a broker's
//! bench crate (`adapters/<b>/bench`, exporting `pub static BENCH`) implements for its
//! raw-client baseline and its side of each peer. The bench binary picks the implementation
//! whose [`BrokerBench::schemes`] hold the URL's scheme.

pub mod args;
pub mod measure;
#[cfg(feature = "omniqueue")]
pub mod omniqueue;

use std::future::Future;
use std::pin::Pin;

pub use args::{Args, Peer};
use brokerkit::{BrokerUrl, Result};
pub use measure::RunResult;

/// One measured run, boxed so that [`BrokerBench`] stays object-safe.
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Result<RunResult>> + 'a>>;

/// One broker's part of the bench.
pub trait BrokerBench: Sync {
    /// The URL schemes it covers (`"amqp"`, `"amqps"`).
    fn schemes(&self) -> &'static [&'static str];

    /// One run of the broker's own client with the SDK run's settings, or `None` when there
    /// is no separate client to compare with.
    fn raw<'a>(&'a self, args: &'a Args) -> Option<RunFuture<'a>>;

    /// One `--help` line: the raw baseline and which of `--producers`/`--raw-headers` it
    /// honours.
    fn usage(&self) -> &'static str;

    /// This broker's side of `peer`, or `None` when the peer does not cover it.
    fn peer(&self, peer: Peer) -> Option<PeerDriver> {
        let _ = peer;
        None
    }
}

/// How a peer runs on one broker.
pub struct PeerDriver {
    /// What the peer is configured with, and every setting that differs from the SDK run.
    pub settings: &'static str,
    /// How it runs.
    pub run: PeerRun,
}

/// An in-process run or an external script.
pub enum PeerRun {
    /// In this process; `None` when the bench was built without the peer's cargo feature.
    InProcess(Option<for<'a> fn(&'a Args) -> RunFuture<'a>>),
    /// The peer's script (`bench/peers/`), given the broker's name in the script and the
    /// address it connects to.
    Script(fn(&BrokerUrl) -> (&'static str, String)),
}
