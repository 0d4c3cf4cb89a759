//! Message ↔ SQS/SNS body and message attributes, in one place.
//!
//! # Sent
//! - Body: the payload as is when it is text SQS accepts (UTF-8 of XML characters: tab,
//!   newline, U+0020–U+D7FF, U+E000–U+FFFD, U+10000 and up; carriage returns excluded so no
//!   transport can rewrite line ends); otherwise its standard base64. An empty payload is
//!   sent as `-` (SQS and SNS refuse empty bodies).
//! - One String message attribute, `brokerkit`, holding compact JSON, only when there is
//!   something to carry: `{"v":1,"h":[[name,value],…],"k":key,"e":"b64"|"empty"}` with every
//!   header (canonical and user, in order), the ordering key, and the body encoding. One
//!   attribute keeps far below SQS/SNS's 10 attributes per message, and header names need
//!   not be SQS attribute names. U+FFFE and U+FFFF (not XML characters) are `\u`-escaped.
//!
//! # Received
//! - With a `brokerkit` attribute: headers, key and payload as sent.
//! - Other message attributes (from foreign producers) of type String or Number become
//!   headers under their own name. Binary attributes, names or values that are not valid
//!   headers, and a malformed `brokerkit` attribute are skipped, never fatal: their names are
//!   listed, comma-separated, in the header `x-brokerkit-invalid-headers`.
//! - Without a key in `brokerkit`, a FIFO message's `MessageGroupId` is the key.

use base64::Engine;
use brokerkit_core::{ErrorKind, Headers, Message, Result};
use serde_json::{json, Value};

use crate::site::Site;

/// Name of the one message attribute that carries headers, key and body encoding.
pub(crate) const ATTRIBUTE: &str = "brokerkit";
/// Data type of that attribute.
pub(crate) const STRING: &str = "String";
/// Header listing what could not be read as headers on a received message.
pub(crate) use brokerkit_core::headers::INVALID_HEADERS;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const EMPTY_BODY: &str = "-";

/// A message as SQS/SNS take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packed {
    /// Message body.
    pub body: String,
    /// Value of the `brokerkit` String attribute, when needed.
    pub attribute: Option<String>,
}

impl Packed {
    /// Bytes SQS/SNS count against the message size: body plus attribute name, type and value.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attribute
                .as_ref()
                .map_or(0, |a| ATTRIBUTE.len() + STRING.len() + a.len())
    }

    /// Refuses a message over `limit` bytes with a [`ErrorKind::PayloadTooLarge`] error that
    /// gives the sizes.
    pub fn check_size(&self, limit: usize, site: &Site<'_>) -> Result<()> {
        // What is sent must be text SQS/SNS accept; `pack` guarantees it, this proves it.
        for (what, text) in [
            ("body", Some(&self.body)),
            ("attribute", self.attribute.as_ref()),
        ] {
            if let Some((at, c)) = text.and_then(|t| t.char_indices().find(|(_, c)| !body_safe(*c)))
            {
                return Err(site.error(
                    ErrorKind::InvalidHeader,
                    format!(
                        "the encoded {what} has character U+{:04X} at byte {at}, which SQS/SNS \
                         refuse; nothing was sent",
                        c as u32
                    ),
                ));
            }
        }
        let size = self.size();
        if size > limit {
            return Err(site.error(
                ErrorKind::PayloadTooLarge,
                format!(
                    "the encoded message is {size} bytes (body {} bytes, `{ATTRIBUTE}` attribute \
                     {} bytes); the destination accepts at most {limit} bytes",
                    self.body.len(),
                    size - self.body.len()
                ),
            ));
        }
        Ok(())
    }
}

