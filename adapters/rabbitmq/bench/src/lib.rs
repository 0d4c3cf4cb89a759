//! RabbitMQ's part of `brokerkit-bench` (feature `rabbitmq` there): the raw lapin baseline
//! ([`raw`]) and this broker's side of the omniqueue and FastStream peers.

#[cfg(feature = "peer-omniqueue")]
mod omniqueue;
pub mod raw;

use brokerkit::BrokerUrl;
use brokerkit_bench_driver::{Args, BrokerBench, Peer, PeerDriver, PeerRun, RunFuture};

/// What `brokerkit-bench` registers for `amqp://` and `amqps://`.
pub static BENCH: RabbitMqBench = RabbitMqBench;

/// See [`BENCH`].
pub struct RabbitMqBench;

impl BrokerBench for RabbitMqBench {
    fn schemes(&self) -> &'static [&'static str] {
        &["amqp", "amqps"]
    }

    fn raw<'a>(&'a self, args: &'a Args) -> Option<RunFuture<'a>> {
        Some(Box::pin(raw::run(args)))
    }

    fn usage(&self) -> &'static str {
        "raw lapin, publisher confirms; --producers tasks, one channel each"
    }

    fn peer(&self, peer: Peer) -> Option<PeerDriver> {
        Some(match peer {
            Peer::Omniqueue => PeerDriver {
                settings:
                    "omniqueue 0.3 RabbitMqBackend (lapin 2 on the bench's tokio runtime): same \
                 durable fanout exchange and durable queue, persistent messages (delivery_mode 2), \
                 one channel shared by all producers, prefetch as the SDK, receive (receive_all \
                 with --receive-batch) + ack each. Differs: \
                 NO publisher confirms (send returns once the frame is written; the SDK waits for \
                 the broker's confirm), no mandatory flag (the SDK's is set), no headers.",
                #[cfg(feature = "peer-omniqueue")]
                run: PeerRun::InProcess(Some(omniqueue_run)),
                #[cfg(not(feature = "peer-omniqueue"))]
                run: PeerRun::InProcess(None),
            },
            Peer::FastStream => PeerDriver {
                settings:
                    "FastStream (aio-pika) RabbitBroker: publisher confirms on (its default), \
                 mandatory, persist=True, durable fanout exchange + durable queue, prefetch as \
                 the SDK, AckPolicy.ACK (ack after the handler), one asyncio task per producer, \
                 per-message logging off (logger=None). Differs: payload passes through \
                 FastStream's decoder to a `bytes` handler argument; headers are FastStream's own \
                 (correlation_id, content-type).",
                run: PeerRun::Script(faststream_target),
            },
        })
    }
}

#[cfg(feature = "peer-omniqueue")]
fn omniqueue_run(args: &Args) -> RunFuture<'_> {
    Box::pin(omniqueue::run(args))
}

/// The FastStream script's broker name and URL: the same AMQP URL.
fn faststream_target(url: &BrokerUrl) -> (&'static str, String) {
    ("rabbitmq", url.expose().as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faststream_gets_the_same_url() {
        let url = BrokerUrl::parse("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(
            faststream_target(&url),
            ("rabbitmq", "amqp://guest:guest@127.0.0.1:5672/%2f".into())
        );
    }
}
