//! The conformance cases. Each is written once against the public API, gated by the broker's
//! [`brokerkit::Capabilities`], and run for every adapter by `conformance_suite!`.
//!
//! Rule for every case: subscribe (build the consumer) before sending, so the group exists
//! on brokers with topic semantics.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use brokerkit::{
    dead_letter_destination, DeadLetterEnvelope, DeadLetterReason, ErrorKind, Headers, Message,
};

use crate::harness::{Ctx, Outcome};

fn text(d: &brokerkit::Delivery) -> String {
    String::from_utf8_lossy(&d.message().payload).into_owned()
}

/// A sent message arrives once, with its payload; after `ack` it is not delivered again.
pub async fn send_receive_ack(c: Ctx) -> Outcome {
    let dest = c.dest("q");
    let mut consumer = c.broker.consumer(&dest).build().await.unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    producer.send(Message::new("hello")).await.unwrap();
    let d = c.recv(&mut consumer).await;
    assert_eq!(text(&d), "hello");
    assert_eq!(d.attempt(), 1);
    assert_eq!(d.destination(), dest);
    d.ack().await.unwrap();
    c.expect_nothing(&mut consumer, Duration::from_millis(500))
        .await;
    Outcome::Passed
}

/// An empty payload is a valid message.
pub async fn empty_payload(c: Ctx) -> Outcome {
    let dest = c.dest("q");
    let mut consumer = c.broker.consumer(&dest).build().await.unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    producer.send(Message::new(Vec::new())).await.unwrap();
    let d = c.recv(&mut consumer).await;
    assert!(d.message().payload.is_empty());
    d.ack().await.unwrap();
    Outcome::Passed
}

/// Canonical and user headers, and the key, arrive unchanged.
pub async fn headers_round_trip(c: Ctx) -> Outcome {
    let caps = c.broker.capabilities().clone();
    let dest = c.dest("q");
    let mut consumer = c.broker.consumer(&dest).build().await.unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    let mut h = Headers::new();
    h.set_message_id("m-1").unwrap();
    h.set_correlation_id("c-1").unwrap();
    h.set_causation_id("m-0").unwrap();
    h.set_idempotency_key("k-1").unwrap();
    h.set_event_type("order.placed").unwrap();
    h.set_event_version(3).unwrap();
    h.set_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .unwrap();
    h.set_tracestate("vendor=x").unwrap();
    h.set_content_type("application/json").unwrap();
    h.set_timestamp(SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000))
        .unwrap();
    h.insert("x-tenant", "acme").unwrap();
    h.insert("x-unicode", "crème brûlée ✓").unwrap();
    h.insert("x-empty", "").unwrap();
    let mut msg = Message::new("{}").with_headers(h.clone());
    if caps.ordering_key.is_available() {
        msg = msg.with_key("customer-7");
    }
    producer.send(msg.clone()).await.unwrap();
    let d = c.recv(&mut consumer).await;
    for (name, value) in h.iter() {
        assert_eq!(d.message().headers.get(name), Some(value), "header {name}");
    }
    assert_eq!(d.message().key, msg.key, "ordering key");
    d.ack().await.unwrap();
    Outcome::Passed
}

/// At-least-once: a delivery dropped unsettled (consumer crash) is delivered again, with
/// the attempt count increased, to another consumer of the group.
pub async fn redelivery_after_drop(c: Ctx) -> Outcome {
    if !c.broker.capabilities().redelivery {
        return Outcome::Skipped("no redelivery (at-most-once)".into());
    }
    let dest = c.dest("q");
    let mut first = c.broker.consumer(&dest).group("g").build().await.unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    producer.send(Message::new("survive")).await.unwrap();
    let d = c.recv(&mut first).await;
    assert_eq!(d.attempt(), 1);
    drop(d);
    drop(first);
    let mut second = c.broker.consumer(&dest).group("g").build().await.unwrap();
    let d = c.recv(&mut second).await;
    assert_eq!(text(&d), "survive");
    assert!(d.attempt() >= 2, "attempt {}", d.attempt());
    d.ack().await.unwrap();
    Outcome::Passed
}

/// `nack` without delay redelivers; the attempt count grows each time.
pub async fn nack_redelivers(c: Ctx) -> Outcome {
    if !c.broker.capabilities().redelivery {
        return Outcome::Skipped("no redelivery (at-most-once)".into());
    }
    let dest = c.dest("q");
    let mut consumer = c.broker.consumer(&dest).build().await.unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    producer.send(Message::new("again")).await.unwrap();
    for attempt in 1..=3 {
        let d = c.recv(&mut consumer).await;
        assert_eq!(text(&d), "again");
        assert_eq!(d.attempt(), attempt);
        if attempt < 3 {
            d.nack(None).await.unwrap();
        } else {
            d.ack().await.unwrap();
        }
    }
    c.expect_nothing(&mut consumer, Duration::from_millis(300))
        .await;
    Outcome::Passed
}

