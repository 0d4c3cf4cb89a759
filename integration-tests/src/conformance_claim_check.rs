//! Claim-check conformance, run for every adapter: a 5 MiB payload round-trips byte-exact
//! through the object store (S3 on LocalStack), a small one costs no store I/O, a missing or
//! corrupt object is dead-lettered with the reason, and the reference survives the dead-letter
//! destination and a redrive, after which the message is handled.
//!
//! The store is `$BROKERKIT_CLAIM_CHECK_STORE`, else LocalStack S3 at 127.0.0.1:4566 (with the
//! `claim-check-s3` feature). When `BROKERKIT_SKIP_BROKERS` lists `localstack`, or the feature
//! is off, the cases use a filesystem store instead and print that they did.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokerkit::claim_check::{sha256_hex, ClaimCheck, ObjectStore, Reference, REFERENCE_HEADER};
use brokerkit::{
    dead_letter_destination, redrive, Bytes, Context, DeadLetterEnvelope, ErrorKind, Headers,
    Message, RedriveOptions, Result, RetryPolicy, RunningHandler,
};

use crate::harness::{Ctx, Outcome, Stop};

/// The S3 store the cases use by default (LocalStack, test credentials).
pub const LOCALSTACK_S3: &str = "s3://brokerkit-conformance?endpoint=http://127.0.0.1:4566&region=us-east-1&access_key_id=test&secret_access_key=test&create_bucket=true";

/// Payloads above this go through the store in these cases, on every broker (also those that
/// would carry 5 MiB themselves).
const THRESHOLD: usize = 64 * 1024;

fn note(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The store URL for the claim-check cases (see the module docs).
pub fn store_url() -> String {
    if let Ok(url) = std::env::var("BROKERKIT_CLAIM_CHECK_STORE") {
        return url;
    }
    let fs = || {
        let dir = std::env::temp_dir().join("brokerkit-claim-check-conformance");
        format!("file://{}", dir.display())
    };
    if !cfg!(feature = "claim-check-s3") {
        note("claim_check: built without the claim-check-s3 feature; using the filesystem store");
        return fs();
    }
    match crate::broker_url("localstack", "BROKERKIT_S3_STORE_URL", LOCALSTACK_S3) {
        Some(url) => url,
        None => {
            note("claim_check: localstack skipped; using the filesystem store instead of S3");
            fs()
        }
    }
}

/// Counts store calls around the real store.
struct Counting {
    inner: Arc<dyn ObjectStore>,
    puts: AtomicUsize,
    gets: AtomicUsize,
    keys: Mutex<Vec<String>>,
}

#[brokerkit::core::async_trait]
impl ObjectStore for Counting {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn bucket(&self) -> &str {
        self.inner.bucket()
    }
    fn max_object_bytes(&self) -> u64 {
        self.inner.max_object_bytes()
    }
    async fn put(&self, key: &str, bytes: Bytes, ct: Option<&str>) -> Result<()> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.keys.lock().unwrap().push(key.to_string());
        self.inner.put(key, bytes, ct).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }
}

async fn counting_store() -> Arc<Counting> {
    let inner = brokerkit::claim_check::connect_object_store(&store_url())
        .await
        .unwrap_or_else(|e| panic!("claim-check store: {e}"));
    Arc::new(Counting {
        inner,
        puts: AtomicUsize::new(0),
        gets: AtomicUsize::new(0),
        keys: Mutex::default(),
    })
}

type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

/// Dead letters a redrive saw: the reference header and the envelope.
type Found = Arc<Mutex<Vec<(Option<String>, DeadLetterEnvelope)>>>;

