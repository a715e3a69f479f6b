//! Keeps the zone parser target inside its scratch folder.
//!
//! `$INCLUDE` reads a file. A fuzzer that learns to write
//! `$INCLUDE /dev/zero` (or `\047dev\047stdin` with escapes) would hang or
//! run out of memory in the filesystem, not in steerdns. Includes are still
//! fuzzed, of the files in [`include_dir`], by name: an input that has
//! `$INCLUDE` and any slash or backslash at all is skipped, so no path can
//! leave that folder.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Files an input may `$INCLUDE`: good records, an include of itself (a
/// loop the depth limit must stop), a broken record, bytes that are not
/// UTF-8, and an empty file.
const INCLUDABLE: &[(&str, &[u8])] = &[
    (
        "hosts",
        b"www A 192.0.2.1\n  AAAA 2001:db8::1\nmail 60 MX 10 www\n",
    ),
    ("loop", b"$INCLUDE loop\n"),
    ("bad", b"www A 300.1.2.3\n"),
    ("binary", b"www TXT \"\xff\xfe\"\n"),
    ("empty", b""),
];

/// The folder holding the includable files, created on first use. It is
/// shared by every fuzzing process; its content never changes.
pub fn include_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join("steerdns-fuzz-includes");
        std::fs::create_dir_all(&dir).expect("create the include folder");
        // Written aside and renamed, so a process that reads while another
        // writes never sees half a file.
        for (name, bytes) in INCLUDABLE {
            let aside = dir.join(format!(".{name}.{}", std::process::id()));
            std::fs::write(&aside, bytes).expect("write an includable file");
            std::fs::rename(&aside, dir.join(name)).expect("rename an includable file");
        }
        dir
    })
}

/// Whether zone text could `$INCLUDE` a file outside [`include_dir`].
pub fn may_leave_include_dir(text: &str) -> bool {
    let has_include = text
        .as_bytes()
        .windows(b"$include".len())
        .any(|w| w.eq_ignore_ascii_case(b"$include"));
    has_include && text.contains(['/', '\\'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_separators_or_escapes_are_refused() {
        assert!(may_leave_include_dir("$INCLUDE /dev/zero"));
        assert!(may_leave_include_dir("$include \\047dev\\047zero"));
        assert!(may_leave_include_dir("$InClUdE ../x"));
        assert!(!may_leave_include_dir("$INCLUDE hosts sub"));
        assert!(!may_leave_include_dir("www A 192.0.2.1 ; a/b \\# 0"));
    }
}
