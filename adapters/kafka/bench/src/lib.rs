//! Kafka's part of `brokerkit-bench` (feature `kafka` there): the raw rdkafka baseline
//! ([`raw`]) and this broker's side of the FastStream peer.

pub mod raw;

use brokerkit::BrokerUrl;
use brokerkit_bench_driver::{Args, BrokerBench, Peer, PeerDriver, PeerRun, RunFuture};

/// What `brokerkit-bench` registers for `kafka://`.
pub static BENCH: KafkaBench = KafkaBench;

/// See [`BENCH`].
pub struct KafkaBench;

impl BrokerBench for KafkaBench {
    fn schemes(&self) -> &'static [&'static str] {
        &["kafka"]
    }

    fn raw<'a>(&'a self, args: &'a Args) -> Option<RunFuture<'a>> {
        Some(Box::pin(raw::run(args)))
    }

    fn usage(&self) -> &'static str {
        "raw rdkafka, the adapter's producer settings; one producer task"
    }

    fn peer(&self, peer: Peer) -> Option<PeerDriver> {
        match peer {
            Peer::Omniqueue => None,
            Peer::FastStream => Some(PeerDriver {
                settings:
                    "FastStream (aiokafka) KafkaBroker: acks=all and linger 1 ms as the SDK, a \
                 3-partition topic as the SDK creates, consumer group with \
                 auto_offset_reset=earliest, AckPolicy.ACK (commit after the handler), logging \
                 off. Differs: NO idempotent producer (the SDK's is idempotent; aiokafka's \
                 InitProducerId crashes tansu 0.6), aiokafka's own batching and fetch settings.",
                run: PeerRun::Script(faststream_target),
            }),
        }
    }
}

/// The FastStream script's broker name and bootstrap address.
fn faststream_target(url: &BrokerUrl) -> (&'static str, String) {
    let u = url.expose();
    let host = u.host_str().unwrap_or("127.0.0.1");
    ("kafka", format!("{host}:{}", u.port().unwrap_or(9092)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faststream_gets_the_bootstrap_address() {
        let url = BrokerUrl::parse("kafka://127.0.0.1:9092").unwrap();
        assert_eq!(faststream_target(&url), ("kafka", "127.0.0.1:9092".into()));
    }
}
