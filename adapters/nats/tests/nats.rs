//! NATS broker-level tests: bad input, and the JetStream features the conformance suite does
//! not cover (max_deliver, dedup, ack_wait). The unreachable broker and foreign headers are
//! shared cases (`fixture/mod.rs`); the broker restart mid-stream is the fault case in
//! `tests/fault_suite.rs` (a private `nats-server`). They use the NATS server at
//! `$BROKERKIT_NATS_JS_URL` (default `nats+js://127.0.0.1:4222`).

#[allow(dead_code)]
mod fixture;

use brokerkit_integration_tests::{expect_none, receive};
use std::time::{Duration, Instant};

use brokerkit::{dead_letter_destination, Broker, DeadLetterEnvelope, ErrorKind, Headers, Message};

const WAIT: Duration = Duration::from_secs(15);

fn js_url() -> Option<String> {
    brokerkit_integration_tests::broker_url(
        "nats",
        "BROKERKIT_NATS_JS_URL",
        "nats+js://127.0.0.1:4222",
    )
}

/// `nats://host:port` of the JetStream URL, for the raw client.
fn raw_address(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host = rest.split(['?', '/']).next().unwrap_or(rest);
    let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
    format!("nats://{host}")
}

fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("bk-{prefix}-{}", &id[..10])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_url_key_is_a_config_error_listing_the_keys() {
    let e = Broker::connect("nats+js://127.0.0.1:4222?prefetch=3")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.message().contains("max_deliver") && e.message().contains("ack_wait_ms"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_stream_without_auto_create_is_not_found() {
    let Some(url) = js_url() else { return };
    let broker = Broker::connect(&format!("{url}?auto_create=false"))
        .await
        .unwrap();
    let dest = unique("missing");
    let e = broker
        .producer(&dest)
        .build()
        .await
        .err()
        .expect("an error");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(
        e.message().contains(&dest) && e.message().contains("auto_create"),
        "{e}"
    );
    assert_eq!(e.context().destination.as_deref(), Some(dest.as_str()));
    let e = broker
        .consumer(&dest)
        .build()
        .await
        .err()
        .expect("an error");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    broker.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_limits_follow_the_server_max_payload() {
    let Some(url) = js_url() else { return };
    let raw = async_nats::connect(raw_address(&url)).await.unwrap();
    let server_max = raw.server_info().max_payload;
    let broker = Broker::connect(&url).await.unwrap();
    let max = broker.capabilities().max_payload_bytes;
    assert_eq!(max, server_max - brokerkit_nats::HEADER_RESERVE);
    let dest = unique("limit");
    let mut consumer = broker.consumer(&dest).build().await.unwrap();
    let producer = broker.producer(&dest).build().await.unwrap();
    // Payload within the declared maximum, but headers push it past the server's limit:
    // refused before sending.
    let big = Headers::new()
        .with("x-big", "v".repeat(brokerkit::core::headers::MAX_VALUE_LEN))
        .unwrap();
    let e = producer
        .send(Message::new(vec![1u8; max]).with_headers(big))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PayloadTooLarge, "{e}");
    assert!(e.message().contains(&server_max.to_string()), "{e}");
    let e = producer
        .send(Message::new(vec![1u8; max + 1]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PayloadTooLarge, "{e}");
    // The connection is unharmed; exactly max goes through, with typical headers too.
    let small = Headers::new().with("x-order", "42").unwrap();
    producer
        .send(Message::new(vec![2u8; max]).with_headers(small))
        .await
        .unwrap();
    let d = receive(&mut consumer).await;
    assert_eq!(d.message().payload.len(), max);
    d.ack().await.unwrap();
    broker.close().await.unwrap();

    let core = Broker::connect(&raw_address(&url)).await.unwrap();
    assert_eq!(core.capabilities().max_payload_bytes, server_max);
    core.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_idempotency_key_is_stored_once() {
    let Some(url) = js_url() else { return };
    let broker = Broker::connect(&url).await.unwrap();
    assert!(broker.capabilities().native_dedup);
    let dest = unique("dedup");
    let mut consumer = broker.consumer(&dest).build().await.unwrap();
    let producer = broker.producer(&dest).build().await.unwrap();
    for body in ["first", "second"] {
        let mut h = Headers::new();
        h.set_idempotency_key("order-1001").unwrap();
        producer
            .send(Message::new(body).with_headers(h))
            .await
            .unwrap();
    }
    let raw = async_nats::jetstream::new(async_nats::connect(raw_address(&url)).await.unwrap());
    let mut stream = raw.get_stream(&dest).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    let d = receive(&mut consumer).await;
    assert_eq!(&d.message().payload[..], b"first");
    assert_eq!(d.message().headers.idempotency_key(), Some("order-1001"));
    assert!(d.message().headers.get("Nats-Msg-Id").is_none());
    d.ack().await.unwrap();
    expect_none(&mut consumer, Duration::from_millis(500)).await;
    broker.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_deliver_dead_letters_the_last_nacked_attempt() {
    let Some(url) = js_url() else { return };
    let broker = Broker::connect(&format!("{url}?max_deliver=2"))
        .await
        .unwrap();
    let dest = unique("maxdeliver");
    let mut dead = broker
        .consumer(&dead_letter_destination(&dest))
        .group("ops")
        .build()
        .await
        .unwrap();
    let mut consumer = broker
        .consumer(&dest)
        .group("billing")
        .build()
        .await
        .unwrap();
    let producer = broker.producer(&dest).build().await.unwrap();
    let h = Headers::new().with("x-order", "7").unwrap();
    producer
        .send(Message::new("poison").with_headers(h).with_key("c-1"))
        .await
        .unwrap();
    for attempt in 1..=2 {
        let d = receive(&mut consumer).await;
        assert_eq!(d.attempt(), attempt);
        d.nack(None).await.unwrap();
    }
    let dl = receive(&mut dead).await;
    assert_eq!(&dl.message().payload[..], b"poison");
    assert_eq!(dl.message().headers.get("x-order"), Some("7"));
    assert_eq!(dl.message().key.as_deref(), Some("c-1"));
    let env = DeadLetterEnvelope::read_from(&dl.message().headers).unwrap();
    assert!(env.reason.reason.contains("max_deliver of 2"), "{env:?}");
    assert_eq!(
        (env.attempts, env.original_group.as_deref()),
        (2, Some("billing"))
    );
    assert!(env.first_failure <= env.last_failure);
    dl.ack().await.unwrap();
    expect_none(&mut consumer, Duration::from_millis(500)).await;
    broker.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_wait_is_the_visibility_timeout() {
    let Some(url) = js_url() else { return };
    let broker = Broker::connect(&format!("{url}?ack_wait_ms=1000"))
        .await
        .unwrap();
    let dest = unique("ackwait");
    let mut a = broker.consumer(&dest).group("g").build().await.unwrap();
    let mut b = broker.consumer(&dest).group("g").build().await.unwrap();
    let producer = broker.producer(&dest).build().await.unwrap();
    producer.send(Message::new("slow")).await.unwrap();
    let held = tokio::select! {
        d = a.next() => d.unwrap().unwrap(),
        d = b.next() => d.unwrap().unwrap(),
    };
    let started = Instant::now();
    let again = tokio::select! {
        d = a.next() => d.unwrap().unwrap(),
        d = b.next() => d.unwrap().unwrap(),
        _ = tokio::time::sleep(WAIT) => panic!("not redelivered after ack_wait"),
    };
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        (&again.message().payload[..], again.attempt()),
        (&b"slow"[..], 2)
    );
    again.ack().await.unwrap();
    // Settling the expired delivery later is harmless.
    held.ack().await.unwrap();
    broker.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_stream_capturing_the_subject_is_used_with_a_filter() {
    use async_nats::jetstream::stream;
    let Some(url) = js_url() else { return };
    let prefix = unique("shared");
    let raw = async_nats::jetstream::new(async_nats::connect(raw_address(&url)).await.unwrap());
    let name = format!("{prefix}-STREAM");
    raw.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![format!("{prefix}.>")],
        ..Default::default()
    })
    .await
    .unwrap();
    let broker = Broker::connect(&format!("{url}?auto_create=false"))
        .await
        .unwrap();
    let (eu, us) = (format!("{prefix}.eu"), format!("{prefix}.us"));
    let mut eu_consumer = broker.consumer(&eu).build().await.unwrap();
    let mut us_consumer = broker.consumer(&us).build().await.unwrap();
    broker
        .producer(&eu)
        .build()
        .await
        .unwrap()
        .send(Message::new("eu-1"))
        .await
        .unwrap();
    broker
        .producer(&us)
        .build()
        .await
        .unwrap()
        .send(Message::new("us-1"))
        .await
        .unwrap();
    let d = receive(&mut eu_consumer).await;
    assert_eq!(&d.message().payload[..], b"eu-1");
    d.ack().await.unwrap();
    let d = receive(&mut us_consumer).await;
    assert_eq!(&d.message().payload[..], b"us-1");
    d.ack().await.unwrap();
    expect_none(&mut eu_consumer, Duration::from_millis(300)).await;
    let mut info = raw.get_stream(&name).await.unwrap();
    assert_eq!(info.info().await.unwrap().state.messages, 2);
    broker.close().await.unwrap();
    raw.delete_stream(&name).await.unwrap();
}

/// A `nats-server` child process with JetStream, on a free loopback port.
/// Issue 12 item 5: a dead-letter copy larger than the server's `max_payload` (payload at the
/// declared maximum, envelope past the 4 KiB reserve) cannot be published, so the original is
/// kept and comes back. Before, the handler then ran again, forever; now the run stops after
/// `SETTLE_FAILURE_LIMIT` failed settles of that message, with the reason, and the live
/// report counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_that_keeps_failing_stops_the_run_instead_of_looping() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let Some(url) = js_url() else { return };
    let broker = Broker::connect(&url).await.unwrap();
    let dest = unique("settleloop");
    let max = broker.capabilities().max_payload_bytes;
    let producer = broker.producer(&dest).build().await.unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = broker
        .consumer(&dest)
        .group("billing")
        .handle_raw(move |_ctx, _message| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                Err(brokerkit::Error::new(
                    ErrorKind::Rejected,
                    "x".repeat(8 * 1024), // a long reason: the envelope outgrows the reserve
                )
                .into())
            }
        })
        .start(async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    producer.send(Message::new(vec![b'p'; max])).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while !running.is_finished() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let n = runs.load(Ordering::SeqCst);
    if ended.is_err() {
        let _ = stop_tx.send(());
        let _ = running.join().await;
        broker.close().await.unwrap();
        panic!("the handler ran {n} times in 20 s and the run never stopped");
    }
    let report = running.health().report;
    let e = running.join().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PayloadTooLarge, "{e}");
    assert!(e.message().contains("settl"), "{e}");
    let limit = brokerkit::SETTLE_FAILURE_LIMIT;
    assert_eq!(n, limit, "handler runs");
    assert_eq!(report.settle_failed, u64::from(limit), "{report:?}");
    assert_eq!(report.settle_given_up, 1, "{report:?}");
    drop(stop_tx);
    broker.close().await.unwrap();
}

/// The dead-letter stream already has a consumer, so the default group a redrive creates
/// starts at the tail: the redrive says so (`unreached`, which `brokerkit dlq redrive` turns
/// into exit 1 and a `--group` hint) instead of reporting "moved 0"; naming the group that
/// holds them moves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_from_a_group_started_at_the_tail_is_reported() {
    use brokerkit::redrive::{redrive, RedriveOptions};
    use brokerkit::DeadLetterReason;
    let Some(u) = js_url() else {
        return;
    };
    let dest = unique("redrive-tail");
    let broker = Broker::connect(&u).await.unwrap();
    let mut svc = broker.consumer(&dest).group("svc").build().await.unwrap();
    let p = broker.producer(&dest).build().await.unwrap();
    for i in 0..2 {
        p.send(Message::new(format!("m{i}"))).await.unwrap();
    }
    for _ in 0..2 {
        receive(&mut svc)
            .await
            .dead_letter(DeadLetterReason::new("boom"))
            .await
            .unwrap();
    }
    svc.close().await.unwrap();
    // Someone read the dead letters as group "ops" first.
    let dlq = dead_letter_destination(&dest);
    let mut ops = broker.consumer(&dlq).group("ops").build().await.unwrap();
    ops.close().await.unwrap();
    let idle = Duration::from_secs(2);
    let r = redrive(&broker, &dlq, RedriveOptions::default().idle(idle))
        .await
        .unwrap();
    assert_eq!((r.total_moved(), r.unreached), (0, 2), "{r:?}");
    let r = redrive(
        &broker,
        &dlq,
        RedriveOptions::default().idle(idle).group("ops"),
    )
    .await
    .unwrap();
    assert_eq!(r.total_moved(), 2, "{r:?}");
    broker.close().await.unwrap();
}

