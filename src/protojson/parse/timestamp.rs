//! `google.protobuf.Timestamp`: an RFC 3339 string, checked in three steps
//! as the reference checks it: the strict shape (upper-case `T` and `Z`,
//! two-digit fields, a `±hh:mm` offset or `Z`), then prost-types' parser
//! (calendar validity, `24:00:00` refused, a leap second `:60` rolls over,
//! fractions beyond 9 digits truncated), then the range of years 1–9999
//! after conversion to UTC.

use std::fmt;

use prost_types::Timestamp;
use serde::de::{DeserializeSeed, Deserializer, Error, Visitor};

use crate::timestamp::{MAX_SECONDS, MIN_SECONDS};

/// A `google.protobuf.Timestamp` value.
#[derive(Clone, Copy)]
pub(super) struct Ts;

impl<'de> DeserializeSeed<'de> for Ts {
    type Value = Timestamp;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Timestamp, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Ts {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a rfc3339 timestamp string")
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Timestamp, E> {
        check_shape(v).map_err(E::custom)?;
        let timestamp: Timestamp = v.parse().map_err(E::custom)?;
        if !(MIN_SECONDS..=MAX_SECONDS).contains(&timestamp.seconds) {
            return Err(E::custom("timestamp out of range"));
        }
        Ok(timestamp)
    }
}

/// Why a string is not shaped like a strict RFC 3339 timestamp (the
/// reference's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// Not `dddd-dd-dd`.
    Date,
    /// No `T` after the date (what came instead, if anything).
    ExpectedT(Option<u8>),
    /// Not `dd:dd:dd`.
    Time,
    /// A `.` without digits.
    EmptyFraction,
    /// A sign not followed by `dd:dd`.
    Offset,
    /// Neither `Z` nor an offset.
    ExpectedZone(Option<u8>),
    /// Something after the zone.
    ExpectedEnd(Option<u8>),
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid rfc3339 timestamp: ")?;
        match self {
            Shape::Date => f.write_str("invalid date"),
            Shape::ExpectedT(found) => write!(f, "expected 'T' but found {}", Found(*found)),
            Shape::Time => f.write_str("invalid time"),
            Shape::EmptyFraction => f.write_str("empty fractional seconds"),
            Shape::Offset => f.write_str("invalid offset"),
            Shape::ExpectedZone(found) => {
                write!(f, "expected 'Z', '+' or '-' but found {}", Found(*found))
            }
            Shape::ExpectedEnd(found) => {
                write!(f, "expected end of string but found {}", Found(*found))
            }
        }
    }
}

/// The byte found instead, quoted and escaped, or "end of string".
struct Found(Option<u8>);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(byte) => write!(f, "'{}'", std::ascii::escape_default(byte)),
            None => f.write_str("end of string"),
        }
    }
}

/// Checks `dddd-dd-ddTdd:dd:dd[.d+](Z|±dd:dd)`.
pub(super) fn check_shape(v: &str) -> Result<(), Shape> {
    let mut c = Cursor(v.as_bytes());
    if !(c.digits(4) && c.byte(b'-') && c.digits(2) && c.byte(b'-') && c.digits(2)) {
        return Err(Shape::Date);
    }
    if !c.byte(b'T') {
        return Err(Shape::ExpectedT(c.peek()));
    }
    if !(c.digits(2) && c.byte(b':') && c.digits(2) && c.byte(b':') && c.digits(2)) {
        return Err(Shape::Time);
    }
    if c.byte(b'.') {
        if !c.digit() {
            return Err(Shape::EmptyFraction);
        }
        while c.digit() {}
    }
    if c.byte(b'+') || c.byte(b'-') {
        if !(c.digits(2) && c.byte(b':') && c.digits(2)) {
            return Err(Shape::Offset);
        }
    } else if !c.byte(b'Z') {
        return Err(Shape::ExpectedZone(c.peek()));
    }
    match c.peek() {
        None => Ok(()),
        found => Err(Shape::ExpectedEnd(found)),
    }
}

/// The unread rest of the string.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// Takes `want` if it comes next.
    fn byte(&mut self, want: u8) -> bool {
        self.take_if(|b| b == want)
    }

    /// Takes an ASCII digit if one comes next.
    fn digit(&mut self) -> bool {
        self.take_if(|b| b.is_ascii_digit())
    }

    /// Takes `n` digits, or as many as come before something else.
    fn digits(&mut self, n: usize) -> bool {
        (0..n).all(|_| self.digit())
    }

    fn take_if(&mut self, f: impl FnOnce(u8) -> bool) -> bool {
        match self.0.split_first() {
            Some((&b, rest)) if f(b) => {
                self.0 = rest;
                true
            }
            _ => false,
        }
    }
}
