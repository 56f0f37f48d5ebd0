//! Sidecar configuration: one struct per component, defaults next to them,
//! resolved from flags, then environment, then an optional TOML file, then
//! the defaults, and validated at start with errors that name the setting.
//!
//! Every setting has a flag, an environment variable and a TOML key (the
//! flag's name with `_` for `-`, at the top level of the file). clap reads
//! flags and environment variables (a flag wins over its variable); the file
//! fills what neither set.

use crate::cli::ServeArgs;
use crate::event_logs::store::EventLogConfig;
use crate::log::SyncPolicy;
use crate::queue::{FullPolicy, QueueConfig};
use crate::tee::allowlist::Allowlist;
use crate::tee::export_mode::ExportMode;
use crate::tee::validate::Limits;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./telespool-data";
/// Default gRPC ingest address.
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:10085";
/// Default HTTP address (ingest, admin API, metrics, health).
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:10086";
/// Default largest HTTP request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Largest gRPC message the servers accept: the event-count and size limits,
/// not the transport, answer oversized payloads.
pub const GRPC_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// HTTP/2 stream receive window of our gRPC servers and clients. The
/// default 64 KiB would make a 1 MiB payload wait for sixteen window
/// updates.
pub const GRPC_STREAM_WINDOW_BYTES: u32 = 4 * 1024 * 1024;
/// HTTP/2 connection receive window of our gRPC servers and clients.
pub const GRPC_CONNECTION_WINDOW_BYTES: u32 = 16 * 1024 * 1024;
/// Default export interval when idle (Sourcegraph's).
pub const DEFAULT_EXPORT_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Longest export interval allowed (Sourcegraph's).
pub const MAX_EXPORT_INTERVAL: Duration = Duration::from_secs(3600);
/// Default events per export stream before it is reopened (Sourcegraph's).
pub const DEFAULT_EXPORT_BATCH_SIZE: usize = 10_000;
/// Smallest export batch size allowed (Sourcegraph's).
pub const MIN_EXPORT_BATCH_SIZE: usize = 100;
/// Default retention of exported segments (Sourcegraph's).
pub const DEFAULT_EXPORTED_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Default cleanup interval (Sourcegraph's).
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// Default answered attempts before an event is dead-lettered.
pub const DEFAULT_EXPORT_MAX_ATTEMPTS: u32 = 10;

/// A setting that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    /// The setting's flag name (with its environment variable).
    pub setting: String,
    /// What is wrong and what is allowed.
    pub reason: String,
}

fn bad(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_string(),
        reason: reason.into(),
    }
}

/// Parses a size: a number of bytes, or with a suffix `KiB`, `MiB`, `GiB`
/// (also `K`, `M`, `G`, `KB`, `MB`, `GB`, all powers of 1024).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 1048576, 64MiB, 1GiB)"))?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("{s:?} has an unknown unit (use KiB, MiB or GiB)")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses a duration such as `30s`, `5m`, `1h`, `93d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration ({e}; examples: 30s, 5m, 1h, 93d)"))
}

