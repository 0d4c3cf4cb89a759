//! `redis+streams://` URLs as a user types them, through the adapter's URL check (no
//! connection): no printed form may leak the planted password.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    brokerkit_fuzz::url_target(data, brokerkit_redis_streams::check_url);
});
