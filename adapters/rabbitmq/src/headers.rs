//! Canonical headers ↔ AMQP properties and headers table, in one place.
//!
//! | brokerkit | AMQP |
//! |---|---|
//! | `message-id` | `message_id` property (≤ 255 bytes, else headers table) |
//! | `correlation-id` | `correlation_id` property (≤ 255 bytes, else headers table) |
//! | `content-type` | `content_type` property (≤ 255 bytes, else headers table) |
//! | `event-type` | `type` property (≤ 255 bytes, else headers table) |
//! | `timestamp` (ms) | `timestamp` property (seconds) + `x-brokerkit-timestamp-ms` (exact text) |
//! | `Message::key` | `x-brokerkit-key` |
//! | every other header | headers table, long-string value |
//! | (attempts so far) | `x-brokerkit-attempt` |
//! | (first nack time, ms) | `x-brokerkit-first-failure-ms` |
//!
//! Every message is persistent (`delivery_mode` 2).

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
use brokerkit_core::dead_letter::sanitize_header_value;
use brokerkit_core::foreign_headers::{ForeignLimit, WarnLimit};
use brokerkit_core::headers::names as canonical;
use brokerkit_core::{ErrorKind, Headers, Message, Result};

/// Deliveries made before this copy was published (absent: 0).
pub const ATTEMPT: &str = "x-brokerkit-attempt";
/// When the message was first nacked, ms since the epoch.
pub const FIRST_FAILURE: &str = "x-brokerkit-first-failure-ms";
/// The ordering key.
pub const KEY: &str = "x-brokerkit-key";
/// The exact `timestamp` header (the AMQP property has whole seconds only).
pub const TIMESTAMP_MS: &str = "x-brokerkit-timestamp-ms";
/// Set on received messages: headers that were skipped, with the reason.
pub use brokerkit_core::headers::INVALID_HEADERS as INVALID;

/// Names the adapter writes itself; user headers may not use them.
const RESERVED: [&str; 4] = [ATTEMPT, FIRST_FAILURE, KEY, TIMESTAMP_MS];

/// Headers RabbitMQ adds when it dead-letters (our delay hold queues do): not surfaced.
/// Rate limit of the "skipped invalid headers" warning.
static WARNINGS: WarnLimit = WarnLimit::new();

fn is_broker_header(name: &str) -> bool {
    name == "x-death"
        || name.starts_with("x-first-death-")
        || name.starts_with("x-last-death-")
        || name == "x-delivery-count"
}

fn short(value: &str) -> Option<ShortString> {
    ShortString::try_new(value).ok()
}

fn long(value: impl Into<Vec<u8>>) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.into()))
}

/// Message → AMQP properties (persistent). Fails with `InvalidHeader` for names AMQP cannot
/// carry (over 255 bytes) or names reserved by this adapter.
pub fn encode(message: &Message) -> Result<BasicProperties> {
    let mut props = BasicProperties::default().with_delivery_mode(2);
    let mut table = FieldTable::default();
    for (name, value) in message.headers.iter() {
        let lower = name.to_ascii_lowercase();
        if RESERVED.contains(&lower.as_str()) {
            return Err(brokerkit_core::Error::new(
                ErrorKind::InvalidHeader,
                format!("header name {name:?} is reserved by the rabbitmq adapter"),
            ));
        }
        let as_property = short(value);
        match (lower.as_str(), as_property) {
            (canonical::MESSAGE_ID, Some(v)) => props = props.with_message_id(v),
            (canonical::CORRELATION_ID, Some(v)) => props = props.with_correlation_id(v),
            (canonical::CONTENT_TYPE, Some(v)) => props = props.with_content_type(v),
            (canonical::EVENT_TYPE, Some(v)) => props = props.with_type(v),
            (canonical::TIMESTAMP, _) if value.parse::<u64>().is_ok() => {
                let ms = value.parse::<u64>().unwrap_or_default();
                props = props.with_timestamp(ms / 1000);
                table.insert(TIMESTAMP_MS.into(), long(value));
            }
            _ => {
                let key = ShortString::try_new(name).map_err(|_| {
                    brokerkit_core::Error::new(
                        ErrorKind::InvalidHeader,
                        format!(
                            "header name of {} bytes is longer than AMQP's 255",
                            name.len()
                        ),
                    )
                })?;
                table.insert(key, long(value));
            }
        }
    }
    if let Some(key) = &message.key {
        table.insert(KEY.into(), long(key.as_str()));
    }
    Ok(props.with_headers(table))
}

