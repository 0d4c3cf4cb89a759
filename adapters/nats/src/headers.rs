//! brokerkit message headers ↔ NATS headers, in one place.
//!
//! | brokerkit | NATS header |
//! |---|---|
//! | every header (canonical `message-id`, `correlation-id`, … and user headers) | same name, same value |
//! | `Message::key` (JetStream) | `bk-ordering-key` |
//! | `idempotency-key` (JetStream) | also `Nats-Msg-Id` (stream dedup window); dropped again on receive when it equals `idempotency-key` |
//!
//! Received headers that brokerkit cannot carry (a name outside the token characters, a value
//! with control characters or over 8 KiB) are skipped and listed, with the reason, in
//! [`INVALID_HEADERS`]; the message is still delivered. A name given several times keeps its
//! last value.

#[cfg(feature = "client")]
use std::str::FromStr;

#[cfg(feature = "client")]
use async_nats::{HeaderMap, HeaderName};
use brokerkit_core::dead_letter::sanitize_header_value;
use brokerkit_core::foreign_headers::{ForeignLimit, WarnLimit};
use brokerkit_core::headers::names::IDEMPOTENCY_KEY;
use brokerkit_core::Headers;
#[cfg(feature = "client")]
use brokerkit_core::{Error, ErrorKind, Message, Result};

/// NATS header carrying the ordering key.
pub const KEY_HEADER: &str = "bk-ordering-key";
/// JetStream's dedup header.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
/// Lists received headers that were skipped as invalid, each with the reason.
pub use brokerkit_core::headers::INVALID_HEADERS;

/// Rate limit of the "skipped invalid headers" warning.
static WARNINGS: WarnLimit = WarnLimit::new();

#[cfg(feature = "client")]
/// `NATS/1.0\r\n` + `\r\n`.
const BLOCK_OVERHEAD: usize = 12;

#[cfg(feature = "client")]
/// NATS headers of an outgoing message, with their encoded size (0 when there are none).
pub struct Outgoing {
    /// The header block, `None` when empty (a plain `PUB`).
    pub map: Option<HeaderMap>,
    /// Bytes the header block takes on the wire.
    pub wire_len: usize,
}

#[cfg(feature = "client")]
fn name(n: &str) -> Result<HeaderName> {
    HeaderName::from_str(n).map_err(|_| {
        Error::new(
            ErrorKind::InvalidHeader,
            format!("header name {n:?} cannot be sent as a NATS header"),
        )
    })
}

#[cfg(feature = "client")]
/// Builds the NATS headers of `message`. `jetstream` adds the key and dedup headers;
/// `msg_id` overrides the dedup id (dead-lettering uses one per original delivery).
pub fn to_nats(message: &Message, jetstream: bool, msg_id: Option<&str>) -> Result<Outgoing> {
    let mut map = HeaderMap::new();
    let mut wire_len = 0;
    let mut put = |map: &mut HeaderMap, n: &str, v: &str| -> Result<()> {
        map.insert(name(n)?, v);
        wire_len += n.len() + 2 + v.len() + 2;
        Ok(())
    };
    for (n, v) in message.headers.iter() {
        if n.eq_ignore_ascii_case(KEY_HEADER) || n.eq_ignore_ascii_case(MSG_ID_HEADER) {
            // Reserved for the transport: a user value would be mistaken for ours.
            continue;
        }
        put(&mut map, n, v)?;
    }
    if jetstream {
        if let Some(key) = &message.key {
            put(&mut map, KEY_HEADER, key)?;
        }
        if let Some(id) = msg_id.or(message.headers.idempotency_key()) {
            put(&mut map, MSG_ID_HEADER, id)?;
        }
    }
    if map.is_empty() {
        return Ok(Outgoing {
            map: None,
            wire_len: 0,
        });
    }
    Ok(Outgoing {
        map: Some(map),
        wire_len: wire_len + BLOCK_OVERHEAD,
    })
}

#[cfg(feature = "client")]
/// Refuses a message whose payload plus header block exceeds the server's `max_payload`.
pub fn check_size(payload: usize, headers: &Outgoing, max_payload: usize) -> Result<()> {
    let total = payload + headers.wire_len;
    if total > max_payload {
        return Err(Error::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "payload of {payload} bytes plus {} bytes of headers is {total} bytes; \
                 the server's max_payload is {max_payload} bytes",
                headers.wire_len
            ),
        ));
    }
    Ok(())
}

