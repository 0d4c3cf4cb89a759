//! Claim-check on the memory broker: offload above the threshold, nothing below it, missing
//! and corrupt objects dead-lettered with the reason, the reference surviving dead-letter and
//! redrive, clean-up after ack only where it is safe, and the layer positions.
#![cfg(feature = "claim-check")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use brokerkit::claim_check::{
    ClaimCheck, ClaimCheckError, Cleanup, MemoryStore, ObjectStore, Problem, Reference,
    REFERENCE_HEADER,
};
use brokerkit::{
    dead_letter_destination, redrive, Broker, Bytes, Consumer, Context, DeadLetterEnvelope,
    Delivery, ErrorKind, Message, RedriveOptions, Result, RetryPolicy,
};

/// A store that counts every call, around a memory store.
#[derive(Clone, Default)]
struct Counting {
    inner: MemoryStore,
    puts: Arc<AtomicUsize>,
    gets: Arc<AtomicUsize>,
    deletes: Arc<AtomicUsize>,
}

impl Counting {
    fn calls(&self) -> (usize, usize, usize) {
        (
            self.puts.load(Ordering::SeqCst),
            self.gets.load(Ordering::SeqCst),
            self.deletes.load(Ordering::SeqCst),
        )
    }
}

#[async_trait]
impl ObjectStore for Counting {
    fn kind(&self) -> &'static str {
        "memory"
    }
    fn bucket(&self) -> &str {
        self.inner.bucket()
    }
    fn max_object_bytes(&self) -> u64 {
        1 << 20
    }
    async fn put(&self, key: &str, bytes: Bytes, ct: Option<&str>) -> Result<()> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put(key, bytes, ct).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key).await
    }
}

async fn recv(c: &mut Consumer) -> Delivery {
    tokio::time::timeout(Duration::from_secs(10), c.next())
        .await
        .expect("a delivery in time")
        .unwrap()
        .expect("a delivery")
}

async fn until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

fn collect(seen: &Seen) -> impl Fn(Context, Message) -> futures_ready::Ready + Send + Sync {
    let seen = seen.clone();
    move |_ctx, m: Message| {
        assert!(
            m.headers.get(REFERENCE_HEADER).is_none(),
            "reference removed"
        );
        seen.lock().unwrap().push(m.payload.to_vec());
        futures_ready::ready()
    }
}

mod futures_ready {
    pub type Ready = std::future::Ready<brokerkit::HandlerResult>;
    pub fn ready() -> Ready {
        std::future::ready(Ok(()))
    }
}

#[tokio::test]
async fn large_payload_round_trips_and_small_one_costs_no_store_io() {
    let broker = Broker::connect("memory://?max_payload_bytes=1024")
        .await
        .unwrap();
    let store = Counting::default();
    let cc = ClaimCheck::new(store.clone());
    let seen: Seen = Arc::default();
    let stop = Arc::new(tokio::sync::Notify::new());
    let stop_in = stop.clone();
    let running = broker
        .consumer("docs")
        .group("g")
        .claim_check(cc.clone())
        .handle_raw(collect(&seen))
        .start(async move { stop_in.notified().await })
        .await
        .unwrap();
    let producer = broker
        .producer("docs")
        .claim_check(cc)
        .build()
        .await
        .unwrap();

    producer.send(Message::new("small")).await.unwrap();
    until("the small payload", || seen.lock().unwrap().len() == 1).await;
    assert_eq!(store.calls(), (0, 0, 0), "no store I/O under the threshold");

    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut headers = brokerkit::Headers::new();
    headers
        .set_content_type("application/octet-stream")
        .unwrap();
    producer
        .send(Message::new(big.clone()).with_headers(headers))
        .await
        .unwrap();
    until("the large payload", || seen.lock().unwrap().len() == 2).await;
    assert_eq!(seen.lock().unwrap()[1], big, "byte-exact");
    // memory has fan-out: Cleanup::Auto leaves the object to the expiry rule.
    assert_eq!(store.calls(), (1, 1, 0));
    assert_eq!(store.inner.len(), 1);
    stop.notify_one();
    running.join().await.unwrap();
}

