//! [`TeeConfig`]: what the tee does to each event. Its settings (keys) are
//! `export_mode`, `dotcom`, `allowed_event_types`, `max_event_size`,
//! `max_events`, `max_depth` and `server_version`.

use crate::event::allowlist::Allowlist;
use crate::event::export_mode::ExportMode;
use crate::event::validate::Limits;
use crate::grpc_limits::MAX_MESSAGE_BYTES;
use crate::settings::SettingError;

/// The `version` written into event_logs rows of events without one:
/// `telespool-` and this build's version.
pub fn default_server_version() -> String {
    format!("telespool-{}", env!("CARGO_PKG_VERSION"))
}

/// What the tee does to each event.
#[derive(Clone, Debug)]
pub struct TeeConfig {
    /// Which events are queued for export. Default `all`.
    pub export_mode: ExportMode,
    /// Sourcegraph.com mode: export everything unredacted. Default off.
    pub dotcom: bool,
    /// The sensitive-metadata allowlist (built-ins plus additions).
    pub allowlist: Allowlist,
    /// Size limits. Defaults: event 1 MiB, 10,000 events, depth 64. An
    /// event is at most [`MAX_MESSAGE_BYTES`] (the largest gRPC message).
    pub limits: Limits,
    /// The `version` written into event_logs rows when an event has no
    /// server version. Default [`default_server_version`].
    pub server_version: String,
}

impl Default for TeeConfig {
    fn default() -> TeeConfig {
        TeeConfig {
            export_mode: ExportMode::All,
            dotcom: false,
            allowlist: Allowlist::builtin(),
            limits: Limits::default(),
            server_version: default_server_version(),
        }
    }
}

impl TeeConfig {
    /// Checks the limits; the error names the setting.
    pub fn validate(&self) -> Result<(), SettingError> {
        SettingError::check_range("max_events", self.limits.max_events as u64, 1, u64::MAX)?;
        SettingError::check_range(
            "max_event_size",
            self.limits.max_event_bytes as u64,
            1,
            MAX_MESSAGE_BYTES as u64,
        )?;
        Ok(())
    }
}
