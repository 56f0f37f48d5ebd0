//! [`SettingValue`]: how one setting's type is read from the command line
//! or the environment (text, or a path), read from the TOML file (typed:
//! an integer where a number belongs), written back to TOML, and shown by
//! `telespool config check` (secrets masked).
//!
//! The implementations for the standard types are here, with the two
//! masked types [`Secret`] and [`UrlSetting`]; component types (the sink,
//! the export mode, ...) implement it next to their settings table, mostly
//! through the crate's `text_setting_value!` macro.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::{ByteSize, ReadableDuration};

/// How clap holds a setting's command-line or environment value before it
/// is parsed: text, or a path (which need not be UTF-8).
pub trait RawValue: Clone + Send + Sync + 'static {
    /// The value as text, for error messages.
    fn text(&self) -> Cow<'_, str>;
    /// The raw value of a TOML string.
    fn from_text(text: &str) -> Self;
    /// Empty (or blank): such a value unsets an optional setting.
    fn is_empty(&self) -> bool;
}

impl RawValue for String {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }

    fn from_text(text: &str) -> String {
        text.to_owned()
    }

    fn is_empty(&self) -> bool {
        self.trim().is_empty()
    }
}

impl RawValue for PathBuf {
    fn text(&self) -> Cow<'_, str> {
        self.to_string_lossy()
    }

    fn from_text(text: &str) -> PathBuf {
        PathBuf::from(text)
    }

    fn is_empty(&self) -> bool {
        self.as_os_str().is_empty()
    }
}

/// Why a value could not be read. Never holds the value itself: the
/// caller shows it, masked when the setting is a secret.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// The config file holds another TOML type than the setting's (the
    /// value is not shown at all: a secret on the wrong line must not leak).
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the setting takes (`an integer`).
        expected: &'static str,
        /// What the file holds (`a string`).
        found: &'static str,
    },
    /// The text does not parse as the setting's type.
    #[error(transparent)]
    Parse(Box<dyn Error + Send + Sync>),
}

impl ValueError {
    /// A parse failure with its typed cause.
    pub fn parse(cause: impl Error + Send + Sync + 'static) -> ValueError {
        ValueError::Parse(Box::new(cause))
    }
}

/// The TOML type of a value, for [`ValueError::WrongType`].
pub fn toml_type(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a datetime",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// The type of one setting.
pub trait SettingValue: Sized {
    /// What clap holds for the flag or environment variable.
    type Raw: RawValue;
    /// What a value looks like, for parse errors (`a size`): `None` when
    /// the cause says it (`expected raw, sha256 or omit`).
    const EXPECTED: Option<&'static str> = None;
    /// The TOML type the config file must use (`a string`).
    const TOML_TYPE: &'static str = "a string";

    /// Parses the command-line or environment value.
    fn from_raw(raw: &Self::Raw) -> Result<Self, ValueError>;

    /// Reads the config file's value; by default a TOML string, parsed as
    /// the command line's text is.
    fn from_toml(value: &toml::Value) -> Result<Self, ValueError> {
        match value {
            toml::Value::String(s) => Self::from_raw(&Self::Raw::from_text(s)),
            other => Err(ValueError::WrongType {
                expected: Self::TOML_TYPE,
                found: toml_type(other),
            }),
        }
    }

    /// The value as the config file writes it; `None` when unset.
    fn to_toml(&self) -> Option<toml::Value>;

    /// The value as `telespool config check` shows it, secrets masked;
    /// `None` when unset.
    fn show(&self) -> Option<String> {
        self.to_toml().map(|v| match v {
            toml::Value::String(s) => s,
            other => other.to_string(),
        })
    }

    /// `text` (a value that failed to parse) as an error may show it.
    fn mask(text: &str) -> String {
        text.to_owned()
    }
}

/// Implements [`SettingValue`] for a type with `FromStr` and a `Display`
/// that parses back: raw text, a TOML string.
macro_rules! text_setting_value {
    ($ty:ty, $expected:expr) => {
        impl $crate::settings::SettingValue for $ty {
            type Raw = String;
            const EXPECTED: Option<&'static str> = $expected;

            fn from_raw(raw: &String) -> Result<Self, $crate::settings::ValueError> {
                raw.parse().map_err($crate::settings::ValueError::parse)
            }

            fn to_toml(&self) -> Option<toml::Value> {
                Some(toml::Value::String(self.to_string()))
            }
        }
    };
}
pub(crate) use text_setting_value;

impl SettingValue for String {
    type Raw = String;

    fn from_raw(raw: &String) -> Result<String, ValueError> {
        Ok(raw.clone())
    }

    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.clone()))
    }
}

