//! The config layer's errors, shared by `telespool serve` and `telespool
//! gateway`.
//!
//! Two levels, because two parties know different things:
//! - [`SettingError`]: what a component's `validate()` (or a command's
//!   composition) finds wrong, naming the setting by its TOML key (the
//!   component knows its keys, not which command it runs in, nor the
//!   environment variable's name there).
//! - [`ConfigError`]: what a command reports. The layering code adds the
//!   flag, the environment variable and where the value came from to a
//!   [`SettingError`] ([`ConfigError::Setting`]); reading the file and
//!   parsing values fail here directly.
//!
//! Neither echoes a secret: values of secret settings are masked, and a
//! value of the wrong TOML type is not shown at all.

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::file::TomlError;
use super::layer::{Origin, SettingNames};
use super::{ReadableDuration, ValueError};

/// What is wrong with one setting, named by its TOML key (`key`), as a
/// component's `validate()` says it. Referenced settings (`missing`,
/// `other`, ...) are keys too, or prose when they are not settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    /// A number outside its range (`max` is `u64::MAX` for "at least").
    #[error("{key} = {value} is outside {}", range(min, max))]
    OutOfRange {
        /// The setting.
        key: &'static str,
        /// Its value.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A duration outside its range.
    #[error("{key} = {value} is outside {}", duration_range(min, max))]
    DurationOutOfRange {
        /// The setting.
        key: &'static str,
        /// Its value.
        value: ReadableDuration,
        /// Shortest allowed.
        min: ReadableDuration,
        /// Longest allowed, if bounded.
        max: Option<ReadableDuration>,
    },
    /// A value its component cannot use, for a reason of its own.
    #[error("{key} = {value:?} is invalid: {reason}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// Its value (masked if secret).
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A value its component refused with an error of its own.
    #[error("{key} = {value:?} is invalid: {source}")]
    Rejected {
        /// The setting.
        key: &'static str,
        /// Its value (masked if secret).
        value: String,
        /// The component's error.
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
    /// A component's own validation error, which names the setting in its
    /// own words.
    #[error("{source}")]
    Component {
        /// The setting.
        key: &'static str,
        /// Other settings the check involved.
        also: &'static [&'static str],
        /// The component's error.
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
    /// One of two settings that go together.
    #[error("{key} is set but {missing} is not: they go together")]
    Unpaired {
        /// The setting given.
        key: &'static str,
        /// The one missing.
        missing: &'static str,
    },
    /// A setting that needs another (or a form of another).
    #[error("{key} needs {needs}{detail}")]
    Needs {
        /// The setting given.
        key: &'static str,
        /// What it needs: a key, or a description.
        needs: &'static str,
        /// More about it (may be empty).
        detail: &'static str,
    },
    /// Settings that exclude each other.
    #[error("{key} and {other} cannot both be set: {hint}")]
    Conflict {
        /// One setting.
        key: &'static str,
        /// The other: a key, or a description (`a password in the sink URL`).
        other: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// Two listeners on one address.
    #[error("{key} and {other} are both {address}; they need different ports")]
    SameAddress {
        /// One setting.
        key: &'static str,
        /// The other.
        other: &'static str,
        /// The shared address.
        address: SocketAddr,
    },
    /// A secret file that cannot be used (its error names the setting).
    #[error(transparent)]
    SecretFile(#[from] crate::secret::SecretFileError),
}

fn range(min: &u64, max: &u64) -> String {
    if *max == u64::MAX {
        format!("{min}..: it must be at least {min}")
    } else {
        format!("{min}..={max}")
    }
}

fn duration_range(min: &ReadableDuration, max: &Option<ReadableDuration>) -> String {
    match max {
        Some(max) => format!("{min}..={max}"),
        None => format!("{min}..: it must be at least {min}"),
    }
}

impl SettingError {
    /// The setting (TOML key) the error is about.
    pub fn key(&self) -> &'static str {
        match self {
            SettingError::OutOfRange { key, .. }
            | SettingError::DurationOutOfRange { key, .. }
            | SettingError::Invalid { key, .. }
            | SettingError::Rejected { key, .. }
            | SettingError::Component { key, .. }
            | SettingError::Unpaired { key, .. }
            | SettingError::Needs { key, .. }
            | SettingError::Conflict { key, .. }
            | SettingError::SameAddress { key, .. } => key,
            SettingError::SecretFile(e) => e.setting(),
        }
    }

    /// The other settings (or descriptions) the error mentions.
    pub fn related(&self) -> Vec<&'static str> {
        match self {
            SettingError::Unpaired { missing, .. } => vec![missing],
            SettingError::Needs { needs, .. } => vec![needs],
            SettingError::Conflict { other, .. } | SettingError::SameAddress { other, .. } => {
                vec![other]
            }
            SettingError::Component { also, .. } => also.to_vec(),
            _ => Vec::new(),
        }
    }

    /// A check of `value` against `min..=max`.
    pub fn check_range(
        key: &'static str,
        value: u64,
        min: u64,
        max: u64,
    ) -> Result<(), SettingError> {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(SettingError::OutOfRange {
                key,
                value,
                min,
                max,
            })
        }
    }

    /// A check of a duration against `min..=max` (unbounded without `max`).
    pub fn check_duration(
        key: &'static str,
        value: std::time::Duration,
        min: std::time::Duration,
        max: Option<std::time::Duration>,
    ) -> Result<(), SettingError> {
        if value >= min && max.is_none_or(|max| value <= max) {
            Ok(())
        } else {
            Err(SettingError::DurationOutOfRange {
                key,
                value: value.into(),
                min: min.into(),
                max: max.map(Into::into),
            })
        }
    }
}

