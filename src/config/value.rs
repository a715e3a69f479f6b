//! Checks of single values. Every refusal is an [`Invalid`]: a message and
//! the byte span of the value it is about, which
//! [`Config::from_str`](super::Config::from_str) turns into `file:line`.

use std::ops::{Range, RangeInclusive};
use std::time::Duration;

use toml::Spanned;

use crate::duration::parse_positive;

/// A value the config refuses, and where in the file it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Invalid {
    /// Byte range of the offending key or value in the TOML text.
    pub(super) span: Range<usize>,
    /// What is wrong, starting with the key (`tcp.idle-timeout: ...`).
    pub(super) message: String,
}

impl Invalid {
    /// A refusal of the value at `span`.
    pub(super) fn new(span: Range<usize>, message: impl Into<String>) -> Invalid {
        Invalid {
            span,
            message: message.into(),
        }
    }

    /// A refusal of `value`.
    pub(super) fn at<T>(value: &Spanned<T>, message: impl Into<String>) -> Invalid {
        Invalid::new(value.span(), message)
    }
}

/// A count that must be at least 1, or `default` when the key is absent.
pub(super) fn positive<T: Copy + PartialOrd + From<u8>>(
    value: Option<Spanned<T>>,
    field: &str,
    default: T,
) -> Result<T, Invalid> {
    match value {
        Some(v) if *v.get_ref() < T::from(1) => {
            Err(Invalid::at(&v, format!("{field}: must be at least 1")))
        }
        Some(v) => Ok(v.into_inner()),
        None => Ok(default),
    }
}

/// A value that must lie in `range`, or `default` when absent.
pub(super) fn within<T: Copy + PartialOrd + std::fmt::Display>(
    value: &Option<Spanned<T>>,
    field: &str,
    range: RangeInclusive<T>,
    default: T,
) -> Result<T, Invalid> {
    match value {
        Some(v) if !range.contains(v.get_ref()) => Err(Invalid::at(
            v,
            format!(
                "{field}: must be between {} and {}",
                range.start(),
                range.end()
            ),
        )),
        Some(v) => Ok(*v.get_ref()),
        None => Ok(default),
    }
}

/// A non-zero duration key; `example` is shown beside a bad value.
pub(super) fn duration(
    value: &Spanned<String>,
    field: &str,
    example: &'static str,
) -> Result<Duration, Invalid> {
    parse_positive(value.get_ref(), example)
        .map_err(|e| Invalid::at(value, format!("{field}: {e}")))
}