/// The optional TOML file: the same keys as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// See `--grpc-listen`.
    pub grpc_listen: Option<String>,
    /// See `--http-listen`.
    pub http_listen: Option<String>,
    /// See `--admin-token`.
    pub admin_token: Option<String>,
    /// See `--sync`.
    pub sync: Option<String>,
    /// See `--segment-size`.
    pub segment_size: Option<String>,
    /// See `--segment-age`.
    pub segment_age: Option<String>,
    /// See `--queue-quota`.
    pub queue_quota: Option<String>,
    /// See `--queue-full-policy`.
    pub queue_full_policy: Option<String>,
    /// See `--export-mode`.
    pub export_mode: Option<String>,
    /// See `--dotcom`.
    pub dotcom: Option<bool>,
    /// See `--allowed-event-types`.
    pub allowed_event_types: Option<String>,
    /// See `--max-event-size`.
    pub max_event_size: Option<String>,
    /// See `--max-body-size`.
    pub max_body_size: Option<String>,
    /// See `--max-events`.
    pub max_events: Option<usize>,
    /// See `--max-depth`.
    pub max_depth: Option<usize>,
    /// See `--event-logs-retention`.
    pub event_logs_retention: Option<String>,
    /// See `--event-logs-cache`.
    pub event_logs_cache: Option<String>,
    /// See `--server-version`.
    pub server_version: Option<String>,
    /// See `--export-addr`.
    pub export_addr: Option<String>,
    /// See `--export-interval`.
    pub export_interval: Option<String>,
    /// See `--export-batch-size`.
    pub export_batch_size: Option<usize>,
    /// See `--exported-events-retention`.
    pub exported_events_retention: Option<String>,
    /// See `--queue-cleanup-interval`.
    pub queue_cleanup_interval: Option<String>,
    /// See `--export-max-attempts`.
    pub export_max_attempts: Option<u32>,
    /// See `--instance-id`.
    pub instance_id: Option<String>,
    /// See `--license-key`.
    pub license_key: Option<String>,
    /// See `--external-url`.
    pub external_url: Option<String>,
    /// See `--export-insecure`.
    pub export_insecure: Option<bool>,
    /// See `--export-gzip`.
    pub export_gzip: Option<bool>,
    /// See `--event-logs-quota`.
    pub event_logs_quota: Option<String>,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad("--config", format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| bad("--config", format!("{}: {e}", path.display())))
    }
}

/// Where and how the sidecar listens.
#[derive(Clone, Debug)]
pub struct ListenConfig {
    /// gRPC ingest address. Default `127.0.0.1:10085`.
    pub grpc: SocketAddr,
    /// HTTP address. Default `127.0.0.1:10086`.
    pub http: SocketAddr,
    /// Bearer token that opens the admin API to non-loopback clients. None by
    /// default: the admin API answers loopback clients only.
    pub admin_token: Option<String>,
    /// Largest HTTP body. Default 16 MiB.
    pub max_body_bytes: usize,
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
    /// Size limits. Defaults: event 1 MiB, 10,000 events, depth 64.
    pub limits: Limits,
    /// The `version` written into event_logs rows when an event has no
    /// server version. Default `telespool-<version>`.
    pub server_version: String,
}

/// Exporter settings (Sourcegraph's names where the meaning is shared).
#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// Gateway address; none (export off) by default.
    pub addr: Option<String>,
    /// Poll interval when idle. Default 5m, at most 1h.
    pub interval: Duration,
    /// Events per stream before it is closed and reopened. Default 10,000, at
    /// least 100.
    pub batch_size: usize,
    /// Answered attempts before an event is dead-lettered. Default 10.
    pub max_attempts: u32,
    /// Instance id; default: a UUID generated on first start and kept in the
    /// data directory.
    pub instance_id: Option<String>,
    /// License key: when set, the sidecar exports as a licensed instance.
    pub license_key: Option<String>,
    /// External URL sent in the identifier.
    pub external_url: String,
    /// Allow plain text to a non-loopback gateway.
    pub insecure: bool,
    /// Compress payloads with gzip.
    pub gzip: bool,
}

/// Cleanup settings.
#[derive(Clone, Debug)]
pub struct CleanupConfig {
    /// How long fully exported segments are kept. Default 24h.
    pub exported_retention: Duration,
    /// How often cleanup runs. Default 30m.
    pub interval: Duration,
}

/// The resolved sidecar configuration.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Data directory. Default `./telespool-data`.
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
}

fn pick<T: Clone>(flag: &Option<T>, file: &Option<T>) -> Option<T> {
    flag.clone().or_else(|| file.clone())
}

