//! [`ExportConfig`] and [`CleanupConfig`]: the exporter's settings, with
//! Sourcegraph's names and defaults where the meaning is shared
//! (`TELEMETRY_GATEWAY_EXPORTER_*`). Keys: `export_addr`,
//! `export_interval`, `export_batch_size`, `export_max_attempts`,
//! `instance_id`, `license_key` (or `license_key_file`), `external_url`,
//! `export_insecure`, `export_gzip`, `export_ca_file`,
//! `export_client_cert`, `export_client_key`; `exported_events_retention`
//! and `queue_cleanup_interval` for cleanup.

use std::path::PathBuf;
use std::time::Duration;

use crate::settings::SettingError;

/// Default export interval when idle (Sourcegraph's).
pub const DEFAULT_EXPORT_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Longest export interval allowed (Sourcegraph's).
pub const MAX_EXPORT_INTERVAL: Duration = Duration::from_secs(3600);
/// Default events per export stream before it is reopened (Sourcegraph's).
pub const DEFAULT_EXPORT_BATCH_SIZE: usize = 10_000;
/// Smallest export batch size allowed (Sourcegraph's).
pub const MIN_EXPORT_BATCH_SIZE: usize = 100;
/// Default answered attempts before an event is dead-lettered.
pub const DEFAULT_EXPORT_MAX_ATTEMPTS: u32 = 10;
/// Default retention of exported segments (Sourcegraph's).
pub const DEFAULT_EXPORTED_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Default cleanup interval (Sourcegraph's).
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// Exporter settings.
#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// Gateway address; none (export off) by default.
    pub addr: Option<String>,
    /// Poll interval when idle. Default [`DEFAULT_EXPORT_INTERVAL`] (5m), at
    /// most [`MAX_EXPORT_INTERVAL`] (1h).
    pub interval: Duration,
    /// Events per stream before it is closed and reopened. Default
    /// [`DEFAULT_EXPORT_BATCH_SIZE`] (10,000), at least
    /// [`MIN_EXPORT_BATCH_SIZE`] (100).
    pub batch_size: usize,
    /// Answered attempts before an event is dead-lettered. Default
    /// [`DEFAULT_EXPORT_MAX_ATTEMPTS`] (10).
    pub max_attempts: u32,
    /// Instance id; default: a UUID generated on first start and kept in the
    /// data directory.
    pub instance_id: Option<String>,
    /// License key: when set, the sidecar exports as a licensed instance.
    pub license_key: Option<String>,
    /// External URL sent in the identifier. Default empty.
    pub external_url: String,
    /// Allow plain text to a non-loopback gateway. Default off.
    pub insecure: bool,
    /// Compress payloads with gzip. Default off.
    pub gzip: bool,
    /// PEM CA bundle trusted for the gateway's certificate instead of the
    /// public (webpki) roots. Default none.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS. Default none.
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) of `client_cert`. Default none.
    pub client_key: Option<PathBuf>,
}

impl Default for ExportConfig {
    fn default() -> ExportConfig {
        ExportConfig {
            addr: None,
            interval: DEFAULT_EXPORT_INTERVAL,
            batch_size: DEFAULT_EXPORT_BATCH_SIZE,
            max_attempts: DEFAULT_EXPORT_MAX_ATTEMPTS,
            instance_id: None,
            license_key: None,
            external_url: String::new(),
            insecure: false,
            gzip: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
        }
    }
}

impl ExportConfig {
    /// Checks the settings; the error names the one that is wrong.
    pub fn validate(&self) -> Result<(), SettingError> {
        SettingError::check_duration(
            "export_interval",
            self.interval,
            Duration::from_millis(1),
            Some(MAX_EXPORT_INTERVAL),
        )?;
        SettingError::check_range(
            "export_batch_size",
            self.batch_size as u64,
            MIN_EXPORT_BATCH_SIZE as u64,
            u64::MAX,
        )?;
        SettingError::check_range(
            "export_max_attempts",
            u64::from(self.max_attempts),
            1,
            u64::MAX,
        )?;
        if let Some(addr) = &self.addr
            && !(addr.starts_with("http://") || addr.starts_with("https://"))
        {
            return Err(SettingError::Invalid {
                key: "export_addr",
                value: crate::secret::redact_url(addr),
                reason: "it must start with https:// (or http:// for a loopback or export_insecure gateway)",
            });
        }
        self.validate_tls_files()
    }

    /// The TLS files: certificate and key together, and only for an
    /// `https://` gateway (the files themselves are read when the exporter
    /// starts).
    fn validate_tls_files(&self) -> Result<(), SettingError> {
        match (&self.client_cert, &self.client_key) {
            (Some(_), None) => {
                return Err(SettingError::Unpaired {
                    key: "export_client_cert",
                    missing: "export_client_key",
                });
            }
            (None, Some(_)) => {
                return Err(SettingError::Unpaired {
                    key: "export_client_key",
                    missing: "export_client_cert",
                });
            }
            _ => {}
        }
        if let Some(addr) = &self.addr
            && !addr.starts_with("https://")
        {
            let key = if self.ca_file.is_some() {
                "export_ca_file"
            } else if self.client_cert.is_some() {
                "export_client_cert"
            } else {
                return Ok(());
            };
            return Err(SettingError::Needs {
                key,
                needs: "export_addr",
                detail: " to be an https:// URL: the file is for TLS",
            });
        }
        Ok(())
    }
}

/// Cleanup settings.
#[derive(Clone, Debug)]
pub struct CleanupConfig {
    /// How long fully exported segments are kept. Default
    /// [`DEFAULT_EXPORTED_RETENTION`] (24h).
    pub exported_retention: Duration,
    /// How often cleanup runs. Default [`DEFAULT_CLEANUP_INTERVAL`] (30m);
    /// positive.
    pub interval: Duration,
}

impl Default for CleanupConfig {
    fn default() -> CleanupConfig {
        CleanupConfig {
            exported_retention: DEFAULT_EXPORTED_RETENTION,
            interval: DEFAULT_CLEANUP_INTERVAL,
        }
    }
}

impl CleanupConfig {
    /// Checks the interval; the error names the setting.
    pub fn validate(&self) -> Result<(), SettingError> {
        SettingError::check_duration(
            "queue_cleanup_interval",
            self.interval,
            Duration::from_millis(1),
            None,
        )
    }
}
