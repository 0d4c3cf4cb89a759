#!/usr/bin/env python3
"""CloudEvents interop with a non-Rust client: the Python `cloudevents` SDK (Kafka binding,
binary mode) with confluent-kafka. Run by tests/cloudevents_python.rs.

  cloudevents_interop.py produce BOOTSTRAP TOPIC
      sends one binary-mode CloudEvent, prints {"id", "type", "time"} as JSON
  cloudevents_interop.py consume BOOTSTRAP TOPIC TIMEOUT_SECONDS
      reads the first record of TOPIC as a binary-mode CloudEvent, prints its attributes and
      data as JSON (exit 1 if none arrives in time)

Exit 3 when the Python packages are missing (the test then skips, or fails when required).
"""
import json
import sys
import uuid

try:
    from cloudevents.http import CloudEvent
    from cloudevents.kafka import KafkaMessage, from_binary, to_binary
    from confluent_kafka import Consumer, Producer
except ImportError as e:  # pragma: no cover
    print(f"missing Python package: {e}", file=sys.stderr)
    sys.exit(3)


def produce(bootstrap: str, topic: str) -> None:
    event = CloudEvent(
        {
            "type": "com.example.interop.placed",
            "source": "/python/orders",
            "id": f"py-{uuid.uuid4()}",
            "time": "2018-04-05T03:56:24Z",
            "datacontenttype": "application/json",
        },
        {"id": 42},
    )
    msg = to_binary(event, data_marshaller=lambda d: json.dumps(d).encode())
    p = Producer({"bootstrap.servers": bootstrap})
    p.produce(topic, value=msg.value, key=msg.key, headers=list(msg.headers.items()))
    if p.flush(30) != 0:
        sys.exit("the record was not delivered")
    print(json.dumps({"id": event["id"], "type": event["type"], "time": event["time"]}))


def consume(bootstrap: str, topic: str, timeout: float) -> None:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"python-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
        }
    )
    c.subscribe([topic])
    import time

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            headers = {k: v for k, v in (m.headers() or [])}
            event = from_binary(
                KafkaMessage(headers=headers, key=m.key(), value=m.value()),
                data_unmarshaller=lambda b: json.loads(b),
            )
            attrs = {k: v for k, v in event.get_attributes().items() if isinstance(v, str)}
            print(json.dumps({"attributes": attrs, "data": event.get_data()}))
            return
    finally:
        c.close()
    sys.exit("no record arrived in time")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 5 and sys.argv[1] == "consume":
        consume(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        sys.exit(__doc__)
