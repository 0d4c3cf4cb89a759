//! Kafka record headers, as raw bytes from any producer. Input: entries separated by `\0\0`,
//! each `name\0value` (no `\0`: a null value); the first byte chooses retry-copy reading.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let mut raw: Vec<(&[u8], Option<&[u8]>)> = Vec::new();
    let mut i = 0;
    let mut start = 0;
    while i <= rest.len() {
        if i == rest.len() || (rest[i] == 0 && rest.get(i + 1) == Some(&0)) {
            let entry = &rest[start..i];
            match entry.iter().position(|&b| b == 0) {
                Some(p) => raw.push((&entry[..p], Some(&entry[p + 1..]))),
                None => raw.push((entry, None)),
            }
            i += 2;
            start = i;
        } else {
            i += 1;
        }
    }
    let (headers, attempt) = brokerkit_kafka::decode_headers(raw, flag & 1 == 1);
    assert!(attempt >= 1);
    for (n, v) in headers.iter() {
        // Whatever was kept is valid brokerkit text: it must re-insert.
        brokerkit_core::Headers::new()
            .insert(n.to_string(), v)
            .unwrap();
    }
});
