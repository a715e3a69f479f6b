//! The fuzz targets' bodies, one module each. The libFuzzer entries in
//! `fuzz_targets/` call [`engine::run`] and the others; `tests/replay.rs`
//! calls them on the seeds and on saved crash inputs, without libFuzzer.

pub mod config;
pub mod ecs;
pub mod engine;
pub mod zone_parser;

/// A target's body: runs one input, panics on a finding.
pub type Run = fn(&[u8]);

/// Every target by name, as `fuzz/seeds/<name>` and `fuzz/regressions/<name>`
/// are named.
pub const ALL: &[(&str, Run)] = &[
    ("engine", engine::run),
    ("zone_parser", zone_parser::run),
    ("config", config::run),
    ("ecs", ecs::run),
];
