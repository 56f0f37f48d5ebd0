//! The sidecar's configuration: [`ServeConfig`] composes one struct per
//! component, each next to its component with its defaults as constants
//! and a `validate()` whose errors name the setting's key:
//!
//! | struct | where | keys |
//! |---|---|---|
//! | [`ListenConfig`] | `ingest/config.rs` | `grpc_listen`, `http_listen`, `admin_token`, `max_body_size`, `max_ingest_in_flight`, `decode_budget` |
//! | [`QueueConfig`] | `queue/` | `sync`, `segment_size`, `segment_age`, `queue_quota`, `queue_full_policy` |
//! | [`TeeConfig`] | `tee/config.rs` | `export_mode`, `dotcom`, `allowed_event_types`, `max_event_size`, `max_events`, `max_depth`, `server_version` |
//! | [`EventLogConfig`] | `event_logs/store.rs` | `event_logs_retention`, `event_logs_cache`, `event_logs_quota` |
//! | [`ExportConfig`], [`CleanupConfig`] | `export/config.rs` | `export_*`, `instance_id`, `license_key`, `external_url`; `exported_events_retention`, `queue_cleanup_interval` |
//! | [`DeadLetterConfig`] | `deadletter/store.rs` | `dead_letter_quota` |
//! | [`ListenerLimits`] | `net/limits.rs` (shared with the gateway) | `max_connections`, `http2_*`, `max_connection_age*`, `http_*_timeout`, `request_timeout` |
//!
//! The settings themselves (flag, environment variable, TOML key, type,
//! default) are the rows of one table, [`settings`]; they are layered by
//! [`crate::settings`] (flag > environment > file > default, with each
//! value's origin). [`ServeConfig::resolve`] takes the layered settings,
//! builds the components' structs ([`ServeConfig::from_settings`]: no
//! parsing left, only conversions, the secret files read and the
//! allowlist built) and validates them; an error names the flag, the
//! environment variable and where the value came from.

pub mod settings;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use crate::dead_letter::DeadLetterConfig;
pub use crate::event_logs::store::EventLogConfig;
pub use crate::export::config::{
    CleanupConfig, DEFAULT_CLEANUP_INTERVAL, DEFAULT_EXPORT_BATCH_SIZE, DEFAULT_EXPORT_INTERVAL,
    DEFAULT_EXPORT_MAX_ATTEMPTS, DEFAULT_EXPORTED_RETENTION, ExportConfig, MAX_EXPORT_INTERVAL,
    MIN_EXPORT_BATCH_SIZE,
};
pub use crate::grpc_limits::{
    CONNECTION_WINDOW_BYTES as GRPC_CONNECTION_WINDOW_BYTES,
    MAX_MESSAGE_BYTES as GRPC_MAX_MESSAGE_BYTES, STREAM_WINDOW_BYTES as GRPC_STREAM_WINDOW_BYTES,
};
pub use crate::ingest::config::{
    DEFAULT_DECODE_BUDGET_BYTES, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_INGEST_IN_FLIGHT, ListenConfig,
};
pub use crate::net::ListenerLimits;
pub use crate::queue::QueueConfig;
pub use crate::settings::ConfigError;
pub use crate::tee::config::TeeConfig;
pub use settings::{DEFAULT_DATA_DIR, ServeArgs, ServeSettings};

use crate::event::allowlist::Allowlist;
use crate::event::validate::Limits;
use crate::settings::{Resolved, Secret, SettingError};

/// The resolved sidecar configuration.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Data directory. Default [`DEFAULT_DATA_DIR`].
    pub data_dir: PathBuf,
    /// Listeners.
    pub listen: ListenConfig,
    /// The export queue.
    pub queue: QueueConfig,
    /// The tee.
    pub tee: TeeConfig,
    /// The event_logs mirror.
    pub event_logs: EventLogConfig,
    /// The exporter.
    pub export: ExportConfig,
    /// Cleanup.
    pub cleanup: CleanupConfig,
    /// The dead-letter store (its byte quota; the rest at defaults).
    pub dead_letters: DeadLetterConfig,
    /// Connection limits, deadlines and HTTP/2 settings of both listeners.
    /// Default [`ListenerLimits::sidecar`] (see [`crate::net`]).
    pub limits: ListenerLimits,
}

impl ServeConfig {
    /// Takes the settings from flags, environment, the `--config` file and
    /// the defaults, then builds and validates the components' structs.
    pub fn resolve(args: &ServeArgs) -> Result<ServeConfig, ConfigError> {
        ServeConfig::resolve_with_origins(args).map(|(config, _)| config)
    }

    /// [`ServeConfig::resolve`], with the settings and their origins (what
    /// `telespool config check` prints).
    pub fn resolve_with_origins(
        args: &ServeArgs,
    ) -> Result<(ServeConfig, Resolved<ServeSettings>), ConfigError> {
        let resolved = crate::settings::resolve::<ServeSettings>(args)?;
        let config =
            ServeConfig::from_settings(&resolved.settings).map_err(|e| resolved.explain(e))?;
        Ok((config, resolved))
    }