/// `nack` with a delay redelivers no earlier than the delay.
pub async fn nack_with_delay(c: Ctx) -> Outcome {
    if !c.broker.capabilities().delayed_redelivery.is_available() {
        return Outcome::Skipped("no delayed redelivery".into());
    }
    let delay = Duration::from_millis(1500);
    let dest = c.dest("q");
    let mut consumer = c.broker.consumer(&dest).build().await.unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    producer.send(Message::new("later")).await.unwrap();
    let d = c.recv(&mut consumer).await;
    let nacked_at = Instant::now();
    d.nack(Some(delay)).await.unwrap();
    let d = c.recv(&mut consumer).await;
    let waited = nacked_at.elapsed();
    assert!(
        waited >= delay,
        "redelivered after {waited:?}, before {delay:?}"
    );
    assert_eq!((text(&d).as_str(), d.attempt()), ("later", 2));
    d.ack().await.unwrap();
    Outcome::Passed
}

/// Dead-lettering moves the message, unchanged, to `<destination>.dlq` with the envelope;
/// it is not delivered again on the original destination.
pub async fn dead_letter_envelope(c: Ctx) -> Outcome {
    if !c.broker.capabilities().dead_letter.is_available() {
        return Outcome::Skipped("no dead-letter destination".into());
    }
    let dest = c.dest("q");
    let dlq = dead_letter_destination(&dest);
    let mut dead = c.broker.consumer(&dlq).group("ops").build().await.unwrap();
    let mut consumer = c
        .broker
        .consumer(&dest)
        .group("billing")
        .build()
        .await
        .unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    let headers = Headers::new().with("x-order", "42").unwrap();
    producer
        .send(Message::new("poison").with_headers(headers))
        .await
        .unwrap();
    let started = SystemTime::now() - Duration::from_secs(1);
    let d = c.recv(&mut consumer).await;
    d.nack(None).await.unwrap();
    let d = c.recv(&mut consumer).await;
    assert_eq!(d.attempt(), 2);
    d.dead_letter(DeadLetterReason::new("cannot bill").with_kind(ErrorKind::Handler))
        .await
        .unwrap();
    let dl = c.recv(&mut dead).await;
    assert_eq!(text(&dl), "poison");
    assert_eq!(dl.message().headers.get("x-order"), Some("42"));
    let env = DeadLetterEnvelope::read_from(&dl.message().headers).expect("envelope headers");
    assert_eq!(env.reason.reason, "cannot bill");
    assert_eq!(env.reason.error_kind, Some(ErrorKind::Handler));
    assert_eq!(env.attempts, 2);
    assert_eq!(env.original_destination, dest);
    assert_eq!(env.original_group.as_deref(), Some("billing"));
    assert!(env.first_failure >= started && env.first_failure <= env.last_failure);
    assert!(env.last_failure <= SystemTime::now() + Duration::from_secs(1));
    dl.ack().await.unwrap();
    c.expect_nothing(&mut consumer, Duration::from_millis(500))
        .await;
    Outcome::Passed
}

/// Messages with the same ordering key are consumed in send order.
pub async fn ordering_key(c: Ctx) -> Outcome {
    if !c.broker.capabilities().ordering_key.is_available() {
        return Outcome::Skipped("no ordering key".into());
    }
    let dest = c.dest("q");
    let mut consumer = c.broker.consumer(&dest).prefetch(8).build().await.unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    let keys = ["a", "b", "c"];
    let per_key = 10;
    for i in 0..per_key {
        for k in keys {
            producer
                .send(Message::new(format!("{k}:{i}")).with_key(k))
                .await
                .unwrap();
        }
    }
    let mut last: HashMap<String, i64> = HashMap::new();
    for _ in 0..keys.len() * per_key {
        let d = c.recv(&mut consumer).await;
        let body = text(&d);
        let (k, i) = body.split_once(':').unwrap();
        let i: i64 = i.parse().unwrap();
        let prev = last.insert(k.to_string(), i).unwrap_or(-1);
        assert_eq!(i, prev + 1, "key {k}: got {i} after {prev}");
        assert_eq!(d.message().key.as_deref(), Some(k));
        d.ack().await.unwrap();
    }
    Outcome::Passed
}

