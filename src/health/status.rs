//! The HTTP status codes an http or https monitor accepts
//! (`expected-status`): a leaf shared by the monitor that parses them and
//! the probe failure that reports a code outside them.

use std::fmt;
use std::ops::RangeInclusive;

/// A set of accepted HTTP status codes, as inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet {
    ranges: Vec<RangeInclusive<u16>>,
}

impl StatusSet {
    /// The codes in `ranges`, each already checked to lie in 100-599.
    pub(super) fn new(ranges: Vec<RangeInclusive<u16>>) -> StatusSet {
        StatusSet { ranges }
    }

    /// Whether `code` is accepted.
    pub fn contains(&self, code: u16) -> bool {
        self.ranges.iter().any(|r| r.contains(&code))
    }

    /// Parses one entry: `"200"`, `"200-299"` or `"2xx"`; `None` if it is
    /// none of these or outside 100-599.
    pub(super) fn parse_text(text: &str) -> Option<RangeInclusive<u16>> {
        let text = text.trim();
        let code = |s: &str| {
            let s = s.trim();
            (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u16>().ok())
                .flatten()
                .filter(|c| (100..=599).contains(c))
        };
        let range = if let Some((lo, hi)) = text.split_once('-') {
            code(lo)?..=code(hi)?
        } else if let Some(class) = text.strip_suffix("xx").or_else(|| text.strip_suffix("XX")) {
            let first = code(&format!("{class}00"))?;
            first..=first + 99
        } else {
            let c = code(text)?;
            c..=c
        };
        (!range.is_empty()).then_some(range)
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.start() == r.end() {
                write!(f, "{}", r.start())?;
            } else {
                write!(f, "{}-{}", r.start(), r.end())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_forms() {
        assert_eq!(StatusSet::parse_text("204"), Some(204..=204));
        assert_eq!(StatusSet::parse_text(" 200 - 299 "), Some(200..=299));
        assert_eq!(StatusSet::parse_text("5xx"), Some(500..=599));
        assert_eq!(StatusSet::parse_text("1XX"), Some(100..=199));
        for bad in [
            "", "2", "20", "2000", "+20", "200-", "-200", "abc", "0xx", "099",
        ] {
            assert_eq!(StatusSet::parse_text(bad), None, "{bad:?}");
        }
    }
}