/// Runs `work` on a runtime of its own that is dropped right after, as a process that exits
/// after `Broker::close` (the CLI does exactly that).
fn in_a_process<F: std::future::Future<Output = ()>>(work: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(work);
    drop(runtime);
}

/// An ack and a delayed nack sent just before `Broker::close` reach the server even when the
/// process ends right after. Failed before `close` flushed the client: both were lost, the
/// acked message came back (a duplicate) and the nacked one waited out `ack_wait` instead of
/// its delay (what made `brokerkit dlq redrive` miss dead letters a previous run kept).
#[test]
fn acks_and_naks_just_before_close_are_not_lost() {
    let Some(url) = js_url() else { return };
    let url = format!("{url}?ack_wait_ms=4000");
    let dest = unique("closeflush");
    in_a_process(async {
        let broker = Broker::connect(&url).await.unwrap();
        let mut consumer = broker.consumer(&dest).group("g").build().await.unwrap();
        let producer = broker.producer(&dest).build().await.unwrap();
        producer.send(Message::new("acked")).await.unwrap();
        producer.send(Message::new("nacked")).await.unwrap();
        for _ in 0..2 {
            let d = tokio::time::timeout(WAIT, consumer.next())
                .await
                .expect("delivered")
                .unwrap()
                .unwrap();
            if &d.message().payload[..] == b"acked" {
                d.ack().await.unwrap();
            } else {
                d.nack(Some(Duration::from_millis(500))).await.unwrap();
            }
        }
        drop(consumer);
        broker.close().await.unwrap();
    });
    in_a_process(async {
        let started = Instant::now();
        let broker = Broker::connect(&url).await.unwrap();
        let mut consumer = broker.consumer(&dest).group("g").build().await.unwrap();
        let d = tokio::time::timeout(WAIT, consumer.next())
            .await
            .expect("the nacked message comes back")
            .unwrap()
            .unwrap();
        assert_eq!(&d.message().payload[..], b"nacked");
        assert!(
            started.elapsed() < Duration::from_millis(3500),
            "the nacked message came back only after {:?}: its nack was lost and ack_wait \
             redelivered it",
            started.elapsed()
        );
        d.ack().await.unwrap();
        let again = tokio::time::timeout(Duration::from_secs(6), consumer.next()).await;
        if let Ok(Ok(Some(d))) = &again {
            panic!(
                "{:?} came back after it was acked",
                String::from_utf8_lossy(&d.message().payload)
            );
        }
        drop(consumer);
        broker.close().await.unwrap();
    });
}

