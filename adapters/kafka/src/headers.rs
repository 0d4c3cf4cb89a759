//! brokerkit headers ↔ Kafka record headers, in one place.
//!
//! - Every brokerkit header, canonical (`message-id`, `correlation-id`, `traceparent`, …) or
//!   user-defined, is one Kafka record header with the same name and its value as UTF-8 bytes.
//!   The ordering key is the record key.
//! - Retry copies (on `<destination>.retry.<group>`) carry three more headers, read and removed
//!   on receipt: [`ATTEMPT`], [`NOT_BEFORE`] and [`FIRST_FAILURE`].
//! - Foreign records: a header whose name is not a valid brokerkit name (HTTP token, at most
//!   256 bytes, UTF-8) or whose value is not valid (UTF-8, no control characters but tab, at
//!   most 8 KiB) is dropped, and its name is listed (percent-escaped, comma-separated) in
//!   [`INVALID_HEADERS`]. A null value reads as the empty string. Repeated names (ignoring ASCII
//!   case): the last one wins. A key that is not UTF-8 is read lossily (U+FFFD).

#[cfg(feature = "client")]
use std::ffi::CStr;
#[cfg(feature = "client")]
use std::os::raw::{c_char, c_void};

use brokerkit_core::foreign_headers::{ForeignLimit, MAX_FOREIGN_HEADERS};
use brokerkit_core::headers::{MAX_NAME_LEN, MAX_VALUE_LEN};
use brokerkit_core::{HeaderName, Headers};
#[cfg(feature = "client")]
use rdkafka::bindings as rd;
#[cfg(feature = "client")]
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};

/// Delivery attempt of a retry copy (2 for the first redelivery).
pub const ATTEMPT: &str = "x-brokerkit-attempt";
/// Earliest redelivery time of a retry copy, milliseconds since the epoch.
pub const NOT_BEFORE: &str = "x-brokerkit-not-before-ms";
/// Time of the first failure (first nack), milliseconds since the epoch.
pub const FIRST_FAILURE: &str = "x-brokerkit-first-failure-ms";
/// Names of the headers of a received record that were dropped as invalid.
pub use brokerkit_core::headers::INVALID_HEADERS;

/// Bytes a header takes in a record beyond its name and value (two varint lengths, rounded up).
pub const PER_HEADER_OVERHEAD: usize = 10;

/// What a retry copy says about its redelivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryInfo {
    /// Delivery attempt (1 when absent).
    pub attempt: u32,
    /// Earliest redelivery, ms since the epoch.
    pub not_before_ms: Option<u64>,
    /// First failure, ms since the epoch.
    pub first_failure_ms: Option<u64>,
}

/// Kafka record headers for `headers` plus `extra` (brokerkit's own, already valid).
#[cfg(feature = "client")]
pub fn to_kafka(headers: &Headers, extra: &[(&str, String)]) -> Option<OwnedHeaders> {
    if headers.is_empty() && extra.is_empty() {
        return None;
    }
    let mut out = OwnedHeaders::new_with_capacity(headers.len() + extra.len());
    for (name, value) in headers
        .iter()
        .chain(extra.iter().map(|(n, v)| (*n, v.as_str())))
    {
        out = out.insert(Header {
            key: name,
            value: Some(value.as_bytes()),
        });
    }
    Some(out)
}

/// Bytes the headers take in a record.
pub fn encoded_len(headers: &Headers) -> usize {
    headers.encoded_len() + headers.len() * PER_HEADER_OVERHEAD
}

/// The raw headers of a received record, without going through rdkafka's `Headers` trait
/// (which panics on a header name that is not UTF-8).
#[cfg(feature = "client")]
pub fn raw_headers<'a>(msg: &'a BorrowedMessage<'a>) -> Vec<(&'a [u8], Option<&'a [u8]>)> {
    let mut out = Vec::new();
    let mut hdrs: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `msg.ptr()` is a live message owned by `msg`; librdkafka returns a pointer to
    // headers owned by that message (or an error and no pointer).
    let err = unsafe { rd::rd_kafka_message_headers(msg.ptr(), &mut hdrs) };
    if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || hdrs.is_null() {
        return out;
    }
    // SAFETY: `hdrs` is valid for as long as `msg`.
    let count = unsafe { rd::rd_kafka_header_cnt(hdrs) };
    for idx in 0..count {
        let mut name: *const c_char = std::ptr::null();
        let mut value: *const c_void = std::ptr::null();
        let mut size = 0usize;
        // SAFETY: `idx < count`; the out-pointers are valid locals.
        let err =
            unsafe { rd::rd_kafka_header_get_all(hdrs, idx, &mut name, &mut value, &mut size) };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            break;
        }
        // SAFETY: librdkafka keeps names NUL-terminated and values `size` bytes long, both
        // owned by the message's headers.
        let name = unsafe { CStr::from_ptr(name) }.to_bytes();
        let value = (!value.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(value as *const u8, size) });
        out.push((name, value));
    }
    out
}

