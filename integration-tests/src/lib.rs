//! The conformance suite: one set of behaviour checks, written once, run against every
//! adapter by URL. Each adapter instantiates it with [`conformance_suite!`] and its
//! [`fixture::Fixture`] in its own `tests/conformance.rs`; `BROKERKIT_TEST_URL` points
//! `tests/conformance.rs` here at any broker.
#![warn(missing_docs)]

pub mod conformance;
pub mod conformance_batching;
pub mod conformance_claim_check;
pub mod conformance_events;
pub mod conformance_faults;
pub mod conformance_fixture;
pub mod conformance_lag;
pub mod conformance_layers;
pub mod conformance_lifecycle;
pub mod conformance_metrics;
pub mod conformance_profile;
pub mod fault_suite;
pub mod fixture;
mod harness;
pub mod metrics_probe;

pub use brokerkit::Registry;
pub use harness::{
    broker_url, expect_none, listed_brokers, receive, run_case, run_case_full, run_case_with,
    run_case_with_lease, run_fixture_case, Ctx, Outcome, Stop, RECEIVE_TIMEOUT,
};

/// Generates one `#[tokio::test]` per conformance case, for the broker at `$url`
/// (an expression giving `Option<String>`; `None` skips with a printed reason).
///
/// ```ignore
/// brokerkit_integration_tests::conformance_suite!(memory, Some("memory://".to_string()));
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $url:expr) => {
        $crate::conformance_suite!($name, $url, $crate::fixture::NoFixture);
    };
    ($name:ident, $url:expr, $fixture:expr) => {
        $crate::conformance_suite!($name, $url, $fixture, $crate::Registry::default());
    };
    ($name:ident, $url:expr, $fixture:expr, $registry:expr) => {
        $crate::conformance_suite!($name, $url, $fixture, $registry, lease: None);
    };
    ($name:ident, $url:expr, $fixture:expr, $registry:expr, lease: $lease_url:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn registry() -> $crate::Registry {
                $registry
            }
            fn fixture() -> std::sync::Arc<dyn $crate::fixture::Fixture> {
                std::sync::Arc::new($fixture)
            }
            $crate::conformance_lifecycle_cases!(
                $url, $lease_url;
                slow_handler_keeps_its_lease,
                prefetched_backlog_keeps_its_lease
            );
            $crate::conformance_cases!(
                $url;
                send_receive_ack,
                empty_payload,
                headers_round_trip,
                redelivery_after_drop,
                nack_redelivers,
                nack_with_delay,
                dead_letter_envelope,
                ordering_key,
                competing_consumers,
                fan_out_groups,
                payload_limit,
                batch_send,
                prefetch_bound,
                graceful_shutdown,
                unsupported_is_refused,
                bad_destination_name
            );
            $crate::conformance_fixture_cases!(
                $url;
                unreachable_broker,
                malformed_urls_never_show_secrets,
                foreign_headers_dropped_and_listed
            );
            $crate::conformance_cases_in!(
                $url, $crate::conformance_fixture;
                dead_letters_wait_for_a_later_dlq_consumer
            );
            $crate::conformance_cases_in!(
                $url, $crate::conformance_profile;
                profile_is_kept
            );
            $crate::conformance_cases_in!(
                $url, $crate::conformance_batching;
                pipelined_send_and_batch_receive
            );
            $crate::conformance_layer_cases!(
                $url;
                correlation_flows,
                idempotent_handler,
                retry_then_dead_letter,
                bad_payloads_dead_lettered,
                handler_shutdown_drains,
                attempts_past_the_limit_dead_letter_without_running
            );
            $crate::conformance_metrics_cases!(
                $url;
                metrics_count_exactly
            );
            $crate::conformance_fault_cases!(
                $url, $lease_url;
                dead_letter_publish_failure_keeps_the_message,
                store_outage_mid_handler
            );
            $crate::conformance_event_cases!(
                $url;
                versions_upcast_on_one_destination,
                router_three_types,
                cloudevents_sent_in_binary_mode
            );
            $crate::conformance_event_fixture_cases!(
                $url;
                foreign_cloudevent_is_read
            );
            $crate::conformance_claim_check_cases!(
                $url;
                claim_check_5mib_round_trip,
                claim_check_corrupt_then_redriven,
                claim_check_missing_dead_lettered
            );
            $crate::conformance_lag_cases!(
                $url;
                lag_after_partial_ack,
                dead_letter_depth,
                nacked_still_counts,
                lag_bad_names
            );
        }
    };
}

