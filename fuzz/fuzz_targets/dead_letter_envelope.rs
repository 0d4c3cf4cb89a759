//! The dead-letter envelope read back from headers (a dead-letter queue anyone can publish
//! to). Input: lines `name=value`; each valid pair is a header (envelope names likely, since
//! the corpus holds them), then the envelope is read, rewritten and stripped.
#![no_main]
use brokerkit_core::dead_letter::{strip_envelope, DeadLetterEnvelope};
use brokerkit_core::Headers;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut headers = Headers::new();
    for line in text.split('\n') {
        let (n, v) = line.split_once('=').unwrap_or((line, ""));
        let _ = headers.insert(n.to_string(), v);
    }
    if let Some(envelope) = DeadLetterEnvelope::read_from(&headers) {
        let mut copy = headers.clone();
        envelope.write_to(&mut copy);
        let again = DeadLetterEnvelope::read_from(&copy).expect("a written envelope reads back");
        assert_eq!(again.attempts, envelope.attempts);
        assert_eq!(again.original_destination, envelope.original_destination);
    }
    strip_envelope(&mut headers);
    assert!(DeadLetterEnvelope::read_from(&headers).is_none());
});
