//! The NATS conventions the SDK asks about (see `brokerkit_core::profile`): the AsyncAPI
//! `nats` protocol with its queue-group binding, the CloudEvents NATS protocol binding (`ce-`
//! headers, percent-encoded values, `ce-datacontenttype`), and on JetStream the lease key
//! `ack_wait_ms`.

use brokerkit_core::{CloudEventsBinding, LeaseKey, SchemeProfile};

use crate::config::JETSTREAM_SCHEME;

/// The profile of `nats://` and `nats+js://`.
pub(crate) fn profile(scheme: &str) -> SchemeProfile {
    let mut p = SchemeProfile::default();
    p.asyncapi_protocol = Some("nats");
    p.asyncapi_receive = Some(r#"{"nats": {"queue": "$group", "bindingVersion": "0.1.0"}}"#);
    p.cloudevents = CloudEventsBinding::new("ce-")
        .percent_encoded()
        .content_type_attribute();
    if scheme == JETSTREAM_SCHEME {
        p.lease_key = Some(LeaseKey::Millis("ack_wait_ms"));
    }
    p
}
