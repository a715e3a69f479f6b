//! libFuzzer entry of the `ecs` target: see `steerdns_fuzz::targets::ecs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steerdns_fuzz::targets::ecs::run(data));
