//! User-written layers on both ends, tower middleware, and changing the default stacks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokerkit::layers::from_fn;
use brokerkit::layers::receive::{Incoming, ReceiveService};
use brokerkit::layers::send::{Outgoing, SendService};
use brokerkit::{
    dead_letter_destination, Broker, Context, DeadLetterEnvelope, Error, ErrorKind, Message,
    RetryPolicy,
};

async fn recv(c: &mut brokerkit::Consumer) -> brokerkit::Delivery {
    tokio::time::timeout(Duration::from_secs(5), c.next())
        .await
        .expect("a delivery in time")
        .unwrap()
        .expect("a delivery")
}

fn tenant(t: &str, body: &str) -> Message {
    let mut m = Message::new(body.to_string());
    m.headers.insert("tenant", t).unwrap();
    m
}

/// The README's receive layer: counts deliveries and dead-letters a blocked tenant without
/// running the handler.
#[tokio::test]
async fn user_receive_layer_counts_and_rejects_a_tenant() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut dlq = broker
        .consumer(&dead_letter_destination("orders"))
        .build()
        .await
        .unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    let tenant_check = from_fn(move |incoming: Incoming, next: ReceiveService| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            match incoming.message.headers.get("tenant") {
                Some("blocked") => Err(Error::new(ErrorKind::Rejected, "tenant is blocked")),
                _ => next.run(incoming).await,
            }
        }
    });
    let handled = Arc::new(Mutex::new(Vec::new()));
    let handled_in = handled.clone();
    let stop = Arc::new(tokio::sync::Notify::new());
    let stop_in = stop.clone();
    let builder = broker
        .consumer("orders")
        .group("billing")
        .layer("tenant_check", tenant_check);
    assert_eq!(
        builder.layer_names(),
        [
            "trace",
            "correlation",
            "metrics",
            "retry",
            "decode",
            "idempotency",
            "tenant_check"
        ]
    );
    let running = builder
        .handle_raw(move |_ctx: Context, m: Message| {
            let handled = handled_in.clone();
            async move {
                handled.lock().unwrap().push(m.payload.to_vec());
                Ok(())
            }
        })
        .start(async move { stop_in.notified().await })
        .await
        .unwrap();
    let producer = broker.producer("orders").build().await.unwrap();
    producer.send(tenant("acme", "a")).await.unwrap();
    producer.send(tenant("blocked", "b")).await.unwrap();
    let dead = recv(&mut dlq).await;
    let envelope = DeadLetterEnvelope::read_from(&dead.message().headers).unwrap();
    assert!(envelope.reason.reason.contains("tenant is blocked"));
    assert_eq!(envelope.reason.error_kind, Some(ErrorKind::Rejected));
    assert_eq!(&dead.message().payload[..], b"b");
    dead.ack().await.unwrap();
    while handled.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.notify_one();
    let report = running.join().await.unwrap();
    assert_eq!(*handled.lock().unwrap(), vec![b"a".to_vec()]);
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    assert_eq!((report.acked, report.dead_lettered), (1, 1));
}

/// The README's send layer: async, sees the destination and the result of every send.
#[tokio::test]
async fn user_send_layer_is_async_and_sees_destination_and_result() {
    let broker = Broker::connect("memory://?max_payload_bytes=16")
        .await
        .unwrap();
    let log: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let log_in = log.clone();
    let audit = from_fn(move |mut out: Outgoing, next: SendService| {
        let log = log_in.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(1)).await; // e.g. ask a registry
            for m in out.messages_mut() {
                m.headers.insert("x-audited", "yes")?;
            }
            let destination = out.destination().to_string();
            let result = next.run(out).await;
            log.lock().unwrap().push((destination, result.is_ok()));
            result
        }
    });
    let mut consumer = broker.consumer("audit").build().await.unwrap();
    let producer = broker
        .producer("audit")
        .layer("audit", audit)
        .build()
        .await
        .unwrap();
    producer.send(Message::new("small")).await.unwrap();
    let e = producer
        .send(Message::new(vec![0u8; 17]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PayloadTooLarge);
    let d = recv(&mut consumer).await;
    assert_eq!(d.message().headers.get("x-audited"), Some("yes"));
    assert!(
        d.message().headers.message_id().is_some(),
        "default layers still ran"
    );
    assert_eq!(
        *log.lock().unwrap(),
        vec![("audit".to_string(), true), ("audit".to_string(), false)]
    );
}

/// Any tower middleware fits: a timeout around the handler fails slow runs, and the retry
/// policy dead-letters them after its attempts.
#[tokio::test]
async fn tower_timeout_layer_fails_slow_handlers() {
    use tower::ServiceBuilder;
    let broker = Broker::connect("memory://").await.unwrap();
    let mut dlq = broker
        .consumer(&dead_letter_destination("slow"))
        .build()
        .await
        .unwrap();
    let timeout = ServiceBuilder::new()
        .map_err(|e: tower::BoxError| Error::new(ErrorKind::Timeout, e.to_string()))
        .timeout(Duration::from_millis(20))
        .into_inner();
    let stop = Arc::new(tokio::sync::Notify::new());
    let stop_in = stop.clone();
    let running = broker
        .consumer("slow")
        .retry(RetryPolicy::immediate(2))
        .layer("timeout", timeout)
        .handle_raw(|_ctx, _m| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .start(async move { stop_in.notified().await })
        .await
        .unwrap();
    broker
        .producer("slow")
        .build()
        .await
        .unwrap()
        .send(Message::new("x"))
        .await
        .unwrap();
    let dead = recv(&mut dlq).await;
    let envelope = DeadLetterEnvelope::read_from(&dead.message().headers).unwrap();
    assert_eq!(envelope.reason.error_kind, Some(ErrorKind::Timeout));
    assert_eq!(envelope.attempts, 2);
    stop.notify_one();
    running.join().await.unwrap();
}

#[tokio::test]
async fn defaults_can_be_removed_and_mistakes_are_config_errors() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut consumer = broker.consumer("plain").build().await.unwrap();
    let builder = broker.producer("plain").without_layer("correlation");
    assert_eq!(
        builder.layer_names(),
        ["trace_context", "schema", "idempotency_key", "metrics"]
    );
    builder
        .build()
        .await
        .unwrap()
        .send(Message::new("x"))
        .await
        .unwrap();
    let d = recv(&mut consumer).await;
    assert_eq!(d.message().headers.message_id(), None);

    let e = match broker.producer("plain").without_layer("nope").build().await {
        Ok(_) => panic!("an unknown layer name must fail"),
        Err(e) => e,
    };
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("nope") && e.message().contains("correlation"));

    let e = broker
        .consumer("plain")
        .without_layer("nope")
        .handle_raw(|_ctx, _m| async { Ok(()) })
        .run_until(async {})
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("decode"));
}