async fn start_handler(c: &Ctx, dest: &str, cc: ClaimCheck, stop: &Stop) -> (RunningHandler, Seen) {
    let seen: Seen = Arc::default();
    let seen_in = seen.clone();
    let policy = if c.broker.capabilities().redelivery {
        RetryPolicy::immediate(2)
    } else {
        RetryPolicy::immediate(1)
    };
    let running = c
        .broker
        .consumer(dest)
        .group("g")
        .retry(policy)
        .claim_check(cc)
        .handle_raw(move |_ctx: Context, m: Message| {
            let seen = seen_in.clone();
            async move {
                assert!(m.headers.get(REFERENCE_HEADER).is_none());
                seen.lock().unwrap().push(m.payload.to_vec());
                Ok(())
            }
        })
        .start(stop.signal())
        .await
        .unwrap();
    (running, seen)
}

async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + crate::RECEIVE_TIMEOUT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn five_mib() -> Vec<u8> {
    (0..5u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// A 5 MiB payload goes through the store and arrives byte-exact; a small one goes inline
/// with no store I/O. Clean-up by the default rule: deleted after the ack where the broker has
/// no fan-out, kept for the bucket's expiry rule elsewhere.
pub async fn claim_check_5mib_round_trip(c: Ctx) -> Outcome {
    let dest = c.dest("big");
    let store = counting_store().await;
    let cc = ClaimCheck::with_store(store.clone()).threshold(THRESHOLD);
    let stop = Stop::new();
    let (running, seen) = start_handler(&c, &dest, cc.clone(), &stop).await;
    let producer = c
        .broker
        .producer(&dest)
        .claim_check(cc)
        .build()
        .await
        .unwrap();
    producer.send(Message::new("small")).await.unwrap();
    until("the small message", || seen.lock().unwrap().len() == 1).await;
    assert_eq!(
        (
            store.puts.load(Ordering::SeqCst),
            store.gets.load(Ordering::SeqCst)
        ),
        (0, 0),
        "a payload under the threshold costs no store I/O"
    );
    let big = five_mib();
    let started = std::time::Instant::now();
    producer.send(Message::new(big.clone())).await.unwrap();
    until("the 5 MiB message", || seen.lock().unwrap().len() == 2).await;
    note(&format!(
        "claim_check on {} via {} store: 5 MiB send → handled in {:?}",
        c.broker.adapter(),
        store.kind(),
        started.elapsed()
    ));
    let got = seen.lock().unwrap()[1].clone();
    assert!(
        got == big,
        "5 MiB payload differs ({} bytes arrived)",
        got.len()
    );
    assert_eq!(
        (
            store.puts.load(Ordering::SeqCst),
            store.gets.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
    stop.now();
    let report = running.join().await.unwrap();
    assert_eq!(report.acked, 2);
    let key = store.keys.lock().unwrap()[0].clone();
    let kept = store.inner.get(&key).await.unwrap().is_some();
    assert_eq!(
        kept,
        c.broker.capabilities().fan_out,
        "Cleanup::Auto deletes after ack exactly where there is no fan-out"
    );
    if kept {
        store.inner.delete(&key).await.unwrap();
    }
    Outcome::Passed
}

/// Sends a reference to `key` for `payload` as a claim-checked producer would.
async fn send_reference(c: &Ctx, dest: &str, store: &dyn ObjectStore, key: &str, payload: &[u8]) {
    let r = Reference {
        v: 1,
        store: store.kind().into(),
        bucket: store.bucket().into(),
        key: key.into(),
        size: payload.len() as u64,
        sha256: sha256_hex(payload),
        content_type: None,
    };
    let h = Headers::new()
        .with(REFERENCE_HEADER, r.to_header())
        .unwrap();
    c.broker
        .producer(dest)
        .build()
        .await
        .unwrap()
        .send(Message::new(Vec::new()).with_headers(h))
        .await
        .unwrap();
}

/// A corrupt object is dead-lettered at once with the reason; the dead letter keeps the
/// reference; after the object is repaired, a redrive moves it back and it is handled.
pub async fn claim_check_corrupt_then_redriven(c: Ctx) -> Outcome {
    if !c.broker.capabilities().dead_letter.is_available() {
        return Outcome::Skipped("no dead-letter destination".into());
    }
    let dest = c.dest("c"); // short: some brokers' queue names (with suffixes added for DLQs and groups) stop at 80
    let store = counting_store().await;
    let cc = ClaimCheck::with_store(store.clone()).threshold(THRESHOLD);
    let key = format!("{}/{dest}/corrupt", cc.key_prefix());
    let payload = vec![7u8; 200_000];
    let mut tampered = payload.clone();
    tampered[100_000] ^= 1;
    store.put(&key, Bytes::from(tampered), None).await.unwrap();
    let stop = Stop::new();
    let (running, seen) = start_handler(&c, &dest, cc, &stop).await;
    send_reference(&c, &dest, &*store, &key, &payload).await;
    until("the dead letter", || {
        running.health().report.dead_lettered == 1
    })
    .await;
    assert!(seen.lock().unwrap().is_empty());

    store
        .put(&key, Bytes::from(payload.clone()), None)
        .await
        .unwrap();
    let found: Found = Arc::default();
    let found_in = found.clone();
    let report = redrive(
        &c.broker,
        &dead_letter_destination(&dest),
        RedriveOptions::default().limit(1).filter(move |m, env| {
            let reference = m.headers.get(REFERENCE_HEADER).map(str::to_string);
            found_in.lock().unwrap().push((reference, env.clone()));
            true
        }),
    )
    .await
    .unwrap();
    assert_eq!(report.total_moved(), 1, "{report:?}");
    let (reference, envelope) = found.lock().unwrap().pop().expect("the dead letter");
    let reference =
        Reference::parse(&reference.expect("the reference survives dead-lettering")).unwrap();
    assert_eq!(reference.key, key);
    assert_eq!(envelope.attempts, 1, "corrupt: dead-lettered at once");
    assert_eq!(envelope.reason.error_kind, Some(ErrorKind::Decode));
    assert!(
        envelope.reason.reason.contains("claim-check") && envelope.reason.reason.contains("sha256"),
        "{}",
        envelope.reason.reason
    );
    until("the redriven message", || seen.lock().unwrap().len() == 1).await;
    assert!(
        seen.lock().unwrap()[0] == payload,
        "redriven payload differs"
    );
    stop.now();
    let report = running.join().await.unwrap();
    assert_eq!((report.acked, report.dead_lettered), (1, 1));
    Outcome::Passed
}

/// A missing object is retried by the policy, then dead-lettered with the reason and the
/// reference.
pub async fn claim_check_missing_dead_lettered(c: Ctx) -> Outcome {
    if !c.broker.capabilities().dead_letter.is_available() {
        return Outcome::Skipped("no dead-letter destination".into());
    }
    let dest = c.dest("m");
    let store = counting_store().await;
    let cc = ClaimCheck::with_store(store.clone());
    let key = format!("{}/{dest}/never-written", cc.key_prefix());
    let stop = Stop::new();
    let (running, seen) = start_handler(&c, &dest, cc, &stop).await;
    send_reference(&c, &dest, &*store, &key, b"gone").await;
    until("the dead letter", || {
        running.health().report.dead_lettered == 1
    })
    .await;
    let mut dlq = c
        .broker
        .consumer(&dead_letter_destination(&dest))
        .build()
        .await
        .unwrap();
    let dead = c.recv(&mut dlq).await;
    let envelope = DeadLetterEnvelope::read_from(&dead.message().headers).expect("envelope");
    assert_eq!(envelope.reason.error_kind, Some(ErrorKind::NotFound));
    assert!(
        envelope.reason.reason.contains("is missing") && envelope.reason.reason.contains(&key),
        "{}",
        envelope.reason.reason
    );
    assert!(dead.message().headers.get(REFERENCE_HEADER).is_some());
    dead.ack().await.unwrap();
    assert!(seen.lock().unwrap().is_empty());
    stop.now();
    running.join().await.unwrap();
    Outcome::Passed
}

/// Internal: one test per claim-check case name.
#[macro_export]
#[doc(hidden)]
macro_rules! conformance_claim_check_cases {
    ($url:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let url: Option<String> = $url;
                $crate::run_case_with(url, registry(), stringify!($case), $crate::conformance_claim_check::$case).await;
            }
        )*
    };
}
