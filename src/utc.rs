//! Times as the config file writes them: RFC 3339 in UTC,
//! `2026-12-01T02:00:00Z`.
//!
//! A leaf module, so the config (maintenance windows) can read times
//! without reaching into the admin code that prints them.

/// Unix seconds of an RFC 3339 time in UTC (`YYYY-MM-DDTHH:MM:SSZ`, no
/// fractional seconds), from 1970 on. Other offsets are refused
/// rather than converted: windows are planned in UTC (the design's rule)
/// and a `+02:00` here is more likely a mistake than a wish.
pub fn parse_utc(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 20 || !matches!(b[10], b'T' | b't') || !matches!(b[19], b'Z' | b'z') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = &text[range];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, c)| b[at] != c) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let days_in_month = *month_days.get(usize::try_from(month).ok()?.checked_sub(1)?)?;
    if year < 1970 || day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    Some(days as u64 * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_parse_and_others_are_refused() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        // `date -u -d @951782400`: a leap day.
        assert_eq!(parse_utc("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_utc("2026-12-01T06:52:01Z"), Some(1_796_107_921));
        for bad in [
            "2026-12-01T06:52:01+02:00",
            "2026-12-01 06:52:01Z",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T06:52Z",
            "+026-12-01T06:52:01Z",
            "tomorrow",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }
}
