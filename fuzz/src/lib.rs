//! What the URL fuzz targets share: `fuzz/fuzz_targets/broker_url.rs` (parsing, redaction,
//! the in-memory broker's keys) and each adapter's `url_<broker>` target
//! (`adapters/<b>/fuzz`), which passes its adapter's URL check to [`url_target`].

use brokerkit_core::config::{redact_text, redact_unparsed};
use brokerkit_core::BrokerUrl;

/// A password planted in every input: no printed form may contain it.
pub const MARK: &str = "SEKRIT";

fn leaks(text: &str) -> bool {
    text.contains(MARK)
}

/// Runs one input: redacts it as unparsed text, plants a password after the first `@`,
/// parses it, asserts that neither the URL nor a parse error prints the password, then runs
/// `check` (an adapter's URL check, no connection) and asserts that its error does not print
/// it either.
pub fn url_target<E: std::fmt::Display>(
    data: &[u8],
    check: impl FnOnce(&BrokerUrl) -> Result<(), E>,
) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let _ = redact_text(input);
    let _ = redact_unparsed(input);
    // Plant a password: whatever is printed must not contain it. An input that already holds
    // the marker elsewhere (a query key `ack_wai:SEKRIT@00`, found by this target) would show
    // it legitimately: the check is only meaningful when the password is its only occurrence.
    // URL parsing drops tabs and line breaks anywhere (WHATWG), so `SEK\nR\nIT` in a query
    // (found by `url_nats`) is the marker too.
    let parsed_as: String = input
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    if parsed_as.contains(MARK) {
        return;
    }
    let planted = input.replacen("@", &format!(":{MARK}@"), 1);
    let url = match BrokerUrl::parse(&planted) {
        Ok(url) => url,
        Err(e) => {
            if planted.contains(&format!(":{MARK}@"))
                && !planted[..planted.find(MARK).unwrap()].contains(['@', '?', '#'])
            {
                assert!(!leaks(&e.to_string()), "{e}");
                assert!(!leaks(&format!("{e:?}")), "{e:?}");
            }
            return;
        }
    };
    if url.expose().password() == Some(MARK) {
        assert!(!leaks(&url.to_string()), "{url}");
        assert!(!leaks(&format!("{url:?}")), "{url:?}");
    }
    if let Err(e) = check(&url) {
        if url.expose().password() == Some(MARK) {
            assert!(!leaks(&e.to_string()), "{e}");
        }
    }
}