#[tokio::test]
async fn raw_consumer_sees_the_reference() {
    let broker = Broker::connect("memory://?max_payload_bytes=1024")
        .await
        .unwrap();
    let store = MemoryStore::new();
    let mut consumer = broker.consumer("raw").build().await.unwrap();
    let mut headers = brokerkit::Headers::new();
    headers.set_content_type("text/plain").unwrap();
    broker
        .producer("raw")
        .claim_check(ClaimCheck::new(store.clone()).threshold(10))
        .build()
        .await
        .unwrap()
        .send(Message::new("eleven bytes").with_headers(headers))
        .await
        .unwrap();
    let d = recv(&mut consumer).await;
    assert!(d.message().payload.is_empty());
    let r = Reference::parse(d.message().headers.get(REFERENCE_HEADER).unwrap()).unwrap();
    assert_eq!((r.size, r.store.as_str()), (12, "memory"));
    assert_eq!(r.content_type.as_deref(), Some("text/plain"));
    assert!(r.key.starts_with("brokerkit-claim-check/raw/"), "{}", r.key);
    assert_eq!(
        store.get(&r.key).await.unwrap().as_deref(),
        Some(&b"eleven bytes"[..])
    );
    d.ack().await.unwrap();
}

#[tokio::test]
async fn over_the_store_limit_is_payload_too_large_naming_the_store() {
    let broker = Broker::connect("memory://?max_payload_bytes=1024")
        .await
        .unwrap();
    let cc = ClaimCheck::new(Counting::default()); // 1 MiB limit
    assert_eq!(
        cc.capabilities(broker.capabilities()).max_payload_bytes,
        1 << 20
    );
    let producer = broker
        .producer("limit")
        .claim_check(cc)
        .build()
        .await
        .unwrap();
    let e = producer
        .send(Message::new(vec![0u8; (1 << 20) + 1]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PayloadTooLarge);
    assert!(e.message().contains("claim-check memory store"), "{e}");
    assert!(
        e.message().contains("1048577") && e.message().contains("1048576"),
        "{e}"
    );
}

/// A reference message as a claim-checked producer sends it, for an object we control.
fn reference_message(store: &MemoryStore, key: &str, payload: &[u8]) -> Message {
    let r = Reference {
        v: 1,
        store: "memory".into(),
        bucket: store.bucket().into(),
        key: key.into(),
        size: payload.len() as u64,
        sha256: brokerkit::claim_check::sha256_hex(payload),
        content_type: None,
    };
    let mut headers = brokerkit::Headers::new();
    headers.insert(REFERENCE_HEADER, r.to_header()).unwrap();
    Message::new(Vec::new()).with_headers(headers)
}

struct Run {
    stop: Arc<tokio::sync::Notify>,
    running: brokerkit::RunningHandler,
    seen: Seen,
}

impl Run {
    async fn start(broker: &Broker, dest: &str, cc: ClaimCheck, attempts: u32) -> Run {
        let seen: Seen = Arc::default();
        let stop = Arc::new(tokio::sync::Notify::new());
        let stop_in = stop.clone();
        let running = broker
            .consumer(dest)
            .retry(RetryPolicy::immediate(attempts))
            .claim_check(cc)
            .handle_raw(collect(&seen))
            .start(async move { stop_in.notified().await })
            .await
            .unwrap();
        Run {
            stop,
            running,
            seen,
        }
    }

    async fn stop(self) -> brokerkit::RunReport {
        self.stop.notify_one();
        self.running.join().await.unwrap()
    }
}

/// A corrupt object is dead-lettered at once with the reason; the dead letter keeps the
/// reference; once the object is repaired, the redriven message is handled.
#[tokio::test]
async fn corrupt_object_dead_lettered_with_reason_and_redriven_after_repair() {
    let broker = Broker::connect("memory://").await.unwrap();
    let store = MemoryStore::new();
    let payload = vec![42u8; 5000];
    store
        .put("k/corrupt", Bytes::from(vec![43u8; 5000]), None)
        .await
        .unwrap();
    let mut dlq = broker
        .consumer(&dead_letter_destination("corrupt"))
        .build()
        .await
        .unwrap();
    let run = Run::start(&broker, "corrupt", ClaimCheck::new(store.clone()), 5).await;
    let sent = reference_message(&store, "k/corrupt", &payload);
    let reference = sent.headers.get(REFERENCE_HEADER).unwrap().to_string();
    broker
        .producer("corrupt")
        .build()
        .await
        .unwrap()
        .send(sent)
        .await
        .unwrap();
    let dead = recv(&mut dlq).await;
    let envelope = DeadLetterEnvelope::read_from(&dead.message().headers).unwrap();
    assert_eq!(envelope.attempts, 1, "dead-lettered at once");
    assert_eq!(envelope.reason.error_kind, Some(ErrorKind::Decode));
    assert!(
        envelope.reason.reason.contains("claim-check") && envelope.reason.reason.contains("sha256"),
        "{}",
        envelope.reason.reason
    );
    assert_eq!(
        dead.message().headers.get(REFERENCE_HEADER),
        Some(reference.as_str()),
        "the reference survives dead-lettering"
    );
    dead.nack(None).await.unwrap();
    drop(dlq);
    assert!(run.seen.lock().unwrap().is_empty());

    store
        .put("k/corrupt", Bytes::from(payload.clone()), None)
        .await
        .unwrap();
    let report = redrive(
        &broker,
        &dead_letter_destination("corrupt"),
        RedriveOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.total_moved(), 1);
    until("the redriven message", || {
        run.seen.lock().unwrap().len() == 1
    })
    .await;
    assert_eq!(run.seen.lock().unwrap()[0], payload);
    let report = run.stop().await;
    assert_eq!((report.acked, report.dead_lettered), (1, 1));
}

/// A missing object is a typed `NotFound` problem: retried by the policy (a replica may lag),
/// then dead-lettered with the reason.
#[tokio::test]
async fn missing_object_retried_then_dead_lettered_with_reason() {
    let broker = Broker::connect("memory://").await.unwrap();
    let store = MemoryStore::new();
    let mut dlq = broker
        .consumer(&dead_letter_destination("missing"))
        .build()
        .await
        .unwrap();
    let run = Run::start(&broker, "missing", ClaimCheck::new(store.clone()), 2).await;
    broker
        .producer("missing")
        .build()
        .await
        .unwrap()
        .send(reference_message(&store, "k/gone", b"never written"))
        .await
        .unwrap();
    let dead = recv(&mut dlq).await;
    let envelope = DeadLetterEnvelope::read_from(&dead.message().headers).unwrap();
    assert_eq!(envelope.attempts, 2);
    assert_eq!(envelope.reason.error_kind, Some(ErrorKind::NotFound));
    assert!(
        envelope
            .reason
            .reason
            .contains("memory://private/k/gone is missing"),
        "{}",
        envelope.reason.reason
    );
    assert!(dead.message().headers.get(REFERENCE_HEADER).is_some());
    dead.ack().await.unwrap();
    assert_eq!(run.stop().await.dead_lettered, 1);
}

#[tokio::test]
async fn problems_are_typed() {
    let store = MemoryStore::new();
    let cc = ClaimCheck::new(store.clone());
    let broker = Broker::connect("memory://").await.unwrap();
    let mut dlq = broker
        .consumer(&dead_letter_destination("typed"))
        .build()
        .await
        .unwrap();
    let errors: Arc<Mutex<Vec<Problem>>> = Arc::default();
    let errors_in = errors.clone();
    let probe = brokerkit::layers::from_fn(
        move |i: brokerkit::layers::receive::Incoming,
              next: brokerkit::layers::receive::ReceiveService| {
            let errors = errors_in.clone();
            async move {
                let r = next.run(i).await;
                if let Err(e) = &r {
                    errors
                        .lock()
                        .unwrap()
                        .push(ClaimCheckError::of(e).unwrap().problem);
                }
                r
            }
        },
    );
    let stop = Arc::new(tokio::sync::Notify::new());
    let stop_in = stop.clone();
    let running = broker
        .consumer("typed")
        .retry(RetryPolicy::immediate(1))
        .claim_check(cc)
        .layer_before("claim_check", "probe", probe)
        .handle_raw(|_c, _m| async { Ok(()) })
        .start(async move { stop_in.notified().await })
        .await
        .unwrap();
    let p = broker.producer("typed").build().await.unwrap();
    p.send(reference_message(&store, "k/none", b"x"))
        .await
        .unwrap();
    let mut bad = brokerkit::Headers::new();
    bad.insert(REFERENCE_HEADER, "{not json").unwrap();
    p.send(Message::new("").with_headers(bad)).await.unwrap();
    recv(&mut dlq).await.ack().await.unwrap();
    recv(&mut dlq).await.ack().await.unwrap();
    assert_eq!(
        *errors.lock().unwrap(),
        vec![Problem::Missing, Problem::BadReference]
    );
    stop.notify_one();
    running.join().await.unwrap();
}

/// Delete-after-ack deletes once acked, and never for a dead-lettered message (its dead
/// letter still needs the object).
#[tokio::test]
async fn delete_after_ack_only_after_ack() {
    let broker = Broker::connect("memory://?max_payload_bytes=1024")
        .await
        .unwrap();
    let store = Counting::default();
    let cc = ClaimCheck::new(store.clone()).cleanup(Cleanup::DeleteAfterAck);
    let mut dlq = broker
        .consumer(&dead_letter_destination("cleanup"))
        .build()
        .await
        .unwrap();
    let seen: Seen = Arc::default();
    let seen_in = seen.clone();
    let stop = Arc::new(tokio::sync::Notify::new());
    let stop_in = stop.clone();
    let running = broker
        .consumer("cleanup")
        .retry(RetryPolicy::immediate(1))
        .claim_check(cc.clone())
        .handle_raw(move |_c, m: Message| {
            let seen = seen_in.clone();
            async move {
                seen.lock().unwrap().push(m.payload.to_vec());
                if m.payload[0] == 1 {
                    return Err(brokerkit::Error::new(ErrorKind::Rejected, "not this one").into());
                }
                Ok(())
            }
        })
        .start(async move { stop_in.notified().await })
        .await
        .unwrap();
    let p = broker
        .producer("cleanup")
        .claim_check(cc)
        .build()
        .await
        .unwrap();
    p.send(Message::new(vec![0u8; 2000])).await.unwrap();
    until("the delete after ack", || store.calls().2 == 1).await;
    assert_eq!(store.inner.len(), 0);
    p.send(Message::new(vec![1u8; 2000])).await.unwrap();
    let dead = recv(&mut dlq).await;
    assert!(dead.message().headers.get(REFERENCE_HEADER).is_some());
    dead.ack().await.unwrap();
    stop.notify_one();
    running.join().await.unwrap();
    assert_eq!(
        store.calls(),
        (2, 2, 1),
        "the dead-lettered one kept its object"
    );
    assert_eq!(store.inner.len(), 1);
    // Auto deletes only without fan-out; memory has fan-out.
    let auto = ClaimCheck::new(MemoryStore::new());
    assert!(!auto.deletes_after_ack(broker.capabilities()));
    let mut no_fan_out = broker.capabilities().clone();
    no_fan_out.fan_out = false;
    assert!(auto.deletes_after_ack(&no_fan_out));
    assert!(!auto.cleanup(Cleanup::Expire).deletes_after_ack(&no_fan_out));
}

#[tokio::test]
async fn layers_sit_where_documented_and_can_be_removed() {
    let broker = Broker::connect("memory://").await.unwrap();
    let cc = ClaimCheck::new(MemoryStore::new());
    let noop = brokerkit::layers::from_fn(
        |o: brokerkit::layers::send::Outgoing, n: brokerkit::layers::send::SendService| async move {
            n.run(o).await
        },
    );
    let p = broker
        .producer("pos")
        .claim_check(cc.clone())
        .layer("mine", noop);
    assert_eq!(
        p.layer_names(),
        [
            "trace_context",
            "correlation",
            "schema",
            "idempotency_key",
            "metrics",
            "mine",
            "claim_check"
        ]
    );
    let p = p.without_layer("claim_check").layer("after", brokerkit::layers::from_fn(
        |o: brokerkit::layers::send::Outgoing, n: brokerkit::layers::send::SendService| async move {
            n.run(o).await
        },
    ));
    assert_eq!(p.layer_names().last(), Some(&"after"));
    let h = broker.consumer("pos").claim_check(cc);
    assert_eq!(
        h.layer_names(),
        [
            "trace",
            "correlation",
            "metrics",
            "retry",
            "claim_check",
            "decode",
            "idempotency"
        ]
    );
}
