//! libFuzzer entry of the `config` target: see `steerdns_fuzz::targets::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steerdns_fuzz::targets::config::run(data));
