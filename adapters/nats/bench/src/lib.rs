//! NATS JetStream's part of `brokerkit-bench` (feature `nats` there): the raw async-nats
//! baseline ([`raw`]) and this broker's side of the FastStream peer.

pub mod raw;

use brokerkit::BrokerUrl;
use brokerkit_bench_driver::{Args, BrokerBench, Peer, PeerDriver, PeerRun, RunFuture};

/// What `brokerkit-bench` registers for `nats+js://`.
pub static BENCH: NatsBench = NatsBench;

/// See [`BENCH`].
pub struct NatsBench;

impl BrokerBench for NatsBench {
    fn schemes(&self) -> &'static [&'static str] {
        &["nats+js"]
    }

    fn raw<'a>(&'a self, args: &'a Args) -> Option<RunFuture<'a>> {
        Some(Box::pin(raw::run(args)))
    }

    fn usage(&self) -> &'static str {
        "raw async-nats JetStream; --producers tasks; --raw-headers"
    }

    fn peer(&self, peer: Peer) -> Option<PeerDriver> {
        match peer {
            Peer::Omniqueue => None,
            Peer::FastStream => Some(PeerDriver {
                settings:
                    "FastStream (nats-py) NatsBroker: JetStream publish awaiting the PubAck, file \
                 stream, durable pull consumer (batch of prefetch), AckPolicy.ACK, logging off. \
                 Differs: FastStream adds its correlation-id and content-type headers (the SDK \
                 with default layers adds message-id, correlation-id, timestamp, traceparent).",
                run: PeerRun::Script(faststream_target),
            }),
        }
    }
}

/// The FastStream script's broker name and server address.
fn faststream_target(url: &BrokerUrl) -> (&'static str, String) {
    let u = url.expose();
    let host = u.host_str().unwrap_or("127.0.0.1");
    (
        "nats",
        format!("nats://{host}:{}", u.port().unwrap_or(4222)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faststream_gets_the_server_address() {
        let url = BrokerUrl::parse("nats+js://127.0.0.1:4222").unwrap();
        assert_eq!(
            faststream_target(&url),
            ("nats", "nats://127.0.0.1:4222".into())
        );
    }
}
