//! SQS message attributes and body. Input: `body\0brokerkit-json\0name\0type\0value\0…`; the
//! `brokerkit` attribute carries brokerkit's header JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let body = parts.next().unwrap_or_default();
    let mut attributes: Vec<(&str, &str, Option<&str>)> = Vec::new();
    if let Some(meta) = parts.next() {
        attributes.push(("brokerkit", "String", Some(meta)));
    }
    let rest: Vec<&str> = parts.collect();
    for chunk in rest.chunks(3) {
        match chunk {
            [n, t, v] => attributes.push((n, t, Some(v))),
            [n, t] => attributes.push((n, t, None)),
            _ => {}
        }
    }
    let message = brokerkit_sqs::decode_message(body, &attributes, None);
    for (n, v) in message.headers.iter() {
        brokerkit_core::Headers::new()
            .insert(n.to_string(), v)
            .unwrap();
    }
});
