//! Fault cases over each adapter's [`Fixture`]: the broker restarted mid-stream with a
//! producer and a consumer both running; a consumer killed between handler success and ack; a
//! crash-looping poison message. Run by [`crate::fault_suite!`] one at a time (a fixture may
//! restart a shared broker, which would disturb concurrent cases).

use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerkit::{Broker, ErrorKind, Message};

use crate::fixture::Fixture;
use crate::harness::Outcome;

/// Messages of the restart case: `$BROKERKIT_RESTART_MESSAGES`, default 5,000 (the bar of
/// 100,000 is run by hand: `BROKERKIT_RESTART_MESSAGES=100000 cargo test -p brokerkit-<b>
/// --test fault_suite`; slow brokers need `BROKERKIT_RESTART_DEADLINE_SECS` raised).
pub fn restart_messages() -> usize {
    std::env::var("BROKERKIT_RESTART_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(5_000)
}

fn report_line(line: &str) {
    // Past the test harness's capture, so the figures show in every run.
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Sends N numbered messages (batches of 100, retried on retryable errors: duplicates
/// allowed, any other error fails) while a consumer receives and acks; after a third is sent
/// the broker is stopped for 2 s and started again. Every message must arrive; duplicates
/// are counted and reported. No ack error is ignored: each must be retryable (the message is
/// then not settled and must come again, or was settled and the error was about the reply),
/// each is counted and reported with how many of those messages came again.
pub async fn broker_restart_mid_stream(url: &str, f: Arc<dyn Fixture>) -> Outcome {
    let total = restart_messages();
    let mut restartable = match f.restartable(url).await {
        Ok(r) => r,
        Err(why) => return Outcome::Skipped(why),
    };
    let url = restartable.url();
    let broker = Broker::connect(&url).await.expect("connect");
    if !broker.capabilities().redelivery {
        broker.close().await.unwrap();
        return Outcome::Skipped("the broker does not redeliver".into());
    }
    let adapter = broker.adapter();
    let dest = format!(
        "bk-restart-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let mut consumer = broker
        .consumer(&dest)
        .group("g")
        .prefetch(256)
        .build()
        .await
        .expect("consumer");
    let producer = broker.producer(&dest).build().await.expect("producer");
    let started = Instant::now();
    let sent = Arc::new(AtomicUsize::new(0));
    let send_retries = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (sent, send_retries) = (sent.clone(), send_retries.clone());
        tokio::spawn(async move {
            let mut next = 0;
            while next < total {
                let n = 100.min(total - next);
                let batch: Vec<Message> = (next..next + n)
                    .map(|i| Message::new(i.to_string()))
                    .collect();
                match producer.send_batch(batch).await {
                    Ok(()) => {
                        next += n;
                        sent.store(next, Ordering::Relaxed);
                    }
                    Err(e) => {
                        assert!(e.is_retryable(), "non-retryable send error: {e}");
                        send_retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        })
    };
    let restarter = {
        let sent = sent.clone();
        tokio::spawn(async move {
            while sent.load(Ordering::Relaxed) < total / 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let at = sent.load(Ordering::Relaxed);
            let t = Instant::now();
            restartable.restart(Duration::from_secs(2)).await;
            (restartable, at, t.elapsed())
        })
    };

    let mut seen = HashSet::with_capacity(total);
    let mut deliveries = 0usize;
    let mut receive_errors = 0usize;
    let mut failed_acks: HashSet<usize> = HashSet::new();
    let mut ack_errors = 0usize;
    let mut came_again = 0usize;
    // `$BROKERKIT_RESTART_DEADLINE_SECS` for long runs on a slow broker (tansu's sqlite
    // storage slows down as it grows: 100,000 messages take many minutes).
    let deadline_secs = std::env::var("BROKERKIT_RESTART_DEADLINE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120 + total as u64 / 200);
    let deadline = Instant::now() + Duration::from_secs(deadline_secs);
    while seen.len() < total {
        assert!(
            Instant::now() < deadline,
            "only {} of {total} received (sent {})",
            seen.len(),
            sent.load(Ordering::Relaxed)
        );
        let d = match tokio::time::timeout(Duration::from_secs(30), consumer.next()).await {
            Ok(Ok(Some(d))) => d,
            Ok(Ok(None)) => panic!("consumer ended"),
            Ok(Err(e)) => {
                assert!(e.is_retryable(), "non-retryable receive error: {e}");
                receive_errors += 1;
                continue;
            }
            Err(_) => continue,
        };
        deliveries += 1;
        let i: usize = String::from_utf8_lossy(&d.message().payload)
            .parse()
            .expect("a number");
        if seen.insert(i) && seen.len() % (total / 10).max(1) == 0 {
            report_line(&format!(
                "restart {adapter}: {} received, {} sent, {:.1} s",
                seen.len(),
                sent.load(Ordering::Relaxed),
                started.elapsed().as_secs_f64()
            ));
        }
        if failed_acks.remove(&i) {
            came_again += 1;
        }
        // An ack must end (acked, or an error) even with the broker down: a hang here is a
        // bug of the adapter, reported as such instead of stalling the run.
        let acked = tokio::time::timeout(Duration::from_secs(30), d.ack())
            .await
            .unwrap_or_else(|_| panic!("an ack on {adapter} did not return within 30 s"));
        if let Err(e) = acked {
            // `DeliveryExpired` (the channel the delivery came on closed with the broker) is
            // the documented outcome of acking across a restart: the broker delivers it again.
            assert!(
                e.is_retryable() || e.kind() == ErrorKind::DeliveryExpired,
                "ack error that is neither retryable nor delivery_expired: {e}"
            );
            ack_errors += 1;
            failed_acks.insert(i);
        }
    }
    let elapsed = started.elapsed();
    sender.await.expect("sender task");
    let (restartable, restarted_at, down) = restarter.await.expect("restarter task");
    let lost = total - seen.len();
    report_line(&format!(
        "restart {adapter}: sent {total} (broker restarted after {restarted_at} sent, down \
         {:.1} s), received {} distinct in {deliveries} deliveries, {} duplicates, {lost} lost, \
         {send_retries} send retries, {receive_errors} receive errors, {ack_errors} ack errors \
         ({came_again} of those messages came again), {:.1} s",
        down.as_secs_f64(),
        seen.len(),
        deliveries - seen.len(),
        elapsed.as_secs_f64(),
        send_retries = send_retries.load(Ordering::Relaxed),
    ));
    assert_eq!(lost, 0);
    let _ = tokio::time::timeout(Duration::from_secs(20), broker.close()).await;
    drop(restartable);
    Outcome::Passed
}

// ---------------------------------------------------------------------------------------
// Cases that kill a consumer process: the test binary re-runs itself as the child
// (`fault_child`, generated by `fault_suite!`, ignored unless started by these cases), which appends what
// it did to a file the parent reads.
// ---------------------------------------------------------------------------------------

/// Env var naming what the child does: `handle-then-hang` or `poison-crash`.
pub const CHILD_MODE: &str = "BROKERKIT_FAULT_CHILD";
const CHILD_URL: &str = "BROKERKIT_FAULT_URL";
const CHILD_DEST: &str = "BROKERKIT_FAULT_DEST";
const CHILD_OUT: &str = "BROKERKIT_FAULT_OUT";
/// The retry limit of the poison case.
const POISON_LIMIT: u32 = 3;

fn note(line: &str) {
    let path = std::env::var(CHILD_OUT).expect("child output file");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("child output file");
    writeln!(f, "{line}").expect("write child output");
    f.sync_all().expect("sync child output");
}

/// The child process's side. `handle-then-hang`: receives one delivery, "handles" it (notes
/// `handled <payload>`), and hangs before acking, to be killed. `poison-crash`: runs a
/// handler with retry limit [`POISON_LIMIT`] whose every run notes `ran <attempt>` and aborts
/// the process.
pub async fn child_main() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let url = std::env::var(CHILD_URL).expect("url");
    let dest = std::env::var(CHILD_DEST).expect("dest");
    let broker = Broker::connect(&url).await.expect("child connect");
    match mode.as_str() {
        "handle-then-hang" => {
            let mut consumer = broker.consumer(&dest).group("g").build().await.unwrap();
            let d = crate::harness::receive(&mut consumer).await;
            note(&format!(
                "handled {}",
                String::from_utf8_lossy(&d.message().payload)
            ));
            // Killed here: the handler succeeded, the ack never happens.
            std::future::pending::<()>().await;
        }
        "poison-crash" => {
            let policy = if broker.capabilities().delayed_redelivery.is_available() {
                brokerkit::RetryPolicy::exponential(Duration::from_millis(50), POISON_LIMIT)
                    .without_jitter()
            } else {
                brokerkit::RetryPolicy::immediate(POISON_LIMIT)
            };
            let handler =
                broker
                    .consumer(&dest)
                    .group("g")
                    .retry(policy)
                    .handle_raw(|ctx, _m| async move {
                        note(&format!("ran {}", ctx.attempt()));
                        std::process::abort();
                    });
            let _ = handler.run_until(std::future::pending()).await;
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// A running child process; killed when dropped.
struct ChildProc {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl ChildProc {
    fn spawn(mode: &str, url: &str, dest: &str, out: &std::path::Path) -> ChildProc {
        let exe = std::env::current_exe().expect("test binary");
        let child = std::process::Command::new(exe)
            .args(["--exact", "fault_child", "--include-ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD_MODE, mode)
            .env(CHILD_URL, url)
            .env(CHILD_DEST, dest)
            .env(CHILD_OUT, out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the child process");
        ChildProc {
            child,
            out: out.to_path_buf(),
        }
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn out_file(case: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "bk-fault-{case}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    ))
}

/// Kills the consumer process (SIGKILL) after its handler succeeded and before it acked, then
/// consumes again: the message must come back (a duplicate is allowed, a loss is not), and
/// once acked it must not come again.
pub async fn killed_between_handler_success_and_ack(url: &str) -> Outcome {
    let broker = Broker::connect(url).await.expect("connect");
    if !broker.capabilities().redelivery {
        broker.close().await.unwrap();
        return Outcome::Skipped("the broker does not redeliver".into());
    }
    let dest = format!(
        "bk-killack-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    // The group exists before the message is sent (brokers without retained topics).
    let mut consumer = broker.consumer(&dest).group("g").build().await.unwrap();
    consumer.close().await.unwrap();
    drop(consumer);
    let producer = broker.producer(&dest).build().await.unwrap();
    producer.send(Message::new("only")).await.unwrap();
    let out = out_file("killack");
    let mut child = ChildProc::spawn("handle-then-hang", url, &dest, &out);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !child.lines().iter().any(|l| l == "handled only") {
        assert!(
            !child.exited(),
            "the child exited before handling: {:?}",
            child.lines()
        );
        assert!(Instant::now() < deadline, "the child never handled it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill();
    let t = Instant::now();
    let mut consumer = broker.consumer(&dest).group("g").build().await.unwrap();
    let d = match tokio::time::timeout(Duration::from_secs(60), consumer.next()).await {
        Ok(Ok(Some(d))) => d,
        other => panic!(
            "the message handled by the killed process never came back: {:?}",
            other.map(|r| r.map(|o| o.is_some()))
        ),
    };
    assert_eq!(&d.message().payload[..], b"only");
    let attempt = d.attempt();
    d.ack().await.unwrap();
    crate::harness::expect_none(&mut consumer, Duration::from_secs(2)).await;
    report_line(&format!(
        "killed before ack on {}: came back after {:.1} s with attempt {attempt}",
        broker.adapter(),
        t.elapsed().as_secs_f64()
    ));
    let _ = std::fs::remove_file(&out);
    consumer.close().await.unwrap();
    broker.close().await.unwrap();
    Outcome::Passed
}

/// A poison message that crashes its consumer process (abort in the handler) on every run,
/// with the process restarted after each crash: after [`POISON_LIMIT`] runs the next delivery
/// is past the limit and is dead-lettered without running the handler. Only where attempts
/// survive a crash (`Capabilities::crash_safe_attempts`); elsewhere the count restarts.
pub async fn crash_looping_poison_reaches_the_dlq(url: &str) -> Outcome {
    let broker = Broker::connect(url).await.expect("connect");
    let caps = broker.capabilities().clone();
    if !caps.crash_safe_attempts || !caps.dead_letter.is_available() {
        broker.close().await.unwrap();
        return Outcome::Skipped(
            "attempts do not survive a process crash here (crash_safe_attempts is false) or \
             no dead-letter destination"
                .into(),
        );
    }
    let dest = format!(
        "bk-poison-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let mut dead = broker
        .consumer(&brokerkit::dead_letter_destination(&dest))
        .group("ops")
        .build()
        .await
        .unwrap();
    let mut consumer = broker.consumer(&dest).group("g").build().await.unwrap();
    consumer.close().await.unwrap();
    drop(consumer);
    broker
        .producer(&dest)
        .build()
        .await
        .unwrap()
        .send(Message::new("poison"))
        .await
        .unwrap();
    let out = out_file("poison");
    let mut child = ChildProc::spawn("poison-crash", url, &dest, &out);
    let mut restarts = 0u32;
    let deadline = Instant::now() + Duration::from_secs(150);
    let dl = loop {
        assert!(
            Instant::now() < deadline,
            "not dead-lettered after {restarts} restarts: {:?}",
            child.lines()
        );
        if let Ok(got) = tokio::time::timeout(Duration::from_millis(200), dead.next()).await {
            break got.expect("dlq receive").expect("dlq consumer ended");
        }
        if child.exited() {
            restarts += 1;
            assert!(
                restarts <= POISON_LIMIT + 2,
                "crash loop: {restarts} crashes, never dead-lettered: {:?}",
                child.lines()
            );
            child = ChildProc::spawn("poison-crash", url, &dest, &out);
        }
    };
    let runs = child.lines();
    child.kill();
    let env = brokerkit::DeadLetterEnvelope::read_from(&dl.message().headers).expect("envelope");
    assert_eq!(&dl.message().payload[..], b"poison");
    assert!(env.attempts > POISON_LIMIT, "{env:?}");
    assert!(
        runs.len() as u32 <= POISON_LIMIT,
        "the handler ran more than the limit: {runs:?}"
    );
    dl.ack().await.unwrap();
    report_line(&format!(
        "poison on {}: {} crashes ({runs:?}), dead-lettered with attempts {}",
        broker.adapter(),
        restarts,
        env.attempts
    ));
    let _ = std::fs::remove_file(&out);
    broker.close().await.unwrap();
    Outcome::Passed
}

// ---------------------------------------------------------------------------------------
// In-process fault cases, registered in the conformance suite (every broker): they get the
// suite's short-lease URL where it has one, so dropped deliveries come back quickly.
// ---------------------------------------------------------------------------------------

fn quick_url(c: &crate::harness::Ctx) -> String {
    c.lease_url.clone().unwrap_or_else(|| c.url.clone())
}

fn quick_retry(broker: &Broker, attempts: u32) -> brokerkit::RetryPolicy {
    if broker.capabilities().delayed_redelivery.is_available() {
        brokerkit::RetryPolicy::exponential(Duration::from_millis(50), attempts).without_jitter()
    } else {
        brokerkit::RetryPolicy::immediate(attempts)
    }
}

/// The dead-letter publish fails twice (fault wrapper around the real adapter: the delivery
/// is dropped unsettled, as when the copy could not be published): the message is neither
/// lost nor handled again and again. It comes back, is dead-lettered again without running
/// the handler (its attempt is past the limit) and reaches the DLQ once; the failed settles
/// are counted and the run goes on (2 failures are below `SETTLE_FAILURE_LIMIT`).
pub async fn dead_letter_publish_failure_keeps_the_message(c: crate::harness::Ctx) -> Outcome {
    use brokerkit::faults::{FaultPlan, FaultyBackend};
    let caps = c.broker.capabilities().clone();
    if !caps.redelivery || !caps.dead_letter.is_available() {
        return Outcome::Skipped("no redelivery or no dead-letter destination".into());
    }
    let backend = brokerkit::Registry::default()
        .connect(&quick_url(&c))
        .await
        .expect("connect");
    let plan = FaultPlan::default().fail_dead_letters(2, ErrorKind::Unavailable);
    let broker = Broker::from_backend(FaultyBackend::wrap(backend, plan));
    let dest = c.dest("q");
    let mut dead = broker
        .consumer(&brokerkit::dead_letter_destination(&dest))
        .group("ops")
        .build()
        .await
        .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let runs_in = runs.clone();
    let handler = broker
        .consumer(&dest)
        .group("g")
        .retry(quick_retry(&broker, 2))
        .handle_raw(move |_ctx, _m| {
            runs_in.fetch_add(1, Ordering::SeqCst);
            async {
                Err(brokerkit::Error::new(brokerkit::ErrorKind::Handler, "always fails").into())
            }
        });
    let stop = crate::harness::Stop::new();
    let run = handler.start(stop.signal()).await.unwrap();
    broker
        .producer(&dest)
        .build()
        .await
        .unwrap()
        .send(Message::new("doomed"))
        .await
        .unwrap();
    let dl = crate::harness::receive(&mut dead).await;
    assert_eq!(&dl.message().payload[..], b"doomed");
    dl.ack().await.unwrap();
    crate::harness::expect_none(&mut dead, Duration::from_millis(500)).await;
    assert!(!run.is_finished(), "two failed settles stopped the run");
    stop.now();
    let report = run.join().await.unwrap();
    let runs = runs.load(Ordering::SeqCst);
    // 2 runs (the limit); a broker that redelivers a dropped delivery without raising its
    // attempt may run it once more per failed dead-letter, never more.
    assert!(
        (2..=4).contains(&runs),
        "handler ran {runs} times: {report:?}"
    );
    assert_eq!(report.settle_failed, 2, "{report:?}");
    assert_eq!(report.dead_lettered, 1, "{report:?}");
    report_line(&format!(
        "dead-letter publish failure on {}: handler ran {runs} times, {report:?}",
        broker.adapter()
    ));
    broker.close().await.unwrap();
    Outcome::Passed
}

/// An idempotency store over the in-memory one that can be switched off.
struct SwitchableStore {
    inner: brokerkit::idempotency::MemoryStore,
    down: std::sync::atomic::AtomicBool,
}

impl SwitchableStore {
    fn check(&self) -> brokerkit::Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(brokerkit::Error::new(ErrorKind::Unavailable, "store down").retryable(true));
        }
        Ok(())
    }
}

#[brokerkit::core::async_trait]
impl brokerkit::IdempotencyStore for SwitchableStore {
    fn name(&self) -> &'static str {
        "switchable"
    }

    async fn claim(
        &self,
        key: &str,
        lease: Duration,
    ) -> brokerkit::Result<brokerkit::idempotency::Claim> {
        self.check()?;
        self.inner.claim(key, lease).await
    }

    async fn complete(
        &self,
        key: &str,
        token: &brokerkit::idempotency::ClaimToken,
        ttl: Duration,
    ) -> brokerkit::Result<()> {
        self.check()?;
        self.inner.complete(key, token, ttl).await
    }

    async fn release(
        &self,
        key: &str,
        token: &brokerkit::idempotency::ClaimToken,
    ) -> brokerkit::Result<()> {
        self.check()?;
        self.inner.release(key, token).await
    }
}

/// The idempotency store goes down while the handler runs (claimed before, so `complete`
/// fails) and comes back 3 s later: the message is not acked while its key is unrecorded, so
/// it comes back and is handled again once the store answers (a duplicate run, allowed);
/// nothing is lost or dead-lettered, and after the run nothing is left to deliver.
pub async fn store_outage_mid_handler(c: crate::harness::Ctx) -> Outcome {
    if !c.broker.capabilities().redelivery {
        return Outcome::Skipped("the broker does not redeliver".into());
    }
    let broker = Broker::connect(&quick_url(&c)).await.expect("connect");
    let store = Arc::new(SwitchableStore {
        inner: Default::default(),
        down: false.into(),
    });
    let dest = c.dest("q");
    let runs = Arc::new(AtomicUsize::new(0));
    let (runs_in, store_in) = (runs.clone(), store.clone());
    let handler = broker
        .consumer(&dest)
        .group("g")
        .retry(quick_retry(&broker, 5))
        .idempotency(brokerkit::Idempotency::new(store.clone()).lease(Duration::from_secs(1)))
        .handle_raw(move |_ctx, _m| {
            let first = runs_in.fetch_add(1, Ordering::SeqCst) == 0;
            let store = store_in.clone();
            async move {
                if first {
                    // The outage starts mid-handler and ends 3 s later.
                    store.down.store(true, Ordering::SeqCst);
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        store.down.store(false, Ordering::SeqCst);
                    });
                }
                Ok(())
            }
        });
    let stop = crate::harness::Stop::new();
    let run = handler.start(stop.signal()).await.unwrap();
    let mut m = Message::new("once");
    m.headers.set_idempotency_key("k-outage").unwrap();
    broker
        .producer(&dest)
        .build()
        .await
        .unwrap()
        .send(m)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let report = run.health().report;
        if report.acked == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never acked: {report:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.now();
    let report = run.join().await.unwrap();
    let runs = runs.load(Ordering::SeqCst);
    assert!(
        runs >= 2,
        "the message was acked without its key recorded: {report:?}"
    );
    assert_eq!(report.dead_lettered, 0, "{report:?}");
    assert!(report.retried >= 1, "{report:?}");
    let mut after = broker.consumer(&dest).group("g").build().await.unwrap();
    crate::harness::expect_none(&mut after, Duration::from_secs(3)).await;
    report_line(&format!(
        "store outage mid-handler on {}: handler ran {runs} times, {report:?}",
        broker.adapter()
    ));
    after.close().await.unwrap();
    broker.close().await.unwrap();
    Outcome::Passed
}
