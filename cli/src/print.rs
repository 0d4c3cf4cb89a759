//! Output: colours only on a terminal (anstream strips them otherwise and honours NO_COLOR),
//! messages and dead letters as text or JSON.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use brokerkit::{DeadLetterEnvelope, DeadLetterView, Message};
use owo_colors::OwoColorize;
use serde_json::{json, Map, Value};

/// `error: …` on stderr.
pub fn error(message: &str) {
    anstream::eprintln!("{} {message}", "error:".red().bold());
}

/// `warning: …` on stderr.
pub fn warn(message: &str) {
    anstream::eprintln!("{} {message}", "warning:".yellow().bold());
}

/// A note on stderr (what the command is doing), so stdout stays data only.
pub fn note(message: &str) {
    anstream::eprintln!("{}", message.dimmed());
}

/// A payload as JSON fields: `payload` (UTF-8 text), `payload_json` (when it parses) or
/// `payload_base64` (binary).
pub fn payload_fields(payload: &[u8], out: &mut Map<String, Value>) {
    match std::str::from_utf8(payload) {
        Ok(text) => {
            out.insert("payload".into(), Value::String(text.to_string()));
            if let Ok(v) = serde_json::from_str::<Value>(text) {
                out.insert("payload_json".into(), v);
            }
        }
        Err(_) => {
            out.insert(
                "payload_base64".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(payload)),
            );
        }
    }
}

/// Headers as a JSON object.
pub fn headers_json(message: &Message) -> Value {
    let map: Map<String, Value> = message
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    Value::Object(map)
}

/// One received or browsed message as JSON.
pub fn message_json(
    destination: &str,
    id: Option<&str>,
    attempt: Option<u32>,
    m: &Message,
) -> Value {
    let mut o = Map::new();
    o.insert("destination".into(), json!(destination));
    if let Some(id) = id {
        o.insert("id".into(), json!(id));
    }
    if let Some(a) = attempt {
        o.insert("attempt".into(), json!(a));
    }
    o.insert("key".into(), json!(m.key));
    o.insert("headers".into(), headers_json(m));
    payload_fields(&m.payload, &mut o);
    Value::Object(o)
}

/// One message as text: a title line, the headers, the payload.
pub fn message_text(destination: &str, id: Option<&str>, attempt: Option<u32>, m: &Message) {
    let mut title = format!("{}", destination.cyan().bold());
    if let Some(id) = id {
        title.push_str(&format!("  id={id}"));
    }
    if let Some(k) = &m.key {
        title.push_str(&format!("  key={k}"));
    }
    if let Some(a) = attempt {
        title.push_str(&format!("  attempt={a}"));
    }
    anstream::println!("{title}");
    for (k, v) in m.headers.iter() {
        anstream::println!("  {}: {v}", k.dimmed());
    }
    anstream::println!("{}", payload_text(&m.payload));
    anstream::println!();
}

/// A payload for a terminal: the text, or base64 for binary.
pub fn payload_text(payload: &[u8]) -> String {
    match std::str::from_utf8(payload) {
        Ok(t) => t.to_string(),
        Err(_) => format!(
            "(binary, {} bytes, base64) {}",
            payload.len(),
            base64::engine::general_purpose::STANDARD.encode(payload)
        ),
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-12-01T01:20:00.123Z`.
pub fn time(t: SystemTime) -> String {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// The envelope as JSON.
pub fn envelope_json(e: &DeadLetterEnvelope) -> Value {
    json!({
        "reason": e.reason.reason,
        "kind": e.reason.error_kind.map(|k| k.as_str()),
        "attempts": e.attempts,
        "original_destination": e.original_destination,
        "original_group": e.original_group,
        "first_failure": time(e.first_failure),
        "last_failure": time(e.last_failure),
        "validation_errors": e.reason.validation_errors.iter()
            .map(|i| json!({"pointer": i.pointer, "reason": i.reason}))
            .collect::<Vec<_>>(),
    })
}

/// A dead letter as JSON: id, envelope, key, headers, payload.
pub fn dead_letter_json(destination: &str, d: &DeadLetterView) -> Value {
    let mut v = message_json(destination, Some(&d.id), None, &d.message);
    if let Value::Object(o) = &mut v {
        o.insert(
            "envelope".into(),
            d.envelope
                .as_ref()
                .map(envelope_json)
                .unwrap_or(Value::Null),
        );
    }
    v
}

/// Cuts text to `n` characters for a table cell.
pub fn cut(text: &str, n: usize) -> String {
    let one_line = text.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= n {
        return one_line;
    }
    let mut s: String = one_line.chars().take(n.saturating_sub(1)).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_times() {
        assert_eq!(time(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_200_123); // 2024-03-01
        assert_eq!(time(t), "2024-03-01T00:00:00.123Z");
    }

    #[test]
    fn cuts_on_characters() {
        assert_eq!(cut("ééééé", 3), "éé…");
        assert_eq!(cut("a\nb", 5), "a b");
    }
}