/// A private nats-server (the cases stop it with `SIGSTOP`) and a broker connected to it;
/// `None` (the case skipped, and said so) without a nats-server binary.
async fn paused_server_case(
) -> Option<(brokerkit_integration_tests::fixture::PrivateServer, Broker)> {
    use brokerkit_integration_tests::fixture::Restartable;
    let server = match fixture::private_nats().await {
        Ok(s) => s,
        Err(why) => {
            eprintln!("SKIP: {why}");
            return None;
        }
    };
    let broker = Broker::connect(&server.url()).await.expect("connect");
    Some((server, broker))
}

/// A batch whose publish acks do not come (a server that stops answering) ends within about
/// one `request_timeout` (2 s on the private server), not one per entry. Failed before the
/// acks were awaited together: the batch took 2 s per entry (the fault suite's restart case
/// waited 34 × 2 s = 68 s for one batch; this one hit the 60 s bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_acks_do_not_come_ends_within_one_request_timeout() {
    let Some((server, broker)) = paused_server_case().await else {
        return;
    };
    let dest = unique("bk-batch-paused");
    let producer = broker.producer(&dest).build().await.expect("producer");
    producer
        .send(Message::new("warm-up"))
        .await
        .expect("warm-up");
    server.pause(true);
    let batch: Vec<Message> = (0..100).map(|i| Message::new(i.to_string())).collect();
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(60), producer.send_batch(batch)).await;
    let took = started.elapsed();
    server.pause(false);
    let result = outcome.unwrap_or_else(|_| panic!("the batch did not end within 60 s"));
    let e = result.expect_err("no ack can come from a stopped server");
    assert!(e.is_retryable(), "{e}");
    assert!(
        took < Duration::from_secs(8),
        "the batch took {took:?}: {e}"
    );
    let _ = tokio::time::timeout(Duration::from_secs(10), broker.close()).await;
}