/// What a received message carries besides the user's view of it.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Headers for the user.
    pub headers: Headers,
    /// The ordering key.
    pub key: Option<String>,
    /// Deliveries made before this copy was published.
    pub attempts_before: u32,
    /// First failure, ms since the epoch.
    pub first_failure_ms: Option<u64>,
    /// Times a quorum queue delivered this copy before and got it back unsettled (a consumer
    /// crashed, its channel closed, or it requeued): `x-delivery-count`; 0 when absent.
    pub delivery_count: u32,
}

fn text(value: &AMQPValue) -> std::result::Result<String, &'static str> {
    use AMQPValue as V;
    Ok(match value {
        V::LongString(s) => {
            String::from_utf8(s.as_bytes().to_vec()).map_err(|_| "value is not UTF-8")?
        }
        V::ShortString(s) => s.as_str().to_string(),
        V::Boolean(b) => b.to_string(),
        V::ShortShortInt(n) => n.to_string(),
        V::ShortShortUInt(n) => n.to_string(),
        V::ShortInt(n) => n.to_string(),
        V::ShortUInt(n) => n.to_string(),
        V::LongInt(n) => n.to_string(),
        V::LongUInt(n) => n.to_string(),
        V::LongLongInt(n) => n.to_string(),
        V::Float(n) => n.to_string(),
        V::Double(n) => n.to_string(),
        V::Timestamp(n) => n.to_string(),
        V::DecimalValue(d) => decimal(d.value, d.scale),
        V::Void => String::new(),
        V::ByteArray(_) => return Err("value is a byte array (binary)"),
        V::FieldTable(_) => return Err("value is a nested table"),
        V::FieldArray(_) => return Err("value is an array"),
    })
}

fn decimal(value: u32, scale: u8) -> String {
    let digits = value.to_string();
    let scale = scale as usize;
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{int}.{frac}")
}

fn number(value: &AMQPValue) -> Option<u64> {
    match value {
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::Timestamp(n) => Some(*n),
        other => text(other).ok()?.trim().parse().ok(),
    }
}

