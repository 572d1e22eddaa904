//! `cargo +nightly fuzz run contract`: the property is `rampart_fuzz::contract` (see src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_fuzz::contract(data));
