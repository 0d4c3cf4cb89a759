//! Message headers: validated names and values, with typed accessors for the canonical ones.
//!
//! Canonical names follow CloudEvents binary mode where one exists (`ce-id` → `message-id`,
//! `ce-type` → `event-type`, …) but without a prefix; each adapter documents how it maps them to
//! its transport.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};
use crate::text::Text;

mod canonical;
mod entries;
use entries::Entries;
pub use entries::Iter;

/// Longest header name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest header value accepted, in bytes.
pub const MAX_VALUE_LEN: usize = 8 * 1024;

/// Header listing the foreign headers a consumer dropped because brokerkit cannot carry them
/// (binary values, names that are not HTTP tokens, control characters): the names, escaped,
/// joined by `", "`. Set by [`note_invalid`].
pub const INVALID_HEADERS: &str = "x-brokerkit-invalid-headers";

/// Records dropped foreign header names in [`INVALID_HEADERS`]; nothing when `dropped` is
/// empty. Names are listed as given (callers escape what is not printable).
pub fn note_invalid(headers: &mut Headers, dropped: &[String]) {
    if dropped.is_empty() {
        return;
    }
    // Sorted: client header maps have no order, and a redelivery must list the same text.
    let mut sorted = dropped.to_vec();
    sorted.sort();
    let list = crate::dead_letter::sanitize_header_value(&sorted.join(", "));
    // A constant valid name and a sanitized value: insertion cannot fail.
    let _ = headers.insert(INVALID_HEADERS, list);
}

/// Canonical header names.
pub mod names {
    /// Unique id of this message.
    pub const MESSAGE_ID: &str = "message-id";
    /// Id shared by every message of one business flow.
    pub const CORRELATION_ID: &str = "correlation-id";
    /// Id of the message whose handling caused this one.
    pub const CAUSATION_ID: &str = "causation-id";
    /// Key under which the message is handled at most once.
    pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
    /// Event type, e.g. `order.placed`.
    pub const EVENT_TYPE: &str = "event-type";
    /// Event schema version, a positive integer.
    pub const EVENT_VERSION: &str = "event-version";
    /// W3C trace context `traceparent`.
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C trace context `tracestate`.
    pub const TRACESTATE: &str = "tracestate";
    /// MIME type of the payload.
    pub const CONTENT_TYPE: &str = "content-type";
    /// Send time, milliseconds since the Unix epoch.
    pub const TIMESTAMP: &str = "timestamp";

    /// Every canonical name.
    pub const ALL: [&str; 10] = [
        MESSAGE_ID,
        CORRELATION_ID,
        CAUSATION_ID,
        IDEMPOTENCY_KEY,
        EVENT_TYPE,
        EVENT_VERSION,
        TRACEPARENT,
        TRACESTATE,
        CONTENT_TYPE,
        TIMESTAMP,
    ];
}

