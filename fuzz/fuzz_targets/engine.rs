//! libFuzzer entry of the `engine` target: see `steerdns_fuzz::targets::engine`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steerdns_fuzz::targets::engine::run(data));
