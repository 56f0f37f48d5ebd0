//! [`ReadableDuration`]: a duration setting that parses itself (`30s`,
//! `5m`, `1h30m`, `93d`; humantime's grammar) and prints in a compact form
//! that parses back to the same value (`1h30m`, `93d`, `1s500ms`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration written for people. Parsed by [`humantime::parse_duration`]
/// (units `ns`, `us`, `ms`, `s`, `m`, `h`, `d`, and their long names,
/// combined: `1h30m`); displayed as days, hours, minutes, seconds and
/// sub-second parts without spaces (`0s` for zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadableDuration(pub Duration);

impl ReadableDuration {
    /// `n` seconds.
    pub const fn secs(n: u64) -> ReadableDuration {
        ReadableDuration(Duration::from_secs(n))
    }

    /// `n` minutes.
    pub const fn minutes(n: u64) -> ReadableDuration {
        ReadableDuration(Duration::from_secs(n * 60))
    }

    /// `n` hours.
    pub const fn hours(n: u64) -> ReadableDuration {
        ReadableDuration(Duration::from_secs(n * 3600))
    }

    /// `n` days.
    pub const fn days(n: u64) -> ReadableDuration {
        ReadableDuration(Duration::from_secs(n * 86_400))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl From<Duration> for ReadableDuration {
    fn from(d: Duration) -> ReadableDuration {
        ReadableDuration(d)
    }
}

impl FromStr for ReadableDuration {
    type Err = humantime::DurationError;

    fn from_str(s: &str) -> Result<ReadableDuration, humantime::DurationError> {
        humantime::parse_duration(s.trim()).map(ReadableDuration)
    }
}

impl fmt::Display for ReadableDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let nanos = self.0.subsec_nanos();
        if secs == 0 && nanos == 0 {
            return f.write_str("0s");
        }
        let parts = [
            (secs / 86_400, "d"),
            (secs / 3600 % 24, "h"),
            (secs / 60 % 60, "m"),
            (secs % 60, "s"),
            (u64::from(nanos / 1_000_000), "ms"),
            (u64::from(nanos / 1_000 % 1_000), "us"),
            (u64::from(nanos % 1_000), "ns"),
        ];
        for (n, unit) in parts {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl serde::Serialize for ReadableDuration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ReadableDuration {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ReadableDuration, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_humantime_grammar() {
        assert_eq!("5m".parse(), Ok(ReadableDuration::minutes(5)));
        assert_eq!(
            "1h30m".parse(),
            Ok(ReadableDuration(Duration::from_secs(5400)))
        );
        assert_eq!("93d".parse(), Ok(ReadableDuration::days(93)));
        assert_eq!(
            "250ms".parse(),
            Ok(ReadableDuration(Duration::from_millis(250)))
        );
        assert!("soon".parse::<ReadableDuration>().is_err());
        assert!("5".parse::<ReadableDuration>().is_err());
    }

    #[test]
    fn a_duration_prints_compactly_and_parses_back() {
        for (d, text) in [
            (Duration::from_secs(5400), "1h30m"),
            (Duration::from_secs(93 * 86_400), "93d"),
            (Duration::from_millis(1500), "1s500ms"),
            (Duration::ZERO, "0s"),
            (Duration::from_secs(86_400 + 1), "1d1s"),
            (Duration::new(0, 1_001_001), "1ms1us1ns"),
        ] {
            assert_eq!(ReadableDuration(d).to_string(), text);
            assert_eq!(text.parse(), Ok(ReadableDuration(d)));
        }
    }

    #[test]
    fn toml_takes_durations_as_strings() {
        #[derive(serde::Deserialize, serde::Serialize, PartialEq, Debug)]
        struct T {
            d: ReadableDuration,
        }
        let t: T = toml::from_str("d = \"1h30m\"\n").unwrap();
        assert_eq!(t.d, ReadableDuration(Duration::from_secs(5400)));
        assert_eq!(toml::to_string(&t).unwrap(), "d = \"1h30m\"\n");
        assert!(toml::from_str::<T>("d = 5\n").is_err());
    }
}
