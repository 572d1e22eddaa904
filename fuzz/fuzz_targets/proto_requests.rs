//! `cargo +nightly fuzz run proto_requests`: the property is `rampart_fuzz::proto_requests` (see src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_fuzz::proto_requests(data));
