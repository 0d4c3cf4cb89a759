//! RabbitMQ broker-level tests: bad input and topology choices. Unreachable broker, foreign
//! headers and late DLQ consumers are shared cases of the conformance suite
//! (`fixture/mod.rs`); the broker restart mid-stream is the fault case in
//! `tests/fault_suite.rs`.
//!
//! They use the broker at `$BROKERKIT_RABBITMQ_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`). Tests in this file run one at a time.

#[allow(dead_code)]
mod fixture;

use brokerkit_integration_tests::receive;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerkit::{Broker, ErrorKind, Message};
use brokerkit_integration_tests::{broker_url, conformance, run_case};
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Serializes the tests of this file.
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn url() -> Option<String> {
    broker_url("rabbitmq", "BROKERKIT_RABBITMQ_URL", DEFAULT_URL)
}

fn unique(name: &str) -> String {
    format!(
        "bk-rmq-{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn with_query(url: &str, query: &str) -> String {
    if url.contains('?') {
        format!("{url}&{query}")
    } else {
        format!("{url}?{query}")
    }
}

async fn raw(url: &str) -> lapin::Connection {
    lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .expect("raw lapin connection")
}

/// Deletes the exchanges and queues a test made (`<dest>`, `<dest>.dlq`, their group queues).
async fn cleanup(url: &str, destination: &str, groups: &[&str]) {
    let conn = raw(url).await;
    let ch = conn.create_channel().await.expect("channel");
    let dlq = format!("{destination}.dlq");
    let mut queues: Vec<String> = groups
        .iter()
        .map(|g| format!("{destination}:{g}"))
        .collect();
    queues.push(format!("{dlq}:default"));
    for q in queues {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for ex in [destination, dlq.as_str()] {
        let _ = ch
            .exchange_delete(ex.into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "bye".into()).await;
}

fn text(d: &brokerkit::Delivery) -> String {
    String::from_utf8_lossy(&d.message().payload).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_wrong_password_and_missing_vhost_are_clear_errors() {
    let _g = LOCK.lock().await;
    let Some(url) = url() else { return };
    let parsed = brokerkit::BrokerUrl::parse(&url).unwrap();
    let host = parsed.expose().host_str().unwrap().to_string();
    let port = parsed.expose().port().unwrap_or(5672);
    let e = Broker::connect(&format!("amqp://guest:wrong-s3cret@{host}:{port}/%2f"))
        .await
        .expect_err("wrong password");
    println!("wrong password: {e}");
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(!e.is_retryable());
    assert!(!format!("{e} {e:?}").contains("wrong-s3cret"), "{e}");
    let e = Broker::connect(&format!(
        "amqp://guest:guest@{host}:{port}/no-such-vhost-bk"
    ))
    .await
    .expect_err("missing vhost");
    println!("missing vhost: {e}");
    assert!(
        matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied),
        "{e}"
    );
    assert!(e.to_string().contains("no-such-vhost-bk"), "{e}");
    let e = Broker::connect(&with_query(&url, "colour=red"))
        .await
        .expect_err("unknown key");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("max_payload_bytes"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_payload_over_configured_max_is_refused_before_sending() {
    let _g = LOCK.lock().await;
    let Some(url) = url() else { return };
    let broker = Broker::connect(&with_query(&url, "max_payload_bytes=1024"))
        .await
        .unwrap();
    assert_eq!(broker.capabilities().max_payload_bytes, 1024);
    let dest = unique("max");
    let mut consumer = broker.consumer(&dest).build().await.unwrap();
    let producer = broker.producer(&dest).build().await.unwrap();
    let e = producer
        .send(Message::new(vec![0u8; 1025]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PayloadTooLarge);
    assert!(
        e.message().contains("1025") && e.message().contains("1024"),
        "{e}"
    );
    producer.send(Message::new(vec![1u8; 1024])).await.unwrap();
    let d = receive(&mut consumer).await;
    assert_eq!(
        d.message().payload.len(),
        1024,
        "only the allowed one was sent"
    );
    d.ack().await.unwrap();
    broker.close().await.unwrap();
    cleanup(&url, &dest, &["default"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_send_without_any_group_is_not_found_not_silently_dropped() {
    let _g = LOCK.lock().await;
    let Some(url) = url() else { return };
    let broker = Broker::connect(&url).await.unwrap();
    let dest = unique("nogroup");
    let producer = broker.producer(&dest).build().await.unwrap();
    let e = producer.send(Message::new("lost?")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains("no consumer group"), "{e}");
    assert_eq!(e.context().destination.as_deref(), Some(dest.as_str()));
    broker.close().await.unwrap();
    cleanup(&url, &dest, &[]).await;
}

/// Clones of one producer send concurrently (one confirm channel); every message arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_concurrent_sends_from_producer_clones_all_arrive() {
    let _g = LOCK.lock().await;
    let Some(url) = url() else { return };
    let broker = Broker::connect(&url).await.unwrap();
    let dest = unique("concurrent");
    let mut consumer = broker.consumer(&dest).build().await.unwrap();
    let producer = broker.producer(&dest).build().await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let p = producer.clone();
            tokio::spawn(async move { p.send(Message::new(i.to_string())).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut seen = HashSet::new();
    while seen.len() < 200 {
        let d = receive(&mut consumer).await;
        assert!(seen.insert(text(&d)), "duplicate {}", text(&d));
        d.ack().await.unwrap();
    }
    broker.close().await.unwrap();
    cleanup(&url, &dest, &["default"]).await;
}

/// A delayed nack comes back to the group that nacked only, not to the other groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_delayed_nack_returns_to_its_own_group_only() {
    let _g = LOCK.lock().await;
    let Some(url) = url() else { return };
    let broker = Broker::connect(&url).await.unwrap();
    let dest = unique("delay");
    let mut a = broker.consumer(&dest).group("a").build().await.unwrap();
    let mut b = broker.consumer(&dest).group("b").build().await.unwrap();
    let producer = broker.producer(&dest).build().await.unwrap();
    producer.send(Message::new("once")).await.unwrap();
    let da = receive(&mut a).await;
    let db = receive(&mut b).await;
    db.ack().await.unwrap();
    let at = Instant::now();
    da.nack(Some(Duration::from_millis(700))).await.unwrap();
    let again = receive(&mut a).await;
    assert!(at.elapsed() >= Duration::from_millis(700));
    assert_eq!((text(&again).as_str(), again.attempt()), ("once", 2));
    again.ack().await.unwrap();
    if let Ok(got) = tokio::time::timeout(Duration::from_millis(1500), b.next()).await {
        let d = got.unwrap().unwrap();
        panic!("group b got the delayed copy: {:?}", text(&d));
    }
    broker.close().await.unwrap();
    cleanup(&url, &dest, &["a", "b"]).await;
    let conn = raw(&url).await;
    let ch = conn.create_channel().await.unwrap();
    let _ = ch
        .queue_delete(
            format!("{dest}:a:hold:700").as_str().into(),
            QueueDeleteOptions::default(),
        )
        .await;
}

/// Issue 12 item 1: a hold queue that parks delayed nacks is never deleted by the broker while
/// it can hold messages (no `x-expires`: publishing does not count as use, so a process that
/// kept nacking into it lost what was parked when the lease ran out), and the TTL hand-back to
/// the group queue is at-least-once (a quorum queue with `x-dead-letter-strategy:
/// at-least-once`, which RabbitMQ 3.10 requires to pair with `x-overflow: reject-publish`).
/// The re-declare below succeeds only if the queue exists with exactly these arguments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_hold_queue_never_expires_and_hands_back_at_least_once() {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::{AMQPValue, FieldTable, LongString};
    let _g = LOCK.lock().await;
    let Some(url) = url() else { return };
    let broker = Broker::connect(&url).await.unwrap();
    let dest = unique("hold");
    let mut a = broker.consumer(&dest).group("a").build().await.unwrap();
    let producer = broker.producer(&dest).build().await.unwrap();
    producer.send(Message::new("parked")).await.unwrap();
    receive(&mut a)
        .await
        .nack(Some(Duration::from_millis(700)))
        .await
        .unwrap();
    let again = receive(&mut a).await;
    assert_eq!((text(&again).as_str(), again.attempt()), ("parked", 2));
    again.ack().await.unwrap();

    let group_queue = format!("{dest}:a");
    let hold = format!("{group_queue}:hold:700");
    let conn = raw(&url).await;
    let ch = conn.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    ch.queue_declare(hold.as_str().into(), passive, FieldTable::default())
        .await
        .unwrap_or_else(|e| panic!("the hold queue {hold} was not declared: {e}"));
    let text_arg = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()));
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text_arg("quorum"));
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(700));
    args.insert("x-dead-letter-exchange".into(), text_arg(""));
    args.insert("x-dead-letter-routing-key".into(), text_arg(&group_queue));
    args.insert("x-dead-letter-strategy".into(), text_arg("at-least-once"));
    args.insert("x-overflow".into(), text_arg("reject-publish"));
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let same = ch.queue_declare(hold.as_str().into(), durable, args).await;
    let _ = conn.close(200, "bye".into()).await;
    broker.close().await.unwrap();
    cleanup(&url, &dest, &["a", "a:hold:700"]).await;
    if let Err(e) = same {
        panic!("the hold queue {hold} has other arguments than a non-expiring quorum queue with at-least-once dead-lettering: {e}");
    }
}

/// Receives `dest`'s next message in group `g` on a fresh connection and "crashes": the
/// delivery is never settled (its settler is leaked, so no re-publish runs) and the
/// connection closes, so RabbitMQ requeues it. Returns the attempt it was delivered with.
async fn crash_with_one(url: &str, dest: &str) -> u32 {
    let broker = Broker::connect(url).await.unwrap();
    let mut c = broker.consumer(dest).group("g").build().await.unwrap();
    let d = receive(&mut c).await;
    let attempt = d.attempt();
    std::mem::forget(d);
    broker.close().await.unwrap();
    attempt
}

/// Issue 12 item 6: with `quorum_queues=true` every broker redelivery after a consumer crash
/// counts (`x-delivery-count`), so a message that crashes its process reaches the retry limit
/// and is dead-lettered without running the handler again. Classic queues only say
/// `redelivered` (any number of crashes counts as one: attempts 1, 2, 2, 2), which their
/// capabilities declare (`crash_safe_attempts: false`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_quorum_queues_count_every_crash_and_the_limit_holds() {
    let _g = LOCK.lock().await;
    let Some(url) = url() else { return };
    let classic = Broker::connect(&url).await.unwrap();
    assert!(!classic.capabilities().crash_safe_attempts);
    classic.close().await.unwrap();
    let qurl = with_query(&url, "quorum_queues=true");
    let broker = Broker::connect(&qurl).await.unwrap();
    assert!(broker.capabilities().crash_safe_attempts);
    let dest = unique("crash");
    let mut dead = broker
        .consumer(&format!("{dest}.dlq"))
        .group("ops")
        .build()
        .await
        .unwrap();
    drop(broker.consumer(&dest).group("g").build().await.unwrap());
    broker
        .producer(&dest)
        .build()
        .await
        .unwrap()
        .send(Message::new("poison"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(crash_with_one(&qurl, &dest).await);
    }
    assert_eq!(seen, vec![1, 2, 3], "attempts across crashes");
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let running = broker
        .consumer(&dest)
        .group("g")
        .retry(brokerkit::RetryPolicy::immediate(3))
        .handle_raw(move |_ctx, _m| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .start(async move { stopped.notified().await })
        .await
        .unwrap();
    let dl = receive(&mut dead).await;
    let env = brokerkit::DeadLetterEnvelope::read_from(&dl.message().headers).unwrap();
    assert_eq!(env.attempts, 4, "{env:?}");
    dl.ack().await.unwrap();
    stop.notify_one();
    let report = running.join().await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0, "the handler ran on it");
    assert_eq!(report.dead_lettered, 1, "{report:?}");
    broker.close().await.unwrap();
    cleanup(&url, &dest, &["g"]).await;
    let conn = raw(&url).await;
    let ch = conn.create_channel().await.unwrap();
    let _ = ch
        .queue_delete(
            format!("{dest}.dlq:ops").as_str().into(),
            QueueDeleteOptions::default(),
        )
        .await;
}

/// With `single_active_consumer=true` the ordering key is available and the conformance
/// ordering case passes; a second consumer of the group is a standby, not a competitor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_single_active_consumer_mode_keeps_key_order() {
    let _g = LOCK.lock().await;
    let Some(url) = url() else { return };
    let sac = with_query(&url, "single_active_consumer=true");
    let broker = Broker::connect(&sac).await.unwrap();
    assert!(broker.capabilities().ordering_key.is_available());
    assert!(!broker.capabilities().competing_consumers);
    broker.close().await.unwrap();
    run_case(Some(sac.clone()), "ordering_key", conformance::ordering_key).await;
    run_case(
        Some(sac),
        "headers_round_trip",
        conformance::headers_round_trip,
    )
    .await;
}

/// A disk alarm raised for one test (the free-disk limit set above the free space) and cleared
/// on drop (the limit put back). `None` without `rabbitmqctl` (it needs root).
struct DiskAlarm {
    limit: String,
}

/// [`fixture::rabbitmqctl`], `None` where it fails.
fn rabbitmqctl(args: &[&str]) -> Option<String> {
    fixture::rabbitmqctl(args).ok()
}

impl DiskAlarm {
    async fn raise() -> Option<DiskAlarm> {
        if rabbitmqctl(&["eval", "rabbit_alarm:get_alarms()."])? != "[]" {
            eprintln!("an alarm is already raised on the broker: not adding one");
            return None;
        }
        let limit = rabbitmqctl(&["eval", "rabbit_disk_monitor:get_disk_free_limit()."])?;
        // A run killed before its drop left the raised limit behind: put RabbitMQ's default.
        let limit = match limit.parse::<u64>().ok()? {
            n if n >= 1 << 40 => "50000000".to_string(),
            _ => limit,
        };
        let alarm = DiskAlarm { limit };
        rabbitmqctl(&["set_disk_free_limit", "100000GB"])?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while rabbitmqctl(&["eval", "rabbit_alarm:get_alarms()."])? == "[]" {
            assert!(Instant::now() < deadline, "the disk alarm was not raised");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Some(alarm)
    }
}

impl Drop for DiskAlarm {
    fn drop(&mut self) {
        rabbitmqctl(&["set_disk_free_limit", &self.limit]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while rabbitmqctl(&["eval", "rabbit_alarm:get_alarms()."]).as_deref() != Some("[]")
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A resource alarm (here the disk one) makes RabbitMQ stop reading every connection that
/// publishes. Sends then end with a retryable `Timeout`, and an ack queued behind them on the
/// same connection ends too (within the adapter's operation timeout) instead of hanging; once
/// the alarm clears the same broker handle sends and receives again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_alarm_blocks_publishing_but_sends_and_acks_end() {
    let _g = LOCK.lock().await;
    let Some(url) = url() else { return };
    let broker = Broker::connect(&url).await.unwrap();
    let dest = unique("alarm");
    let mut consumer = broker.consumer(&dest).build().await.unwrap();
    let producer = broker.producer(&dest).build().await.unwrap();
    producer.send(Message::new("before")).await.unwrap();
    let d = receive(&mut consumer).await;
    let Some(alarm) = DiskAlarm::raise().await else {
        eprintln!("SKIP alarm case: rabbitmqctl is needed (as root) to raise a disk alarm");
        return;
    };
    // Enough bytes to fill the socket buffers once the broker stops reading them.
    let big = Message::new(vec![7u8; 1 << 20]);
    let sending = {
        let producer = producer.clone();
        tokio::spawn(async move { producer.send_batch(vec![big; 32]).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let acked = tokio::time::timeout(Duration::from_secs(40), d.ack())
        .await
        .expect("an ack on a blocked connection must end");
    eprintln!(
        "alarm: ack ended after {:.1} s: {acked:?}",
        started.elapsed().as_secs_f64()
    );
    let sent = tokio::time::timeout(Duration::from_secs(60), sending)
        .await
        .expect("a send on a blocked connection must end")
        .unwrap();
    let e = sent.expect_err("nothing can be stored during a disk alarm");
    assert!(e.is_retryable(), "{e}");
    drop(alarm);
    // After the alarm: the connection works again (re-created if it was dropped), and the
    // first message was either acked or comes again.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match producer.send(Message::new("after")).await {
            Ok(()) => break,
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("send after the alarm cleared: {e}"),
        }
    }
    // An ack that timed out may still have reached the broker once it read the connection
    // again: "before" is acked or comes again, either is fine (the handler had finished).
    // While the backlog of the alarm (32 MiB) drains, an ack may still time out or find its
    // channel replaced: the message then comes again, so receive until "after" is acked.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "\"after\" was never acked");
        let d = receive(&mut consumer).await;
        let after = d.message().payload.as_ref() == b"after";
        match d.ack().await {
            Ok(()) if after => break,
            Ok(()) => {}
            Err(e) => assert!(
                e.is_retryable() || e.kind() == ErrorKind::DeliveryExpired,
                "{e}"
            ),
        }
    }
    broker.close().await.unwrap();
    cleanup(&url, &dest, &["default"]).await;
}
