//! Broker and store URLs and their config keys, as a user types them. Parses the URL, checks
//! it with every adapter's config (no connection), and asserts that no printed form leaks a
//! password marker planted in the input.
#![no_main]
use brokerkit_core::config::{redact_text, redact_unparsed};
use brokerkit_core::BrokerUrl;
use libfuzzer_sys::fuzz_target;

const MARK: &str = "SEKRIT";

fn leaks(text: &str) -> bool {
    text.contains(MARK)
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let _ = redact_text(input);
    let _ = redact_unparsed(input);
    // Plant a password: whatever is printed must not contain it. An input that already holds
    // the marker elsewhere (a query key `ack_wai:SEKRIT@00`, found by this target) would show
    // it legitimately: the check is only meaningful when the password is its only occurrence.
    if input.contains(MARK) {
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
    let _ = brokerkit_memory::MemoryConfig::from_url(&url);
    let _ = brokerkit_kafka::KafkaConfig::from_url(&url);
    let checks = [
        brokerkit_nats::check_url(&url),
        brokerkit_rabbitmq::check_url(&url),
        brokerkit_sqs::check_url(&url),
    ];
    for e in checks.into_iter().filter_map(Result::err) {
        if url.expose().password() == Some(MARK) {
            assert!(!leaks(&e.to_string()), "{e}");
        }
    }
});
