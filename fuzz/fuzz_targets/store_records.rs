//! `cargo +nightly fuzz run store_records`: the property is `rampart_fuzz::store_records` (see src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_fuzz::store_records(data));
