//! `cargo +nightly fuzz run signal_lines`: the property is `rampart_fuzz::signal_lines` (see src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_fuzz::signal_lines(data));
