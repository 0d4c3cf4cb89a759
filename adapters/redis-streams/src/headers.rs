//! Messages ↔ stream entries. An entry's field `payload` holds the payload; every other field
//! is a header (name = field, value = text). A foreign entry's fields that brokerkit cannot
//! carry (a name that is not an HTTP token, a value that is not text or holds control
//! characters) are dropped and listed under `x-brokerkit-invalid-headers`.

use brokerkit_core::foreign_headers::ForeignLimit;
use brokerkit_core::headers::note_invalid;
use brokerkit_core::{Bytes, Error, ErrorKind, Headers, Message, Result};

/// The field holding the payload.
#[cfg_attr(not(feature = "client"), allow(dead_code))]
pub const PAYLOAD_FIELD: &str = "payload";

/// The fields of an entry for `message`: `payload` first, then the headers in order. A
/// header named `payload` (any case) cannot be carried: `InvalidHeader`.
#[cfg_attr(not(feature = "client"), allow(dead_code))]
pub fn encode(message: &Message) -> Result<Vec<(&str, &[u8])>> {
    let mut fields: Vec<(&str, &[u8])> = Vec::with_capacity(message.headers.len() + 1);
    fields.push((PAYLOAD_FIELD, &message.payload));
    for (name, value) in message.headers.iter() {
        if name.eq_ignore_ascii_case(PAYLOAD_FIELD) {
            return Err(Error::new(
                ErrorKind::InvalidHeader,
                "a header named \"payload\" cannot be sent to Redis Streams: the field holds the payload",
            ));
        }
        fields.push((name, value.as_bytes()));
    }
    Ok(fields)
}

/// How a dropped field name is listed: as text, with what is not printable escaped.
pub fn listed_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name).escape_debug().collect()
}

/// The message of an entry's fields (name, value pairs). Never fails: what cannot be carried
/// is dropped and listed; a missing `payload` field is an empty payload.
pub fn decode(fields: Vec<(Vec<u8>, Vec<u8>)>) -> Message {
    let mut payload = Bytes::new();
    let mut headers = Headers::new();
    let mut dropped = Vec::new();
    let mut limit = ForeignLimit::new();
    for (name, value) in fields {
        if name == PAYLOAD_FIELD.as_bytes() {
            payload = Bytes::from(value);
            continue;
        }
        let (Ok(name), Ok(value)) = (String::from_utf8(name.clone()), String::from_utf8(value))
        else {
            dropped.push(listed_name(&name));
            continue;
        };
        if limit.refuses(&headers, &name) {
            continue;
        }
        if headers.insert(name.clone(), value).is_err() {
            dropped.push(listed_name(name.as_bytes()));
        }
    }
    dropped.extend(limit.entry());
    note_invalid(&mut headers, &dropped);
    Message {
        payload,
        headers,
        key: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_fields() {
        let h = Headers::new().with("x-a", "1").unwrap();
        let m = Message::new("hi").with_headers(h);
        let fields: Vec<(Vec<u8>, Vec<u8>)> = encode(&m)
            .unwrap()
            .into_iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.to_vec()))
            .collect();
        assert_eq!(decode(fields), m);
        let foreign = vec![
            (b"bad name".to_vec(), b"x".to_vec()),
            (b"x-bin".to_vec(), vec![0xff, 0xfe]),
            (b"x-ok".to_vec(), b"fine".to_vec()),
        ];
        let got = decode(foreign);
        assert!(got.payload.is_empty());
        assert_eq!(got.headers.get("x-ok"), Some("fine"));
        let listed = got
            .headers
            .get(brokerkit_core::headers::INVALID_HEADERS)
            .unwrap();
        assert_eq!(listed, "bad name, x-bin");
        let bad = Message::new("x").with_headers(Headers::new().with("Payload", "1").unwrap());
        assert_eq!(encode(&bad).unwrap_err().kind(), ErrorKind::InvalidHeader);
    }
}
