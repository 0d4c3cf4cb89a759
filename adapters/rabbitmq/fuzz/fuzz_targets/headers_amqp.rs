//! AMQP 0-9-1 header tables as they come off the wire: the input is an encoded field table
//! (4-byte length, then entries), parsed by lapin's protocol crate (amq-protocol), then
//! decoded by brokerkit.
#![no_main]
use amq_protocol::protocol::BasicProperties;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((_, table)) = amq_protocol::types::parsing::parse_field_table(data) else {
        return;
    };
    let props = BasicProperties::default().with_headers(table);
    let (headers, _key, _attempts) = brokerkit_rabbitmq::decode_properties(&props);
    for (n, v) in headers.iter() {
        brokerkit_core::Headers::new()
            .insert(n.to_string(), v)
            .unwrap();
    }
});
