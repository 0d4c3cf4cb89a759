//! NATS headers as the client hands them over. Input: lines `name: value`; lines the client
//! itself would refuse are skipped (we fuzz our decoder, not the client's parser).
#![no_main]
use std::str::FromStr;

use async_nats::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut map = HeaderMap::new();
    for line in text.split('\n') {
        let (n, v) = line.split_once(':').unwrap_or((line, ""));
        let (Ok(n), Ok(v)) = (HeaderName::from_str(n), HeaderValue::from_str(v.trim_start())) else {
            continue;
        };
        map.append(n, v);
    }
    let (headers, _key) = brokerkit_nats::decode_headers(Some(&map));
    for (n, v) in headers.iter() {
        brokerkit_core::Headers::new().insert(n.to_string(), v).unwrap();
    }
});
