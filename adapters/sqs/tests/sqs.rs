//! Broker-level tests of the SQS/SNS adapter against LocalStack: FIFO ordering and
//! deduplication, bad input, payloads SQS would refuse, size limits (foreign messages are a
//! shared case, `fixture/mod.rs`),
//! broker-side redrive, and an outage (the connection cut and restored through a proxy).

use brokerkit_integration_tests::{expect_none, receive};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use brokerkit::{
    dead_letter_destination, Broker, DeadLetterEnvelope, DeadLetterReason, Delivery, ErrorKind,
    Headers, Message, Support,
};
use brokerkit_integration_tests::broker_url;

const SQS: &str = "sqs://?endpoint=http://127.0.0.1:4566&region=us-east-1&access_key_id=test&secret_access_key=test";
const SNS: &str = "sns://?endpoint=http://127.0.0.1:4566&region=us-east-1&access_key_id=test&secret_access_key=test";
const WAIT: Duration = Duration::from_secs(15);

fn sqs_url(extra: &str) -> Option<String> {
    broker_url("localstack", "BROKERKIT_SQS_URL", SQS).map(|u| format!("{u}{extra}"))
}

fn sns_url(extra: &str) -> Option<String> {
    broker_url("localstack", "BROKERKIT_SNS_URL", SNS).map(|u| format!("{u}{extra}"))
}