/// Internal: one test per layer case name.
#[macro_export]
#[doc(hidden)]
macro_rules! conformance_layer_cases {
    ($url:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let url: Option<String> = $url;
                $crate::run_case_with(url, registry(), stringify!($case), $crate::conformance_layers::$case).await;
            }
        )*
    };
}

/// Internal: one test per event-evolution case name.
#[macro_export]
#[doc(hidden)]
macro_rules! conformance_event_cases {
    ($url:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let url: Option<String> = $url;
                $crate::run_case_with(url, registry(), stringify!($case), $crate::conformance_events::$case).await;
            }
        )*
    };
}

/// Internal: one test per event-evolution case that needs the adapter's fixture.
#[macro_export]
#[doc(hidden)]
macro_rules! conformance_event_fixture_cases {
    ($url:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let url: Option<String> = $url;
                let f = fixture();
                $crate::run_fixture_case(url, registry(), stringify!($case), f, $crate::conformance_events::$case).await;
            }
        )*
    };
}

/// Internal: one test per lag case name.
#[macro_export]
#[doc(hidden)]
macro_rules! conformance_lag_cases {
    ($url:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let url: Option<String> = $url;
                $crate::run_case_with(url, registry(), stringify!($case), $crate::conformance_lag::$case).await;
            }
        )*
    };
}

/// Internal: one test per lifecycle case name (they get the short-lease URL too).
#[macro_export]
#[doc(hidden)]
macro_rules! conformance_lifecycle_cases {
    ($url:expr, $lease_url:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let url: Option<String> = $url;
                let lease_url: Option<String> = $lease_url;
                $crate::run_case_full(url, lease_url, registry(), stringify!($case), $crate::conformance_lifecycle::$case).await;
            }
        )*
    };
}

/// Internal: one test per in-process fault case name (they get the short-lease URL too).
#[macro_export]
#[doc(hidden)]
macro_rules! conformance_fault_cases {
    ($url:expr, $lease_url:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let url: Option<String> = $url;
                let lease_url: Option<String> = $lease_url;
                $crate::run_case_full(url, lease_url, registry(), stringify!($case), $crate::conformance_faults::$case).await;
            }
        )*
    };
}

/// Internal: one test per metrics case name.
#[macro_export]
#[doc(hidden)]
macro_rules! conformance_metrics_cases {
    ($url:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let url: Option<String> = $url;
                $crate::run_case_with(url, registry(), stringify!($case), $crate::conformance_metrics::$case).await;
            }
        )*
    };
}

/// Internal: one test per case name.
#[macro_export]
#[doc(hidden)]
macro_rules! conformance_cases {
    ($url:expr; $($case:ident),* $(,)?) => {
        $crate::conformance_cases_in!($url, $crate::conformance; $($case),*);
    };
}

/// Internal: one test per case name of module `$module`.
#[macro_export]
#[doc(hidden)]
macro_rules! conformance_cases_in {
    ($url:expr, $module:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                use $module as cases;
                let url: Option<String> = $url;
                $crate::run_case_with(url, registry(), stringify!($case), cases::$case).await;
            }
        )*
    };
}

/// Internal: one test per fixture case name.
#[macro_export]
#[doc(hidden)]
macro_rules! conformance_fixture_cases {
    ($url:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let url: Option<String> = $url;
                let f = fixture();
                $crate::run_fixture_case(url, registry(), stringify!($case), f, $crate::conformance_fixture::$case).await;
            }
        )*
    };
}
