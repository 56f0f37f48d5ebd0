//! [`ByteSize`]: a size setting that parses itself (`64MiB`, `1048576`,
//! `1GiB`) and prints in the same form, so that a value read from a flag,
//! the environment or a TOML file prints back as it could be written.

use std::fmt;
use std::str::FromStr;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// A number of bytes. Parsed from a whole number, optionally followed by a
/// unit: `KiB`, `MiB`, `GiB`, `TiB` (also `K`, `KB`, `M`, `MB`, ...: all
/// powers of 1024, case-insensitive), or `B`. Displayed with the largest
/// unit that divides it exactly (`64MiB`, `1536KiB`, `1000`), which parses
/// back to the same value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` KiB.
    pub const fn kib(n: u64) -> ByteSize {
        ByteSize(n * KIB)
    }

    /// `n` MiB.
    pub const fn mib(n: u64) -> ByteSize {
        ByteSize(n * MIB)
    }

    /// `n` GiB.
    pub const fn gib(n: u64) -> ByteSize {
        ByteSize(n * GIB)
    }

    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The number of bytes as a `usize` (saturating on 32-bit targets; the
    /// settings that take a `usize` are validated against far smaller
    /// limits).
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// Why a size does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ByteSizeError {
    /// No digits where the number belongs.
    #[error("no number (examples: 1048576, 64MiB, 1GiB)")]
    NoNumber,
    /// A unit that is not one of the known ones.
    #[error("unknown unit {unit:?} (use B, KiB, MiB, GiB or TiB)")]
    UnknownUnit {
        /// The unit given.
        unit: String,
    },
    /// More bytes than a u64 holds.
    #[error("too large")]
    TooLarge,
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(s: &str) -> Result<ByteSize, ByteSizeError> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        if number.is_empty() {
            return Err(ByteSizeError::NoNumber);
        }
        let n: u64 = number.parse().map_err(|_| ByteSizeError::TooLarge)?;
        let unit = unit.trim();
        let multiplier = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => KIB,
            "m" | "mb" | "mib" => MIB,
            "g" | "gb" | "gib" => GIB,
            "t" | "tb" | "tib" => TIB,
            _ => {
                return Err(ByteSizeError::UnknownUnit {
                    unit: unit.to_owned(),
                });
            }
        };
        n.checked_mul(multiplier)
            .map(ByteSize)
            .ok_or(ByteSizeError::TooLarge)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, name) in [(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
            if n != 0 && n.is_multiple_of(unit) {
                return write!(f, "{}{name}", n / unit);
            }
        }
        write!(f, "{n}")
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ByteSize, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: a number of bytes, or a string such as \"64MiB\"")
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(n))
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<ByteSize, E> {
                u64::try_from(n)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ByteSize, E> {
                s.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!("64MiB".parse(), Ok(ByteSize::mib(64)));
        assert_eq!("1GiB".parse(), Ok(ByteSize::gib(1)));
        assert_eq!("1048576".parse(), Ok(ByteSize(1 << 20)));
        assert_eq!("4 kb".parse(), Ok(ByteSize::kib(4)));
        assert_eq!("2T".parse(), Ok(ByteSize(2 << 40)));
        assert_eq!("lots".parse::<ByteSize>(), Err(ByteSizeError::NoNumber));
        assert!(matches!(
            "5 parsecs".parse::<ByteSize>(),
            Err(ByteSizeError::UnknownUnit { .. })
        ));
        assert_eq!(
            "99999999999GiB".parse::<ByteSize>(),
            Err(ByteSizeError::TooLarge)
        );
    }

    #[test]
    fn a_size_prints_in_its_largest_exact_unit_and_parses_back() {
        for (n, text) in [
            (64 << 20, "64MiB"),
            (1 << 30, "1GiB"),
            (1536 << 10, "1536KiB"),
            (1000, "1000"),
            (0, "0"),
            (3 << 40, "3TiB"),
        ] {
            assert_eq!(ByteSize(n).to_string(), text);
            assert_eq!(text.parse(), Ok(ByteSize(n)));
        }
    }

    #[test]
    fn toml_takes_sizes_as_integers_or_strings() {
        #[derive(serde::Deserialize, serde::Serialize, PartialEq, Debug)]
        struct T {
            a: ByteSize,
            b: ByteSize,
        }
        let t: T = toml::from_str("a = 4096\nb = \"64MiB\"\n").unwrap();
        assert_eq!(
            t,
            T {
                a: ByteSize(4096),
                b: ByteSize::mib(64)
            }
        );
        let text = toml::to_string(&t).unwrap();
        assert_eq!(text, "a = \"4KiB\"\nb = \"64MiB\"\n");
        assert_eq!(toml::from_str::<T>(&text).unwrap(), t);
        assert!(toml::from_str::<T>("a = -1\nb = 1\n").is_err());
    }
}
