//! The SQS/SNS conventions the SDK asks about (see `brokerkit_core::profile`): the AsyncAPI
//! `sqs`/`sns` protocols, the address in the `endpoint=` key (URLs name no host), and the
//! lease key `visibility_timeout_secs`. AsyncAPI's SQS and SNS bindings describe queue
//! policies brokerkit does not manage, so none is declared; no CloudEvents binding exists
//! for SQS, so the HTTP binding's names are used (the default).

use brokerkit_core::{LeaseKey, SchemeProfile};

/// The profile of `sqs://` and `sns://`.
pub(crate) fn profile(scheme: &str) -> SchemeProfile {
    let mut p = SchemeProfile::default();
    p.asyncapi_protocol = Some(if scheme == "sns" { "sns" } else { "sqs" });
    p.address_key = Some("endpoint");
    p.lease_key = Some(LeaseKey::Secs("visibility_timeout_secs"));
    p
}