/// A raw consumer gets trace and correlation context through `Context::of(..).run(..)`.
#[tokio::test]
async fn raw_consumer_gets_correlation_context() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut first = broker.consumer("a").build().await.unwrap();
    let mut second = broker.consumer("b").build().await.unwrap();
    let to_a = broker.producer("a").build().await.unwrap();
    let to_b = broker.producer("b").build().await.unwrap();
    to_a.send(Message::new("x")).await.unwrap();
    let d = recv(&mut first).await;
    let ctx = Context::of(&d, None);
    let id = ctx.message_id().unwrap().to_string();
    ctx.run(to_b.send(Message::new("y"))).await.unwrap();
    d.ack().await.unwrap();
    let next = recv(&mut second).await;
    assert_eq!(next.message().headers.causation_id(), Some(id.as_str()));
    assert_eq!(next.message().headers.correlation_id(), Some(id.as_str()));
}

/// Health needs no I/O: a running handler shows its live report and a stuck handler.
#[tokio::test]
async fn health_shows_running_handlers_and_stuck_ones() {
    let broker = Broker::connect("memory://?visibility_timeout_ms=300")
        .await
        .unwrap();
    assert_eq!(broker.health().last_round_trip, None);
    let stop = Arc::new(tokio::sync::Notify::new());
    let stop_in = stop.clone();
    let running = broker
        .consumer("health")
        .drain_timeout(Duration::from_millis(100))
        .handle_raw(|_ctx, m: Message| async move {
            if &m.payload[..] == b"hang" {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            Ok(())
        })
        .start(async move { stop_in.notified().await })
        .await
        .unwrap();
    let producer = broker.producer("health").build().await.unwrap();
    producer.send(Message::new("ok")).await.unwrap();
    producer.send(Message::new("hang")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let h = running.health();
    assert_eq!(h.report.acked, 1);
    assert_eq!((h.in_flight, h.stuck), (1, 1), "{h:?}");
    let b = broker.health();
    assert_eq!(
        (b.handlers_running, b.handlers_stuck, b.consumers_running),
        (1, 1, 1)
    );
    assert!(b.last_round_trip.is_some() && !b.is_ready(Duration::from_secs(60)));
    stop.notify_one();
    let report = running.join().await.unwrap();
    assert_eq!((report.acked, report.cancelled), (1, 1));
    let b = broker.health();
    assert_eq!((b.handlers_running, b.consumers_running), (0, 0));
}

/// A panic in the idempotency key function or in the synchronous part of a handler closure
/// dead-letters that message; the run goes on and drains normally.
#[tokio::test]
async fn panics_in_key_functions_and_handler_closures_do_not_stop_the_run() {
    let broker = Broker::connect("memory://").await.unwrap();
    let mut dlq = broker
        .consumer(&dead_letter_destination("panics"))
        .build()
        .await
        .unwrap();
    let store = brokerkit::connect_store("memory://").await.unwrap();
    let idem = brokerkit::Idempotency::new(store).key_fn(|m: &Message| {
        assert!(&m.payload[..] != b"key", "key function blew up");
        Some(String::from_utf8_lossy(&m.payload).into_owned())
    });
    let handled = Arc::new(AtomicUsize::new(0));
    let handled_in = handled.clone();
    let stop = Arc::new(tokio::sync::Notify::new());
    let stop_in = stop.clone();
    let running = broker
        .consumer("panics")
        .retry(RetryPolicy::immediate(2))
        .idempotency(idem)
        .handle_raw(move |_ctx, m: Message| {
            assert!(&m.payload[..] != b"sync", "handler closure blew up");
            handled_in.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .start(async move { stop_in.notified().await })
        .await
        .unwrap();
    let producer = broker.producer("panics").build().await.unwrap();
    for body in ["key", "sync", "fine"] {
        producer.send(Message::new(body)).await.unwrap();
    }
    let mut dead = Vec::new();
    for _ in 0..2 {
        let d = recv(&mut dlq).await;
        let envelope = DeadLetterEnvelope::read_from(&d.message().headers).unwrap();
        assert!(
            envelope.reason.reason.contains("panicked"),
            "{}",
            envelope.reason.reason
        );
        dead.push(d.message().payload.to_vec());
        d.ack().await.unwrap();
    }
    dead.sort();
    assert_eq!(dead, vec![b"key".to_vec(), b"sync".to_vec()]);
    while handled.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.notify_one();
    let report = running.join().await.expect("the run survives the panics");
    assert_eq!((report.acked, report.dead_lettered), (1, 2));
}
