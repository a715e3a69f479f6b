//! Durations as the config file writes them: `10s`, `500ms`, `2m`, `1h`.
//!
//! A leaf module: `config` and `health` both read and print durations
//! through it, so neither has to import the other for that.

use std::time::Duration;

/// Parses durations like `10s`, `500ms`, `2m`, `1h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// Parses a duration that must not be zero: every duration key is a
/// timeout or an interval, and zero would close every connection at once
/// or probe in a busy loop. `example` is the first of the two examples
/// the error gives.
pub fn parse_positive(text: &str, example: &'static str) -> Result<Duration, BadDuration> {
    parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| BadDuration {
            text: text.to_string(),
            example,
        })
}

/// A duration key whose value is not a positive duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad duration {text:?} (e.g. \"{example}\", \"500ms\")")]
pub struct BadDuration {
    /// The value as written.
    pub text: String,
    /// A valid value to show beside it.
    pub example: &'static str,
}

/// Formats a duration the way configs write it: `3s`, `500ms`.
pub fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{d:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("s"), None);
    }

    #[test]
    fn zero_is_refused_with_an_example() {
        assert_eq!(parse_positive("3s", "10s"), Ok(Duration::from_secs(3)));
        assert_eq!(
            parse_positive("0s", "10s").unwrap_err().to_string(),
            "bad duration \"0s\" (e.g. \"10s\", \"500ms\")"
        );
        assert!(parse_positive("soon", "5s").is_err());
    }

    #[test]
    fn prints_as_written() {
        assert_eq!(fmt_duration(Duration::from_secs(3)), "3s");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
    }
}