/// Reads received NATS headers into brokerkit headers and the ordering key. Never fails:
/// what cannot be carried is skipped and listed in [`INVALID_HEADERS`].
#[cfg(feature = "client")]
pub fn from_nats(map: Option<&HeaderMap>) -> (Headers, Option<String>) {
    let Some(map) = map else {
        return (Headers::new(), None);
    };
    from_pairs(
        map.iter()
            .filter_map(|(n, values)| Some((n.as_ref(), values.last()?.as_str()))),
    )
}

/// [`from_nats`] over each header name with its last value (client-free, for fuzzing).
pub fn from_pairs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (Headers, Option<String>) {
    let mut headers = Headers::new();
    let mut key = None;
    let mut invalid: Vec<String> = Vec::new();
    let mut limit = ForeignLimit::new();
    let mut msg_id = None;
    for (n, value) in pairs {
        if n.eq_ignore_ascii_case(KEY_HEADER) {
            key = Some(value.to_string());
            continue;
        }
        if n.eq_ignore_ascii_case(MSG_ID_HEADER) {
            msg_id = Some((n.to_string(), value.to_string()));
            continue;
        }
        if limit.refuses(&headers, n) {
            continue;
        }
        if let Err(e) = headers.insert(n.to_string(), value) {
            invalid.push(format!("{n:?}: {}", e.message()));
        }
    }
    invalid.extend(limit.entry());
    if let Some((n, id)) = msg_id {
        // Ours when it repeats the idempotency key; a foreign producer's otherwise.
        if headers.get(IDEMPOTENCY_KEY) != Some(id.as_str()) {
            if let Err(e) = headers.insert(n.clone(), id) {
                invalid.push(format!("{n:?}: {}", e.message()));
            }
        }
    }
    if !invalid.is_empty() {
        // NATS header maps have no order: sort, so every redelivery lists the same text.
        invalid.sort();
        if let Some(suppressed) = WARNINGS.due() {
            tracing::warn!(skipped = %invalid.join("; "), suppressed, "skipped invalid NATS headers (one warning per 10 s; `suppressed` counts the messages not logged since the last)");
        }
        let _ = headers.insert(INVALID_HEADERS, sanitize_header_value(&invalid.join("; ")));
    }
    (headers, key)
}

#[cfg(all(test, feature = "client"))]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_key_and_dedup_id() {
        let mut h = Headers::new().with("x-tenant", "acme").unwrap();
        h.set_idempotency_key("k-1").unwrap();
        let m = Message::new("p")
            .with_headers(h.clone())
            .with_key("customer-7");
        let out = to_nats(&m, true, None).unwrap();
        let map = out.map.unwrap();
        assert_eq!(map.get(MSG_ID_HEADER).map(|v| v.as_str()), Some("k-1"));
        let expected = BLOCK_OVERHEAD
            + map
                .iter()
                .map(|(n, v)| AsRef::<str>::as_ref(n).len() + 4 + v[0].as_str().len())
                .sum::<usize>();
        assert_eq!(out.wire_len, expected);
        let (back, key) = from_nats(Some(&map));
        // Header order is not kept by NATS: compare by name.
        assert_eq!(back.len(), h.len());
        for (n, v) in h.iter() {
            assert_eq!(back.get(n), Some(v), "{n}");
        }
        assert_eq!(key.as_deref(), Some("customer-7"));
        assert!(back.get(MSG_ID_HEADER).is_none());
    }

    #[test]
    fn core_mode_adds_nothing_and_empty_is_plain() {
        let out = to_nats(&Message::new("p"), false, None).unwrap();
        assert!(out.map.is_none() && out.wire_len == 0);
        assert!(check_size(10, &out, 10).is_ok());
        let e = check_size(11, &out, 10).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PayloadTooLarge);
    }

    #[test]
    fn foreign_bad_headers_are_skipped_and_listed() {
        let mut map = HeaderMap::new();
        map.insert(HeaderName::from_str("bad(name)").unwrap(), "v");
        map.insert(HeaderName::from_str("x-ctl").unwrap(), "a\u{1}b");
        map.insert(HeaderName::from_str("x-ok").unwrap(), "fine");
        map.insert(HeaderName::from_str(MSG_ID_HEADER).unwrap(), "foreign-id");
        let (h, key) = from_nats(Some(&map));
        assert_eq!(key, None);
        assert_eq!(h.get("x-ok"), Some("fine"));
        assert_eq!(h.get(MSG_ID_HEADER), Some("foreign-id"));
        let listed = h.get(INVALID_HEADERS).unwrap();
        assert!(
            listed.contains("bad(name)") && listed.contains("x-ctl"),
            "{listed}"
        );
        assert!(h.get("x-ctl").is_none());
    }
}
