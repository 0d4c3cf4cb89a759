//! Kafka adapter, broker level: a broker restart mid-stream loses nothing, unreachable
//! brokers give retryable errors, oversized records are refused before I/O, and foreign
//! records with malformed headers do not stop the consumer.
//!
//! The restart test starts its OWN tansu (never the shared one) on a free loopback port with
//! its own sqlite file in a temporary directory, and kills and restarts it mid-stream. The
//! other tests use the broker at `$BROKERKIT_KAFKA_URL` (default `kafka://127.0.0.1:9092`).
#![cfg(feature = "kafka")]

use std::collections::HashSet;
use std::ffi::CString;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerkit::{Broker, ErrorKind, Headers, Message};
use brokerkit_integration_tests::broker_url;
use tokio::sync::Mutex;

fn shared_url() -> Option<String> {
    broker_url("kafka", "BROKERKIT_KAFKA_URL", "kafka://127.0.0.1:9092")
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

// ---------------------------------------------------------------------------------------
// A private tansu process
// ---------------------------------------------------------------------------------------

fn tansu_binary() -> PathBuf {
    if let Ok(p) = std::env::var("BROKERKIT_TANSU_BIN") {
        return PathBuf::from(p);
    }
    let in_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("tansu"))
            .find(|p| p.is_file())
    });
    in_path.unwrap_or_else(|| {
        let home = std::env::var_os("HOME").unwrap_or_default();
        PathBuf::from(home).join(".cargo/bin/tansu")
    })
}