/// Whether SQS accepts `c` in a body or attribute value (XML 1.0 characters), minus `\r`.
fn body_safe(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Packs a message for sending.
pub(crate) fn pack(message: &Message) -> Packed {
    let text = std::str::from_utf8(&message.payload)
        .ok()
        .filter(|t| t.chars().all(body_safe));
    let (body, encoding) = match text {
        _ if message.payload.is_empty() => (EMPTY_BODY.to_string(), Some("empty")),
        Some(t) => (t.to_string(), None),
        None => (B64.encode(&message.payload), Some("b64")),
    };
    if message.headers.is_empty() && message.key.is_none() && encoding.is_none() {
        return Packed {
            body,
            attribute: None,
        };
    }
    let mut meta = serde_json::Map::new();
    meta.insert("v".into(), json!(1));
    if !message.headers.is_empty() {
        let list: Vec<Value> = message.headers.iter().map(|(n, v)| json!([n, v])).collect();
        meta.insert("h".into(), Value::Array(list));
    }
    if let Some(k) = &message.key {
        meta.insert("k".into(), json!(k));
    }
    if let Some(e) = encoding {
        meta.insert("e".into(), json!(e));
    }
    let text = Value::Object(meta).to_string();
    Packed {
        body,
        attribute: Some(escape_non_xml(text)),
    }
}

/// JSON text with the two non-XML characters a Rust string can hold written as `\u` escapes.
fn escape_non_xml(text: String) -> String {
    if !text.contains(['\u{FFFE}', '\u{FFFF}']) {
        return text;
    }
    text.replace('\u{FFFE}', "\\ufffe")
        .replace('\u{FFFF}', "\\uffff")
}

/// One received message attribute.
pub(crate) struct Attr<'a> {
    pub name: &'a str,
    pub data_type: &'a str,
    pub string_value: Option<&'a str>,
}

/// What the `brokerkit` attribute says.
struct Meta {
    headers: Vec<(String, String)>,
    key: Option<String>,
    encoding: Option<String>,
}

fn parse_meta(text: &str) -> Option<Meta> {
    let v: Value = serde_json::from_str(text).ok()?;
    let obj = v.as_object()?;
    let mut headers = Vec::new();
    if let Some(list) = obj.get("h") {
        for pair in list.as_array()? {
            let pair = pair.as_array()?;
            match pair.as_slice() {
                [Value::String(n), Value::String(v)] => headers.push((n.clone(), v.clone())),
                _ => return None,
            }
        }
    }
    let text_field = |name: &str| match obj.get(name) {
        None => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    };
    Some(Meta {
        headers,
        key: text_field("k")?,
        encoding: text_field("e")?,
    })
}