/// AMQP properties → headers, key and attempt bookkeeping. Never fails: a header that is not
/// valid brokerkit text (nested table, array, binary, non-UTF-8, bad name, control
/// characters, too long, duplicate ignoring case) is skipped and listed, with the reason, in
/// [`INVALID`].
pub fn decode(props: &BasicProperties) -> Decoded {
    let mut d = Decoded::default();
    let mut invalid: Vec<String> = Vec::new();
    let mut timestamp_ms: Option<String> = None;
    let mut limit = ForeignLimit::new();
    if let Some(table) = props.headers() {
        for (name, value) in table.inner() {
            let name = name.as_str();
            match name {
                ATTEMPT => {
                    d.attempts_before = number(value)
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(0)
                }
                FIRST_FAILURE => d.first_failure_ms = number(value),
                KEY => match text(value) {
                    Ok(k) => d.key = Some(k),
                    Err(why) => invalid.push(format!("{name:?}: {why}")),
                },
                TIMESTAMP_MS => timestamp_ms = text(value).ok(),
                "x-delivery-count" => {
                    d.delivery_count = number(value)
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(0)
                }
                n if is_broker_header(n) => {}
                _ if limit.refuses(&d.headers, name) => {}
                _ => {
                    let result = text(value).and_then(|v| {
                        if d.headers.get(name).is_some() {
                            return Err("duplicate name (names ignore case)");
                        }
                        d.headers.insert(name.to_string(), v).map_err(|e| {
                            if e.message().contains("control character") {
                                "value has a control character"
                            } else if e.message().contains("longer") {
                                "name or value too long"
                            } else {
                                "invalid name (allowed: letters, digits and !#$%&'*+-.^_`|~)"
                            }
                        })
                    });
                    if let Err(why) = result {
                        invalid.push(format!("{name:?}: {why}"));
                    }
                }
            }
        }
    }
    invalid.extend(limit.entry());
    let properties = [
        (canonical::MESSAGE_ID, props.message_id()),
        (canonical::CORRELATION_ID, props.correlation_id()),
        (canonical::CONTENT_TYPE, props.content_type()),
        (canonical::EVENT_TYPE, props.kind()),
    ];
    for (name, value) in properties {
        if let Some(v) = value {
            if d.headers.insert(name, v.as_str()).is_err() {
                invalid.push(format!("{name:?}: property value has a control character"));
            }
        }
    }
    let ts = timestamp_ms
        .filter(|t| t.parse::<u64>().is_ok())
        .or_else(|| {
            props
                .timestamp()
                .map(|s| s.saturating_mul(1000).to_string())
        });
    if let Some(ts) = ts {
        let _ = d.headers.insert(canonical::TIMESTAMP, ts);
    }
    if !invalid.is_empty() {
        let list = invalid.join("; ");
        if let Some(suppressed) = WARNINGS.due() {
            tracing::warn!(skipped = %list, suppressed, "rabbitmq: skipped invalid headers of a received message (one warning per 10 s; `suppressed` counts the messages not logged since the last)");
        }
        // A list from an earlier hop (a forwarded message) is kept in front.
        let all = match d.headers.get(INVALID) {
            Some(earlier) if !earlier.is_empty() => format!("{earlier}; {list}"),
            _ => list,
        };
        let _ = d.headers.insert(INVALID, sanitize_header_value(&all));
    }
    d
}

/// The properties for re-publishing a received message (nack, delay): the original
/// properties with the attempt bookkeeping replaced and RabbitMQ's death headers removed.
pub fn for_retry(props: &BasicProperties, attempts: u32, first_failure_ms: u64) -> BasicProperties {
    let mut table = without(props, |n| {
        n == ATTEMPT || n == FIRST_FAILURE || is_broker_header(n)
    });
    table.insert(ATTEMPT.into(), long(attempts.to_string()));
    table.insert(FIRST_FAILURE.into(), long(first_failure_ms.to_string()));
    props.clone().with_headers(table).with_delivery_mode(2)
}

/// The properties for the dead-letter copy: the original properties (unknown and invalid
/// headers kept as they were, a user's `dlq-*` ones too), attempt bookkeeping removed, and
/// `envelope`'s envelope headers.
pub fn for_dead_letter(props: &BasicProperties, envelope: &Headers) -> BasicProperties {
    let mut table = without(props, |n| {
        n == ATTEMPT
            || n == FIRST_FAILURE
            || is_broker_header(n)
            || brokerkit_core::dead_letter::is_envelope_header(n)
    });
    for (name, value) in envelope.iter() {
        if brokerkit_core::dead_letter::is_envelope_header(name) {
            if let Some(key) = short(name) {
                table.insert(key, long(value));
            }
        }
    }
    props.clone().with_headers(table).with_delivery_mode(2)
}

