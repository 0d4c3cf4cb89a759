//! The dead-letter envelope: why a message was dead-lettered, written as headers beside the
//! original (unchanged) payload and headers, so it survives every transport.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::ErrorKind;
use crate::headers::{Headers, MAX_VALUE_LEN};

/// Envelope header names (all start with `dlq-`). Only these names are brokerkit's: a user
/// header such as `dlq-owner` is kept through dead-lettering and redrive.
pub mod names {
    /// Human-readable reason.
    pub const REASON: &str = "dlq-reason";
    /// [`crate::ErrorKind::as_str`] of the failure, when known.
    pub const ERROR_KIND: &str = "dlq-error-kind";
    /// Delivery attempts made before dead-lettering.
    pub const ATTEMPTS: &str = "dlq-attempts";
    /// Destination the message was consumed from.
    pub const ORIGINAL_DESTINATION: &str = "dlq-original-destination";
    /// Consumer group that gave up, when there was one.
    pub const ORIGINAL_GROUP: &str = "dlq-original-group";
    /// First failure, milliseconds since the epoch.
    pub const FIRST_FAILURE: &str = "dlq-first-failure-ms";
    /// Last failure (the dead-lettering), milliseconds since the epoch.
    pub const LAST_FAILURE: &str = "dlq-last-failure-ms";
    /// JSON array of validation errors, each `{"pointer": "...", "reason": "..."}`.
    pub const VALIDATION_ERRORS: &str = "dlq-validation-errors";

    /// Every envelope header name.
    pub const ALL: [&str; 8] = [
        REASON,
        ERROR_KIND,
        ATTEMPTS,
        ORIGINAL_DESTINATION,
        ORIGINAL_GROUP,
        FIRST_FAILURE,
        LAST_FAILURE,
        VALIDATION_ERRORS,
    ];
}

/// Whether `name` is one of the envelope headers ([`names::ALL`]), ignoring ASCII case.
pub fn is_envelope_header(name: &str) -> bool {
    names::ALL.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// The name of `destination`'s dead-letter destination.
pub fn dead_letter_destination(destination: &str) -> String {
    format!("{destination}.dlq")
}

/// One schema violation: where (JSON pointer) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationIssue {
    /// JSON pointer into the payload, e.g. `/total_cents`.
    pub pointer: String,
    /// What is wrong there.
    pub reason: String,
}

/// Why the caller dead-letters a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterReason {
    /// Human-readable reason.
    pub reason: String,
    /// Kind of the failure, when it came from an [`crate::Error`].
    pub error_kind: Option<ErrorKind>,
    /// Schema violations, when that was the failure.
    pub validation_errors: Vec<ValidationIssue>,
}

impl DeadLetterReason {
    /// A reason with just a text.
    pub fn new(reason: impl Into<String>) -> Self {
        DeadLetterReason {
            reason: reason.into(),
            error_kind: None,
            validation_errors: Vec::new(),
        }
    }

    /// Adds the error kind.
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.error_kind = Some(kind);
        self
    }

    /// Adds schema violations.
    pub fn with_validation_errors(mut self, errors: Vec<ValidationIssue>) -> Self {
        self.validation_errors = errors;
        self
    }
}

impl From<&crate::Error> for DeadLetterReason {
    fn from(e: &crate::Error) -> Self {
        DeadLetterReason::new(e.to_string()).with_kind(e.kind())
    }
}

/// The full envelope as found on a dead-lettered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterEnvelope {
    /// Why.
    pub reason: DeadLetterReason,
    /// Delivery attempts made.
    pub attempts: u32,
    /// Where the message was consumed from.
    pub original_destination: String,
    /// The group that gave up.
    pub original_group: Option<String>,
    /// First failure time.
    pub first_failure: SystemTime,
    /// Last failure time.
    pub last_failure: SystemTime,
}

fn millis(t: SystemTime) -> String {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string()
}

fn from_millis(v: &str) -> Option<SystemTime> {
    v.parse::<u64>()
        .ok()
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
}