/// An ack on a connection the server stopped reading (its socket and the client's outgoing
/// buffer full behind it) ends within about one `request_timeout` with a retryable `Timeout`,
/// instead of waiting for room in that buffer for as long as the server is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_on_a_connection_the_server_stopped_reading_ends() {
    let Some((server, broker)) = paused_server_case().await else {
        return;
    };
    let dest = unique("bk-ack-paused");
    let mut consumer = broker.consumer(&dest).build().await.expect("consumer");
    let producer = broker.producer(&dest).build().await.expect("producer");
    producer.send(Message::new("one")).await.expect("send");
    let d = receive(&mut consumer).await;
    server.pause(true);
    // More than the socket buffers and the client's 2,048 queued commands can hold.
    let fillers: Vec<_> = (0..6_000)
        .map(|_| {
            let p = producer.clone();
            tokio::spawn(async move {
                let _ = p.send(Message::new(vec![b'x'; 16 * 1024])).await;
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let acked = tokio::time::timeout(Duration::from_secs(30), d.ack()).await;
    let took = started.elapsed();
    for f in &fillers {
        f.abort();
    }
    server.pause(false);
    let result = acked.unwrap_or_else(|_| panic!("the ack did not end within 30 s"));
    let e = result.expect_err("the stopped server took nothing");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(took < Duration::from_secs(8), "the ack took {took:?}: {e}");
    let _ = tokio::time::timeout(Duration::from_secs(10), broker.close()).await;
}