/// A validated header name: 1 to [`MAX_NAME_LEN`] bytes of HTTP token characters
/// (`A-Z a-z 0-9 ! # $ % & ' * + - . ^ _ \` | ~`). Comparison ignores ASCII case.
#[derive(Clone, Debug, Eq)]
pub struct HeaderName(Cow<'static, str>);

impl HeaderName {
    /// Validates `name`.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Result<Self> {
        let name = name.into();
        validate_name(&name)?;
        Ok(HeaderName(name))
    }

    /// A canonical name (a valid constant): not checked.
    pub(crate) fn canonical(name: &'static str) -> Self {
        HeaderName(Cow::Borrowed(name))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether every byte is a token byte; branch-free per byte, so the compiler vectorizes it
/// (names are checked on every insert).
fn all_token_bytes(name: &str) -> bool {
    name.bytes().fold(true, |ok, b| ok & is_token_byte(b))
}

fn validate_name(name: &str) -> Result<()> {
    if !name.is_empty() && name.len() <= MAX_NAME_LEN && all_token_bytes(name) {
        return Ok(());
    }
    if name.is_empty() {
        return Err(Error::new(ErrorKind::InvalidHeader, "header name is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::new(
            ErrorKind::InvalidHeader,
            format!(
                "header name of {} bytes is longer than {MAX_NAME_LEN}",
                name.len()
            ),
        ));
    }
    if let Some(pos) = name.bytes().position(|b| !is_token_byte(b)) {
        return Err(Error::new(
            ErrorKind::InvalidHeader,
            format!(
                "header name {name:?} has an invalid character at byte {pos}; \
                 allowed: letters, digits and !#$%&'*+-.^_`|~"
            ),
        ));
    }
    Ok(())
}

/// Whether `value` has a control character other than tab; branch-free per byte, so the
/// compiler vectorizes it (every value is checked, most are short and clean).
fn has_control(value: &str) -> bool {
    value.bytes().fold(false, |bad, b| {
        bad | ((b < 0x20 && b != b'\t') | (b == 0x7f))
    })
}

fn validate_value(name: &str, value: &str) -> Result<()> {
    if value.len() <= MAX_VALUE_LEN && !has_control(value) {
        return Ok(());
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::new(
            ErrorKind::InvalidHeader,
            format!(
                "value of header {name:?} is {} bytes, longer than {MAX_VALUE_LEN}",
                value.len()
            ),
        ));
    }
    if let Some(pos) = value
        .bytes()
        .position(|b| b.is_ascii_control() && b != b'\t')
    {
        return Err(Error::new(
            ErrorKind::InvalidHeader,
            format!("value of header {name:?} has a control character at byte {pos}"),
        ));
    }
    Ok(())
}

/// Ordered message headers. Names are unique (ignoring ASCII case); values are UTF-8 text
/// without control characters (tab allowed), at most [`MAX_VALUE_LEN`] bytes.
///
/// Insertion order is kept; setting a name again replaces its value in place. Insert and
/// lookup are O(1) on average (a hash index from 16 headers on); [`Headers::remove`] is O(n).
///
/// Cloning is cheap (shared until one copy changes), so a message can be redelivered, handed
/// to a handler and dead-lettered without copying its headers.
#[derive(Clone, Debug, Default)]
pub struct Headers {
    entries: Option<Arc<Entries>>,
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers::default()
    }

    /// Sets `name` to `value`, replacing an earlier value. Invalid names or values are errors.
    pub fn insert(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Result<()> {
        let name = HeaderName::new(name)?;
        let value = value.into();
        validate_value(name.as_str(), &value)?;
        self.set_validated(name, Text::from(value));
        Ok(())
    }

    /// [`Headers::insert`] with a borrowed value: a copy of it is kept, inline (no heap
    /// allocation) when it is at most 46 bytes, as ids and timestamps are.
    pub fn insert_str(&mut self, name: impl Into<Cow<'static, str>>, value: &str) -> Result<()> {
        let name = HeaderName::new(name)?;
        validate_value(name.as_str(), value)?;
        self.set_validated(name, Text::copy_of(value));
        Ok(())
    }

    /// Builder form of [`Headers::insert`].
    pub fn with(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Result<Self> {
        self.insert(name, value)?;
        Ok(self)
    }

    fn entries_mut(&mut self) -> &mut Entries {
        Arc::make_mut(self.entries.get_or_insert_with(Arc::default))
    }

    fn set_validated(&mut self, name: HeaderName, value: Text) {
        self.entries_mut().set(name, value);
    }

    /// Sets canonical header `name` to a copy of `value` (inline when short).
    fn set_canonical_str(&mut self, name: &'static str, value: &str) -> Result<()> {
        validate_value(name, value)?;
        self.set_validated(HeaderName::canonical(name), Text::copy_of(value));
        Ok(())
    }

    /// Sets canonical header `name` to digits: valid by construction, so not checked.
    fn set_canonical_digits(&mut self, name: &'static str, n: u64) {
        self.set_validated(HeaderName::canonical(name), Text::digits(n));
    }

    /// The value of `name`, ignoring ASCII case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.as_deref()?.get(name)
    }

    /// Removes `name` and returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.entries.as_deref()?.get(name)?;
        Some(self.entries_mut().remove(name)?.into_string())
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.entries.as_deref().map_or(0, Entries::len)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every header has one of the [canonical names](names) (or there are none): a
    /// quick way to skip looking for user or foreign headers.
    ///
    /// ```
    /// # use brokerkit_core::Headers;
    /// let mut h = Headers::new();
    /// h.set_new_correlation(1, 1_700_000_000_000);
    /// assert!(h.all_canonical());
    /// h.insert("x-tenant", "acme").unwrap();
    /// assert!(!h.all_canonical());
    /// ```
    pub fn all_canonical(&self) -> bool {
        self.entries.as_deref().is_none_or(Entries::all_canonical)
    }

    /// Total bytes of names and values.
    pub fn encoded_len(&self) -> usize {
        self.iter().map(|(n, v)| n.len() + v.len()).sum()
    }

    /// Iterates `(name, value)` in insertion order.
    pub fn iter(&self) -> Iter<'_> {
        self.entries
            .as_deref()
            .map_or_else(Iter::empty, Entries::iter)
    }

    /// The message id.
    pub fn message_id(&self) -> Option<&str> {
        self.get(names::MESSAGE_ID)
    }
    /// Sets the message id.
    pub fn set_message_id(&mut self, id: impl AsRef<str>) -> Result<()> {
        self.set_canonical_str(names::MESSAGE_ID, id.as_ref())
    }
    /// Sets the message id to UUID `id` (e.g. `Uuid::as_u128`) in its hyphenated lowercase
    /// form: valid by construction, so stored (inline) without a check.
    pub fn set_message_id_uuid(&mut self, id: u128) {
        self.set_validated(HeaderName::canonical(names::MESSAGE_ID), Text::uuid(id));
    }
    /// Sets the correlation id to UUID `id`, as [`Headers::set_message_id_uuid`] does.
    pub fn set_correlation_id_uuid(&mut self, id: u128) {
        self.set_validated(HeaderName::canonical(names::CORRELATION_ID), Text::uuid(id));
    }
    /// Stamps a message that starts a new correlation: message-id and correlation-id both the
    /// UUID `id` (hyphenated lowercase), timestamp `at_ms` (milliseconds since the epoch) —
    /// what the correlation layer writes on a message sent outside a handler. On headers that
    /// are still empty (the usual send) the three are appended without look-ups and the UUID
    /// is formatted once; otherwise each replaces its header as its setter would. Valid by
    /// construction, so not checked.
    ///
    /// ```
    /// # use brokerkit_core::Headers;
    /// let mut h = Headers::new();
    /// h.set_new_correlation(0x0190_0000_0000_7000_8000_0000_0000_0001, 1_700_000_000_000);
    /// assert_eq!(h.message_id(), Some("01900000-0000-7000-8000-000000000001"));
    /// assert_eq!(h.correlation_id(), h.message_id());
    /// assert_eq!(h.get("timestamp"), Some("1700000000000"));
    /// ```
    pub fn set_new_correlation(&mut self, id: u128, at_ms: u64) {
        if self.is_empty() {
            // Formatted into the block itself: one small allocation (see `entries`).
            self.entries = Some(Arc::new(Entries::new_correlation(id, at_ms)));
        } else {
            let name = HeaderName::canonical;
            let id = Text::uuid(id);
            let at = Text::digits(at_ms);
            self.set_validated(name(names::MESSAGE_ID), id.clone());
            self.set_validated(name(names::CORRELATION_ID), id);
            self.set_validated(name(names::TIMESTAMP), at);
        }
    }
    /// The correlation id.
    pub fn correlation_id(&self) -> Option<&str> {
        self.get(names::CORRELATION_ID)
    }
    /// Sets the correlation id.
    pub fn set_correlation_id(&mut self, id: impl AsRef<str>) -> Result<()> {
        self.set_canonical_str(names::CORRELATION_ID, id.as_ref())
    }
    /// The causation id.
    pub fn causation_id(&self) -> Option<&str> {
        self.get(names::CAUSATION_ID)
    }
    /// Sets the causation id.
    pub fn set_causation_id(&mut self, id: impl AsRef<str>) -> Result<()> {
        self.set_canonical_str(names::CAUSATION_ID, id.as_ref())
    }
    /// The idempotency key.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.get(names::IDEMPOTENCY_KEY)
    }
    /// Sets the idempotency key.
    pub fn set_idempotency_key(&mut self, key: impl AsRef<str>) -> Result<()> {
        self.set_canonical_str(names::IDEMPOTENCY_KEY, key.as_ref())
    }
    /// The event type.
    pub fn event_type(&self) -> Option<&str> {
        self.get(names::EVENT_TYPE)
    }
    /// Sets the event type.
    pub fn set_event_type(&mut self, event_type: impl AsRef<str>) -> Result<()> {
        self.set_canonical_str(names::EVENT_TYPE, event_type.as_ref())
    }
    /// The event version; a value that is not a non-negative integer is an error.
    pub fn event_version(&self) -> Result<Option<u32>> {
        self.parse_number(names::EVENT_VERSION)
    }
    /// Sets the event version.
    pub fn set_event_version(&mut self, version: u32) -> Result<()> {
        self.set_canonical_digits(names::EVENT_VERSION, u64::from(version));
        Ok(())
    }
    /// The W3C `traceparent`.
    pub fn traceparent(&self) -> Option<&str> {
        self.get(names::TRACEPARENT)
    }
    /// Sets the W3C `traceparent`.
    pub fn set_traceparent(&mut self, value: impl AsRef<str>) -> Result<()> {
        self.set_canonical_str(names::TRACEPARENT, value.as_ref())
    }
    /// The W3C `tracestate`.
    pub fn tracestate(&self) -> Option<&str> {
        self.get(names::TRACESTATE)
    }
    /// Sets the W3C `tracestate`.
    pub fn set_tracestate(&mut self, value: impl AsRef<str>) -> Result<()> {
        self.set_canonical_str(names::TRACESTATE, value.as_ref())
    }
    /// The payload's content type.
    pub fn content_type(&self) -> Option<&str> {
        self.get(names::CONTENT_TYPE)
    }
    /// Sets the payload's content type.
    pub fn set_content_type(&mut self, value: impl AsRef<str>) -> Result<()> {
        self.set_canonical_str(names::CONTENT_TYPE, value.as_ref())
    }
    /// The send time; a value that is not milliseconds since the epoch is an error.
    pub fn timestamp(&self) -> Result<Option<SystemTime>> {
        Ok(self
            .parse_number::<u64>(names::TIMESTAMP)?
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)))
    }
    /// Sets the send time (stored as milliseconds since the epoch).
    pub fn set_timestamp(&mut self, at: SystemTime) -> Result<()> {
        let since = at
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::new(ErrorKind::InvalidHeader, "timestamp is before 1970"))?;
        // u64 milliseconds last 584 million years; beyond that, saturate (in u64: no 128-bit
        // division on every send).
        let ms = since
            .as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(since.subsec_millis()));
        self.set_canonical_digits(names::TIMESTAMP, ms);
        Ok(())
    }

    fn parse_number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidHeader,
                    format!("header {name:?} should be a non-negative integer, got {v:?}"),
                )
            }),
        }
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_accessors_round_trip() {
        let mut h = Headers::new();
        h.set_message_id("m1").unwrap();
        h.set_correlation_id("c1").unwrap();
        h.set_causation_id("m0").unwrap();
        h.set_idempotency_key("k1").unwrap();
        h.set_event_type("order.placed").unwrap();
        h.set_event_version(2).unwrap();
        h.set_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .unwrap();
        h.set_tracestate("congo=t61rcWkgMzE").unwrap();
        h.set_content_type("application/json").unwrap();
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        h.set_timestamp(at).unwrap();
        assert_eq!(h.message_id(), Some("m1"));
        assert_eq!(h.correlation_id(), Some("c1"));
        assert_eq!(h.causation_id(), Some("m0"));
        assert_eq!(h.idempotency_key(), Some("k1"));
        assert_eq!(h.event_type(), Some("order.placed"));
        assert_eq!(h.event_version().unwrap(), Some(2));
        assert!(h.traceparent().unwrap().starts_with("00-"));
        assert_eq!(h.tracestate(), Some("congo=t61rcWkgMzE"));
        assert_eq!(h.content_type(), Some("application/json"));
        assert_eq!(h.timestamp().unwrap(), Some(at));
        assert_eq!(h.len(), names::ALL.len());
    }

    #[test]
    fn names_are_case_insensitive_and_unique() {
        let mut h = Headers::new();
        h.insert("X-Tenant", "a").unwrap();
        h.insert("x-tenant", "b").unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h.get("X-TENANT"), Some("b"));
        assert_eq!(h.remove("x-Tenant").as_deref(), Some("b"));
        assert!(h.is_empty());
    }

    #[test]
    fn bad_names_and_values_are_errors_not_panics() {
        let mut h = Headers::new();
        for bad in ["", "a b", "a:b", "é", "a\nb"] {
            let e = h.insert(bad.to_string(), "v").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidHeader, "{bad:?}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert_eq!(
            h.insert(long, "v").unwrap_err().kind(),
            ErrorKind::InvalidHeader
        );
        let e = h.insert("ok", "line\r\nbreak").unwrap_err();
        assert!(e.message().contains("control character at byte 4"), "{e}");
        let e = h.insert("ok", "x".repeat(MAX_VALUE_LEN + 1)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidHeader);
        assert!(h.insert("ok", "tab\tis fine").is_ok());
        assert!(h.set_correlation_id("nul\0").is_err());
    }

    #[test]
    fn malformed_typed_values_are_errors() {
        let mut h = Headers::new();
        h.insert(names::EVENT_VERSION, "two").unwrap();
        h.insert(names::TIMESTAMP, "-5").unwrap();
        assert_eq!(
            h.event_version().unwrap_err().kind(),
            ErrorKind::InvalidHeader
        );
        assert_eq!(h.timestamp().unwrap_err().kind(), ErrorKind::InvalidHeader);
    }
}