fn without(props: &BasicProperties, drop: impl Fn(&str) -> bool) -> FieldTable {
    let mut table = FieldTable::default();
    if let Some(old) = props.headers() {
        for (k, v) in old.inner() {
            if !drop(k.as_str()) {
                table.insert(k.clone(), v.clone());
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::{DecimalValue, FieldArray};

    #[test]
    fn canonical_headers_and_key_round_trip() {
        let mut h = Headers::new();
        h.set_message_id("m-1").unwrap();
        h.set_correlation_id("c-1").unwrap();
        h.set_event_type("order.placed").unwrap();
        h.set_content_type("application/json").unwrap();
        h.insert("timestamp", "1700000000123").unwrap();
        h.insert("x-tenant", "acme").unwrap();
        h.insert("x-long-id", "x".repeat(300)).unwrap();
        h.insert("causation-id", "m-0").unwrap();
        let m = Message::new("p").with_headers(h.clone()).with_key("k-1");
        let props = encode(&m).unwrap();
        assert_eq!(props.message_id().as_ref().map(|s| s.as_str()), Some("m-1"));
        assert_eq!(props.timestamp(), &Some(1_700_000_000));
        assert_eq!(props.delivery_mode(), &Some(2));
        let d = decode(&props);
        for (n, v) in h.iter() {
            assert_eq!(d.headers.get(n), Some(v), "{n}");
        }
        assert_eq!(d.headers.len(), h.len());
        assert_eq!(d.key.as_deref(), Some("k-1"));
        assert_eq!(d.attempts_before, 0);
    }

    #[test]
    fn non_numeric_timestamp_and_long_ids_stay_in_the_table() {
        let h = Headers::new()
            .with("timestamp", "yesterday")
            .unwrap()
            .with("message-id", "i".repeat(256))
            .unwrap();
        let props = encode(&Message::new("").with_headers(h.clone())).unwrap();
        assert!(props.timestamp().is_none() && props.message_id().is_none());
        let back = decode(&props).headers;
        assert_eq!(back.len(), h.len());
        for (n, v) in h.iter() {
            assert_eq!(back.get(n), Some(v), "{n}");
        }
    }

    #[test]
    fn reserved_and_overlong_names_are_refused() {
        let h = Headers::new().with("X-Brokerkit-Attempt", "9").unwrap();
        let e = encode(&Message::new("").with_headers(h)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidHeader);
        let h = Headers::new().with("a".repeat(256), "v").unwrap();
        assert!(encode(&Message::new("").with_headers(h)).is_err());
    }

    #[test]
    fn foreign_headers_are_converted_or_skipped_with_reason() {
        let mut t = FieldTable::default();
        t.insert("x-int".into(), AMQPValue::LongInt(-5));
        t.insert("x-bool".into(), AMQPValue::Boolean(true));
        t.insert(
            "x-dec".into(),
            AMQPValue::DecimalValue(DecimalValue { scale: 2, value: 5 }),
        );
        t.insert("x-bin".into(), long(vec![0xff, 0xfe]));
        t.insert(
            "x-nested".into(),
            AMQPValue::FieldTable(FieldTable::default()),
        );
        t.insert(
            "x-array".into(),
            AMQPValue::FieldArray(FieldArray::default()),
        );
        t.insert("bad name".into(), long("v"));
        t.insert("x-ctl".into(), long("a\nb"));
        t.insert("X-Dup".into(), long("1"));
        t.insert("x-dup".into(), long("2"));
        t.insert(
            "x-death".into(),
            AMQPValue::FieldArray(FieldArray::default()),
        );
        t.insert(ATTEMPT.into(), AMQPValue::LongLongInt(4));
        let d = decode(&BasicProperties::default().with_headers(t).with_timestamp(7));
        assert_eq!(d.headers.get("x-int"), Some("-5"));
        assert_eq!(d.headers.get("x-bool"), Some("true"));
        assert_eq!(d.headers.get("x-dec"), Some("0.05"));
        assert_eq!(d.headers.get("timestamp"), Some("7000"));
        assert_eq!(d.attempts_before, 4);
        let why = d.headers.get(INVALID).unwrap();
        for bad in ["x-bin", "x-nested", "x-array", "bad name", "x-ctl", "x-dup"] {
            assert!(why.contains(&format!("{bad:?}")), "{bad} missing in {why}");
        }
        assert!(!why.contains("x-death") && d.headers.get("x-death").is_none());
    }

    #[test]
    fn retry_and_dead_letter_properties() {
        let m = Message::new("").with_headers(Headers::new().with("x-a", "1").unwrap());
        let p = for_retry(&encode(&m).unwrap(), 3, 42);
        let d = decode(&p);
        assert_eq!((d.attempts_before, d.first_failure_ms), (3, Some(42)));
        let env = Headers::new().with("dlq-reason", "r").unwrap();
        let d = decode(&for_dead_letter(&p, &env));
        assert_eq!((d.attempts_before, d.first_failure_ms), (0, None));
        assert_eq!(d.headers.get("dlq-reason"), Some("r"));
        assert_eq!(d.headers.get("x-a"), Some("1"));
    }
}
