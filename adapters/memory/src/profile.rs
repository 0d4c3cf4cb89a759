//! The memory broker's conventions the SDK asks about (see `brokerkit_core::profile`): the
//! lease key `visibility_timeout_ms`. No AsyncAPI protocol (nothing outside the process can
//! reach it) and the HTTP binding's CloudEvents names (the default).

use brokerkit_core::{LeaseKey, SchemeProfile};

/// The profile of `memory://`.
pub(crate) fn profile(_scheme: &str) -> SchemeProfile {
    let mut p = SchemeProfile::default();
    p.lease_key = Some(LeaseKey::Millis("visibility_timeout_ms"));
    p
}