    /// The components' structs of `s`, validated. Reads the secret files.
    pub fn from_settings(s: &ServeSettings) -> Result<ServeConfig, SettingError> {
        let listen = ListenConfig {
            grpc: s.grpc_listen,
            http: s.http_listen,
            admin_token: secret(
                ("admin_token", &s.admin_token),
                ("admin_token_file", &s.admin_token_file),
            )?,
            max_body_bytes: s.max_body_size.as_usize(),
            admin_require_token: s.admin_require_token,
            max_ingest_in_flight: s.max_ingest_in_flight.as_usize(),
            decode_budget_bytes: s.decode_budget.bytes(),
        };
        listen.validate()?;

        let queue = QueueConfig {
            sync: s.sync,
            segment_bytes: s.segment_size.bytes(),
            segment_age: s.segment_age.get(),
            quota_bytes: s.queue_quota.bytes(),
            full_policy: s.queue_full_policy,
            ..QueueConfig::default()
        };
        queue.validate().map_err(|reason| SettingError::Component {
            key: "segment_size",
            also: &["queue_quota", "segment_age"],
            source: reason.into(),
        })?;

        let tee = TeeConfig {
            export_mode: s.export_mode,
            dotcom: s.dotcom,
            allowlist: match &s.allowed_event_types {
                Some(list) => {
                    Allowlist::from_env_value(list).map_err(|e| SettingError::Rejected {
                        key: "allowed_event_types",
                        value: list.clone(),
                        source: Box::new(e),
                    })?
                }
                None => Allowlist::builtin(),
            },
            limits: Limits {
                max_event_bytes: s.max_event_size.as_usize(),
                max_events: s.max_events,
                max_depth: s.max_depth,
            },
            server_version: s.server_version.clone(),
        };
        tee.validate()?;

        let event_logs = EventLogConfig {
            retention: s.event_logs_retention.get(),
            cache_bytes: s.event_logs_cache.bytes(),
            quota_bytes: s.event_logs_quota.bytes(),
        };
        event_logs.validate().map_err(|e| {
            let key = match e {
                crate::event_logs::store::EventLogError::ZeroRetention => "event_logs_retention",
                crate::event_logs::store::EventLogError::QuotaTooSmall { .. } => "event_logs_quota",
                _ => "event_logs_cache",
            };
            SettingError::Component {
                key,
                also: &[],
                source: Box::new(e),
            }
        })?;

        let export = ExportConfig {
            addr: s.export_addr.as_ref().map(|u| u.expose().to_owned()),
            interval: s.export_interval.get(),
            batch_size: s.export_batch_size,
            max_attempts: s.export_max_attempts,
            instance_id: s.instance_id.clone(),
            license_key: secret(
                ("license_key", &s.license_key),
                ("license_key_file", &s.license_key_file),
            )?,
            external_url: s.external_url.clone(),
            insecure: s.export_insecure,
            gzip: s.export_gzip,
            ca_file: s.export_ca_file.clone(),
            client_cert: s.export_client_cert.clone(),
            client_key: s.export_client_key.clone(),
        };
        export.validate()?;

        let cleanup = CleanupConfig {
            exported_retention: s.exported_events_retention.get(),
            interval: s.queue_cleanup_interval.get(),
        };
        cleanup.validate()?;

        let dead_letters = DeadLetterConfig {
            quota_bytes: s.dead_letter_quota.bytes(),
            ..DeadLetterConfig::default()
        };
        dead_letters
            .validate()
            .map_err(|e| SettingError::Component {
                key: "dead_letter_quota",
                also: &[],
                source: Box::new(e),
            })?;

        let limits = ListenerLimits {
            max_connections: s.max_connections,
            http2_max_streams: s.http2_max_streams,
            http2_keepalive_interval: s.http2_keepalive_interval.get(),
            http2_keepalive_timeout: s.http2_keepalive_timeout.get(),
            max_connection_age: s.max_connection_age.get(),
            max_connection_age_grace: s.max_connection_age_grace.get(),
            http_header_timeout: s.http_header_timeout.get(),
            http_idle_timeout: s.http_idle_timeout.get(),
            request_timeout: s.request_timeout.get(),
        };
        limits.validate()?;

        Ok(ServeConfig {
            data_dir: s.data_dir.clone(),
            listen,
            queue,
            tee,
            event_logs,
            export,
            cleanup,
            dead_letters,
            limits,
        })
    }
}

/// A secret given either as a value (`license_key`) or as a file holding
/// it (`license_key_file`, read by [`crate::secret::read_secret_file`]);
/// both at once is refused.
fn secret(
    (value_key, value): (&'static str, &Option<Secret>),
    (file_key, file): (&'static str, &Option<PathBuf>),
) -> Result<Option<String>, SettingError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(SettingError::Conflict {
            key: file_key,
            other: value_key,
            hint: "give the secret one way only",
        }),
        (Some(value), None) => Ok(Some(value.expose().to_owned())),
        (None, Some(path)) => Ok(Some(crate::secret::read_secret_file(file_key, path)?)),
        (None, None) => Ok(None),
    }
}
