//! Event times and row keys. The calendar and the timestamp text are
//! [`crate::timestamp`]'s.
//!
//! A row key is `[seconds: i64 BE, sign bit flipped][nanos: u32 BE][event id]`:
//! the first twelve bytes sort like the event time (negative seconds
//! included), the id breaks ties. It was format 2's sled key (after a
//! key-space byte); it is what paging cursors carry.

use crate::clock::UnixNanos;
use crate::timestamp::{self, NANOS_PER_SECOND, SECONDS_PER_DAY};

/// Bytes of the time prefix of a row key.
pub(crate) const TIME_LEN: usize = 12;

/// An event time with the range of `google.protobuf.Timestamp` (years 1 to
/// 9999), wider than [`UnixNanos`] (1677 to 2262).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EventTime {
    pub(crate) seconds: i64,
    pub(crate) nanos: u32,
}

impl EventTime {
    /// The earliest time of UTC day `day`.
    pub(crate) fn day_start(day: i64) -> EventTime {
        EventTime {
            seconds: day.saturating_mul(SECONDS_PER_DAY),
            nanos: 0,
        }
    }

    /// The time as Unix nanoseconds, saturated to [`UnixNanos`]'s range.
    pub(crate) fn to_unix_nanos(self) -> UnixNanos {
        let n = i128::from(self.seconds) * i128::from(NANOS_PER_SECOND) + i128::from(self.nanos);
        UnixNanos(n.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }

    /// The UTC day: days since 1970-01-01.
    pub(crate) fn day(self) -> i64 {
        self.seconds.div_euclid(SECONDS_PER_DAY)
    }

    /// The twelve-byte, order-preserving prefix of a row key.
    pub(crate) fn prefix(self) -> [u8; TIME_LEN] {
        let mut out = [0u8; TIME_LEN];
        let biased = (self.seconds as u64) ^ (1 << 63);
        out[..8].copy_from_slice(&biased.to_be_bytes());
        out[8..].copy_from_slice(&self.nanos.to_be_bytes());
        out
    }
}

impl From<UnixNanos> for EventTime {
    fn from(t: UnixNanos) -> EventTime {
        EventTime {
            seconds: t.0.div_euclid(NANOS_PER_SECOND),
            nanos: t.0.rem_euclid(NANOS_PER_SECOND) as u32,
        }
    }
}

/// The key of the row of `event_id` at `time` (format 2's row key without
/// its key-space byte; what paging cursors hold).
pub(crate) fn row_key(time: EventTime, event_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(TIME_LEN + event_id.len());
    key.extend_from_slice(&time.prefix());
    key.extend_from_slice(event_id.as_bytes());
    key
}

/// Splits a row key into its time and event id bytes; `None` when it is
/// shorter than the time prefix (not a key this store wrote).
pub(crate) fn split_row_key(key: &[u8]) -> Option<(EventTime, &[u8])> {
    let seconds: [u8; 8] = key.get(..8)?.try_into().ok()?;
    let nanos: [u8; 4] = key.get(8..TIME_LEN)?.try_into().ok()?;
    let id = key.get(TIME_LEN..)?;
    Some((
        EventTime {
            seconds: (u64::from_be_bytes(seconds) ^ (1 << 63)) as i64,
            nanos: u32::from_be_bytes(nanos),
        },
        id,
    ))
}

/// Parses a row timestamp as [`crate::event_logs::translate`] writes it:
/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, one to nine fraction digits, UTC
/// ([`timestamp::parse_utc`]).
pub(crate) fn parse_timestamp(s: &str) -> Option<EventTime> {
    let (seconds, nanos) = timestamp::parse_utc(s)?;
    Some(EventTime { seconds, nanos })
}

/// `time` as [`crate::event_logs::translate`] renders timestamps (Go's
/// `time.Time` in JSON, [`timestamp::format_go`]).
pub(crate) fn render_timestamp(time: EventTime) -> String {
    timestamp::format_go(time.seconds, i64::from(time.nanos))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Bytes of a hex string (either case); `None` when it is not hex.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::day_string;

    fn t(s: &str) -> EventTime {
        parse_timestamp(s).unwrap()
    }

    #[test]
    fn timestamps_parse_to_unix_seconds_and_nanos() {
        assert_eq!(
            t("1970-01-01T00:00:00Z"),
            EventTime {
                seconds: 0,
                nanos: 0
            }
        );
        assert_eq!(t("2023-02-24T14:48:30Z").seconds, 1_677_250_110);
        assert_eq!(t("2023-02-24T14:48:30.5Z").nanos, 500_000_000);
        assert_eq!(t("2023-02-24T14:48:30.000000123Z").nanos, 123);
        assert_eq!(t("1969-12-31T23:59:59Z").seconds, -1);
        assert_eq!(t("2000-02-29T00:00:00Z").seconds, 951_782_400);
        assert_eq!(t("0001-01-01T00:00:00Z").seconds, -62_135_596_800);
        assert_eq!(
            t("9999-12-31T23:59:59.999999999Z"),
            EventTime {
                seconds: 253_402_300_799,
                nanos: 999_999_999
            }
        );
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        for s in [
            "",
            "2023-02-24",
            "2023-02-24T14:48:30",
            "2023-02-24T14:48:30+00:00",
            "2023-02-30T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-02-24T24:00:00Z",
            "2023-02-24T14:48:30.Z",
            "2023-02-24T14:48:30.1234567890Z",
            "2023-02-24T14:48:3xZ",
            "0000-01-01T00:00:00Z",
            "2023-02-24 14:48:30Z",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
    }

    #[test]
    fn key_prefixes_sort_like_times_and_split_back() {
        let times = [
            EventTime {
                seconds: -62_135_596_800,
                nanos: 0,
            },
            EventTime {
                seconds: -1,
                nanos: 999_999_999,
            },
            EventTime {
                seconds: 0,
                nanos: 0,
            },
            EventTime {
                seconds: 0,
                nanos: 1,
            },
            EventTime {
                seconds: 1_677_250_110,
                nanos: 0,
            },
        ];
        for pair in times.windows(2) {
            assert!(pair[0].prefix() < pair[1].prefix(), "{pair:?}");
        }
        for time in times {
            let key = row_key(time, "id-1");
            assert_eq!(split_row_key(&key), Some((time, &b"id-1"[..])));
        }
        assert_eq!(split_row_key(&[0; 11]), None);
    }

    #[test]
    fn days_render_as_utc_dates() {
        assert_eq!(day_string(0), "1970-01-01");
        assert_eq!(day_string(-1), "1969-12-31");
        assert_eq!(day_string(t("2024-02-29T23:59:59Z").day()), "2024-02-29");
        assert_eq!(day_string(t("2024-03-01T00:00:00Z").day()), "2024-03-01");
        assert_eq!(day_string(t("0001-01-01T00:00:00Z").day()), "0001-01-01");
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00ABff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }
}
