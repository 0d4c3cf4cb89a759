//! Broker and store URLs and their config keys, as a user types them. Parses the URL, checks
//! it with the in-memory broker's config (no connection), and asserts that no printed form
//! leaks a password marker planted in the input. Each adapter's own URL check has its target
//! in `adapters/<b>/fuzz` (`url_<b>`), over the same [`brokerkit_fuzz::url_target`].
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    brokerkit_fuzz::url_target(data, |url| {
        brokerkit_memory::MemoryConfig::from_url(url).map(drop)
    });
});
