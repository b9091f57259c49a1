//! Event-time parsing and formatting (SPEC §2).
//!
//! Times are kept as UTC nanoseconds since the epoch in an `i64`, which covers
//! 1677-09-21 to 2262-04-11 and compares and subtracts cheaply on the hot
//! path. The common log form `YYYY-MM-DDTHH:MM:SS[.frac]Z` is parsed by hand
//! because it is on every record; everything else goes through chrono
//! (offsets as `Z`, `+01:00` or `+0100`). Numbers, and strings that spell
//! one, are epoch seconds, or milliseconds under `timestamp_unit = "ms"`.
//! There is no day/month guessing: only year-first forms are accepted.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// How a numeric timestamp is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    S,
    Ms,
}

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Parses a timestamp string to UTC nanoseconds, or says what was expected.
pub fn parse_str(s: &str) -> Result<i64, String> {
    parse_with(s.as_bytes(), &mut LastDate::default())
}

/// The date of the last timestamp of the common form and its day number.
/// A log's timestamps change date about once a day, so a parser that keeps
/// one of these skips the calendar arithmetic on nearly every line.
#[derive(Debug, Default, Clone, Copy)]
pub struct LastDate(Option<([u8; 10], i64)>);

/// [`parse_str`] of bytes, reusing (and updating) the day number in `last`.
pub fn parse_with(b: &[u8], last: &mut LastDate) -> Result<i64, String> {
    if let Some(t) = parse_fast(b, last) {
        return Ok(t);
    }
    let expected = || "an RFC 3339 timestamp or \"YYYY-MM-DD HH:MM:SS\"".to_string();
    let s = std::str::from_utf8(b).map_err(|_| expected())?;
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return to_nanos(dt.with_timezone(&Utc));
    }
    // RFC 3339 wants `+01:00`; ISO 8601's basic `+0100` is common in logs.
    for pattern in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, pattern) {
            return to_nanos(dt.with_timezone(&Utc));
        }
    }
    for pattern in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, pattern) {
            return to_nanos(naive.and_utc());
        }
    }
    Err(expected())
}

/// [`parse_with`], and also a string that spells an epoch number
/// (`"1709251200"`, `"1709251200.5"`), read in `unit`.
pub fn parse_text(b: &[u8], unit: Unit, last: &mut LastDate) -> Result<i64, String> {
    if let Some(t) = parse_fast(b, last) {
        return Ok(t);
    }
    if is_epoch_number(b) {
        let s = std::str::from_utf8(b).map_err(|e| e.to_string())?;
        return match s.parse::<i64>() {
            Ok(i) => from_int(i, unit),
            Err(_) => s
                .parse::<f64>()
                .map_err(|e| e.to_string())
                .and_then(|x| from_number(x, unit)),
        };
    }
    parse_with(b, last).map_err(|_| EXPECTED.to_string())
}

/// What [`parse_text`] reads, for messages.
pub const EXPECTED: &str = "an RFC 3339 timestamp, \"YYYY-MM-DD HH:MM:SS\" or epoch seconds";

/// `-?digits[.digits]`: what a log writes for epoch seconds in a string.
fn is_epoch_number(b: &[u8]) -> bool {
    let b = b.strip_prefix(b"-").unwrap_or(b);
    let (int, frac) = match b.iter().position(|&c| c == b'.') {
        Some(dot) => (&b[..dot], Some(&b[dot + 1..])),
        None => (b, None),
    };
    !int.is_empty()
        && int.iter().all(u8::is_ascii_digit)
        && frac.is_none_or(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit))
}

/// The instants a timestamp can be, for messages.
const RANGE: &str = "between 1677-09-21 and 2262-04-11";

/// Converts a numeric timestamp (epoch seconds or milliseconds) to nanoseconds.
pub fn from_number(x: f64, unit: Unit) -> Result<i64, String> {
    let nanos = match unit {
        Unit::S => x * 1e9,
        Unit::Ms => x * 1e6,
    };
    if !nanos.is_finite() || nanos.abs() >= 9.2e18 {
        return Err(out_of_range(x, unit));
    }
    Ok(nanos.round() as i64)
}

