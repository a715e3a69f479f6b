//! libFuzzer entry of the `zone_parser` target: see `steerdns_fuzz::targets::zone_parser`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steerdns_fuzz::targets::zone_parser::run(data));
