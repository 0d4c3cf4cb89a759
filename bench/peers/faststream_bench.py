#!/usr/bin/env python3
"""FastStream peer for brokerkit-bench (`--peer faststream`): the SDK run's workload through
FastStream on RabbitMQ, NATS JetStream or Kafka.

`--producers` asyncio tasks each publish their share, awaiting every publish (RabbitMQ:
publisher confirm; JetStream: PubAck; Kafka: the produce ack), one subscriber handles each
message and FastStream acks it after the handler (AckPolicy.ACK). The clock runs from the
first timed publish to the last handled message; one warm-up message goes through first so the
subscriber is attached (Kafka: has its partitions) before the clock starts, as the SDK's
consumer is built before its clock starts. Per-message logging is off (logger=None).

The broker URL comes from $BENCH_BROKER_URL (never the command line). Prints one JSON line:
{"messages", "elapsed_s", "msgs_per_s"}; every latency in microseconds (publish stamp to
handler) goes to --latencies-out as little-endian u64s.

Run by brokerkit-bench; by hand:
  BENCH_BROKER_URL=nats://127.0.0.1:4222 .venv/bin/python faststream_bench.py --broker nats \
      --messages 20000 --latencies-out /tmp/lat.bin
"""

import argparse
import asyncio
import json
import os
import struct
import sys
import time
import uuid

from faststream import AckPolicy

STAMP = struct.Struct("<Q")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--broker", choices=["rabbitmq", "nats", "kafka"], required=True)
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--producers", type=int, default=1)
    p.add_argument("--prefetch", type=int, default=256)
    p.add_argument("--latencies-out", required=True)
    a = p.parse_args()
    if a.size < 8 or a.messages < 1 or a.producers < 1 or a.prefetch < 1:
        p.error("--size must be >= 8; --messages, --producers and --prefetch >= 1")
    a.url = os.environ.get("BENCH_BROKER_URL")
    if not a.url:
        p.error("set BENCH_BROKER_URL")
    return a


class Sink:
    """Counts handled messages and records latencies; the first message is the warm-up."""

    def __init__(self, messages):
        self.expected = messages
        self.latencies = []
        self.warm = asyncio.Event()
        self.done = asyncio.Event()

    def record(self, body: bytes):
        if not self.warm.is_set():
            self.warm.set()
            return
        (sent,) = STAMP.unpack_from(body)
        self.latencies.append((time.monotonic_ns() - sent) // 1000)
        if len(self.latencies) >= self.expected:
            self.done.set()


def payload(size):
    body = bytearray(b"\xab" * size)
    STAMP.pack_into(body, 0, time.monotonic_ns())
    return bytes(body)


def rabbitmq(a, name, sink):
    from faststream.rabbit import (Channel, ExchangeType, RabbitBroker,
                                   RabbitExchange, RabbitQueue)

    broker = RabbitBroker(a.url, logger=None)
    exchange = RabbitExchange(name, type=ExchangeType.FANOUT, durable=True)
    queue = RabbitQueue(f"{name}:bench", durable=True)

    @broker.subscriber(queue, exchange, channel=Channel(prefetch_count=a.prefetch),
                       ack_policy=AckPolicy.ACK)
    async def handle(body: bytes):
        sink.record(body)

    async def send(body):
        # Publisher confirms are on by default (Channel.publisher_confirms); mandatory=True.
        await broker.publish(body, exchange=exchange, persist=True)

    async def after_stop():
        # Best effort, like the Rust runs: the durable queue and exchange go again (after the
        # subscriber stopped, so the broker does not cancel it).
        import aio_pika

        try:
            conn = await aio_pika.connect(a.url)
            async with conn:
                channel = await conn.channel()
                await channel.queue_delete(queue.name)
                await channel.exchange_delete(exchange.name)
        except Exception:
            pass

    return broker, send, nothing, after_stop


async def nothing():
    pass


def nats(a, name, sink):
    from faststream.nats import JStream, NatsBroker, PullSub
    from nats.js.api import StorageType

    broker = NatsBroker(a.url, logger=None)
    stream = JStream(name, subjects=[name], storage=StorageType.FILE)

    @broker.subscriber(name, stream=stream, durable="bench",
                       pull_sub=PullSub(batch_size=a.prefetch), ack_policy=AckPolicy.ACK)
    async def handle(body: bytes):
        sink.record(body)

    async def send(body):
        await broker.publish(body, name, stream=name)  # awaits the JetStream PubAck

    async def before_stop():
        try:
            await broker.config.connection_state.stream.delete_stream(name)
        except Exception:  # best effort, like the Rust runs
            pass

    return broker, send, before_stop, nothing


def kafka(a, name, sink):
    from faststream.kafka import KafkaBroker

    # acks=all and linger 1 ms as the SDK; idempotence stays off: aiokafka's InitProducerId
    # request is refused by tansu (the connection is closed), the SDK's rdkafka one is not.
    broker = KafkaBroker(a.url, logger=None, acks="all", linger_ms=1)

    @broker.subscriber(name, group_id="bench", auto_offset_reset="earliest",
                       max_records=a.prefetch, ack_policy=AckPolicy.ACK)
    async def handle(body: bytes):
        sink.record(body)

    async def send(body):
        await broker.publish(body, name)

    # The topic stays, as the SDK's Kafka runs leave theirs (tansu 0.6 has unimplemented
    # admin paths; see the idempotence note above).
    return broker, send, nothing, nothing


async def create_kafka_topic(bootstrap, name):
    """Creates the topic with 3 partitions, as the SDK's adapter does (partitions=3)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()


async def main():
    a = parse_args()
    name = f"bench-faststream-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    sink = Sink(a.messages)
    if a.broker == "kafka":
        await create_kafka_topic(a.url, name)
    broker, send, before_stop, after_stop = {"rabbitmq": rabbitmq, "nats": nats, "kafka": kafka}[a.broker](
        a, name, sink)
    await broker.start()
    try:
        await send(payload(a.size))
        await asyncio.wait_for(sink.warm.wait(), timeout=60)

        async def producer(share):
            for _ in range(share):
                await send(payload(a.size))

        shares = [a.messages // a.producers + (1 if p < a.messages % a.producers else 0)
                  for p in range(a.producers)]
        started = time.monotonic()
        senders = asyncio.gather(*(producer(s) for s in shares))
        await asyncio.wait_for(asyncio.gather(senders, sink.done.wait()), timeout=3600)
        elapsed = time.monotonic() - started
        await before_stop()
    finally:
        await broker.stop()
    await after_stop()
    with open(a.latencies_out, "wb") as f:
        f.write(b"".join(STAMP.pack(us) for us in sink.latencies))
    print(json.dumps({"messages": len(sink.latencies), "elapsed_s": elapsed,
                      "msgs_per_s": len(sink.latencies) / elapsed}))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