impl ServeConfig {
    /// Resolves flags/environment (already merged by clap), then the TOML
    /// file named by `--config`, then the defaults; validates everything.
    pub fn resolve(a: &ServeArgs) -> Result<ServeConfig, ConfigError> {
        let f = match &a.config {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        let addr = |name: &str, v: Option<String>, def: &str| -> Result<SocketAddr, ConfigError> {
            let s = v.unwrap_or_else(|| def.to_string());
            s.parse().map_err(|_| {
                bad(
                    name,
                    format!("{s:?} is not an address like 127.0.0.1:10085"),
                )
            })
        };
        let bytes = |name: &str, v: Option<String>, def: u64| -> Result<u64, ConfigError> {
            v.map_or(Ok(def), |s| parse_bytes(&s).map_err(|e| bad(name, e)))
        };
        let dur = |name: &str, v: Option<String>, def: Duration| -> Result<Duration, ConfigError> {
            v.map_or(Ok(def), |s| parse_duration(&s).map_err(|e| bad(name, e)))
        };

        let listen = ListenConfig {
            grpc: addr(
                "--grpc-listen (TELESPOOL_GRPC_LISTEN)",
                pick(&a.grpc_listen, &f.grpc_listen),
                DEFAULT_GRPC_LISTEN,
            )?,
            http: addr(
                "--http-listen (TELESPOOL_HTTP_LISTEN)",
                pick(&a.http_listen, &f.http_listen),
                DEFAULT_HTTP_LISTEN,
            )?,
            admin_token: pick(&a.admin_token, &f.admin_token).filter(|t| !t.is_empty()),
            max_body_bytes: bytes(
                "--max-body-size (TELESPOOL_MAX_BODY_SIZE)",
                pick(&a.max_body_size, &f.max_body_size),
                DEFAULT_MAX_BODY_BYTES as u64,
            )? as usize,
        };

        let defaults = QueueConfig::default();
        let queue = QueueConfig {
            sync: match pick(&a.sync, &f.sync) {
                Some(s) => s
                    .parse()
                    .map_err(|e: String| bad("--sync (TELESPOOL_SYNC)", e))?,
                None => SyncPolicy::Always,
            },
            segment_bytes: bytes(
                "--segment-size (TELESPOOL_SEGMENT_SIZE)",
                pick(&a.segment_size, &f.segment_size),
                defaults.segment_bytes,
            )?,
            segment_age: dur(
                "--segment-age (TELESPOOL_SEGMENT_AGE)",
                pick(&a.segment_age, &f.segment_age),
                defaults.segment_age,
            )?,
            quota_bytes: bytes(
                "--queue-quota (TELESPOOL_QUEUE_QUOTA)",
                pick(&a.queue_quota, &f.queue_quota),
                defaults.quota_bytes,
            )?,
            full_policy: match pick(&a.queue_full_policy, &f.queue_full_policy) {
                Some(s) => s
                    .parse::<FullPolicy>()
                    .map_err(|e| bad("--queue-full-policy (TELESPOOL_QUEUE_FULL_POLICY)", e))?,
                None => FullPolicy::Refuse,
            },
            index_flush_interval: defaults.index_flush_interval,
        };
        queue
            .validate()
            .map_err(|e| bad("--segment-size / --queue-quota / --segment-age", e))?;

        let allowlist = match pick(&a.allowed_event_types, &f.allowed_event_types) {
            Some(s) => Allowlist::from_env_value(&s).map_err(|e| {
                bad("--allowed-event-types (SRC_TELEMETRY_SENSITIVEMETADATA_ADDITIONAL_ALLOWED_EVENT_TYPES)", e.to_string())
            })?,
            None => Allowlist::builtin(),
        };
        let limits_default = Limits::default();
        let limits = Limits {
            max_event_bytes: bytes(
                "--max-event-size (TELESPOOL_MAX_EVENT_SIZE)",
                pick(&a.max_event_size, &f.max_event_size),
                limits_default.max_event_bytes as u64,
            )? as usize,
            max_events: pick(&a.max_events, &f.max_events).unwrap_or(limits_default.max_events),
            max_depth: pick(&a.max_depth, &f.max_depth).unwrap_or(limits_default.max_depth),
        };
        if limits.max_events == 0 {
            return Err(bad(
                "--max-events (TELESPOOL_MAX_EVENTS)",
                "must be at least 1",
            ));
        }
        if limits.max_event_bytes == 0 || limits.max_event_bytes > GRPC_MAX_MESSAGE_BYTES {
            return Err(bad(
                "--max-event-size (TELESPOOL_MAX_EVENT_SIZE)",
                format!(
                    "must be between 1 byte and {} bytes",
                    GRPC_MAX_MESSAGE_BYTES
                ),
            ));
        }
        let tee = TeeConfig {
            export_mode: match pick(&a.export_mode, &f.export_mode) {
                Some(s) => {
                    s.parse()
                        .map_err(|e: crate::tee::export_mode::ParseExportModeError| {
                            bad("--export-mode (TELESPOOL_EXPORT_MODE)", e.to_string())
                        })?
                }
                None => ExportMode::All,
            },
            dotcom: a.dotcom || f.dotcom.unwrap_or(false),
            allowlist,
            limits,
            server_version: pick(&a.server_version, &f.server_version)
                .unwrap_or_else(|| format!("telespool-{}", env!("CARGO_PKG_VERSION"))),
        };

        let el_default = EventLogConfig::default();
        let event_logs = EventLogConfig {
            retention: dur(
                "--event-logs-retention (TELESPOOL_EVENT_LOGS_RETENTION)",
                pick(&a.event_logs_retention, &f.event_logs_retention),
                el_default.retention,
            )?,
            cache_bytes: bytes(
                "--event-logs-cache (TELESPOOL_EVENT_LOGS_CACHE)",
                pick(&a.event_logs_cache, &f.event_logs_cache),
                el_default.cache_bytes,
            )?,
            quota_bytes: bytes(
                "--event-logs-quota (TELESPOOL_EVENT_LOGS_QUOTA)",
                pick(&a.event_logs_quota, &f.event_logs_quota),
                el_default.quota_bytes,
            )?,
        };
        event_logs.validate().map_err(|e| {
            bad(
                "--event-logs-retention / --event-logs-cache / --event-logs-quota",
                e.to_string(),
            )
        })?;

        let export = ExportConfig {
            addr: pick(&a.export_addr, &f.export_addr).filter(|s| !s.trim().is_empty()),
            interval: dur(
                "--export-interval (TELEMETRY_GATEWAY_EXPORTER_EXPORT_INTERVAL)",
                pick(&a.export_interval, &f.export_interval),
                DEFAULT_EXPORT_INTERVAL,
            )?,
            batch_size: pick(&a.export_batch_size, &f.export_batch_size)
                .unwrap_or(DEFAULT_EXPORT_BATCH_SIZE),
            max_attempts: pick(&a.export_max_attempts, &f.export_max_attempts)
                .unwrap_or(DEFAULT_EXPORT_MAX_ATTEMPTS),
            instance_id: pick(&a.instance_id, &f.instance_id).filter(|s| !s.is_empty()),
            license_key: pick(&a.license_key, &f.license_key).filter(|s| !s.is_empty()),
            external_url: pick(&a.external_url, &f.external_url).unwrap_or_default(),
            insecure: a.export_insecure || f.export_insecure.unwrap_or(false),
            gzip: a.export_gzip || f.export_gzip.unwrap_or(false),
        };
        if export.interval > MAX_EXPORT_INTERVAL || export.interval.is_zero() {
            return Err(bad(
                "--export-interval (TELEMETRY_GATEWAY_EXPORTER_EXPORT_INTERVAL)",
                format!(
                    "must be positive and at most 1h, got {}",
                    humantime::format_duration(export.interval)
                ),
            ));
        }
        if export.batch_size < MIN_EXPORT_BATCH_SIZE {
            return Err(bad(
                "--export-batch-size (TELEMETRY_GATEWAY_EXPORTER_EXPORT_BATCH_SIZE)",
                format!(
                    "must be at least {MIN_EXPORT_BATCH_SIZE}, got {}",
                    export.batch_size
                ),
            ));
        }
        if export.max_attempts == 0 {
            return Err(bad(
                "--export-max-attempts (TELESPOOL_EXPORT_MAX_ATTEMPTS)",
                "must be at least 1",
            ));
        }
        if let Some(addr) = &export.addr
            && !(addr.starts_with("http://") || addr.starts_with("https://"))
        {
            return Err(bad(
                "--export-addr (TELEMETRY_GATEWAY_EXPORTER_EXPORT_ADDR)",
                format!(
                    "{addr:?} must start with https:// (or http:// for a loopback or --export-insecure gateway)"
                ),
            ));
        }

        let cleanup = CleanupConfig {
            exported_retention: dur(
                "--exported-events-retention (TELEMETRY_GATEWAY_EXPORTER_EXPORTED_EVENTS_RETENTION)",
                pick(&a.exported_events_retention, &f.exported_events_retention),
                DEFAULT_EXPORTED_RETENTION,
            )?,
            interval: dur(
                "--queue-cleanup-interval (TELEMETRY_GATEWAY_EXPORTER_QUEUE_CLEANUP_INTERVAL)",
                pick(&a.queue_cleanup_interval, &f.queue_cleanup_interval),
                DEFAULT_CLEANUP_INTERVAL,
            )?,
        };
        if cleanup.interval.is_zero() {
            return Err(bad(
                "--queue-cleanup-interval (TELEMETRY_GATEWAY_EXPORTER_QUEUE_CLEANUP_INTERVAL)",
                "must be positive",
            ));
        }

        Ok(ServeConfig {
            data_dir: pick(&a.data_dir, &f.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            listen,
            queue,
            tee,
            event_logs,
            export,
            cleanup,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn resolve(args: &[&str]) -> Result<ServeConfig, ConfigError> {
        let cli = crate::cli::Cli::try_parse_from(
            std::iter::once("telespool")
                .chain(std::iter::once("serve"))
                .chain(args.iter().copied()),
        )
        .unwrap();
        match cli.command {
            crate::cli::Command::Serve(a) => ServeConfig::resolve(&a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = resolve(&[]).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./telespool-data"));
        assert_eq!(c.listen.grpc.to_string(), "127.0.0.1:10085");
        assert_eq!(c.listen.http.to_string(), "127.0.0.1:10086");
        assert_eq!(c.queue.sync, SyncPolicy::Always);
        assert_eq!(c.queue.quota_bytes, 1 << 30);
        assert_eq!(c.queue.segment_bytes, 64 << 20);
        assert_eq!(c.tee.export_mode, ExportMode::All);
        assert_eq!(c.export.addr, None);
        assert_eq!(c.export.interval, Duration::from_secs(300));
        assert_eq!(c.export.batch_size, 10_000);
        assert_eq!(c.cleanup.exported_retention, Duration::from_secs(86_400));
        assert_eq!(c.cleanup.interval, Duration::from_secs(1800));
        assert_eq!(c.event_logs.retention, Duration::from_secs(93 * 86_400));
        assert_eq!(c.listen.max_body_bytes, 16 << 20);
    }

    #[test]
    fn sizes_and_durations_parse_with_units() {
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn invalid_values_are_refused_naming_the_setting() {
        let e = resolve(&["--export-batch-size", "50"]).unwrap_err();
        assert!(
            e.to_string().contains("--export-batch-size") && e.to_string().contains("at least 100"),
            "{e}"
        );
        let e = resolve(&["--export-interval", "2h"]).unwrap_err();
        assert!(
            e.to_string()
                .contains("TELEMETRY_GATEWAY_EXPORTER_EXPORT_INTERVAL"),
            "{e}"
        );
        let e = resolve(&["--grpc-listen", "nowhere"]).unwrap_err();
        assert!(e.to_string().contains("--grpc-listen"), "{e}");
        let e = resolve(&["--sync", "sometimes"]).unwrap_err();
        assert!(e.to_string().contains("--sync"), "{e}");
        let e = resolve(&["--allowed-event-types", "foo::bar"]).unwrap_err();
        assert!(e.to_string().contains("missing allowlisted fields"), "{e}");
        let e = resolve(&["--export-addr", "gateway:443"]).unwrap_err();
        assert!(e.to_string().contains("https://"), "{e}");
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("telespool.toml");
        std::fs::write(
            &p,
            "data_dir = \"/from/file\"\nqueue_quota = \"2GiB\"\nexport_mode = \"cody-only\"\n",
        )
        .unwrap();
        let c = resolve(&["--config", p.to_str().unwrap(), "--data-dir", "/from/flag"]).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(c.queue.quota_bytes, 2 << 30);
        assert_eq!(c.tee.export_mode, ExportMode::CodyOnly);
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("telespool.toml");
        std::fs::write(&p, "data_dri = \"/typo\"\n").unwrap();
        let e = resolve(&["--config", p.to_str().unwrap()]).unwrap_err();
        assert!(e.to_string().contains("data_dri"), "{e}");
    }
}