struct Tansu {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Tansu {
    fn start() -> Tansu {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let dir = std::env::temp_dir().join(unique("brokerkit-tansu"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut t = Tansu {
            dir,
            port,
            child: None,
        };
        t.spawn();
        t
    }

    fn url(&self) -> String {
        format!("kafka://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let bin = tansu_binary();
        assert!(
            bin.is_file(),
            "tansu not found at {} (scripts/brokers up installs it; or set BROKERKIT_TANSU_BIN)",
            bin.display()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .expect("log file");
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&bin)
            .current_dir(&self.dir)
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn skip_kafka() -> bool {
    shared_url().is_none()
}

/// 10,000 messages streamed while the broker is killed and restarted: none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_nothing() {
    if skip_kafka() {
        return;
    }
    const TOTAL: usize = 10_000;
    const BATCH: usize = 50;
    let mut tansu = Tansu::start();
    let url = format!(
        "{}?send_timeout_ms=60000&session_timeout_ms=6000",
        tansu.url()
    );
    let broker = Broker::connect(&url)
        .await
        .expect("connect to private tansu");
    let dest = unique("restart");
    let mut consumer = broker
        .consumer(&dest)
        .group("g")
        .prefetch(256)
        .build()
        .await
        .expect("consumer");
    let producer = broker.producer(&dest).build().await.expect("producer");

    let sent_ok = Arc::new(Mutex::new(0usize));
    let send_errors = Arc::new(Mutex::new(0usize));
    let sender = {
        let (sent_ok, send_errors) = (sent_ok.clone(), send_errors.clone());
        tokio::spawn(async move {
            let mut next = 0;
            while next < TOTAL {
                let n = BATCH.min(TOTAL - next);
                let batch: Vec<Message> = (next..next + n)
                    .map(|i| Message::new(i.to_string()))
                    .collect();
                match producer.send_batch(batch).await {
                    Ok(()) => {
                        next += n;
                        *sent_ok.lock().await = next;
                    }
                    // The application retries what was not confirmed (duplicates allowed).
                    Err(e) => {
                        assert!(e.is_retryable(), "non-retryable send error: {e}");
                        *send_errors.lock().await += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        })
    };

    let mut seen = HashSet::new();
    let mut duplicates = 0usize;
    let mut restarted = false;
    let mut downtime = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_secs(240);
    while seen.len() < TOTAL {
        assert!(
            Instant::now() < deadline,
            "only {} of {TOTAL} received (sent {})",
            seen.len(),
            *sent_ok.lock().await
        );
        if !restarted && seen.len() >= TOTAL / 3 {
            let t = Instant::now();
            tansu.kill();
            tokio::time::sleep(Duration::from_secs(2)).await;
            tansu.spawn();
            downtime = t.elapsed();
            restarted = true;
            eprintln!(
                "restarted tansu after {} received / {} sent",
                seen.len(),
                *sent_ok.lock().await
            );
        }
        let d = match tokio::time::timeout(Duration::from_secs(1), consumer.next()).await {
            Ok(Ok(Some(d))) => d,
            Ok(Ok(None)) => panic!("consumer ended"),
            Ok(Err(e)) => panic!("receive failed: {e}"),
            Err(_) => continue,
        };
        let i: usize = String::from_utf8_lossy(&d.message().payload)
            .parse()
            .expect("a number");
        if !seen.insert(i) {
            duplicates += 1;
        }
        // An ack racing the restart may fail; the message then comes again (counted above).
        let _ = d.ack().await;
    }
    sender.await.expect("sender task");
    let lost = TOTAL - seen.len();
    eprintln!(
        "restart test: sent {TOTAL}, received {} distinct, {duplicates} duplicates, {lost} lost, \
         {} send retries, broker down for {downtime:?}",
        seen.len(),
        *send_errors.lock().await
    );
    assert!(restarted);
    assert_eq!(lost, 0);
    let _ = broker.close().await;
}

/// Nothing listens there: a retryable Unavailable error naming the address, in bounded time.
#[tokio::test]
async fn unreachable_broker_is_retryable_unavailable() {
    if skip_kafka() {
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    for url in [
        format!("kafka://127.0.0.1:{port}?connect_timeout_ms=1500"),
        "kafka://no-such-host.invalid:9092?connect_timeout_ms=1500".to_string(),
    ] {
        let started = Instant::now();
        let e = Broker::connect(&url).await.expect_err("must fail");
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.is_retryable(), "{e}");
        assert!(e.context().address.is_some(), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }
}

/// A record over `message.max.bytes` (here through a long key) is refused before sending;
/// a missing topic with creation off is NotFound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_record_and_missing_topic() {
    let Some(url) = shared_url() else { return };
    let broker = Broker::connect(&url).await.expect("connect");
    let dest = unique("big");
    let producer = broker.producer(&dest).build().await.expect("producer");
    let max = broker.capabilities().max_payload_bytes;
    let key = "k".repeat(64 * 1024);
    let e = producer
        .send(Message::new(vec![b'x'; max]).with_key(key))
        .await
        .expect_err("too large");
    assert_eq!(e.kind(), ErrorKind::PayloadTooLarge, "{e}");
    let e = producer
        .send(Message::new(vec![b'x'; max + 1]))
        .await
        .expect_err("too large");
    assert_eq!(e.kind(), ErrorKind::PayloadTooLarge, "{e}");

    let sep = if url.contains('?') { '&' } else { '?' };
    let strict = Broker::connect(&format!("{url}{sep}create_topics=false"))
        .await
        .expect("connect");
    let e = strict
        .producer(&unique("missing"))
        .build()
        .await
        .err()
        .expect("missing topic is an error");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let _ = broker.close().await;
    let _ = strict.close().await;
}

/// Produces one record with raw librdkafka, with header names and values given as bytes.
fn produce_raw(url: &str, topic: &str, headers: &[(&[u8], &[u8])], payload: &[u8]) {
    use rdkafka::bindings as rd;
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseProducer, Producer};
    let bootstrap = url
        .trim_start_matches("kafka://")
        .split(['?', '/'])
        .next()
        .unwrap_or_default()
        .to_string();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("raw producer");
    let topic_c = CString::new(topic).expect("topic");
    let names: Vec<CString> = headers
        .iter()
        .map(|(n, _)| CString::new(n.to_vec()).expect("no NUL in names"))
        .collect();
    let mut vus: Vec<rd::rd_kafka_vu_t> = Vec::new();
    let vu = |vtype, u| rd::rd_kafka_vu_t { vtype, u };
    vus.push(vu(
        rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_TOPIC,
        rd::rd_kafka_vu_s__bindgen_ty_1 {
            cstr: topic_c.as_ptr(),
        },
    ));
    vus.push(vu(
        rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_VALUE,
        rd::rd_kafka_vu_s__bindgen_ty_1 {
            mem: rd::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 {
                ptr: payload.as_ptr() as *mut _,
                size: payload.len(),
            },
        },
    ));
    // Copy the payload: librdkafka must not free memory it does not own.
    vus.push(vu(
        rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_MSGFLAGS,
        rd::rd_kafka_vu_s__bindgen_ty_1 {
            i: rd::RD_KAFKA_MSG_F_COPY,
        },
    ));
    for (name, (_, value)) in names.iter().zip(headers) {
        vus.push(vu(
            rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_HEADER,
            rd::rd_kafka_vu_s__bindgen_ty_1 {
                header: rd::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_2 {
                    name: name.as_ptr(),
                    val: value.as_ptr() as *const _,
                    size: value.len() as isize,
                },
            },
        ));
    }
    // SAFETY: every pointer in `vus` outlives the call (librdkafka copies what it keeps).
    let err =
        unsafe { rd::rd_kafka_produceva(producer.client().native_ptr(), vus.as_ptr(), vus.len()) };
    assert!(err.is_null(), "raw produce failed");
    producer.flush(Duration::from_secs(10)).expect("raw flush");
}

/// A foreign record with a non-UTF-8 header name and value, an invalid name, a control
/// character and a repeated name: delivered without the bad headers, which are listed in
/// `x-brokerkit-invalid-headers`; the repeated name keeps its last value; the consumer goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_record_with_malformed_headers() {
    let Some(url) = shared_url() else { return };
    let broker = Broker::connect(&url).await.expect("connect");
    let dest = unique("foreign");
    let mut consumer = broker.consumer(&dest).build().await.expect("consumer");
    let headers: &[(&[u8], &[u8])] = &[
        (b"x-good", b"ok"),
        (&[0xff, 0xfe, b'n'], b"v"),
        (b"x-binary", &[0xc3, 0x28]),
        (b"bad name", b"v"),
        (b"x-ctl", b"a\x01b"),
        (b"x-dup", b"first"),
        (b"X-Dup", b"last"),
    ];
    let u = url.clone();
    let d2 = dest.clone();
    tokio::task::spawn_blocking(move || produce_raw(&u, &d2, headers, b"foreign"))
        .await
        .expect("raw produce task");
    let d = tokio::time::timeout(Duration::from_secs(15), consumer.next())
        .await
        .expect("in time")
        .expect("no error")
        .expect("a delivery");
    let h = &d.message().headers;
    assert_eq!(d.message().payload.as_ref(), b"foreign");
    assert_eq!(h.get("x-good"), Some("ok"));
    assert_eq!(h.get("x-dup"), Some("last"));
    assert_eq!(
        h.get("x-brokerkit-invalid-headers"),
        Some("%FF%FEn,x-binary,bad%20name,x-ctl")
    );
    assert_eq!(h.len(), 3, "{h:?}");
    d.ack().await.expect("ack");
    // The consumer keeps running.
    let producer = broker.producer(&dest).build().await.expect("producer");
    let ok = Headers::new().with("x-after", "1").expect("header");
    producer
        .send(Message::new("after").with_headers(ok))
        .await
        .expect("send");
    let d = tokio::time::timeout(Duration::from_secs(15), consumer.next())
        .await
        .expect("in time")
        .expect("no error")
        .expect("a delivery");
    assert_eq!(d.message().payload.as_ref(), b"after");
    d.ack().await.expect("ack");
    let _ = broker.close().await;
}

/// A second member joins while the first holds deliveries: the first gets time to settle them
/// and commits before its partitions move, so nothing is lost and nothing is delivered twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_commits_settled_offsets_before_partitions_move() {
    let Some(url) = shared_url() else { return };
    let broker = Broker::connect(&url).await.expect("connect");
    let dest = unique("rebalance");
    let mut a = broker
        .consumer(&dest)
        .group("g")
        .prefetch(5)
        .build()
        .await
        .expect("consumer a");
    let producer = broker.producer(&dest).build().await.expect("producer");
    let total = 30;
    for i in 0..total {
        producer
            .send(Message::new(i.to_string()))
            .await
            .expect("send");
    }
    let mut held = Vec::new();
    for _ in 0..5 {
        let d = tokio::time::timeout(Duration::from_secs(15), a.next())
            .await
            .expect("in time")
            .expect("no error")
            .expect("a delivery");
        held.push(d);
    }
    let mut seen: Vec<String> = held
        .iter()
        .map(|d| String::from_utf8_lossy(&d.message().payload).into_owned())
        .collect();
    // Settle the held deliveries while `b` is joining (the rebalance waits for them).
    let settler = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for d in held {
            d.ack().await.expect("ack before the partitions move");
        }
    });
    let mut b = broker
        .consumer(&dest)
        .group("g")
        .prefetch(5)
        .build()
        .await
        .expect("consumer b");
    settler.await.expect("settler");
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < total {
        assert!(Instant::now() < deadline, "only {} of {total}", seen.len());
        let d = tokio::select! {
            d = a.next() => d,
            d = b.next() => d,
            _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
        }
        .expect("no error")
        .expect("a delivery");
        seen.push(String::from_utf8_lossy(&d.message().payload).into_owned());
        d.ack().await.expect("ack");
    }
    // Nothing more: no duplicates of what was settled before the rebalance.
    let extra = tokio::time::timeout(Duration::from_secs(2), async {
        tokio::select! { d = a.next() => d, d = b.next() => d }
    })
    .await;
    if let Ok(Ok(Some(d))) = extra {
        panic!(
            "delivered again: {:?}",
            String::from_utf8_lossy(&d.message().payload)
        );
    }
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), distinct.len()), (total, total), "{seen:?}");
    let _ = broker.close().await;
}

