//! Zone file parser (placeholder until the real parser lands).
use std::path::{Path, PathBuf};

use crate::name::Name;
use crate::rr::Record;

/// A parse error.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct ZoneError {
    /// File.
    pub file: PathBuf,
    /// Line.
    pub line: u32,
    /// Message.
    pub message: String,
}

/// Parses a file.
pub fn parse_file(path: &Path, _origin: &Name) -> Result<Vec<Record>, ZoneError> {
    Err(ZoneError { file: path.into(), line: 0, message: "unimplemented".into() })
}
