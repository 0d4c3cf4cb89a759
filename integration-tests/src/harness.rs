//! What each conformance case gets: a connected broker, unique names and receive helpers
//! that time out instead of hanging.

use std::future::Future;
use std::time::Duration;

use std::sync::Arc;

use brokerkit::{Broker, Consumer, Delivery, Registry};

use crate::fixture::Fixture;

/// Longest wait for a message that should arrive (real brokers included).
pub const RECEIVE_TIMEOUT: Duration = Duration::from_secs(15);

/// Stops handlers started with [`Stop::signal`].
#[derive(Clone, Default)]
pub struct Stop(std::sync::Arc<tokio::sync::Notify>);

impl Stop {
    /// A new, unfired stop.
    pub fn new() -> Self {
        Stop::default()
    }

    /// A shutdown future for `Handler::start`, resolved by [`Stop::now`].
    pub fn signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let n = self.0.clone();
        async move { n.notified().await }
    }

    /// Fires the stop.
    pub fn now(&self) {
        self.0.notify_waiters();
        self.0.notify_one();
    }
}

/// Prints a skip reason past the test harness's output capture, so it shows in every run.
fn skip_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Longest a whole case may run.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Result of a case that did not fail.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every check held.
    Passed,
    /// The broker's capabilities say the case does not apply; the reason is printed.
    Skipped(String),
}

/// The context of one case run.
pub struct Ctx {
    /// The broker under test.
    pub broker: Broker,
    /// Its URL (may hold secrets: do not print).
    pub url: String,
    /// The same broker with a 2-second lease (visibility timeout, `ack_wait`), for the
    /// lifecycle cases; `None` where the suite gave none.
    pub lease_url: Option<String>,
    case: &'static str,
    run_id: String,
}

impl Ctx {
    /// A destination name unique to this case and run.
    pub fn dest(&self, suffix: &str) -> String {
        format!(
            "bk-{}-{}-{suffix}",
            self.case.replace('_', "-"),
            self.run_id
        )
    }

    /// The next delivery, failing the test after [`RECEIVE_TIMEOUT`].
    pub async fn recv(&self, consumer: &mut Consumer) -> Delivery {
        receive(consumer).await
    }

    /// Asserts that nothing arrives within `wait`.
    pub async fn expect_nothing(&self, consumer: &mut Consumer, wait: Duration) {
        expect_none(consumer, wait).await
    }
}

/// The next delivery, failing the test after [`RECEIVE_TIMEOUT`] (for broker-level tests).
pub async fn receive(consumer: &mut Consumer) -> Delivery {
    match tokio::time::timeout(RECEIVE_TIMEOUT, consumer.next()).await {
        Ok(Ok(Some(d))) => d,
        Ok(Ok(None)) => panic!("consumer ended while a delivery was expected"),
        Ok(Err(e)) => panic!("receive failed: {e}"),
        Err(_) => panic!(
            "no delivery within {RECEIVE_TIMEOUT:?} on {}",
            consumer.destination()
        ),
    }
}

/// Asserts that nothing arrives on `consumer` within `wait`.
pub async fn expect_none(consumer: &mut Consumer, wait: Duration) {
    if let Ok(got) = tokio::time::timeout(wait, consumer.next()).await {
        match got {
            Ok(Some(d)) => panic!(
                "unexpected delivery (attempt {}): {:?}",
                d.attempt(),
                String::from_utf8_lossy(&d.message().payload)
            ),
            Ok(None) => {}
            Err(e) => panic!("receive failed: {e}"),
        }
    }
}

/// The URL of a real broker for its suite: `$env_var` if set, else `default` (the loopback
/// address `scripts/brokers up` starts). `None` (a printed skip) when `name` is listed in
/// `BROKERKIT_SKIP_BROKERS` (comma-separated), for developers without that broker.
pub fn broker_url(name: &str, env_var: &str, default: &str) -> Option<String> {
    let skipped = std::env::var("BROKERKIT_SKIP_BROKERS").unwrap_or_default();
    if skipped.split(',').any(|s| s.trim() == name) {
        skip_line(&format!("SKIP {name}: listed in BROKERKIT_SKIP_BROKERS"));
        return None;
    }
    Some(std::env::var(env_var).unwrap_or_else(|_| default.to_string()))
}