/// Makes free text a valid header value: the characters header values refuse (ASCII
/// controls but tab) become spaces, long text is cut at a character boundary. A value that
/// is already valid comes back unchanged (other Unicode controls such as U+0089 are valid),
/// so an envelope read from headers is written back as it was.
pub fn sanitize_header_value(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_control() && c != '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    if out.len() > MAX_VALUE_LEN {
        let mut cut = MAX_VALUE_LEN;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

impl DeadLetterEnvelope {
    /// Writes the envelope into `headers`, replacing an earlier envelope.
    pub fn write_to(&self, headers: &mut Headers) {
        strip_envelope(headers);
        let mut put = |name: &'static str, value: String| {
            // Values are sanitized, names are constants: insertion cannot fail.
            let _ = headers.insert(name, sanitize_header_value(&value));
        };
        put(names::REASON, self.reason.reason.clone());
        if let Some(kind) = self.reason.error_kind {
            put(names::ERROR_KIND, kind.as_str().to_string());
        }
        put(names::ATTEMPTS, self.attempts.to_string());
        put(
            names::ORIGINAL_DESTINATION,
            self.original_destination.clone(),
        );
        if let Some(g) = &self.original_group {
            put(names::ORIGINAL_GROUP, g.clone());
        }
        put(names::FIRST_FAILURE, millis(self.first_failure));
        put(names::LAST_FAILURE, millis(self.last_failure));
        if !self.reason.validation_errors.is_empty() {
            let list: Vec<serde_json::Value> = self
                .reason
                .validation_errors
                .iter()
                .map(|i| serde_json::json!({"pointer": i.pointer, "reason": i.reason}))
                .collect();
            put(
                names::VALIDATION_ERRORS,
                serde_json::Value::Array(list).to_string(),
            );
        }
    }

    /// Reads an envelope from a dead-lettered message's headers; `None` if there is none.
    pub fn read_from(headers: &Headers) -> Option<DeadLetterEnvelope> {
        let reason = headers.get(names::REASON)?.to_string();
        let validation_errors = headers
            .get(names::VALIDATION_ERRORS)
            .and_then(|v| serde_json::from_str::<Vec<serde_json::Value>>(v).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|v| ValidationIssue {
                pointer: v["pointer"].as_str().unwrap_or_default().to_string(),
                reason: v["reason"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
        let last = headers.get(names::LAST_FAILURE).and_then(from_millis)?;
        Some(DeadLetterEnvelope {
            reason: DeadLetterReason {
                reason,
                error_kind: headers.get(names::ERROR_KIND).and_then(ErrorKind::parse),
                validation_errors,
            },
            attempts: headers.get(names::ATTEMPTS)?.parse().ok()?,
            original_destination: headers.get(names::ORIGINAL_DESTINATION)?.to_string(),
            original_group: headers.get(names::ORIGINAL_GROUP).map(str::to_string),
            first_failure: headers
                .get(names::FIRST_FAILURE)
                .and_then(from_millis)
                .unwrap_or(last),
            last_failure: last,
        })
    }
}

/// Removes the envelope headers ([`names::ALL`]), giving back the original headers (used by
/// redrive). Other headers, `dlq-` prefixed or not, are the user's and stay.
pub fn strip_envelope(headers: &mut Headers) {
    for n in names::ALL {
        headers.remove(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_strips() {
        let mut h = Headers::new().with("x-user", "1").unwrap();
        let t0 = UNIX_EPOCH + Duration::from_millis(1_000);
        let t1 = UNIX_EPOCH + Duration::from_millis(2_000);
        let env = DeadLetterEnvelope {
            reason: DeadLetterReason::new("bad\nthing")
                .with_kind(ErrorKind::Validation)
                .with_validation_errors(vec![ValidationIssue {
                    pointer: "/total".into(),
                    reason: "expected integer".into(),
                }]),
            attempts: 3,
            original_destination: "orders".into(),
            original_group: Some("billing".into()),
            first_failure: t0,
            last_failure: t1,
        };
        env.write_to(&mut h);
        let back = DeadLetterEnvelope::read_from(&h).unwrap();
        assert_eq!(back.reason.reason, "bad thing");
        assert_eq!(back.reason.error_kind, Some(ErrorKind::Validation));
        assert_eq!(back.reason.validation_errors, env.reason.validation_errors);
        assert_eq!(
            (back.attempts, back.first_failure, back.last_failure),
            (3, t0, t1)
        );
        assert_eq!(back.original_group.as_deref(), Some("billing"));
        strip_envelope(&mut h);
        assert_eq!(h, Headers::new().with("x-user", "1").unwrap());
    }

    #[test]
    fn user_dlq_headers_survive_dead_lettering_and_redrive() {
        let user = Headers::new()
            .with("dlq-owner", "team-a")
            .unwrap()
            .with("DLQ-Ticket", "T-1")
            .unwrap();
        let mut h = user.clone();
        let env = DeadLetterEnvelope {
            reason: DeadLetterReason::new("r"),
            attempts: 1,
            original_destination: "orders".into(),
            original_group: None,
            first_failure: UNIX_EPOCH,
            last_failure: UNIX_EPOCH,
        };
        env.write_to(&mut h);
        assert_eq!(h.get("dlq-owner"), Some("team-a"));
        env.write_to(&mut h);
        strip_envelope(&mut h);
        assert_eq!(h, user);
    }

    #[test]
    fn sanitize_cuts_on_char_boundary() {
        let s = "é".repeat(MAX_VALUE_LEN);
        let out = sanitize_header_value(&s);
        assert!(out.len() <= MAX_VALUE_LEN && out.chars().all(|c| c == 'é'));
    }

    /// Found by the `dead_letter_envelope` fuzz target: a read envelope whose
    /// `dlq-original-destination` held U+0089 (a C1 control, valid in a header value) was
    /// written back with a space in its place, so re-dead-lettering changed the destination.
    #[test]
    fn valid_values_are_written_back_unchanged() {
        let h = Headers::new()
            .with(names::REASON, "r\u{89}\u{FFFD}x")
            .unwrap()
            .with(names::ATTEMPTS, "3")
            .unwrap()
            .with(names::ORIGINAL_DESTINATION, "orde\u{9b}\u{89}al")
            .unwrap()
            .with(names::LAST_FAILURE, "2000")
            .unwrap();
        let env = DeadLetterEnvelope::read_from(&h).unwrap();
        let mut copy = h.clone();
        env.write_to(&mut copy);
        let again = DeadLetterEnvelope::read_from(&copy).unwrap();
        assert_eq!(again.original_destination, env.original_destination);
        assert_eq!(again.reason.reason, env.reason.reason);
        // What headers refuse is still replaced.
        assert_eq!(sanitize_header_value("a\nb\u{7f}c\td"), "a b c\td");
    }
}
