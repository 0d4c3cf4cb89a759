//! The fault suite (broker restart mid-stream on a private `redis-server`, a consumer killed
//! between handler success and ack, a crash-looping poison message) against Redis Streams.

use brokerkit_integration_tests::{broker_url, fault_suite};

mod fixture;

fn url() -> Option<String> {
    broker_url(
        "redis",
        "BROKERKIT_REDIS_STREAMS_URL",
        "redis+streams://127.0.0.1:6379",
    )
}

fault_suite!(
    redis_streams,
    crate::url(),
    crate::fixture::RedisStreamsFixture,
    // The macro's arguments are evaluated inside its own module: absolute paths only.
    crash_url: brokerkit_integration_tests::fault_suite::with_query(crate::url(), "lease_ms=2000")
);
