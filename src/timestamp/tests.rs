//! The module's writers, reader and calendar against the `time` crate as the
//! reference, over the whole protobuf range.

use proptest::prelude::*;
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::*;

/// The Julian day number of 1970-01-01, the `time` crate's day count origin.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// `time`'s RFC 3339 of Unix nanoseconds (Go's trimmed fraction), or
/// `None` outside the years it formats (0 to 9999).
fn reference_go(total_nanos: i128) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(total_nanos)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

/// `time`'s RFC 3339 with the fraction padded to 3, 6 or 9 digits, as
/// protojson writes it.
fn reference_protojson(seconds: i64, nanos: i32) -> String {
    let go = reference_go(i128::from(seconds) * 1_000_000_000 + i128::from(nanos)).unwrap();
    let body = go.strip_suffix('Z').unwrap();
    match body.split_once('.') {
        None => go,
        Some((whole, fraction)) => {
            let width = fraction.len().div_ceil(3) * 3;
            format!("{whole}.{fraction:0<width$}Z")
        }
    }
}

fn protojson(seconds: i64, nanos: i32) -> Result<String, OutOfRange> {
    let mut out = Vec::new();
    write_protojson(&mut out, seconds, nanos)?;
    Ok(String::from_utf8(out).unwrap())
}

/// Nanos a protobuf timestamp may hold, weighted towards the edges and the
/// 3/6/9-digit groups.
fn valid_nanos() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(999_999_999),
        (0..1000).prop_map(|ms| ms * 1_000_000),
        (0..1_000_000).prop_map(|us| us * 1_000),
        0..1_000_000_000,
    ]
}

/// Seconds in the protobuf range, weighted towards its ends and the epoch.
fn valid_seconds() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(MIN_SECONDS),
        Just(MAX_SECONDS),
        MIN_SECONDS..MIN_SECONDS + 2 * SECONDS_PER_DAY,
        MAX_SECONDS - 2 * SECONDS_PER_DAY..=MAX_SECONDS,
        -2 * SECONDS_PER_DAY..2 * SECONDS_PER_DAY,
        MIN_SECONDS..=MAX_SECONDS,
    ]
}

#[test]
fn the_range_is_years_1_to_9999_in_time() {
    let first = PrimitiveDateTime::new(
        Date::from_calendar_date(1, Month::January, 1).unwrap(),
        Time::MIDNIGHT,
    );
    let last = PrimitiveDateTime::new(
        Date::from_calendar_date(9999, Month::December, 31).unwrap(),
        Time::from_hms(23, 59, 59).unwrap(),
    );
    assert_eq!(first.assume_utc().unix_timestamp(), MIN_SECONDS);
    assert_eq!(last.assume_utc().unix_timestamp(), MAX_SECONDS);
    let epoch = Date::from_calendar_date(1970, Month::January, 1).unwrap();
    assert_eq!(i64::from(epoch.to_julian_day()), UNIX_EPOCH_JULIAN_DAY);
}

#[test]
fn validity_is_the_range_and_whole_nanos() {
    assert!(is_valid(MIN_SECONDS, 0));
    assert!(is_valid(MAX_SECONDS, 999_999_999));
    assert!(is_valid(-1, 999_999_999));
    for (seconds, nanos) in [
        (MIN_SECONDS - 1, 0),
        (MAX_SECONDS + 1, 0),
        (0, -1),
        (0, 1_000_000_000),
        (i64::MIN, i32::MIN),
    ] {
        assert!(!is_valid(seconds, nanos), "{seconds} {nanos}");
        assert_eq!(protojson(seconds, nanos), Err(OutOfRange));
    }
}

#[test]
fn protojson_writes_three_six_or_nine_fraction_digits() {
    assert_eq!(protojson(0, 0).unwrap(), "1970-01-01T00:00:00Z");
    assert_eq!(
        protojson(1_677_250_110, 500_000_000).unwrap(),
        "2023-02-24T14:48:30.500Z"
    );
    assert_eq!(
        protojson(1_677_250_110, 123_456_000).unwrap(),
        "2023-02-24T14:48:30.123456Z"
    );
    assert_eq!(protojson(-1, 1).unwrap(), "1969-12-31T23:59:59.000000001Z");
    assert_eq!(protojson(MIN_SECONDS, 0).unwrap(), "0001-01-01T00:00:00Z");
    assert_eq!(
        protojson(MAX_SECONDS, 999_999_999).unwrap(),
        "9999-12-31T23:59:59.999999999Z"
    );
}