impl SettingValue for PathBuf {
    type Raw = PathBuf;

    fn from_raw(raw: &PathBuf) -> Result<PathBuf, ValueError> {
        Ok(raw.clone())
    }

    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.display().to_string()))
    }
}

text_setting_value!(SocketAddr, Some("an IP:PORT address"));
text_setting_value!(ReadableDuration, Some("a duration such as 5s or 2m"));

/// Sizes: a TOML integer (bytes) or string (`"64MiB"`).
impl SettingValue for ByteSize {
    type Raw = String;
    const EXPECTED: Option<&'static str> = Some("a size");
    const TOML_TYPE: &'static str = "a size (an integer, or a string such as \"64MiB\")";

    fn from_raw(raw: &String) -> Result<ByteSize, ValueError> {
        raw.parse().map_err(ValueError::parse)
    }

    fn from_toml(value: &toml::Value) -> Result<ByteSize, ValueError> {
        match value {
            toml::Value::Integer(n) => u64::try_from(*n).map(ByteSize).map_err(ValueError::parse),
            toml::Value::String(s) => Self::from_raw(s),
            other => Err(ValueError::WrongType {
                expected: Self::TOML_TYPE,
                found: toml_type(other),
            }),
        }
    }

    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.to_string()))
    }
}

/// A value that is none of a setting's choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected one of: {}", .allowed.join(", "))]
pub struct ChoiceError {
    /// The choices.
    pub allowed: &'static [&'static str],
}

/// A boolean that is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected true or false (also 1, 0, yes, no, on, off)")]
pub struct BoolError;

impl SettingValue for bool {
    type Raw = String;
    const EXPECTED: Option<&'static str> = Some("a boolean");
    const TOML_TYPE: &'static str = "a boolean";

    fn from_raw(raw: &String) -> Result<bool, ValueError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "y" => Ok(true),
            "false" | "0" | "no" | "off" | "n" => Ok(false),
            _ => Err(ValueError::parse(BoolError)),
        }
    }

    fn from_toml(value: &toml::Value) -> Result<bool, ValueError> {
        match value {
            toml::Value::Boolean(b) => Ok(*b),
            other => Err(ValueError::WrongType {
                expected: Self::TOML_TYPE,
                found: toml_type(other),
            }),
        }
    }

    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::Boolean(*self))
    }
}

macro_rules! integer_setting_value {
    ($($ty:ty),*) => {$(
        impl SettingValue for $ty {
            type Raw = String;
            const EXPECTED: Option<&'static str> = Some("a whole number");
            const TOML_TYPE: &'static str = "an integer";

            fn from_raw(raw: &String) -> Result<$ty, ValueError> {
                raw.trim().parse().map_err(ValueError::parse)
            }

            fn from_toml(value: &toml::Value) -> Result<$ty, ValueError> {
                match value {
                    toml::Value::Integer(n) => <$ty>::try_from(*n).map_err(ValueError::parse),
                    other => Err(ValueError::WrongType {
                        expected: Self::TOML_TYPE,
                        found: toml_type(other),
                    }),
                }
            }

            fn to_toml(&self) -> Option<toml::Value> {
                Some(toml::Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX)))
            }
        }
    )*};
}
integer_setting_value!(u32, u64, usize);

/// An optional setting: unset by default; an empty value (`--flag ""`,
/// `KEY=`, `key = ""`) unsets it too.
impl<T: SettingValue> SettingValue for Option<T> {
    type Raw = T::Raw;
    const EXPECTED: Option<&'static str> = T::EXPECTED;
    const TOML_TYPE: &'static str = T::TOML_TYPE;

    fn from_raw(raw: &T::Raw) -> Result<Option<T>, ValueError> {
        if raw.is_empty() {
            return Ok(None);
        }
        T::from_raw(raw).map(Some)
    }

    fn from_toml(value: &toml::Value) -> Result<Option<T>, ValueError> {
        match value {
            toml::Value::String(s) if s.is_empty() => Ok(None),
            other => T::from_toml(other).map(Some),
        }
    }