/// Converts an integer timestamp exactly (no float rounding for ms values).
pub fn from_int(x: i64, unit: Unit) -> Result<i64, String> {
    let factor = match unit {
        Unit::S => NANOS_PER_SEC,
        Unit::Ms => 1_000_000,
    };
    x.checked_mul(factor)
        .ok_or_else(|| out_of_range(x as f64, unit))
}

/// What was expected of a number out of range, with the setting that would
/// read it when it looks like milliseconds read as seconds.
#[cold]
fn out_of_range(x: f64, unit: Unit) -> String {
    match unit {
        Unit::S if x.is_finite() && (x * 1e6).abs() < 9.2e18 => format!(
            "epoch seconds {RANGE} (this looks like epoch milliseconds: \
             set [input] timestamp_unit = \"ms\")"
        ),
        Unit::S => format!("epoch seconds {RANGE}"),
        Unit::Ms => format!("epoch milliseconds {RANGE}"),
    }
}

fn to_nanos(dt: DateTime<Utc>) -> Result<i64, String> {
    dt.timestamp_nanos_opt()
        .ok_or_else(|| format!("a time {RANGE}"))
}

/// Formats UTC nanoseconds as RFC 3339 with `Z` and only the digits needed.
pub fn format(nanos: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(nanos).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Two ASCII digits at `at`.
#[inline]
fn two(b: &[u8], at: usize) -> Option<i64> {
    let (tens, ones) = (b[at].wrapping_sub(b'0'), b[at + 1].wrapping_sub(b'0'));
    (tens < 10 && ones < 10).then(|| i64::from(tens * 10 + ones))
}

/// Nanoseconds per unit of a fraction of a second written with n digits.
const FRACTION_UNIT: [i64; 10] = [
    1_000_000_000,
    100_000_000,
    10_000_000,
    1_000_000,
    100_000,
    10_000,
    1_000,
    100,
    10,
    1,
];

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` (or a space for `T`); `None` for anything
/// else, including out-of-range fields, so the slow path gives the error.
pub(crate) fn parse_fast(b: &[u8], last: &mut LastDate) -> Option<i64> {
    if b.len() < 20 || *b.last()? != b'Z' {
        return None;
    }
    if !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date: [u8; 10] = b[..10].try_into().ok()?;
    let days = match last.0 {
        Some((known, days)) if known == date => days,
        _ => {
            let days = days_of(&date)?;
            last.0 = Some((date, days));
            days
        }
    };
    let (h, mi, s) = (two(b, 11)?, two(b, 14)?, two(b, 17)?);
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let rest = &b[19..b.len() - 1];
    let frac = match rest {
        [] => 0,
        [b'.', f @ ..] if !f.is_empty() && f.len() <= 9 => digits(f)? * FRACTION_UNIT[f.len()],
        _ => return None,
    };
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    Some(secs * NANOS_PER_SEC + frac)
}

/// The day number of a valid `YYYY-MM-DD` in the years `i64` nanoseconds
/// can hold.
fn days_of(date: &[u8]) -> Option<i64> {
    if date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (digits(&date[0..4])?, two(date, 5)?, two(date, 8)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || !(1678..=2261).contains(&y) {
        return None;
    }
    Some(days_from_civil(y, mo, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_709_251_200_104_000_000; // 2024-03-01T00:00:00.104Z

    #[test]
    fn every_listed_form_gives_the_same_instant() {
        for s in [
            "2024-03-01T00:00:00.104Z",
            "2024-03-01T01:00:00.104+01:00",
            "2024-02-29T19:00:00.104-05:00",
            "2024-03-01 00:00:00.104",
            "2024-03-01T00:00:00.104",
            "2024-03-01 00:00:00.104Z",
            "2024-03-01T00:00:00.104000000Z",
        ] {
            assert_eq!(parse_str(s), Ok(T0), "{s}");
        }
        assert_eq!(from_number(1_709_251_200.104, Unit::S), Ok(T0));
        assert_eq!(from_int(1_709_251_200_104, Unit::Ms), Ok(T0));
        assert_eq!(from_number(1_709_251_200_104.0, Unit::Ms), Ok(T0));
    }

    #[test]
    fn basic_offsets_and_epoch_numbers_in_strings_are_read() {
        let mut last = LastDate::default();
        for s in [
            "2024-03-01T01:00:00.104+0100",
            "2024-03-01 01:00:00.104+0100",
            "2024-02-29T19:00:00.104-0500",
            "1709251200.104",
        ] {
            assert_eq!(parse_text(s.as_bytes(), Unit::S, &mut last), Ok(T0), "{s}");
        }
        assert_eq!(parse_text(b"1709251200104", Unit::Ms, &mut last), Ok(T0));
        assert_eq!(
            parse_text(b"1709251200", Unit::S, &mut last),
            Ok(1_709_251_200 * NANOS_PER_SEC)
        );
        for s in ["1709251200.", ".5", "-", "1e9", "17092512OO"] {
            assert!(parse_text(s.as_bytes(), Unit::S, &mut last).is_err(), "{s}");
        }
    }

    #[test]
    fn milliseconds_read_as_seconds_name_the_setting_that_reads_them() {
        let e = from_int(1_709_251_200_104, Unit::S).unwrap_err();
        assert_eq!(
            e,
            "epoch seconds between 1677-09-21 and 2262-04-11 (this looks like epoch \
             milliseconds: set [input] timestamp_unit = \"ms\")"
        );
        assert_eq!(from_number(1.709e12, Unit::S).unwrap_err(), e);
        assert_eq!(
            from_int(i64::MAX / 10, Unit::S).unwrap_err(),
            "epoch seconds between 1677-09-21 and 2262-04-11"
        );
        assert_eq!(
            from_number(1e20, Unit::Ms).unwrap_err(),
            "epoch milliseconds between 1677-09-21 and 2262-04-11"
        );
    }

    #[test]
    fn fast_path_agrees_with_chrono() {
        for s in [
            "1999-12-31T23:59:59Z",
            "2000-02-29T12:00:00.5Z",
            "2100-03-01T00:00:00.000001Z",
        ] {
            let chrono = DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap();
            assert_eq!(
                parse_fast(s.as_bytes(), &mut LastDate::default()),
                Some(chrono),
                "{s}"
            );
        }
    }

    proptest::proptest! {
        /// Reusing the last date's day number never changes a result: a
        /// sequence parsed with one `LastDate` gives what each string gives
        /// alone, bad dates and times next to good ones included.
        #[test]
        fn a_kept_date_changes_no_result(
            stamps in proptest::collection::vec(
                "(2024-03-0[1-2]|2023-02-2[89]|2024-02-30|2024-13-01|1677-12-31|2262-01-01|\\x00{4}-\\x00{2}-\\x00{2})[T ][0-2x][0-9]:[0-6][0-9a]:[0-6:][0-9](\\.[0-9]{0,10})?(Z|\\+01:00|)",
                1..20,
            ),
        ) {
            let mut last = LastDate::default();
            for s in &stamps {
                proptest::prop_assert_eq!(parse_with(s.as_bytes(), &mut last), parse_str(s), "{}", s);
            }
        }
    }

    #[test]
    fn nonsense_and_day_month_forms_are_rejected() {
        for s in [
            "2024-13-45T25:61:00.000Z",
            "2023-02-29T00:00:00Z",
            "01/03/2024 00:00:00",
            "03-01-2024",
            "yesterday",
            "",
        ] {
            assert!(parse_str(s).is_err(), "{s}");
        }
        assert!(from_number(f64::INFINITY, Unit::S).is_err());
        assert!(from_int(i64::MAX / 10, Unit::S).is_err());
    }

    #[test]
    fn formats_as_utc_with_the_digits_needed() {
        assert_eq!(format(T0), "2024-03-01T00:00:00.104Z");
        assert_eq!(
            format(1_709_251_200 * NANOS_PER_SEC),
            "2024-03-01T00:00:00Z"
        );
    }
}
