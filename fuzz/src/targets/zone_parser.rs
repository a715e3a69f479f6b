//! Bytes as master-file text through `zone::parse::parse_str`, and parsed
//! records through `Zone::from_records`: neither may panic, and errors name
//! a line of the file they are about.
//!
//! The file sits in the scratch folder of [`crate::guard`], so
//! `$INCLUDE` of the files there is fuzzed too; inputs that could include
//! anything else are skipped.

use crate::guard;
use steerdns::name::Name;
use steerdns::zone::parse::parse_str;
use steerdns::zone::Zone;

/// Runs one input; panics on a finding.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if guard::may_leave_include_dir(text) {
        return;
    }
    let file = guard::include_dir().join("fuzz.zone");
    let origin = Name::from_text("example.com.", None).expect("a valid origin");
    match parse_str(text, &file, &origin) {
        Ok(records) => {
            // Zone rules refuse much of what parses; they must not panic.
            let _ = Zone::from_records(&origin, &file, records);
        }
        Err(e) if e.file == file => {
            // Lines are 1-based and inside the text (one past the last line
            // for an error at the very end).
            let lines = text.matches('\n').count() + 1;
            assert!(
                (1..=lines).contains(&(e.line as usize)),
                "error on line {} of a {lines}-line file: {e}",
                e.line
            );
        }
        // An error inside an included file, located there.
        Err(e) => assert!(e.line >= 1, "error without a line: {e}"),
    }
}
