//! The wire conventions of `redis+streams://`: AsyncAPI protocol `redis` (AsyncAPI defines no
//! Redis bindings), CloudEvents with the HTTP binding's names (CloudEvents has no Redis
//! binding), and `lease_ms` as the lease key.

use brokerkit_core::{LeaseKey, SchemeProfile};

/// The profile of `scheme` (only `redis+streams`).
pub fn profile(scheme: &str) -> SchemeProfile {
    let _ = scheme;
    let mut p = SchemeProfile::default();
    p.asyncapi_protocol = Some("redis");
    p.lease_key = Some(LeaseKey::Millis("lease_ms"));
    p
}
