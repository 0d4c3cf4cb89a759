//! Correlation: every sent message gets a message-id; inside a handler it inherits the handled
//! message's correlation-id and takes its message-id as causation-id; outside a handler it
//! starts a new correlation (correlation-id = its own message-id). Values the caller set are
//! kept.

use std::time::UNIX_EPOCH;

use brokerkit_core::{Message, Result};
use uuid::Uuid;

use super::Stamp;
use crate::clock;
use crate::context::Context;
use crate::ids::uuid_v7;

/// Stamps message-id, correlation-id, causation-id and timestamp.
pub struct CorrelationLayer;

/// A new message id (UUID v7: unique and time-ordered).
pub fn new_message_id() -> String {
    let mut buf = Uuid::encode_buffer();
    Uuid::from_u128(uuid_v7(clock::millis(clock::unix_now())))
        .hyphenated()
        .encode_lower(&mut buf)
        .to_string()
}

impl Stamp for CorrelationLayer {
    fn stamp(&self, message: &mut Message) -> Result<()> {
        let h = &mut message.headers;
        // A message sent without headers (the usual case) needs no look-ups.
        let fresh = h.is_empty();
        // One clock read: the id's time is the timestamp.
        let since = clock::unix_now();
        let ms = clock::millis(since);
        let current = Context::current();
        if fresh && current.is_none() {
            // Outside a handler, a new correlation: its id is the message's own.
            h.set_new_correlation(uuid_v7(ms), ms);
            return Ok(());
        }
        // The id generated here, if the caller did not set one: formatted by the headers
        // themselves, so not checked again.
        let own = if fresh || h.message_id().is_none() {
            let id = uuid_v7(ms);
            h.set_message_id_uuid(id);
            Some(id)
        } else {
            None
        };
        if fresh || h.correlation_id().is_none() {
            let inherited = current
                .as_ref()
                .and_then(|c| c.correlation_id().or(c.message_id()));
            match (inherited, own) {
                (Some(id), _) => h.set_correlation_id(id)?,
                (None, Some(id)) => h.set_correlation_id_uuid(id),
                (None, None) => {
                    let id = h.message_id().unwrap_or_default().to_string();
                    h.set_correlation_id(id)?;
                }
            }
        }
        if let Some(cause) = current.as_ref().and_then(|c| c.message_id()) {
            if fresh || h.causation_id().is_none() {
                h.set_causation_id(cause)?;
            }
        }
        if fresh || h.get(brokerkit_core::headers::names::TIMESTAMP).is_none() {
            h.set_timestamp(UNIX_EPOCH + since)?;
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

    #[test]
    fn ids_are_v7_unique_and_ordered_within_a_thread_and_match_the_timestamp() {
        let mut last = String::new();
        for _ in 0..10_000 {
            let mut m = Message::new("x");
            CorrelationLayer.stamp(&mut m).unwrap();
            let id = m.headers.message_id().unwrap().to_string();
            let uuid = Uuid::parse_str(&id).unwrap();
            assert_eq!(uuid.get_version_num(), 7);
            let (secs, nanos) = uuid.get_timestamp().unwrap().to_unix();
            let id_ms = secs * 1000 + u64::from(nanos) / 1_000_000;
            let at = m.headers.timestamp().unwrap().unwrap();
            let ts_ms = at.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
            // The counter may push the id's millisecond forward, never back.
            assert!(id_ms >= ts_ms && id_ms - ts_ms < 1000, "{id_ms} vs {ts_ms}");
            assert!(id > last, "{id} after {last}");
            last = id;
        }
        let other = std::thread::spawn(new_message_id).join().unwrap();
        assert_ne!(other, last);
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
