//! `--peer`: the libraries users compare brokerkit with, run on the same workload (message
//! size, count, producers, prefetch) against the same broker, alternated with the SDK run.
//! Each peer states what it is configured with where that differs from the SDK.

use brokerkit::{BrokerUrl, Error, ErrorKind, Result};

use crate::args::Args;
use crate::measure::RunResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Omniqueue,
    FastStream,
}

impl Peer {
    pub fn parse(name: &str) -> std::result::Result<Peer, String> {
        match name {
            "omniqueue" => Ok(Peer::Omniqueue),
            "faststream" => Ok(Peer::FastStream),
            other => Err(format!(
                "--peer: unknown peer {other:?}; known: omniqueue, faststream"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Peer::Omniqueue => "omniqueue",
            Peer::FastStream => "faststream",
        }
    }

    /// One measured run of the peer.
    pub async fn run(self, args: &Args) -> Result<RunResult> {
        match self {
            #[cfg(feature = "peer-omniqueue")]
            Peer::Omniqueue => crate::peer_omniqueue::run(args).await,
            #[cfg(not(feature = "peer-omniqueue"))]
            Peer::Omniqueue => Err(Error::new(
                ErrorKind::Unsupported,
                "--peer omniqueue needs the bench built with --features peer-omniqueue",
            )),
            Peer::FastStream => crate::peer_faststream::run(args).await,
        }
    }

    /// What the peer is configured with, and every setting that differs from the SDK run.
    pub fn settings(self, args: &Args) -> Result<&'static str> {
        let url = BrokerUrl::parse(&args.url)?;
        let scheme = url.scheme();
        let note = match (self, scheme) {
            (Peer::Omniqueue, "memory") => {
                "omniqueue 0.3 InMemoryBackend: an unbounded tokio mpsc channel, one copy of the \
                 payload per send and per delivery (for nack); receive (receive_all with \
                 --receive-batch) + ack each, as the SDK run. \
                 Differs: no capacity bound / backpressure, no headers, no visibility timeout, \
                 no redelivery of a dropped delivery, no consumer groups."
            }
            (Peer::Omniqueue, "amqp" | "amqps") => {
                "omniqueue 0.3 RabbitMqBackend (lapin 2 on the bench's tokio runtime): same \
                 durable fanout exchange and durable queue, persistent messages (delivery_mode 2), \
                 one channel shared by all producers, prefetch as the SDK, receive (receive_all \
                 with --receive-batch) + ack each. Differs: \
                 NO publisher confirms (send returns once the frame is written; the SDK waits for \
                 the broker's confirm), no mandatory flag (the SDK's is set), no headers."
            }
            (Peer::Omniqueue, "sqs") => {
                "omniqueue 0.3 SqsBackend on the same aws-sdk-sqs client config: SendMessage per \
                 send (SendMessageBatch with --batch), receive_all(10, 1 s long poll), \
                 DeleteMessage per ack; payload base64 like the SDK's binary payloads. Differs: \
                 no message attributes (the SDK sends its headers as attributes), one receive \
                 loop (the SDK's poller keeps prefetch messages in flight)."
            }
            (Peer::FastStream, "amqp" | "amqps") => {
                "FastStream (aio-pika) RabbitBroker: publisher confirms on (its default), \
                 mandatory, persist=True, durable fanout exchange + durable queue, prefetch as \
                 the SDK, AckPolicy.ACK (ack after the handler), one asyncio task per producer, \
                 per-message logging off (logger=None). Differs: payload passes through \
                 FastStream's decoder to a `bytes` handler argument; headers are FastStream's own \
                 (correlation_id, content-type)."
            }
            (Peer::FastStream, "nats+js") => {
                "FastStream (nats-py) NatsBroker: JetStream publish awaiting the PubAck, file \
                 stream, durable pull consumer (batch of prefetch), AckPolicy.ACK, logging off. \
                 Differs: FastStream adds its correlation-id and content-type headers (the SDK \
                 with default layers adds message-id, correlation-id, timestamp, traceparent)."
            }
            (Peer::FastStream, "kafka") => {
                "FastStream (aiokafka) KafkaBroker: acks=all and linger 1 ms as the SDK, a \
                 3-partition topic as the SDK creates, consumer group with \
                 auto_offset_reset=earliest, AckPolicy.ACK (commit after the handler), logging \
                 off. Differs: NO idempotent producer (the SDK's is idempotent; aiokafka's \
                 InitProducerId crashes tansu 0.6), aiokafka's own batching and fetch settings."
            }
            (peer, scheme) => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "--peer {} does not cover the {scheme}:// scheme",
                        peer.name()
                    ),
                ))
            }
        };
        Ok(note)
    }
}
