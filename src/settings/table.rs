//! The settings table of a command: one macro invocation from which its
//! clap arguments, environment variables, TOML keys, typed settings,
//! defaults and layering code all come.
//!
//! ```text
//! settings_table! {
//!     /// `telespool serve` flags.          (the clap Args struct)
//!     pub struct ServeArgs;
//!     /// `telespool serve` settings.       (the typed settings struct)
//!     pub struct ServeSettings for "serve" {
//!         /// TOML configuration file.
//!         #[arg(env = "TELESPOOL_CONFIG", value_name = "FILE")]
//!         config;
//!         /// Data directory [default: ./telespool-data].
//!         #[arg(env = "TELESPOOL_DATA_DIR", value_name = "DIR")]
//!         data_dir: PathBuf = PathBuf::from(DEFAULT_DATA_DIR);
//!         ...
//!     }
//! }
//! ```
//!
//! Each row gives the setting's key (the field: the flag is `--` and the
//! key with `-`, the TOML key is the key), its help (the doc comment), its
//! clap attributes (`env`, `value_name`, ...: `long` is added), its type
//! (a [`SettingValue`](super::SettingValue), which says how the raw value
//! parses, reads from TOML and shows) and its default. Generated:
//! - `Args`: every setting as `Option<Raw>` (text, or a path), `config`,
//!   and the [`CliOrigins`](super::CliOrigins) recorded after parsing;
//! - `Settings`: every setting typed, `Default` from the table,
//!   [`CommandSettings`](super::CommandSettings): `from_layers` (the
//!   layering rule per field) and `entries` (TOML and shown values).

/// See the module documentation.
macro_rules! settings_table {
    (
        $(#[doc = $args_doc:literal])*
        pub struct $args:ident;
        $(#[doc = $settings_doc:literal])*
        pub struct $settings:ident for $command:literal {
            $(#[doc = $config_doc:literal])*
            #[arg($($config_arg:tt)*)]
            config;
            $(
                $(#[doc = $doc:literal])*
                #[arg($($arg:tt)*)]
                $key:ident: $ty:ty = $default:expr;
            )*
        }
    ) => {
        $(#[doc = $args_doc])*
        #[derive(Clone, Debug, Default, ::clap::Args)]
        pub struct $args {
            $(#[doc = $config_doc])*
            #[arg(long, $($config_arg)*)]
            pub config: Option<::std::path::PathBuf>,
            $(
                $(#[doc = $doc])*
                #[arg(long, $($arg)*)]
                pub $key: Option<<$ty as $crate::settings::SettingValue>::Raw>,
            )*
            /// Which of the command line and the environment gave each
            /// value (recorded after parsing; empty when built in code).
            #[arg(skip)]
            pub origins: $crate::settings::CliOrigins,
        }

        impl $crate::settings::CommandArgs for $args {
            fn config_file(&self) -> Option<&::std::path::Path> {
                self.config.as_deref()
            }

            fn origins(&self) -> &$crate::settings::CliOrigins {
                &self.origins
            }

            fn set_origins(&mut self, origins: $crate::settings::CliOrigins) {
                self.origins = origins;
            }
        }

        $(#[doc = $settings_doc])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $settings {
            $(
                $(#[doc = $doc])*
                pub $key: $ty,
            )*
        }

        impl Default for $settings {
            fn default() -> $settings {
                $settings {
                    $($key: $default,)*
                }
            }
        }

        impl $crate::settings::CommandSettings for $settings {
            type Args = $args;
            const COMMAND: &'static str = $command;

            fn from_layers(
                args: &$args,
                layers: &mut $crate::settings::Layers<'_>,
            ) -> Result<$settings, $crate::settings::ConfigError> {
                Ok($settings {
                    $($key: layers.value(stringify!($key), args.$key.as_ref(), || $default)?,)*
                })
            }

            fn entries(&self) -> Vec<$crate::settings::Entry> {
                vec![$($crate::settings::Entry::of(stringify!($key), &self.$key),)*]
            }
        }
    };
}
pub(crate) use settings_table;
