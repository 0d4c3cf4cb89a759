//! Broker URLs as a user types them, checked by this adapter's URL check (`check_url`), no
//! connection: the shared URL target (`brokerkit_fuzz::url_target`, `fuzz/src/lib.rs`)
//! asserts that no printed form, the check's error included, leaks a planted password.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    brokerkit_fuzz::url_target(data, brokerkit_rabbitmq::check_url);
});