/// Consumers of one group share the messages: each message goes to one of them.
pub async fn competing_consumers(c: Ctx) -> Outcome {
    if !c.broker.capabilities().competing_consumers {
        return Outcome::Skipped("no competing consumers".into());
    }
    let dest = c.dest("q");
    let mut a = c
        .broker
        .consumer(&dest)
        .group("workers")
        .prefetch(1)
        .build()
        .await
        .unwrap();
    let mut b = c
        .broker
        .consumer(&dest)
        .group("workers")
        .prefetch(1)
        .build()
        .await
        .unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    let n = 20;
    for i in 0..n {
        producer.send(Message::new(format!("{i}"))).await.unwrap();
    }
    // `a` holds one message unsettled (prefetch 1), so `b` must get the next one.
    let held = c.recv(&mut a).await;
    let mut seen = HashSet::from([text(&held)]);
    let first_b = c.recv(&mut b).await;
    assert!(seen.insert(text(&first_b)), "duplicate {}", text(&first_b));
    first_b.ack().await.unwrap();
    held.ack().await.unwrap();
    while seen.len() < n {
        let d = tokio::select! {
            d = a.next() => d,
            d = b.next() => d,
            _ = tokio::time::sleep(crate::RECEIVE_TIMEOUT) => panic!("missing messages: have {}", seen.len()),
        }
        .unwrap()
        .unwrap();
        assert!(seen.insert(text(&d)), "delivered twice: {}", text(&d));
        d.ack().await.unwrap();
    }
    c.expect_nothing(&mut a, Duration::from_millis(300)).await;
    c.expect_nothing(&mut b, Duration::from_millis(300)).await;
    Outcome::Passed
}

/// Every consumer group receives every message (pub/sub fan-out).
pub async fn fan_out_groups(c: Ctx) -> Outcome {
    if !c.broker.capabilities().fan_out {
        return Outcome::Skipped("no fan-out across groups".into());
    }
    let dest = c.dest("t");
    let mut billing = c
        .broker
        .consumer(&dest)
        .group("billing")
        .build()
        .await
        .unwrap();
    let mut email = c
        .broker
        .consumer(&dest)
        .group("email")
        .build()
        .await
        .unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    let n = 5;
    for i in 0..n {
        producer.send(Message::new(format!("{i}"))).await.unwrap();
    }
    for consumer in [&mut billing, &mut email] {
        let mut got = HashSet::new();
        for _ in 0..n {
            let d = c.recv(consumer).await;
            got.insert(text(&d));
            d.ack().await.unwrap();
        }
        assert_eq!(got.len(), n);
    }
    Outcome::Passed
}