/// `(name, url)` of every message broker `scripts/brokers urls` lists: the URLs tests use
/// for the brokers `scripts/brokers up` starts (the URL variables override them; brokers in
/// `BROKERKIT_SKIP_BROKERS` are left out). Names with `+` are variants of a broker's URL with
/// a setting some tests need. For tests that run against every broker without naming them.
pub fn listed_brokers() -> Vec<(String, String)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/brokers");
    let out = std::process::Command::new("bash")
        .args([script, "urls"])
        .output()
        .expect("run scripts/brokers urls");
    assert!(out.status.success(), "scripts/brokers urls: {out:?}");
    String::from_utf8(out.stdout)
        .expect("UTF-8 URLs")
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, u)| (n.to_string(), u.to_string()))
        .collect()
}

/// Connects to `url` and runs `case`; `None` skips with a printed reason.
pub async fn run_case<F, Fut>(url: Option<String>, case: &'static str, f: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = Outcome>,
{
    run_case_with(url, Registry::default(), case, f).await
}

/// [`run_case`] with the URL of the same broker configured with a 2-second lease.
pub async fn run_case_with_lease<F, Fut>(
    url: Option<String>,
    lease_url: Option<String>,
    case: &'static str,
    f: F,
) where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = Outcome>,
{
    run_case_full(url, lease_url, Registry::default(), case, f).await
}

/// [`run_case_with`] for the cases that need the adapter's fixture too.
pub async fn run_fixture_case<F, Fut>(
    url: Option<String>,
    registry: Registry,
    case: &'static str,
    fixture: Arc<dyn Fixture>,
    f: F,
) where
    F: FnOnce(Ctx, Arc<dyn Fixture>) -> Fut,
    Fut: Future<Output = Outcome>,
{
    run_case_with(url, registry, case, move |c| f(c, fixture)).await
}

/// Connects to `url` through `registry` (e.g. one with a fault-injecting connector) and runs
/// `case`; `None` skips with a printed reason.
pub async fn run_case_with<F, Fut>(
    url: Option<String>,
    registry: Registry,
    case: &'static str,
    f: F,
) where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = Outcome>,
{
    run_case_full(url, None, registry, case, f).await
}

/// The general form: `lease_url` for the lifecycle cases, `registry` for wrapped adapters.
pub async fn run_case_full<F, Fut>(
    url: Option<String>,
    lease_url: Option<String>,
    registry: Registry,
    case: &'static str,
    f: F,
) where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let Some(url) = url else {
        skip_line(&format!(
            "SKIP {case}: no broker URL configured for this suite"
        ));
        return;
    };
    let broker = match Broker::connect_with(&registry, &url).await {
        Ok(b) => b,
        Err(e) => panic!("[{case}] cannot connect: {e}"),
    };
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let ctx = Ctx {
        broker: broker.clone(),
        url,
        lease_url,
        case,
        run_id,
    };
    // No case may hang a CI run: each gets a hard bound, and a watchdog thread ends the whole
    // process if something blocks the runtime so that the bound itself cannot fire.
    let _watchdog = Watchdog::arm(case, CASE_TIMEOUT + CLOSE_TIMEOUT + Duration::from_secs(30));
    let outcome = match tokio::time::timeout(CASE_TIMEOUT, f(ctx)).await {
        Ok(o) => o,
        Err(_) => panic!(
            "[{case}] did not finish within {CASE_TIMEOUT:?} on {}",
            broker.adapter()
        ),
    };
    match outcome {
        Outcome::Passed => {}
        Outcome::Skipped(why) => skip_line(&format!("SKIP {case} on {}: {why}", broker.adapter())),
    }
    if tokio::time::timeout(CLOSE_TIMEOUT, broker.close())
        .await
        .is_err()
    {
        panic!(
            "[{case}] Broker::close did not return within {CLOSE_TIMEOUT:?} on {}",
            broker.adapter()
        );
    }
}

/// Longest `Broker::close` may take after a case.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(20);

/// Aborts the test process, naming the case, if the case is still running at its deadline.
/// The per-case `tokio::time::timeout` cannot fire when the runtime thread itself is blocked
/// (a synchronous wait inside async code); this thread still can.
struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    fn arm(case: &'static str, after: Duration) -> Self {
        let (done, finished) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(after) {
                skip_line(&format!(
                    "WATCHDOG: [{case}] still running after {after:?}; aborting the test run"
                ));
                std::process::abort();
            }
        });
        Watchdog(Some(done))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Dropping the sender wakes the watchdog thread with `Disconnected`.
        self.0.take();
    }
}