/// Builds the message from a received body and attributes. Never fails: what cannot be read
/// is skipped and named in [`INVALID_HEADERS`].
pub(crate) fn unpack<'a>(
    body: &str,
    attributes: impl IntoIterator<Item = Attr<'a>>,
    group_id: Option<&str>,
) -> Message {
    let mut headers = Headers::new();
    let mut invalid: Vec<String> = Vec::new();
    let mut meta = None;
    let mut foreign: Vec<(&str, &str)> = Vec::new();
    for a in attributes {
        let is_text = a.data_type.starts_with("String") || a.data_type.starts_with("Number");
        match (a.name, a.string_value) {
            (ATTRIBUTE, Some(v)) if a.data_type == STRING => match parse_meta(v) {
                Some(m) => meta = Some(m),
                None => invalid.push(ATTRIBUTE.to_string()),
            },
            (name, Some(v)) if is_text => foreign.push((name, v)),
            (name, _) => invalid.push(name.to_string()),
        }
    }
    let mut key = None;
    let mut payload = None;
    let mut limit = brokerkit_core::foreign_headers::ForeignLimit::new();
    if let Some(m) = meta {
        for (n, v) in m.headers {
            if limit.refuses(&headers, &n) {
                continue;
            }
            if headers.insert(n.clone(), v).is_err() {
                invalid.push(n);
            }
        }
        key = m.key;
        match m.encoding.as_deref() {
            None => {}
            Some("empty") => payload = Some(Vec::new()),
            Some("b64") => match B64.decode(body.as_bytes()) {
                Ok(bytes) => payload = Some(bytes),
                Err(_) => invalid.push(format!("{ATTRIBUTE}(body encoding)")),
            },
            Some(_) => invalid.push(format!("{ATTRIBUTE}(body encoding)")),
        }
    }
    for (n, v) in foreign {
        if limit.refuses(&headers, n) {
            continue;
        }
        if headers.get(n).is_some() || headers.insert(n.to_string(), v).is_err() {
            invalid.push(n.to_string());
        }
    }
    invalid.extend(limit.entry());
    if !invalid.is_empty() {
        let mut list: Vec<String> = headers
            .get(INVALID_HEADERS)
            .map(|v| v.split(", ").map(str::to_string).collect())
            .unwrap_or_default();
        list.extend(invalid);
        // Message attributes have no order: sort, so every redelivery lists the same text.
        list.sort();
        list.dedup();
        let value = brokerkit_core::dead_letter::sanitize_header_value(&list.join(", "));
        // A sanitized value of a constant name is always valid.
        let _ = headers.insert(INVALID_HEADERS, value);
    }
    Message {
        payload: payload.unwrap_or_else(|| body.as_bytes().to_vec()).into(),
        headers,
        key: key.or_else(|| group_id.map(str::to_string)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: &Message) -> Message {
        let p = pack(m);
        let attrs = p.attribute.as_deref().map(|v| Attr {
            name: ATTRIBUTE,
            data_type: STRING,
            string_value: Some(v),
        });
        unpack(&p.body, attrs, None)
    }

    #[test]
    fn refused_characters_and_sizes_are_named() {
        let site = Site {
            broker: "sqs",
            destination: "q",
            operation: "send",
            address: "sqs://",
        };
        let bad = Packed {
            body: "ok\u{1}".into(),
            attribute: None,
        };
        let e = bad.check_size(1000, &site).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidHeader);
        assert!(e.message().contains("U+0001 at byte 2"), "{e}");
        let big = pack(&Message::new(vec![0u8; 300]));
        let e = big.check_size(100, &site).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PayloadTooLarge);
        assert!(
            e.message().contains("400 bytes") && e.message().contains("100 bytes"),
            "{e}"
        );
        assert!(pack(&Message::new("fine")).check_size(4, &site).is_ok());
    }

    #[test]
    fn plain_text_needs_no_attribute() {
        let m = Message::new("hello");
        let p = pack(&m);
        assert_eq!(p.attribute, None);
        assert_eq!(p.size(), 5);
        assert_eq!(round_trip(&m), m);
    }

    #[test]
    fn binary_empty_and_odd_text_round_trip() {
        for payload in [
            vec![0u8, 1, 2, 0xff, 0xfe],
            Vec::new(),
            b"line\r\nbreak".to_vec(),
            "nul\0inside".as_bytes().to_vec(),
            "\u{FFFF}".as_bytes().to_vec(),
        ] {
            let m = Message::new(payload.clone());
            let p = pack(&m);
            assert!(!p.body.is_empty());
            assert!(p.body.chars().all(body_safe), "{:?}", p.body);
            assert_eq!(round_trip(&m).payload, payload);
        }
    }

    #[test]
    fn headers_and_key_round_trip() {
        let h = Headers::new()
            .with("x-a", "\"quoted\" \\ tab\t")
            .unwrap()
            .with("x-odd", "\u{FFFE}\u{FFFF} crème ✓")
            .unwrap()
            .with("x-empty", "")
            .unwrap();
        let m = Message::new("{}").with_headers(h).with_key("k 1");
        let p = pack(&m);
        let attr = p.attribute.as_deref().unwrap();
        assert!(attr.chars().all(body_safe), "{attr:?}");
        assert_eq!(round_trip(&m), m);
    }

    #[test]
    fn foreign_and_malformed_attributes_are_recorded_not_fatal() {
        let attrs = vec![
            Attr {
                name: "tenant",
                data_type: "String",
                string_value: Some("acme"),
            },
            Attr {
                name: "count",
                data_type: "Number.int",
                string_value: Some("3"),
            },
            Attr {
                name: "blob",
                data_type: "Binary",
                string_value: None,
            },
            Attr {
                name: ATTRIBUTE,
                data_type: STRING,
                string_value: Some("{not json"),
            },
            Attr {
                name: "ctl",
                data_type: "String",
                string_value: Some("a\u{1}b"),
            },
        ];
        let m = unpack("body", attrs, Some("group-1"));
        assert_eq!(m.headers.get("tenant"), Some("acme"));
        assert_eq!(m.headers.get("count"), Some("3"));
        assert_eq!(m.headers.get(INVALID_HEADERS), Some("blob, brokerkit, ctl"));
        assert_eq!(m.key.as_deref(), Some("group-1"));
        assert_eq!(&m.payload[..], b"body");
    }

    #[test]
    fn bad_header_inside_meta_is_skipped() {
        let meta = r#"{"v":1,"h":[["ok","1"],["bad name","2"]],"e":"b64"}"#;
        let attrs = [Attr {
            name: ATTRIBUTE,
            data_type: STRING,
            string_value: Some(meta),
        }];
        let m = unpack("!!!notbase64", attrs, None);
        assert_eq!(m.headers.get("ok"), Some("1"));
        assert_eq!(
            m.headers.get(INVALID_HEADERS),
            Some("bad name, brokerkit(body encoding)")
        );
        assert_eq!(&m.payload[..], b"!!!notbase64");
    }
}