#[test]
fn go_style_trims_the_fraction_and_carries_nanos() {
    assert_eq!(format_go(0, 0), "1970-01-01T00:00:00Z");
    assert_eq!(
        format_go(1_677_250_110, 500_000_000),
        "2023-02-24T14:48:30.5Z"
    );
    assert_eq!(format_go(0, 1_500_000_000), "1970-01-01T00:00:01.5Z");
    assert_eq!(format_go(0, -1), "1969-12-31T23:59:59.999999999Z");
    assert_eq!(format_go(MIN_SECONDS - 1, 0), "0000-12-31T23:59:59Z");
}

#[test]
fn go_style_does_not_panic_at_the_ends_of_i64() {
    for seconds in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
        for nanos in [i64::from(i32::MIN), -1, 0, 1, i64::from(i32::MAX)] {
            let text = format_go(seconds, nanos);
            assert!(text.ends_with('Z'), "{text}");
        }
    }
    for day in [i64::MIN, i64::MAX] {
        let _ = day_string(day);
    }
}

#[test]
fn days_render_and_parse_as_utc_dates() {
    assert_eq!(day_string(0), "1970-01-01");
    assert_eq!(day_string(-1), "1969-12-31");
    assert_eq!(parse_day("2024-02-29"), Some(19_782));
    assert_eq!(day_string(19_782), "2024-02-29");
    assert_eq!(parse_day("2023-02-29"), None);
    assert_eq!(parse_day("2024-02-29T00:00:00Z"), None);
    assert_eq!(parse_day("0001-01-01"), Some(MIN_SECONDS / SECONDS_PER_DAY));
}

proptest! {
    #[test]
    fn the_calendar_matches_time_over_its_whole_range(
        day in i64::from(Date::MIN.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY
            ..=i64::from(Date::MAX.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY,
    ) {
        let date = Date::from_julian_day(i32::try_from(day + UNIX_EPOCH_JULIAN_DAY).unwrap())
            .unwrap();
        prop_assert_eq!(
            civil_from_days(day),
            (i64::from(date.year()), u8::from(date.month()), date.day())
        );
    }

    #[test]
    fn protojson_matches_time_over_the_protobuf_range(
        seconds in valid_seconds(),
        nanos in valid_nanos(),
    ) {
        prop_assert_eq!(protojson(seconds, nanos).unwrap(), reference_protojson(seconds, nanos));
    }

    #[test]
    fn go_style_matches_time_including_carried_nanos(
        seconds in valid_seconds(),
        nanos in prop_oneof![
            valid_nanos(),
            Just(-1),
            Just(1_000_000_000),
            Just(i32::MIN),
            Just(i32::MAX),
            any::<i32>(),
        ],
    ) {
        let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
        let ours = format_go(seconds, i64::from(nanos));
        match reference_go(total) {
            Some(want) => prop_assert_eq!(ours, want),
            // Carried past 9999-12-31, where time stops formatting.
            None => prop_assert!(ours.starts_with("10000-01-01T00:00:0"), "{}", ours),
        }
    }

    #[test]
    fn go_style_parses_back_to_the_same_time(
        seconds in valid_seconds(),
        nanos in valid_nanos(),
    ) {
        let text = format_go(seconds, i64::from(nanos));
        prop_assert_eq!(parse_utc(&text), Some((seconds, nanos.unsigned_abs())));
        let theirs = OffsetDateTime::parse(&text, &Rfc3339).unwrap();
        prop_assert_eq!(theirs.unix_timestamp(), seconds);
        prop_assert_eq!(i64::from(theirs.nanosecond()), i64::from(nanos));
    }

    #[test]
    fn parsing_agrees_with_time_on_near_valid_strings(
        year in 0u32..=9999,
        month in 0u32..=13,
        day in 0u32..=32,
        hour in 0u32..=24,
        minute in 0u32..=60,
        second in 0u32..=60,
        fraction in prop::option::of("[0-9]{1,10}"),
    ) {
        let fraction_text = fraction.as_deref().map(|f| format!(".{f}")).unwrap_or_default();
        let text = format!(
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction_text}Z"
        );
        let ours = parse_utc(&text);
        let theirs = OffsetDateTime::parse(&text, &Rfc3339).ok();
        // time accepts what the store never writes: year 0, a leap second,
        // more than nine fraction digits.
        let store_form = year >= 1
            && second < 60
            && fraction.as_ref().is_none_or(|f| f.len() <= 9);
        match (ours, theirs) {
            (Some((s, n)), Some(t)) => {
                prop_assert_eq!(s, t.unix_timestamp());
                prop_assert_eq!(n, t.nanosecond());
            }
            (None, Some(_)) => prop_assert!(!store_form, "{} refused", text),
            (Some(_), None) => prop_assert!(false, "{} accepted, time refuses it", text),
            (None, None) => {}
        }
    }
}
