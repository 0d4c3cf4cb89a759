//! A stream entry's fields as another application writes them (any bytes): the input is split
//! at 0 bytes into name, value, name, value, … The decoder never panics, keeps only valid
//! headers, and lists what it dropped.
#![no_main]
use brokerkit_core::headers::INVALID_HEADERS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts: Vec<Vec<u8>> = data.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
    let fields: Vec<(Vec<u8>, Vec<u8>)> = parts
        .chunks(2)
        .filter_map(|c| Some((c.first()?.clone(), c.get(1)?.clone())))
        .collect();
    let n = fields.len();
    let m = brokerkit_redis_streams::decode_fields(fields);
    assert!(m.headers.len() <= n + 1);
    for (name, value) in m.headers.iter() {
        if name != INVALID_HEADERS {
            assert!(!value.bytes().any(|b| b.is_ascii_control() && b != b'\t'));
        }
    }
});