/// Reads raw record headers. With `retry_copy`, brokerkit's retry headers are taken out into
/// [`RetryInfo`]; otherwise they are ordinary headers.
pub fn from_kafka<'a>(
    raw: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    retry_copy: bool,
) -> (Headers, RetryInfo) {
    let mut headers = Headers::new();
    let mut info = RetryInfo {
        attempt: 1,
        ..RetryInfo::default()
    };
    let mut invalid: Vec<String> = Vec::new();
    let mut limit = ForeignLimit::new();
    for (name, value) in raw {
        let value = value.unwrap_or_default();
        let (Ok(n), Ok(v)) = (std::str::from_utf8(name), std::str::from_utf8(value)) else {
            invalid.push(escape(name));
            continue;
        };
        if retry_copy {
            let number = || v.parse::<u64>().ok();
            if n.eq_ignore_ascii_case(ATTEMPT) {
                info.attempt = number()
                    .and_then(|a| u32::try_from(a).ok())
                    .unwrap_or(2)
                    .max(1);
                continue;
            }
            if n.eq_ignore_ascii_case(NOT_BEFORE) {
                info.not_before_ms = number();
                continue;
            }
            if n.eq_ignore_ascii_case(FIRST_FAILURE) {
                info.first_failure_ms = number();
                continue;
            }
        }
        if headers.len() >= MAX_FOREIGN_HEADERS && limit.refuses(&headers, &escape(name)) {
            continue;
        }
        if n.len() > MAX_NAME_LEN || HeaderName::new(n.to_string()).is_err() {
            invalid.push(escape(name));
            continue;
        }
        if v.len() > MAX_VALUE_LEN || headers.insert(n.to_string(), v).is_err() {
            invalid.push(escape(name));
        }
    }
    invalid.extend(limit.entry().map(|e| e.replace(',', ";")));
    if !invalid.is_empty() {
        let mut list = invalid.join(",");
        if list.len() > MAX_VALUE_LEN {
            let mut cut = MAX_VALUE_LEN - 3;
            while !list.is_char_boundary(cut) {
                cut -= 1;
            }
            list.truncate(cut);
            list.push_str("...");
        }
        // The list is printable ASCII and short enough: insertion cannot fail.
        let _ = headers.insert(INVALID_HEADERS, list);
    }
    (headers, info)
}

/// A header name as printable ASCII: bytes outside `!`..`~`, and `%` and `,`, become `%XX`.
fn escape(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_NAME_LEN));
    for &b in name.iter().take(MAX_NAME_LEN) {
        if (0x21..=0x7e).contains(&b) && b != b'%' && b != b',' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_and_duplicate_headers_are_handled() {
        let raw: Vec<(&[u8], Option<&[u8]>)> = vec![
            (b"x-ok", Some(b"1")),
            (b"X-OK", Some(b"2")),
            (b"bad name", Some(b"v")),
            (b"x-bin", Some(&[0xff, 0xfe])),
            (&[0xc3, 0x28], Some(b"v")),
            (b"x-ctl", Some(b"a\nb")),
            (b"x-null", None),
        ];
        let (h, info) = from_kafka(raw, false);
        assert_eq!(h.get("x-ok"), Some("2"));
        assert_eq!(h.get("x-null"), Some(""));
        assert_eq!(info.attempt, 1);
        assert_eq!(h.get(INVALID_HEADERS), Some("bad%20name,x-bin,%C3(,x-ctl"));
    }

    #[test]
    fn headers_over_the_limit_are_skipped_and_counted() {
        let names: Vec<String> = (0..150_000).map(|i| format!("x-{i:06}")).collect();
        let raw = names.iter().map(|n| (n.as_bytes(), Some(&b"v"[..])));
        let t = std::time::Instant::now();
        let (h, _) = from_kafka(raw, false);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(h.len(), MAX_FOREIGN_HEADERS + 1);
        let note = h.get(INVALID_HEADERS).unwrap();
        assert!(
            note.starts_with("over the limit of 1024 headers: 148976 skipped (x-001024; "),
            "{note}"
        );
    }

    #[test]
    fn retry_headers_are_read_only_on_retry_copies() {
        let raw: Vec<(&[u8], Option<&[u8]>)> = vec![
            (ATTEMPT.as_bytes(), Some(b"3")),
            (NOT_BEFORE.as_bytes(), Some(b"1000")),
            (FIRST_FAILURE.as_bytes(), Some(b"900")),
            (b"x-user", Some(b"u")),
        ];
        let (h, info) = from_kafka(raw.clone(), true);
        assert_eq!(h.len(), 1);
        assert_eq!(
            info,
            RetryInfo {
                attempt: 3,
                not_before_ms: Some(1000),
                first_failure_ms: Some(900)
            }
        );
        let (h, info) = from_kafka(raw, false);
        assert_eq!((h.len(), info.attempt), (4, 1));
    }

    #[test]
    #[cfg(feature = "client")]
    fn round_trip_through_owned_headers() {
        use rdkafka::message::Headers as _;
        let h = Headers::new().with("x-a", "crème").unwrap();
        let k = to_kafka(&h, &[(ATTEMPT, "2".into())]).unwrap();
        assert_eq!(k.count(), 2);
        let raw: Vec<(&[u8], Option<&[u8]>)> =
            k.iter().map(|h| (h.key.as_bytes(), h.value)).collect();
        let (back, info) = from_kafka(raw, true);
        assert_eq!((back, info.attempt), (h, 2));
        assert!(to_kafka(&Headers::new(), &[]).is_none());
    }
}
