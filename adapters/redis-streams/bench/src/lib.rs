//! brokerkit-bench's Redis Streams part: the raw `redis` client baseline ([`raw`]). No peer
//! covers Redis Streams here yet.

mod raw;

use brokerkit_bench_driver::{Args, BrokerBench, RunFuture};

/// The Redis Streams bench.
pub struct RedisStreamsBench;

/// What `brokerkit-bench` registers for the `redis-streams` feature.
pub static BENCH: RedisStreamsBench = RedisStreamsBench;

impl BrokerBench for RedisStreamsBench {
    fn schemes(&self) -> &'static [&'static str] {
        &["redis+streams"]
    }

    fn raw<'a>(&'a self, args: &'a Args) -> Option<RunFuture<'a>> {
        Some(Box::pin(raw::run(args)))
    }

    fn usage(&self) -> &'static str {
        "raw = the redis crate: XADD (a pipeline per --batch) from --producers \
         tasks, one consumer XREADGROUP COUNT --prefetch and XACK each; honours --raw-headers"
    }
}