    fn to_toml(&self) -> Option<toml::Value> {
        self.as_ref().and_then(T::to_toml)
    }

    fn show(&self) -> Option<String> {
        self.as_ref().and_then(T::show)
    }

    fn mask(text: &str) -> String {
        T::mask(text)
    }
}

/// What `config check` shows instead of a secret.
pub const MASK: &str = "***";

/// A secret setting (`admin_token`, `license_key`): `Debug` and
/// `config check` show [`MASK`], errors never show the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({MASK})")
    }
}

impl SettingValue for Secret {
    type Raw = String;

    fn from_raw(raw: &String) -> Result<Secret, ValueError> {
        Ok(Secret(raw.clone()))
    }

    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.0.clone()))
    }

    fn show(&self) -> Option<String> {
        Some(MASK.to_owned())
    }

    fn mask(_: &str) -> String {
        MASK.to_owned()
    }
}

/// A URL setting that may carry credentials (`https://user:pw@host`):
/// `config check` shows its userinfo as [`MASK`], `Debug` drops it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UrlSetting(String);

impl UrlSetting {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> UrlSetting {
        UrlSetting(url.into())
    }

    /// The URL, credentials included.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UrlSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UrlSetting")
            .field(&crate::secret::mask_userinfo(&self.0))
            .finish()
    }
}

impl SettingValue for UrlSetting {
    type Raw = String;

    fn from_raw(raw: &String) -> Result<UrlSetting, ValueError> {
        Ok(UrlSetting(raw.trim().to_owned()))
    }

    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.0.clone()))
    }

    fn show(&self) -> Option<String> {
        Some(crate::secret::mask_userinfo(&self.0))
    }

    fn mask(text: &str) -> String {
        crate::secret::mask_userinfo(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml_value(text: &str) -> toml::Value {
        let table: toml::Table = toml::from_str(&format!("v = {text}")).unwrap();
        table["v"].clone()
    }

    #[test]
    fn integers_booleans_and_strings_keep_their_toml_types() {
        assert_eq!(u64::from_toml(&toml_value("8")).unwrap(), 8);
        assert!(matches!(
            u64::from_toml(&toml_value("\"8\"")),
            Err(ValueError::WrongType {
                expected: "an integer",
                found: "a string"
            })
        ));
        assert!(u32::from_toml(&toml_value("-1")).is_err());
        assert!(bool::from_toml(&toml_value("true")).unwrap());
        assert!(bool::from_toml(&toml_value("\"true\"")).is_err());
        assert!(String::from_toml(&toml_value("1")).is_err());
        assert_eq!(
            ByteSize::from_toml(&toml_value("4096")).unwrap(),
            ByteSize(4096)
        );
        assert_eq!(
            ByteSize::from_toml(&toml_value("\"1GiB\"")).unwrap(),
            ByteSize::gib(1)
        );
    }

    #[test]
    fn command_line_booleans_take_the_usual_spellings() {
        for (text, b) in [("true", true), ("1", true), ("on", true), ("No", false)] {
            assert_eq!(bool::from_raw(&text.to_owned()).unwrap(), b, "{text}");
        }
        assert!(bool::from_raw(&"maybe".to_owned()).is_err());
    }

    #[test]
    fn an_empty_value_unsets_an_optional_setting() {
        assert_eq!(Option::<String>::from_raw(&String::new()).unwrap(), None);
        assert_eq!(
            Option::<PathBuf>::from_toml(&toml_value("\"\"")).unwrap(),
            None
        );
        assert_eq!(
            Option::<ByteSize>::from_raw(&"1KiB".to_owned()).unwrap(),
            Some(ByteSize::kib(1))
        );
    }

    #[test]
    fn secrets_and_url_credentials_are_masked() {
        let s = Secret::new("hunter2");
        assert_eq!(s.show().as_deref(), Some(MASK));
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(Secret::mask("hunter2"), MASK);
        let u = UrlSetting::new("https://user:hunter2@gw.example.com");
        assert_eq!(u.show().as_deref(), Some("https://***@gw.example.com"));
        assert!(!format!("{u:?}").contains("hunter2"));
        assert_eq!(u.expose(), "https://user:hunter2@gw.example.com");
    }
}