/// A payload at the declared maximum is sent; one byte more is `PayloadTooLarge` with both
/// sizes, before any I/O.
pub async fn payload_limit(c: Ctx) -> Outcome {
    let max = c.broker.capabilities().max_payload_bytes;
    let dest = c.dest("q");
    let mut consumer = c.broker.consumer(&dest).build().await.unwrap();
    // No layers: the limit is about the payload alone.
    let producer = c
        .broker
        .producer(&dest)
        .without_default_layers()
        .build()
        .await
        .unwrap();
    let e = producer
        .send(Message::new(vec![b'x'; max + 1]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PayloadTooLarge);
    assert!(e.message().contains(&(max + 1).to_string()) && e.message().contains(&max.to_string()));
    assert_eq!(e.context().destination.as_deref(), Some(dest.as_str()));
    producer.send(Message::new(vec![b'x'; max])).await.unwrap();
    let d = c.recv(&mut consumer).await;
    assert_eq!(d.message().payload.len(), max);
    d.ack().await.unwrap();
    Outcome::Passed
}

/// A batch larger than the broker's batch size is split and every message arrives.
pub async fn batch_send(c: Ctx) -> Outcome {
    let n = (c.broker.capabilities().max_batch * 2 + 3).min(53);
    let dest = c.dest("q");
    let mut consumer = c.broker.consumer(&dest).build().await.unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    let batch = (0..n).map(|i| Message::new(format!("{i}"))).collect();
    producer.send_batch(batch).await.unwrap();
    let mut got = HashSet::new();
    while got.len() < n {
        let d = c.recv(&mut consumer).await;
        got.insert(text(&d));
        d.ack().await.unwrap();
    }
    Outcome::Passed
}

/// A consumer never holds more than `prefetch` unsettled deliveries.
pub async fn prefetch_bound(c: Ctx) -> Outcome {
    let dest = c.dest("q");
    let mut consumer = c.broker.consumer(&dest).prefetch(2).build().await.unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    for i in 0..5 {
        producer.send(Message::new(format!("{i}"))).await.unwrap();
    }
    let d1 = c.recv(&mut consumer).await;
    let d2 = c.recv(&mut consumer).await;
    c.expect_nothing(&mut consumer, Duration::from_millis(400))
        .await;
    d1.ack().await.unwrap();
    let d3 = c.recv(&mut consumer).await;
    for d in [d2, d3] {
        d.ack().await.unwrap();
    }
    Outcome::Passed
}

/// Shutdown stops intake; deliveries already handed out can still be settled; what was
/// never settled is delivered again; nothing is dead-lettered.
pub async fn graceful_shutdown(c: Ctx) -> Outcome {
    let caps = c.broker.capabilities().clone();
    let dest = c.dest("q");
    let mut consumer = c.broker.consumer(&dest).group("g").build().await.unwrap();
    let mut dead = None;
    if caps.dead_letter.is_available() {
        let dlq = dead_letter_destination(&dest);
        dead = Some(c.broker.consumer(&dlq).group("ops").build().await.unwrap());
    }
    let producer = c.broker.producer(&dest).build().await.unwrap();
    producer.send(Message::new("finished")).await.unwrap();
    producer.send(Message::new("cancelled")).await.unwrap();
    let mut a = c.recv(&mut consumer).await;
    let mut b = c.recv(&mut consumer).await;
    if text(&a) != "finished" {
        std::mem::swap(&mut a, &mut b);
    }
    consumer.shutdown_handle().shutdown();
    assert!(
        consumer.next().await.unwrap().is_none(),
        "intake continues after shutdown"
    );
    a.ack().await.unwrap();
    if caps.redelivery {
        drop(b);
        drop(consumer);
        let mut next = c.broker.consumer(&dest).group("g").build().await.unwrap();
        let d = c.recv(&mut next).await;
        assert_eq!(text(&d), "cancelled");
        d.ack().await.unwrap();
        c.expect_nothing(&mut next, Duration::from_millis(500))
            .await;
    } else {
        b.ack().await.unwrap();
    }
    if let Some(dead) = dead.as_mut() {
        c.expect_nothing(dead, Duration::from_millis(300)).await;
    }
    Outcome::Passed
}

/// What the capabilities say is missing fails with `Unsupported` before any I/O, and the
/// delivery is not lost.
pub async fn unsupported_is_refused(c: Ctx) -> Outcome {
    let caps = c.broker.capabilities().clone();
    let dest = c.dest("q");
    let mut consumer = c.broker.consumer(&dest).build().await.unwrap();
    let producer = c.broker.producer(&dest).build().await.unwrap();
    let mut checked = Vec::new();
    if !caps.ordering_key.is_available() {
        let e = producer
            .send(Message::new("k").with_key("k"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        checked.push("ordering key");
    }
    producer.send(Message::new("m")).await.unwrap();
    let d = c.recv(&mut consumer).await;
    let refusal = if !caps.redelivery {
        Some(d.nack(None).await)
    } else if !caps.delayed_redelivery.is_available() {
        Some(d.nack(Some(Duration::from_secs(1))).await)
    } else if let Some(max) = caps.max_delay {
        Some(d.nack(Some(max + Duration::from_secs(1))).await)
    } else if !caps.dead_letter.is_available() {
        Some(d.dead_letter(DeadLetterReason::new("x")).await)
    } else {
        d.ack().await.unwrap();
        None
    };
    if let Some(result) = refusal {
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Unsupported);
        checked.push("settlement");
        if caps.redelivery {
            let d = c.recv(&mut consumer).await;
            assert_eq!(text(&d), "m", "the refused delivery must come back");
            d.ack().await.unwrap();
        }
    }
    if checked.is_empty() {
        return Outcome::Skipped("the adapter supports every optional feature".into());
    }
    Outcome::Passed
}

/// A bad destination or group name is a config error naming what is accepted.
pub async fn bad_destination_name(c: Ctx) -> Outcome {
    for bad in ["", "has space", "slash/name", "ünï"] {
        let e = c
            .broker
            .producer(bad)
            .build()
            .await
            .err()
            .expect("an error");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("letters, digits") || e.message().contains("1 to 200"));
    }
    let e = c
        .broker
        .consumer(&c.dest("q"))
        .group("bad group")
        .build()
        .await
        .err()
        .expect("an error");
    assert_eq!(e.kind(), ErrorKind::Config);
    Outcome::Passed
}