/// A configuration a command cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("reading config file {path} (--config): {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {path} (--config): {source}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's complaint: line, column, key and reason, never the
        /// value.
        #[source]
        source: TomlError,
    },
    /// A key of the file that is no setting of the command.
    #[error(
        "config file {path} (--config), line {line}: unknown key `{key}` (the keys are the flags' names with _, see --help)"
    )]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// Its line.
        line: usize,
        /// The key.
        key: String,
    },
    /// A value that does not parse as its setting's type.
    #[error(transparent)]
    Value(Box<BadValue>),
    /// A value its component refused, or settings that do not go together.
    #[error(transparent)]
    Setting(Box<BadSetting>),
}

/// A value that does not parse as its setting's type
/// ([`ConfigError::Value`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid setting {setting} from {origin}: {}",
    value_problem(setting, value, expected, source)
)]
pub struct BadValue {
    /// The setting.
    pub setting: SettingNames,
    /// Where the value came from.
    pub origin: Origin,
    /// The value as given (masked if secret); none when the file held a
    /// value of the wrong TOML type, which is never shown.
    pub value: Option<String>,
    /// What a value looks like (`a size`).
    pub expected: Option<&'static str>,
    /// Why it does not parse.
    #[source]
    pub source: ValueError,
}

/// A value its component refused, or settings that do not go together
/// ([`ConfigError::Setting`]): the component's [`SettingError`] with the
/// flag, environment variable and origin of the settings it names.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid setting {setting} from {origin}: {source}{}",
    see_also(related)
)]
pub struct BadSetting {
    /// The setting.
    pub setting: SettingNames,
    /// Where its value came from.
    pub origin: Origin,
    /// The other settings the error mentions.
    pub related: Vec<SettingNames>,
    /// What is wrong, in the component's terms.
    #[source]
    pub source: SettingError,
}

fn value_problem(
    setting: &SettingNames,
    value: &Option<String>,
    expected: &Option<&'static str>,
    source: &ValueError,
) -> String {
    match (value, expected) {
        (None, _) => format!("{}: {source}", setting.key),
        (Some(value), Some(expected)) => {
            format!("{} = {value:?} is not {expected}: {source}", setting.key)
        }
        (Some(value), None) => format!("{} = {value:?} is invalid: {source}", setting.key),
    }
}

fn see_also(related: &[SettingNames]) -> String {
    if related.is_empty() {
        return String::new();
    }
    let names: Vec<String> = related.iter().map(ToString::to_string).collect();
    format!("; see {}", names.join(", "))
}

impl ConfigError {
    /// The setting the error is about, when it is about one.
    pub fn setting(&self) -> Option<&SettingNames> {
        match self {
            ConfigError::Value(e) => Some(&e.setting),
            ConfigError::Setting(e) => Some(&e.setting),
            _ => None,
        }
    }

    /// The component-level error, when the error is one.
    pub fn setting_error(&self) -> Option<&SettingError> {
        match self {
            ConfigError::Setting(e) => Some(&e.source),
            _ => None,
        }
    }
}
