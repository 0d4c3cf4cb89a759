//! The fault suite's test entry point: [`fault_suite!`](crate::fault_suite) and the URL
//! helper adapters use with it. The cases are in `conformance_faults.rs`.

/// `url` with `query` added (the process-kill cases want short leases).
pub fn with_query(url: Option<String>, query: &str) -> Option<String> {
    url.map(|u| {
        let sep = if u.contains('?') { '&' } else { '?' };
        format!("{u}{sep}{query}")
    })
}

/// Runs one fault case under a watchdog: a case stuck in an await that never returns fails
/// with its name after `$BROKERKIT_FAULT_CASE_SECS` seconds (default 900, plus
/// `$BROKERKIT_RESTART_DEADLINE_SECS` when that is set) instead of stalling the whole run.
pub async fn watched<T>(case: &str, run: impl std::future::Future<Output = T>) -> T {
    let secs = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let limit = secs("BROKERKIT_FAULT_CASE_SECS")
        .unwrap_or(900)
        .saturating_add(secs("BROKERKIT_RESTART_DEADLINE_SECS").unwrap_or(0));
    match tokio::time::timeout(std::time::Duration::from_secs(limit), run).await {
        Ok(outcome) => outcome,
        Err(_) => panic!(
            "fault case {case} did not finish within {limit} s: something awaited forever \
             (BROKERKIT_FAULT_CASE_SECS sets the limit)"
        ),
    }
}

/// The fault cases (`conformance_faults`) over one adapter's fixture, run one at a time, plus
/// the `fault_child` test the process-kill cases start (ignored in a normal run). Invoke it
/// once per test binary, from the adapter's `tests/fault_suite.rs`.
///
/// `BROKERKIT_RESTART_MESSAGES=100000 cargo test -p brokerkit-<b> --test fault_suite -- --test-threads 1`
/// runs the 100,000-message restart bar (default 5,000).
#[macro_export]
macro_rules! fault_suite {
    ($name:ident, $url:expr, $fixture:expr) => {
        $crate::fault_suite!($name, $url, $fixture, crash_url: $url);
    };
    ($name:ident, $url:expr, $fixture:expr, crash_url: $crash_url:expr) => {
        /// The child process of the process-kill cases (started by them with the binary's
        /// own path; ignored in a normal run).
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[ignore = "child process of the fault cases, started by them"]
        async fn fault_child() {
            $crate::conformance_faults::child_main().await;
        }

        mod $name {
            static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
            use std::sync::Arc;

            use $crate::conformance_faults as cases;
            use $crate::fixture::Fixture;
            use $crate::Outcome;

            fn skip(case: &str, why: &str) {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIP {case} on {}: {why}",
                    stringify!($name)
                );
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn broker_restart_mid_stream() {
                let _g = LOCK.lock().await;
                let Some(url) = $url else { return };
                let f: Arc<dyn Fixture> = Arc::new($fixture);
                let case = cases::broker_restart_mid_stream(&url, f);
                let outcome = $crate::fault_suite::watched("broker_restart_mid_stream", case);
                if let Outcome::Skipped(why) = outcome.await {
                    skip("broker_restart_mid_stream", &why);
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn killed_between_handler_success_and_ack() {
                let _g = LOCK.lock().await;
                let Some(url) = $crash_url else { return };
                let case = cases::killed_between_handler_success_and_ack(&url);
                let outcome = $crate::fault_suite::watched("killed_between_handler_success_and_ack", case);
                if let Outcome::Skipped(why) = outcome.await {
                    skip("killed_between_handler_success_and_ack", &why);
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn crash_looping_poison_reaches_the_dlq() {
                let _g = LOCK.lock().await;
                let Some(url) = $crash_url else { return };
                let case = cases::crash_looping_poison_reaches_the_dlq(&url);
                let outcome = $crate::fault_suite::watched("crash_looping_poison_reaches_the_dlq", case);
                if let Outcome::Skipped(why) = outcome.await {
                    skip("crash_looping_poison_reaches_the_dlq", &why);
                }
            }
        }
    };
}
