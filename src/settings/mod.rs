//! The configuration mechanism shared by `telespool serve` and `telespool
//! gateway`: typed setting values, one layering rule with provenance, the
//! config file, the config errors, and what `telespool config check`
//! prints. It depends on no component: components and commands sit above
//! it.
//!
//! # How a setting is defined and read
//!
//! A command has one **settings table** (the crate's `settings_table!`
//! macro, see [`table`]): `config/settings.rs` for the sidecar,
//! `gateway/settings.rs` for the gateway. A row names the setting
//! once: its key is the TOML key, `--` and the key with `-` is the flag,
//! the row's `env` is the environment variable, its doc comment the help,
//! its type says how the value parses, its expression is the default.
//! From the table come the clap `Args` (raw values), the typed `Settings`
//! struct with its `Default`, and the per-field layering.
//!
//! ```text
//!  flags ─┐ clap: raw values          config file (TOML)        defaults
//!  env  ──┘ + which one gave each     FileLayer: key, value,    (the table)
//!           (CliOrigins)              line; unknown keys refused
//!                 │                          │                      │
//!                 └────────── Layers::value: flag > env > file > default,
//!                             parsed with the setting's type (SettingValue),
//!                             origin recorded ──► Resolved { settings, origins }
//!                                                        │
//!       components: CommandConfig::from_settings(&settings) → each component's
//!       struct (next to its component), validate() → SettingError (by key)
//!                                                        │
//!                     Resolved::explain: + flag, env, origin ──► ConfigError
//! ```
//!
//! # Values
//! - [`ByteSize`] (`64MiB`, `1048576`, `1GiB`) and [`ReadableDuration`]
//!   (`5m`, `1h30m`, `93d`) parse themselves, print in a form that parses
//!   back, and (de)serialize through their text (TOML integers are taken
//!   as byte counts).
//! - [`SettingValue`] is the contract of a setting's type: raw text (or a
//!   path) from clap, a typed TOML value from the file (an integer where a
//!   number belongs: a value of the wrong TOML type is refused without
//!   being shown), the value written back as TOML, and shown by `config
//!   check`. [`Secret`] and [`UrlSetting`] mask what they hold.
//! - An optional setting (`Option<T>`) is unset by default; an empty value
//!   unsets it too.
//!
//! # Provenance and `config check`
//! [`Resolved`] keeps each setting's [`Origin`] (flag, environment
//! variable, file and line, default). [`Resolved::report`] is what
//! `telespool config check` prints ([`Report`]), and
//! [`Resolved::explain`] turns a component's [`SettingError`] into a
//! [`ConfigError`] naming the flag, the environment variable and where
//! the value came from. [`to_toml`] writes the settings as a config file
//! that resolves back to the same settings (tested per command).

mod duration;
pub mod error;
pub mod file;
pub mod layer;
pub mod report;
mod size;
pub mod table;
mod value;

pub use duration::ReadableDuration;
pub use error::{BadSetting, BadValue, ConfigError, SettingError};
pub use file::{FileLayer, TomlError};
pub use layer::{
    CliOrigins, CommandArgs, CommandSettings, Entry, Layers, Origin, Resolved, SettingNames,
    resolve, to_toml,
};
pub use report::Report;
pub use size::{ByteSize, ByteSizeError};
pub(crate) use table::settings_table;
pub(crate) use value::text_setting_value;
pub use value::{
    BoolError, ChoiceError, MASK, RawValue, Secret, SettingValue, UrlSetting, ValueError,
};

#[cfg(test)]
mod tests;
