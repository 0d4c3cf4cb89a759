//! The AMQP conventions the SDK asks about (see `brokerkit_core::profile`): the AsyncAPI
//! `amqp`/`amqps` protocol with the channel binding of the topology this adapter declares (a
//! fanout exchange named after the destination, one queue per group bound to it), and the
//! CloudEvents AMQP protocol binding (`cloudEvents_` headers, the `_` separator the binding
//! prefers). No lease key: a delivery stays with its consumer while it is connected.

use brokerkit_core::{CloudEventsBinding, SchemeProfile};

/// The profile of `amqp://` and `amqps://`.
pub(crate) fn profile(scheme: &str) -> SchemeProfile {
    let mut p = SchemeProfile::default();
    p.asyncapi_protocol = Some(if scheme == "amqps" { "amqps" } else { "amqp" });
    p.asyncapi_channel = Some(
        r#"{"amqp": {"is": "routingKey", "exchange": {"name": "$destination", "type": "fanout", "durable": true}, "bindingVersion": "0.3.0"}}"#,
    );
    p.cloudevents = CloudEventsBinding::new("cloudEvents_");
    p
}
