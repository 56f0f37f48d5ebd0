//! Scalar values: `string`, `int32`, `int64` and `double`. Each visitor
//! accepts exactly what prost-reflect's does, with the same `expecting`
//! text (serde builds "invalid type: …, expected …" from it) and the same
//! conversion errors.

use std::fmt;
use std::str::FromStr;

use serde::de::{DeserializeSeed, Deserializer, Error, Visitor};

/// A `string`: a JSON string.
#[derive(Clone, Copy)]
pub(super) struct Str;

impl<'de> DeserializeSeed<'de> for Str {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_string(self)
    }
}

impl Visitor<'_> for Str {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
}

/// An `int32`: a JSON number with an integral value in range, or a decimal
/// string (Rust's `i32::from_str`: an optional sign, then digits).
#[derive(Clone, Copy)]
pub(super) struct I32;

impl<'de> DeserializeSeed<'de> for I32 {
    type Value = i32;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<i32, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for I32 {
    type Value = i32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 32-bit signed integer")
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<i32, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<i32, E> {
        v.try_into().map_err(E::custom)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<i32, E> {
        v.try_into().map_err(E::custom)
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<i32, E> {
        if v.fract() != 0.0 {
            return Err(E::custom("expected integer value"));
        }
        if v < f64::from(i32::MIN) || v > f64::from(i32::MAX) {
            return Err(E::custom("float value out of range"));
        }
        // In range and integral: exact.
        Ok(v as i32)
    }
}

/// An `int64`: a JSON number with an integral value in range, or a decimal
/// string. As in the reference, a float is range-checked against
/// `i64::MAX as f64`, which is 2^63: `9223372036854775808.0` is accepted
/// and saturates to `i64::MAX`.
#[derive(Clone, Copy)]
pub(super) struct I64;

impl<'de> DeserializeSeed<'de> for I64 {
    type Value = i64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<i64, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for I64 {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 64-bit signed integer or decimal string")
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<i64, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<i64, E> {
        v.try_into().map_err(E::custom)
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() != 0.0 {
            return Err(E::custom("expected integer value"));
        }
        if v < i64::MIN as f64 || v > i64::MAX as f64 {
            return Err(E::custom("float value out of range"));
        }
        // Integral and within [-2^63, 2^63]; `as` saturates the one value
        // above i64::MAX, as the reference does.
        Ok(v as i64)
    }
}

/// A `double`: a JSON number, or a string that Rust's `f64::from_str`
/// reads (`"1.5"`, `"inf"`, `"NaN"`), or `"Infinity"`/`"-Infinity"`.
#[derive(Clone, Copy)]
pub(super) struct F64;

impl<'de> DeserializeSeed<'de> for F64 {
    type Value = f64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<f64, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for F64 {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 64-bit floating point value")
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<f64, E> {
        match f64::from_str(v) {
            Ok(value) => Ok(value),
            Err(_) if v == "Infinity" => Ok(f64::INFINITY),
            Err(_) if v == "-Infinity" => Ok(f64::NEG_INFINITY),
            Err(_) if v == "NaN" => Ok(f64::NAN),
            Err(err) => Err(E::custom(err)),
        }
    }
}
