//! Correlation: every sent message gets a message-id; inside a handler it inherits the handled
//! message's correlation-id and takes its message-id as causation-id; outside a handler it
//! starts a new correlation (correlation-id = its own message-id). Values the caller set are
//! kept.

use std::time::SystemTime;

use brokerkit_core::{Message, Result};

use super::Stamp;
use crate::context::Context;

/// Stamps message-id, correlation-id, causation-id and timestamp.
pub struct CorrelationLayer;

/// A new message id (UUID v7: unique and time-ordered).
pub fn new_message_id() -> String {
    let mut buf = uuid::Uuid::encode_buffer();
    uuid::Uuid::now_v7()
        .hyphenated()
        .encode_lower(&mut buf)
        .to_string()
}

impl Stamp for CorrelationLayer {
    fn stamp(&self, message: &mut Message) -> Result<()> {
        let h = &mut message.headers;
        if h.message_id().is_none() {
            h.set_message_id(new_message_id())?;
        }
        let current = Context::current();
        if h.correlation_id().is_none() {
            let inherited = current
                .as_ref()
                .and_then(|c| c.correlation_id().or(c.message_id()).map(str::to_string));
            let id = match inherited {
                Some(id) => id,
                None => h.message_id().unwrap_or_default().to_string(),
            };
            h.set_correlation_id(id)?;
        }
        if h.causation_id().is_none() {
            if let Some(cause) = current.as_ref().and_then(|c| c.message_id()) {
                h.set_causation_id(cause)?;
            }
        }
        if h.get(brokerkit_core::headers::names::TIMESTAMP).is_none() {
            h.set_timestamp(SystemTime::now())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brokerkit_core::Headers;

    #[tokio::test]
    async fn outside_a_handler_a_new_correlation_starts() {
        let mut m = Message::new("x");
        CorrelationLayer.stamp(&mut m).unwrap();
        let h = &m.headers;
        assert!(h.message_id().is_some());
        assert_eq!(h.correlation_id(), h.message_id());
        assert_eq!(h.causation_id(), None);
        assert!(h.timestamp().unwrap().is_some());
    }

    #[tokio::test]
    async fn inside_a_handler_ids_are_inherited() {
        let mut incoming = Headers::new();
        incoming.set_message_id("m-1").unwrap();
        incoming.set_correlation_id("c-1").unwrap();
        let ctx = Context::for_test(incoming);
        let m = ctx
            .scope(async {
                let mut m = Message::new("y");
                CorrelationLayer.stamp(&mut m).unwrap();
                m
            })
            .await;
        assert_eq!(m.headers.correlation_id(), Some("c-1"));
        assert_eq!(m.headers.causation_id(), Some("m-1"));
        assert_ne!(m.headers.message_id(), Some("m-1"));
    }

    #[tokio::test]
    async fn caller_values_are_kept() {
        let mut h = Headers::new();
        h.set_message_id("mine").unwrap();
        h.set_correlation_id("flow").unwrap();
        let mut m = Message::new("z").with_headers(h);
        CorrelationLayer.stamp(&mut m).unwrap();
        assert_eq!(m.headers.message_id(), Some("mine"));
        assert_eq!(m.headers.correlation_id(), Some("flow"));
    }
}