fn unique(prefix: &str) -> String {
    format!(
        "bk-{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

fn text(d: &Delivery) -> String {
    String::from_utf8_lossy(&d.message().payload).into_owned()
}

async fn fifo_order_and_dedup(url: String) {
    let broker = Broker::connect(&url).await.unwrap();
    let caps = broker.capabilities();
    assert_eq!(caps.ordering_key, Support::Native);
    assert!(caps.native_dedup);
    let dest = unique("fifo");
    let mut consumer = broker.consumer(&dest).prefetch(10).build().await.unwrap();
    let producer = broker.producer(&dest).build().await.unwrap();
    let keys = ["a", "b c", "ü%"];
    let per_key = 10;
    let all: Vec<Message> = (0..per_key)
        .flat_map(|i| keys.map(|k| Message::new(format!("{k}:{i}")).with_key(k)))
        .collect();
    // Half one by one, half in batches.
    let (first, second) = all.split_at(all.len() / 2);
    for m in first {
        producer.send(m.clone()).await.unwrap();
    }
    producer.send_batch(second.to_vec()).await.unwrap();
    let mut last: HashMap<String, i64> = HashMap::new();
    for _ in 0..all.len() {
        let d = receive(&mut consumer).await;
        let body = text(&d);
        let (k, i) = body.rsplit_once(':').unwrap();
        let i: i64 = i.parse().unwrap();
        let prev = last.insert(k.to_string(), i).unwrap_or(-1);
        assert_eq!(i, prev + 1, "key {k}: got {i} after {prev}");
        assert_eq!(d.message().key.as_deref(), Some(k));
        d.ack().await.unwrap();
    }
    // The idempotency key is the deduplication id: the second send is dropped by the broker.
    for _ in 0..2 {
        let mut h = Headers::new();
        h.set_idempotency_key("order-42 paid").unwrap();
        producer
            .send(Message::new("once").with_key("a").with_headers(h))
            .await
            .unwrap();
    }
    let d = receive(&mut consumer).await;
    assert_eq!(text(&d), "once");
    d.ack().await.unwrap();
    expect_none(&mut consumer, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_fifo_orders_per_key_and_deduplicates() {
    let Some(url) = sqs_url("&fifo=true") else {
        return;
    };
    fifo_order_and_dedup(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_fifo_orders_per_key_and_deduplicates() {
    let Some(url) = sns_url("&fifo=true") else {
        return;
    };
    fifo_order_and_dedup(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_send_without_key_is_refused_naming_the_queue() {
    let Some(url) = sqs_url("&fifo=true") else {
        return;
    };
    let broker = Broker::connect(&url).await.unwrap();
    let dest = unique("nokey");
    let producer = broker.producer(&dest).build().await.unwrap();
    let e = producer.send(Message::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.message().contains(&format!("\"{dest}.fifo\"")), "{e}");
    assert!(e.message().contains("ordering key"), "{e}");
    let batch = vec![Message::new("ok").with_key("k"), Message::new("no key")];
    let e = producer.send_batch(batch).await.unwrap_err();
    assert!(e.message().contains("message #1"), "{e}");
    assert!(e.message().contains("nothing was sent"), "{e}");
    let mut h = Headers::new();
    h.set_idempotency_key("k".repeat(200)).unwrap();
    let e = producer
        .send(Message::new("x").with_key("k").with_headers(h))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidHeader, "{e}");
    assert!(e.message().contains("idempotency-key"), "{e}");
    // A standard connection refuses FIFO names instead of mis-sending to them.
    let standard = Broker::connect(&sqs_url("").unwrap()).await.unwrap();
    let e = standard
        .producer(&format!("{dest}.fifo"))
        .build()
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("fifo=true"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_dead_letter_and_delayed_nack() {
    let Some(url) = sqs_url("&fifo=true") else {
        return;
    };
    let broker = Broker::connect(&url).await.unwrap();
    let dest = unique("fifodl");
    let mut dead = broker
        .consumer(&dead_letter_destination(&dest))
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
        .send(Message::new("poison").with_key("cust-1").with_headers(h))
        .await
        .unwrap();
    let d = receive(&mut consumer).await;
    let nacked = Instant::now();
    d.nack(Some(Duration::from_millis(1200))).await.unwrap();
    let d = receive(&mut consumer).await;
    assert!(nacked.elapsed() >= Duration::from_millis(1200));
    assert_eq!(d.attempt(), 2);
    d.dead_letter(DeadLetterReason::new("cannot bill"))
        .await
        .unwrap();
    let dl = receive(&mut dead).await;
    assert_eq!(text(&dl), "poison");
    assert_eq!(dl.message().key.as_deref(), Some("cust-1"));
    assert_eq!(dl.message().headers.get("x-order"), Some("7"));
    let env = DeadLetterEnvelope::read_from(&dl.message().headers).unwrap();
    assert_eq!(
        (env.attempts, env.original_destination.as_str()),
        (2, dest.as_str())
    );
    assert_eq!(env.original_group.as_deref(), Some("billing"));
    dl.ack().await.unwrap();
    expect_none(&mut consumer, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_queue_or_topic_without_auto_create_is_not_found() {
    let (Some(sqs), Some(sns)) = (sqs_url("&auto_create=false"), sns_url("&auto_create=false"))
    else {
        return;
    };
    let dest = unique("missing");
    let broker = Broker::connect(&sqs).await.unwrap();
    let e = broker.producer(&dest).build().await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains(&format!("queue \"{dest}\"")), "{e}");
    assert!(e.message().contains("auto_create"), "{e}");
    let e = broker.consumer(&dest).build().await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let broker = Broker::connect(&sns).await.unwrap();
    let e = broker.producer(&dest).build().await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains(&format!("topic \"{dest}\"")), "{e}");
    let e = broker
        .consumer(&dest)
        .group("g")
        .build()
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

async fn odd_payloads_round_trip(url: String) {
    let broker = Broker::connect(&url).await.unwrap();
    let dest = unique("odd");
    let mut consumer = broker.consumer(&dest).build().await.unwrap();
    let producer = broker
        .producer(&dest)
        .without_default_layers()
        .build()
        .await
        .unwrap();
    let payloads: Vec<Vec<u8>> = vec![
        (0..=255u8).collect(),
        "\u{FFFF}\u{FFFE}".as_bytes().to_vec(),
        b"crlf\r\nline".to_vec(),
        b"nul\0".to_vec(),
        Vec::new(),
        "plain ✓ text".as_bytes().to_vec(),
    ];
    let headers = Headers::new()
        .with("x-odd!#$%&'*+.^_`|~", "\u{FFFE} \"quoted\" \\ \ttab")
        .unwrap()
        .with("X-Mixed-Case", "v")
        .unwrap();
    for p in &payloads {
        producer
            .send(Message::new(p.clone()).with_headers(headers.clone()))
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    for _ in &payloads {
        let d = receive(&mut consumer).await;
        assert_eq!(d.message().headers, headers);
        got.push(d.message().payload.to_vec());
        d.ack().await.unwrap();
    }
    got.sort();
    let mut want = payloads.clone();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_payloads_it_would_refuse_round_trip() {
    let Some(url) = sqs_url("") else { return };
    odd_payloads_round_trip(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_payloads_it_would_refuse_round_trip() {
    let Some(url) = sns_url("") else { return };
    odd_payloads_round_trip(url).await;
}

/// The worst case the capabilities allow: a binary payload of exactly `max_payload_bytes`
/// (base64 on the wire) with headers at `max_headers` and `max_header_bytes`, all quotes
/// (doubled by JSON escaping); then dead-lettered with a long reason.
async fn largest_message_fits(url: String) {
    let broker = Broker::connect(&url).await.unwrap();
    let caps = broker.capabilities().clone();
    let (count, bytes) = (caps.max_headers.unwrap(), caps.max_header_bytes.unwrap());
    let mut headers = Headers::new();
    let value_len = (bytes - count * 4) / count;
    for i in 0..count {
        headers
            .insert(format!("h{i:03}"), "\"".repeat(value_len))
            .unwrap();
    }
    assert!(headers.encoded_len() <= bytes);
    let payload = vec![0xFFu8; caps.max_payload_bytes];
    let dest = unique("max");
    let mut dead = broker
        .consumer(&dead_letter_destination(&dest))
        .build()
        .await
        .unwrap();
    let mut consumer = broker.consumer(&dest).build().await.unwrap();
    let producer = broker
        .producer(&dest)
        .without_default_layers()
        .build()
        .await
        .unwrap();
    let msg = Message::new(payload.clone()).with_headers(headers.clone());
    producer.send(msg.clone()).await.unwrap();
    producer.send_batch(vec![msg.clone(), msg]).await.unwrap();
    for _ in 0..2 {
        let d = receive(&mut consumer).await;
        assert_eq!(d.message().payload.len(), payload.len());
        assert_eq!(d.message().headers, headers);
        d.ack().await.unwrap();
    }
    let d = receive(&mut consumer).await;
    let reason = "why? ".repeat(3000);
    d.dead_letter(DeadLetterReason::new(reason)).await.unwrap();
    let dl = receive(&mut dead).await;
    assert_eq!(&dl.message().payload[..], &payload[..]);
    for (n, v) in headers.iter() {
        assert_eq!(dl.message().headers.get(n), Some(v));
    }
    let env = DeadLetterEnvelope::read_from(&dl.message().headers).unwrap();
    assert!(env.reason.reason.starts_with("why? why?"));
    dl.ack().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_largest_message_with_headers_at_the_limits_fits() {
    let Some(url) = sqs_url("") else { return };
    largest_message_fits(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_largest_message_with_headers_at_the_limits_fits() {
    let Some(url) = sns_url("") else { return };
    largest_message_fits(url).await;
}

async fn raw_client() -> aws_sdk_sqs::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:4566")
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    aws_sdk_sqs::Client::new(&conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_broker_side_redrive_moves_poison_messages() {
    let Some(url) = sqs_url("&max_receive_count=2") else {
        return;
    };
    redrive(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_broker_side_redrive_moves_poison_messages() {
    let Some(url) = sns_url("&max_receive_count=2") else {
        return;
    };
    redrive(url).await;
}

/// With `max_receive_count`, SQS itself moves a message received that many times to the
/// dead-letter queue (on sns://, the dead-letter topic's default group queue).
async fn redrive(url: String) {
    let broker = Broker::connect(&url).await.unwrap();
    let dest = unique("redrive");
    let mut consumer = broker.consumer(&dest).build().await.unwrap();
    let mut dead = broker
        .consumer(&dead_letter_destination(&dest))
        .build()
        .await
        .unwrap();
    let producer = broker.producer(&dest).build().await.unwrap();
    let h = Headers::new().with("x-order", "9").unwrap();
    producer
        .send(Message::new("crashes consumers").with_headers(h))
        .await
        .unwrap();
    for attempt in 1..=2 {
        let d = receive(&mut consumer).await;
        assert_eq!(d.attempt(), attempt);
        d.nack(None).await.unwrap();
    }
    let dl = receive(&mut dead).await;
    assert_eq!(text(&dl), "crashes consumers");
    assert_eq!(dl.message().headers.get("x-order"), Some("9"));
    // Moved by SQS itself: no brokerkit envelope.
    assert!(DeadLetterEnvelope::read_from(&dl.message().headers).is_none());
    dl.ack().await.unwrap();
    expect_none(&mut consumer, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_size_follows_the_queue_limit() {
    let Some(url) = sqs_url("") else { return };
    if !url.contains("127.0.0.1:4566") {
        return;
    }
    // A queue made elsewhere with a smaller limit than the connection promises.
    let raw = raw_client().await;
    let small = unique("small");
    raw.create_queue()
        .queue_name(&small)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize,
            "65536",
        )
        .send()
        .await
        .unwrap();
    let small_url = raw
        .get_queue_url()
        .queue_name(&small)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    // LocalStack enforces the limit, like SQS.
    let refused = raw
        .send_message()
        .queue_url(&small_url)
        .message_body("x".repeat(65_537))
        .send()
        .await;
    assert!(refused.is_err());
    let broker = Broker::connect(&url).await.unwrap();
    let e = broker.producer(&small).build().await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("65536"), "{e}");
    let smaller = Broker::connect(&format!("{url}&max_message_bytes=65536"))
        .await
        .unwrap();
    assert!(smaller.capabilities().max_payload_bytes < 65536);
    smaller.producer(&small).build().await.unwrap();
    // A connection for 1 MiB messages creates 1 MiB queues.
    let big = Broker::connect(&format!("{url}&max_message_bytes=1048576"))
        .await
        .unwrap();
    let max = big.capabilities().max_payload_bytes;
    assert!(max > 700_000, "{max}");
    let dest = unique("big");
    let mut consumer = big.consumer(&dest).build().await.unwrap();
    let producer = big.producer(&dest).build().await.unwrap();
    producer.send(Message::new(vec![7u8; max])).await.unwrap();
    let d = receive(&mut consumer).await;
    assert_eq!(d.message().payload.len(), max);
    d.ack().await.unwrap();
}

/// A TCP proxy in front of LocalStack that can be cut and restored: a broker outage without
/// touching the shared LocalStack process.
struct Proxy {
    port: u16,
    accept: tokio::task::JoinHandle<()>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(port: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tracked = conns.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect("127.0.0.1:4566").await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tracked.lock().unwrap().push(conn);
            }
        });
        Proxy {
            port,
            accept,
            conns,
        }
    }

    /// Stops accepting and cuts every open connection.
    fn cut(self) -> u16 {
        self.accept.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
        self.port
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_gives_retryable_errors_and_loses_nothing() {
    let Some(url) = sqs_url("") else { return };
    if !url.contains("127.0.0.1:4566") {
        return;
    }
    let proxy = Proxy::start(0).await;
    let url = url.replace("127.0.0.1:4566", &format!("127.0.0.1:{}", proxy.port))
        + "&max_attempts=2&retry_backoff_ms=50&timeout_ms=2000&wait_time_secs=1&visibility_timeout_secs=5";
    let broker = Broker::connect(&url).await.unwrap();
    let dest = unique("outage");
    let mut consumer = broker.consumer(&dest).prefetch(10).build().await.unwrap();
    let producer = broker.producer(&dest).build().await.unwrap();
    let before: Vec<Message> = (0..30).map(|i| Message::new(format!("m{i}"))).collect();
    producer.send_batch(before).await.unwrap();
    let mut done = HashSet::new();
    for _ in 0..10 {
        let d = receive(&mut consumer).await;
        done.insert(text(&d));
        d.ack().await.unwrap();
    }

    let port = proxy.cut();
    let cut_at = Instant::now();
    let e = producer.send(Message::new("during")).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    let mut receive_errors = 0;
    let mut held_during = 0;
    while cut_at.elapsed() < Duration::from_secs(20) && receive_errors == 0 {
        match tokio::time::timeout(Duration::from_secs(10), consumer.next()).await {
            // Deliveries received before the cut: dropped unsettled (released after 5 s).
            Ok(Ok(Some(_))) => held_during += 1,
            Ok(Ok(None)) => panic!("consumer ended during the outage"),
            Ok(Err(e)) => {
                assert!(e.is_retryable(), "{e}");
                receive_errors += 1;
            }
            Err(_) => panic!("no error surfaced during the outage"),
        }
    }
    assert!(receive_errors > 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outage = cut_at.elapsed();

    let _proxy = Proxy::start(port).await;
    let restored_at = Instant::now();
    let mut send_retries = 0;
    for i in 0..10 {
        loop {
            match producer.send(Message::new(format!("n{i}"))).await {
                Ok(()) => break,
                Err(e) if e.is_retryable() && send_retries < 10 => {
                    send_retries += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("send after restore: {e}"),
            }
        }
    }
    let mut want: HashSet<String> = (10..30).map(|i| format!("m{i}")).collect();
    want.extend((0..10).map(|i| format!("n{i}")));
    let mut duplicates = 0;
    let mut first_after: Option<Duration> = None;
    let mut later_errors = 0;
    while !want.is_empty() {
        assert!(
            restored_at.elapsed() < Duration::from_secs(60),
            "missing after restore: {want:?}"
        );
        match tokio::time::timeout(WAIT, consumer.next()).await {
            Ok(Ok(Some(d))) => {
                first_after.get_or_insert(restored_at.elapsed());
                let t = text(&d);
                if !want.remove(&t) {
                    duplicates += 1;
                }
                assert!(
                    !done.contains(&t) || t.starts_with('n'),
                    "acked message {t} came back"
                );
                d.ack().await.unwrap();
            }
            Ok(Err(e)) => {
                assert!(e.is_retryable(), "{e}");
                later_errors += 1;
            }
            Ok(Ok(None)) => panic!("consumer ended"),
            Err(_) => panic!("stalled after restore; missing {want:?}"),
        }
    }
    eprintln!(
        "outage test: outage {:.1} s, receive errors during outage {receive_errors}, \
         deliveries dropped unsettled during outage {held_during}, send retries after \
         restore {send_retries}, receive errors after restore {later_errors}, first delivery \
         {:.2} s after restore, all 30 remaining messages received in {:.2} s, duplicates \
         {duplicates}, lost 0",
        outage.as_secs_f64(),
        first_after.unwrap_or_default().as_secs_f64(),
        restored_at.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_next_loses_nothing_and_close_keeps_settlement() {
    let Some(url) = sns_url("") else { return };
    let broker = Broker::connect(&url).await.unwrap();
    let dest = unique("cancel");
    let mut consumer = broker.consumer(&dest).group("g").build().await.unwrap();
    let producer = broker.producer(&dest).build().await.unwrap();
    // A `next` abandoned while it waits (here: by a timeout) loses nothing.
    for _ in 0..5 {
        assert!(
            tokio::time::timeout(Duration::from_millis(50), consumer.next())
                .await
                .is_err()
        );
    }
    producer.send(Message::new("kept")).await.unwrap();
    let held = receive(&mut consumer).await;
    assert_eq!(text(&held), "kept");
    // After the broker is closed: sends fail with Closed, intake ends, but the delivery in
    // hand can still be settled.
    broker.close().await.unwrap();
    let e = producer.send(Message::new("late")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
    assert!(consumer.next().await.unwrap().is_none());
    held.ack().await.unwrap();
    let e = broker.producer(&dest).build().await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
}
