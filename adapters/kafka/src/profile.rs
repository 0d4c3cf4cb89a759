//! The Kafka protocol's conventions the SDK asks about (see `brokerkit_core::profile`): the
//! AsyncAPI `kafka` protocol with its topic and `groupId` bindings, and the CloudEvents Kafka
//! protocol binding (`ce_` headers, `content-type` carrying `datacontenttype`). No lease key:
//! a partition stays with its consumer while it is connected.

use brokerkit_core::{CloudEventsBinding, SchemeProfile};

/// The profile of `kafka://`.
pub(crate) fn profile(_scheme: &str) -> SchemeProfile {
    let mut p = SchemeProfile::default();
    p.asyncapi_protocol = Some("kafka");
    p.asyncapi_channel = Some(r#"{"kafka": {"topic": "$destination", "bindingVersion": "0.5.0"}}"#);
    p.asyncapi_receive = Some(
        r#"{"kafka": {"groupId": {"type": "string", "enum": ["$group"]}, "bindingVersion": "0.5.0"}}"#,
    );
    p.cloudevents = CloudEventsBinding::new("ce_");
    p
}
