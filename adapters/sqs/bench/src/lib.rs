//! SQS's part of `brokerkit-bench` (feature `sqs` there): the raw aws-sdk-sqs baseline
//! ([`raw`]) and this broker's side of the omniqueue peer.

#[cfg(feature = "peer-omniqueue")]
mod omniqueue;
pub mod raw;

use brokerkit_bench_driver::{Args, BrokerBench, Peer, PeerDriver, PeerRun, RunFuture};

/// What `brokerkit-bench` registers for `sqs://`.
pub static BENCH: SqsBench = SqsBench;

/// See [`BENCH`].
pub struct SqsBench;

impl BrokerBench for SqsBench {
    fn schemes(&self) -> &'static [&'static str] {
        &["sqs"]
    }

    fn raw<'a>(&'a self, args: &'a Args) -> Option<RunFuture<'a>> {
        Some(Box::pin(raw::run(args)))
    }

    fn usage(&self) -> &'static str {
        "raw aws-sdk-sqs, batches of --batch, a poller bounded by --prefetch; one producer task"
    }

    fn peer(&self, peer: Peer) -> Option<PeerDriver> {
        match peer {
            Peer::Omniqueue => Some(PeerDriver {
                settings: "omniqueue 0.3 SqsBackend on the same aws-sdk-sqs client config: \
                 SendMessage per \
                 send (SendMessageBatch with --batch), receive_all(10, 1 s long poll), \
                 DeleteMessage per ack; payload base64 like the SDK's binary payloads. Differs: \
                 no message attributes (the SDK sends its headers as attributes), one receive \
                 loop (the SDK's poller keeps prefetch messages in flight).",
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
    Box::pin(omniqueue::run(args))
}
