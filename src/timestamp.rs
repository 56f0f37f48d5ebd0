//! Time as text: the range of `google.protobuf.Timestamp`, the UTC calendar,
//! and RFC 3339 in the two spellings telespool writes, all in one place.
//!
//! Everything that turns Unix seconds into a date or a date into Unix
//! seconds goes through this module: the `event_logs` rows and keys, the
//! gateway's JSON renderer, validation and protojson. It depends on no other
//! module of the crate (only on the `time` crate), so every layer may use it.
//!
//! # The range
//! Protobuf timestamps cover `0001-01-01T00:00:00Z` ([`MIN_SECONDS`]) to
//! `9999-12-31T23:59:59.999999999Z` ([`MAX_SECONDS`] and nanos
//! `0..1_000_000_000`); [`is_valid`] says whether a pair is in it.
//!
//! # Writing
//! Two spellings of RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SS[.fraction]Z`:
//!
//! | Function | Fraction | Used by |
//! |---|---|---|
//! | [`write_protojson`] | 0, 3, 6 or 9 digits (Go's `protojson`) | the gateway's JSON renderer, per event |
//! | [`format_go`] | trailing zeros trimmed (Go's `time.Time` in JSON) | `event_logs` rows and their keys |
//!
//! Both share one calendar routine ([`civil_from_days`], Howard Hinnant's
//! algorithm) and one digit writer. They are hand-written rather than
//! `time`'s formatter for two reasons: the renderer formats a timestamp per
//! event into its own buffer without allocating, and [`format_go`] is total
//! (an out-of-range pair from the public `event_logs::row::translate` is
//! rendered on the proleptic calendar, its nanos carried into the seconds,
//! never refused). Property tests (`timestamp/tests.rs`) check both, and the
//! calendar, against the `time` crate over the whole protobuf range,
//! negative seconds and nanos edge cases included.
//!
//! # Reading
//! [`parse_utc`] reads the strict form the store writes (`Z` only, one to
//! nine fraction digits, years 1–9999); the calendar checks (month lengths,
//! leap years, hours below 24) and the conversion to Unix seconds are the
//! `time` crate's. Protojson's more lenient grammar (offsets, leap seconds)
//! is prost-types' parser, in `protojson::parse::timestamp`.

use std::io::Write as _;

/// Earliest protobuf timestamp, 0001-01-01T00:00:00Z, in Unix seconds.
pub const MIN_SECONDS: i64 = -62_135_596_800;
/// Latest protobuf timestamp second, 9999-12-31T23:59:59Z, in Unix seconds.
pub const MAX_SECONDS: i64 = 253_402_300_799;
/// Nanoseconds in a second: a valid `nanos` is below this.
pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
/// Seconds in a UTC day (no leap seconds, as in Unix time).
pub const SECONDS_PER_DAY: i64 = 86_400;

/// A timestamp outside the protobuf range (or nanos outside
/// `0..1_000_000_000`): the caller chooses its own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange;

/// Whether `(seconds, nanos)` is a valid `google.protobuf.Timestamp`:
/// years 1 to 9999, nanos in `0..1_000_000_000`.
pub fn is_valid(seconds: i64, nanos: i32) -> bool {
    (MIN_SECONDS..=MAX_SECONDS).contains(&seconds)
        && (0..NANOS_PER_SECOND).contains(&i64::from(nanos))
}

/// Appends `seconds`/`nanos` as protojson writes a timestamp: RFC 3339 UTC
/// with 0, 3, 6 or 9 fraction digits, without quotes. Nothing is written
/// when the pair is not [`is_valid`].
pub fn write_protojson(out: &mut Vec<u8>, seconds: i64, nanos: i32) -> Result<(), OutOfRange> {
    if !is_valid(seconds, nanos) {
        return Err(OutOfRange);
    }
    write_date_time(out, seconds);
    // In 0..1_000_000_000 (checked above).
    let nanos = nanos.unsigned_abs();
    if nanos != 0 {
        out.push(b'.');
        if nanos.is_multiple_of(1_000_000) {
            digits(out, nanos / 1_000_000, 3);
        } else if nanos.is_multiple_of(1_000) {
            digits(out, nanos / 1_000, 6);
        } else {
            digits(out, nanos, 9);
        }
    }
    out.push(b'Z');
    Ok(())
}

