//! `memory://` in the bench: no raw baseline (the broker is in-process: there is no separate
//! client to compare with), and omniqueue's in-memory backend as its peer.

use brokerkit_bench_driver::{Args, BrokerBench, Peer, PeerDriver, PeerRun, RunFuture};

/// The in-memory broker's entry.
pub static MEMORY: Memory = Memory;

/// See [`MEMORY`].
pub struct Memory;

impl BrokerBench for Memory {
    fn schemes(&self) -> &'static [&'static str] {
        &["memory"]
    }

    fn raw<'a>(&'a self, _args: &'a Args) -> Option<RunFuture<'a>> {
        None
    }

    fn usage(&self) -> &'static str {
        "no raw baseline (in-process)"
    }

    fn peer(&self, peer: Peer) -> Option<PeerDriver> {
        match peer {
            Peer::Omniqueue => Some(PeerDriver {
                settings: "omniqueue 0.3 InMemoryBackend: an unbounded tokio mpsc channel, \
                 one copy of the \
                 payload per send and per delivery (for nack); receive (receive_all with \
                 --receive-batch) + ack each, as the SDK run. \
                 Differs: no capacity bound / backpressure, no headers, no visibility timeout, \
                 no redelivery of a dropped delivery, no consumer groups.",
                #[cfg(feature = "peer-omniqueue")]
                run: PeerRun::InProcess(Some(omniqueue_run)),
                #[cfg(not(feature = "peer-omniqueue"))]
                run: PeerRun::InProcess(None),
            }),
            Peer::FastStream => None,
        }
    }
}

#[cfg(feature = "peer-omniqueue")]
fn omniqueue_run(args: &Args) -> RunFuture<'_> {
    use brokerkit_bench_driver::omniqueue::{drive, err};
    Box::pin(async move {
        let (p, c) = omniqueue::backends::InMemoryBackend::builder()
            .build_pair()
            .await
            .map_err(err)?;
        drive(args, p, c, |v| v, |b| Some(b.to_vec())).await
    })
}