/// With a tiny local buffer the consumer pauses and resumes its partitions over and over:
/// every message arrives once, in order per partition (all with one key here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_buffer_pauses_and_resumes_without_loss() {
    let Some(url) = shared_url() else { return };
    let sep = if url.contains('?') { '&' } else { '?' };
    let broker = Broker::connect(&format!("{url}{sep}buffer_messages=5"))
        .await
        .expect("connect");
    let dest = unique("paused");
    let mut consumer = broker
        .consumer(&dest)
        .prefetch(2)
        .build()
        .await
        .expect("consumer");
    let producer = broker.producer(&dest).build().await.expect("producer");
    let total = 300;
    let batch = (0..total)
        .map(|i| Message::new(i.to_string()).with_key("one-key"))
        .collect();
    producer.send_batch(batch).await.expect("send");
    for expected in 0..total {
        let d = tokio::time::timeout(Duration::from_secs(15), consumer.next())
            .await
            .unwrap_or_else(|_| panic!("message {expected} did not arrive"))
            .expect("no error")
            .expect("a delivery");
        let got: usize = String::from_utf8_lossy(&d.message().payload)
            .parse()
            .expect("a number");
        assert_eq!(got, expected);
        d.ack().await.expect("ack");
    }
    if let Ok(Ok(Some(d))) = tokio::time::timeout(Duration::from_secs(1), consumer.next()).await {
        panic!(
            "delivered twice: {:?}",
            String::from_utf8_lossy(&d.message().payload)
        );
    }
    let _ = broker.close().await;
}