/// `seconds` plus `nanos` as Go renders a `time.Time` in JSON: RFC 3339
/// UTC with nanosecond precision, trailing zeros (and an all-zero fraction)
/// dropped. Total: nanos outside `0..1_000_000_000` are carried into the
/// seconds, and times outside years 1–9999 are written on the proleptic
/// Gregorian calendar (a year beyond four digits, or negative, as Rust's
/// `{:04}` writes it) instead of failing.
pub fn format_go(seconds: i64, nanos: i64) -> String {
    let total = i128::from(seconds) * i128::from(NANOS_PER_SECOND) + i128::from(nanos);
    let second = total.div_euclid(i128::from(NANOS_PER_SECOND));
    // In 0..1_000_000_000.
    let fraction = u32::try_from(total.rem_euclid(i128::from(NANOS_PER_SECOND))).unwrap_or(0);
    let mut out = Vec::with_capacity(30);
    match i64::try_from(second) {
        Ok(second) => write_date_time(&mut out, second),
        // Only i64::MIN seconds with negative nanos: the day and time of
        // day are still exact, computed in i128.
        Err(_) => {
            let days = second.div_euclid(i128::from(SECONDS_PER_DAY));
            let of_day = second.rem_euclid(i128::from(SECONDS_PER_DAY));
            write_days_and_time(
                &mut out,
                i64::try_from(days).unwrap_or(i64::MIN),
                i64::try_from(of_day).unwrap_or(0),
            );
        }
    }
    if fraction != 0 {
        out.push(b'.');
        let mut trimmed = fraction;
        let mut width = 9;
        while trimmed.is_multiple_of(10) {
            trimmed /= 10;
            width -= 1;
        }
        digits(&mut out, trimmed, width);
    }
    out.push(b'Z');
    // Only ASCII was written.
    String::from_utf8(out).unwrap_or_default()
}

/// A UTC day (days since 1970-01-01) as `YYYY-MM-DD`.
pub fn day_string(day: i64) -> String {
    let mut out = Vec::with_capacity(10);
    write_date(&mut out, day);
    // Only ASCII was written.
    String::from_utf8(out).unwrap_or_default()
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (one to nine fraction digits,
/// UTC, years 1 to 9999, a real calendar date, hours 0–23, no leap second)
/// into Unix seconds and nanos; `None` for anything else.
pub fn parse_utc(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u16> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u16, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u16::from(c - b'0'))
        })
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let small = |range| num(range).and_then(|n| u8::try_from(n).ok());
    let year = num(0..4)?;
    let (month, day) = (small(5..7)?, small(8..10)?);
    let (hour, minute, second) = (small(11..13)?, small(14..16)?, small(17..19)?);
    let nanos = match b.get(19..)? {
        [b'Z'] => 0,
        [b'.', fraction @ .., b'Z'] if (1..=9).contains(&fraction.len()) => {
            let mut n: u32 = 0;
            for &c in fraction {
                if !c.is_ascii_digit() {
                    return None;
                }
                n = n * 10 + u32::from(c - b'0');
            }
            n * 10u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    if year < 1 {
        return None;
    }
    let date =
        time::Date::from_calendar_date(i32::from(year), time::Month::try_from(month).ok()?, day)
            .ok()?;
    let time_of_day = time::Time::from_hms(hour, minute, second).ok()?;
    let seconds = time::PrimitiveDateTime::new(date, time_of_day)
        .assume_utc()
        .unix_timestamp();
    Some((seconds, nanos))
}

/// The UTC day (days since 1970-01-01) a `YYYY-MM-DD` string names (years 1
/// to 9999); `None` for anything else.
pub fn parse_day(s: &str) -> Option<i64> {
    if s.len() != 10 {
        return None;
    }
    let (seconds, _) = parse_utc(&format!("{s}T00:00:00Z"))?;
    Some(seconds.div_euclid(SECONDS_PER_DAY))
}

/// Days since 1970-01-01 → (year, month, day) on the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`), for any `i64` day count
/// (no overflow: the intermediate values stay far inside `i64`).
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    // Saturating only changes days beyond any i64 of seconds / 86_400.
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // month is in 1..=12 and day in 1..=31.
    (
        year,
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

/// `YYYY-MM-DDTHH:MM:SS` of any Unix second.
fn write_date_time(out: &mut Vec<u8>, seconds: i64) {
    write_days_and_time(
        out,
        seconds.div_euclid(SECONDS_PER_DAY),
        seconds.rem_euclid(SECONDS_PER_DAY),
    );
}

fn write_days_and_time(out: &mut Vec<u8>, days: i64, of_day: i64) {
    write_date(out, days);
    // of_day is in 0..86_400: each part fits in two digits.
    let part = |n: i64| u32::try_from(n).unwrap_or(0);
    out.push(b'T');
    digits(out, part(of_day / 3600), 2);
    out.push(b':');
    digits(out, part(of_day % 3600 / 60), 2);
    out.push(b':');
    digits(out, part(of_day % 60), 2);
}

fn write_date(out: &mut Vec<u8>, days: i64) {
    let (year, month, day) = civil_from_days(days);
    match u32::try_from(year) {
        Ok(y) if y <= 9999 => digits(out, y, 4),
        // Outside the protobuf range: as `format!("{year:04}")` writes it.
        _ => {
            let _ = write!(out, "{year:04}");
        }
    }
    out.push(b'-');
    digits(out, u32::from(month), 2);
    out.push(b'-');
    digits(out, u32::from(day), 2);
}

/// Appends `value` (below 10^width) zero-padded to `width` digits.
fn digits(out: &mut Vec<u8>, value: u32, width: u32) {
    let mut divisor = 10u32.pow(width.saturating_sub(1));
    while divisor > 0 {
        // A single decimal digit: always in 0..=9.
        out.push(b'0' + u8::try_from(value / divisor % 10).unwrap_or(0));
        divisor /= 10;
    }
}

#[cfg(test)]
mod tests;
