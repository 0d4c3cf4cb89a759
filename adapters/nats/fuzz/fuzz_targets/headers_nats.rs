//! NATS headers as received. Input: lines `name: value`; every line is one header, given to
//! the decoder as the (name, last value) pairs a NATS header map holds. No client-side
//! filtering: names and values the client would refuse reach the decoder too.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pairs = text.split('\n').map(|line| {
        let (n, v) = line.split_once(':').unwrap_or((line, ""));
        (n, v.trim_start())
    });
    let (headers, _key) = brokerkit_nats::decode_headers(pairs);
    for (n, v) in headers.iter() {
        // Whatever was kept is valid brokerkit text: it must re-insert.
        brokerkit_core::Headers::new()
            .insert(n.to_string(), v)
            .unwrap();
    }
});
