//! Replays the committed inputs through the fuzz targets' checks, without
//! libFuzzer: every seed (`fuzz/seeds/<target>/`) and every saved crash
//! input (`fuzz/regressions/<target>/`) must pass.
//!
//! ```sh
//! cargo test --manifest-path fuzz/Cargo.toml
//! ```

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use steerdns_fuzz::targets;

/// The files of `fuzz/<kind>/<target>/`, sorted; none if the folder is absent.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_none_or(|n| n != "README.md"))
        .collect();
    files.sort();
    files
}

/// Runs every input of `kind` through its target; fails naming each input
/// that panicked.
fn replay(kind: &str) -> usize {
    let mut failures = Vec::new();
    let mut count = 0;
    for &(target, run) in targets::ALL {
        for path in inputs(kind, target) {
            let data = std::fs::read(&path).expect("read an input");
            count += 1;
            if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                failures.push(format!("{target}: {}", path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} {kind} inputs fail (the panic messages are above):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    count
}

#[test]
fn seeds_pass() {
    let count = replay("seeds");
    assert!(count >= 100, "only {count} seeds: were they deleted?");
}

#[test]
fn saved_crash_inputs_pass() {
    replay("regressions");
}
