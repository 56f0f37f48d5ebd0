//! Gateway settings: one [`GatewayConfig`] with documented defaults, built
//! from layers of optional [`GatewaySettings`] (flags > environment > config
//! file > defaults) and checked by [`GatewayConfig::validate`], whose errors
//! name the setting.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::net::{LimitError, ListenerLimits};

/// Default gRPC listen address (Sourcegraph's gateway port).
pub const DEFAULT_GRPC_LISTEN: &str = "0.0.0.0:10080";
/// Default HTTP listen address (health and `/metrics`).
pub const DEFAULT_HTTP_LISTEN: &str = "0.0.0.0:10081";
/// Default sink: a JSONL file.
pub const DEFAULT_SINK: &str = "file:./telespool-gateway/events.jsonl";
/// Default JetStream stream name.
pub const DEFAULT_NATS_STREAM: &str = "telemetry-events";
/// Default subject events are published on.
pub const DEFAULT_NATS_SUBJECT: &str = "telemetry.events";
/// Default publish-ack timeout: async-nats' default for awaited acks.
pub const DEFAULT_NATS_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Default duplicate window of a stream the gateway creates (JetStream's
/// own default).
pub const DEFAULT_NATS_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Default number of a payload's events published at once (Sourcegraph's
/// `TELEMETRY_GATEWAY_EVENTS_STREAM_PUBLISH_CONCURRENCY` default).
pub const DEFAULT_PUBLISH_CONCURRENCY: usize = 250;
/// Largest accepted publish concurrency.
pub const MAX_PUBLISH_CONCURRENCY: usize = 10_000;
/// Default size at which the JSONL file is rotated: 256 MiB.
pub const DEFAULT_FILE_ROTATE_BYTES: u64 = 256 * 1024 * 1024;
/// Smallest accepted rotation size: 4 KiB.
pub const MIN_FILE_ROTATE_BYTES: u64 = 4096;
/// Default time in-flight work gets to finish after a shutdown signal.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest gRPC message the gateway accepts: 16 MiB, so that the event
/// limits, not the transport, answer.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Where events go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkSpec {
    /// `file:PATH`: append JSONL lines to PATH.
    File(PathBuf),
    /// `nats://HOST:PORT`: publish to NATS JetStream.
    Nats(String),
    /// `log`: log each message (development).
    Log,
}

/// Why a sink spec could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SinkSpecError {
    /// `file:` with nothing after it.
    #[error("file: needs a path, as in file:./telespool-gateway/events.jsonl")]
    EmptyPath,
    /// `nats://` with no host and port.
    #[error("nats:// needs HOST:PORT, as in nats://127.0.0.1:4222")]
    EmptyNatsAddress,
    /// Something else.
    #[error("expected file:PATH, nats://HOST:PORT or log")]
    Unknown,
}

impl FromStr for SinkSpec {
    type Err = SinkSpecError;

    fn from_str(s: &str) -> Result<SinkSpec, SinkSpecError> {
        if s == "log" {
            Ok(SinkSpec::Log)
        } else if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                return Err(SinkSpecError::EmptyPath);
            }
            Ok(SinkSpec::File(PathBuf::from(path)))
        } else if let Some(address) = s.strip_prefix("nats://") {
            if address.is_empty() {
                return Err(SinkSpecError::EmptyNatsAddress);
            }
            Ok(SinkSpec::Nats(s.to_owned()))
        } else {
            Err(SinkSpecError::Unknown)
        }
    }
}

impl fmt::Display for SinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkSpec::File(path) => write!(f, "file:{}", path.display()),
            SinkSpec::Nats(url) => f.write_str(url),
            SinkSpec::Log => f.write_str("log"),
        }
    }
}

/// NATS JetStream settings (used when the sink is `nats://…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsConfig {
    /// Stream that stores the events; created (file storage) when missing.
    /// Default [`DEFAULT_NATS_STREAM`].
    pub stream: String,
    /// Subject each event is published on. Default [`DEFAULT_NATS_SUBJECT`].
    pub subject: String,
    /// How long to wait for a publish ack before reporting the event as not
    /// recorded. Default [`DEFAULT_NATS_ACK_TIMEOUT`] (5 s).
    pub ack_timeout: Duration,
    /// Duplicate window of a stream the gateway creates: a redelivered event
    /// id inside it is stored once. Default [`DEFAULT_NATS_DUPLICATE_WINDOW`]
    /// (2 min).
    pub duplicate_window: Duration,
}

/// JSONL file sink settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileConfig {
    /// The file is rotated (renamed with a numeric suffix) before it would
    /// grow past this many bytes. Default [`DEFAULT_FILE_ROTATE_BYTES`].
    pub rotate_bytes: u64,
}

/// Everything `telespool gateway` runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    /// gRPC address. Default [`DEFAULT_GRPC_LISTEN`].
    pub grpc_listen: SocketAddr,
    /// HTTP address for `/healthz`, `/readyz`, `/metrics`. Default
    /// [`DEFAULT_HTTP_LISTEN`].
    pub http_listen: SocketAddr,
    /// Where events go. Default [`DEFAULT_SINK`].
    pub sink: SinkSpec,
    /// NATS settings.
    pub nats: NatsConfig,
    /// File sink settings.
    pub file: FileConfig,
    /// File of accepted license keys (or their SHA-256 hashes). Default none:
    /// licensed identifiers are refused unless `accept_any_license`.
    pub license_keys: Option<PathBuf>,
    /// File of bearer tokens for managed services. Default none: managed
    /// services are refused.
    pub service_tokens: Option<PathBuf>,
    /// Accept every non-empty license key (development only). Default false.
    pub accept_any_license: bool,
    /// Events of one payload published at once. Default
    /// [`DEFAULT_PUBLISH_CONCURRENCY`] (250).
    pub publish_concurrency: usize,
    /// Time in-flight payloads get to finish after SIGTERM or ctrl-c.
    /// Default [`DEFAULT_SHUTDOWN_TIMEOUT`] (30 s).
    pub shutdown_timeout: Duration,
    /// Connection limits, deadlines and HTTP/2 settings of both listeners.
    /// Default [`ListenerLimits::gateway`] (see [`crate::net`]).
    pub limits: ListenerLimits,
}

/// A setting's name as a TOML key (the flag is the same with dashes, the
/// environment variable is `TELESPOOL_GATEWAY_` and the name upper-cased).
pub type SettingName = &'static str;

/// A setting that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("reading config file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("config file {path}: {source}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's complaint (with line and column).
        source: Box<toml::de::Error>,
    },
    /// An address that does not parse as `IP:PORT`.
    #[error("{setting} = {value:?} is not an IP:PORT address: {source}")]
    BadAddress {
        /// The setting.
        setting: SettingName,
        /// The value given.
        value: String,
        /// The parser's complaint.
        source: std::net::AddrParseError,
    },
    /// A sink that does not parse.
    #[error("sink = {value:?} is invalid: {source}")]
    BadSink {
        /// The value given.
        value: String,
        /// What is wrong.
        source: SinkSpecError,
    },
    /// A duration that does not parse (`5s`, `2m`, `1h30m`).
    #[error("{setting} = {value:?} is not a duration such as 5s or 2m: {source}")]
    BadDuration {
        /// The setting.
        setting: SettingName,
        /// The value given.
        value: String,
        /// The parser's complaint.
        source: humantime::DurationError,
    },
    /// A number outside its range.
    #[error("{setting} = {value} is outside {min}..={max}")]
    OutOfRange {
        /// The setting.
        setting: SettingName,
        /// The value given.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A name that NATS would refuse or misread.
    #[error("{setting} = {value:?} is invalid: {reason}")]
    BadName {
        /// The setting.
        setting: SettingName,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Both servers on one address.
    #[error("grpc_listen and http_listen are both {address}; they need different ports")]
    SameAddress {
        /// The shared address.
        address: SocketAddr,
    },
    /// A listener limit outside its range.
    #[error(transparent)]
    Limit(#[from] LimitError),
}

/// One layer of settings, every one optional: the config file, or the flags
/// and environment (clap merges those two). [`GatewaySettings::over`] stacks
/// layers; [`GatewayConfig::resolve`] fills the rest with defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// `grpc_listen`.
    pub grpc_listen: Option<String>,
    /// `http_listen`.
    pub http_listen: Option<String>,
    /// `sink`.
    pub sink: Option<String>,
    /// `nats_stream`.
    pub nats_stream: Option<String>,
    /// `nats_subject`.
    pub nats_subject: Option<String>,
    /// `nats_ack_timeout` (duration).
    pub nats_ack_timeout: Option<String>,
    /// `nats_duplicate_window` (duration).
    pub nats_duplicate_window: Option<String>,
    /// `file_rotate_bytes`.
    pub file_rotate_bytes: Option<u64>,
    /// `license_keys`.
    pub license_keys: Option<PathBuf>,
    /// `service_tokens`.
    pub service_tokens: Option<PathBuf>,
    /// `accept_any_license`.
    pub accept_any_license: Option<bool>,
    /// `publish_concurrency`.
    pub publish_concurrency: Option<u64>,
    /// `shutdown_timeout` (duration).
    pub shutdown_timeout: Option<String>,
    /// `max_connections`.
    pub max_connections: Option<u64>,
    /// `http2_max_streams`.
    pub http2_max_streams: Option<u64>,
    /// `http2_keepalive_interval` (duration).
    pub http2_keepalive_interval: Option<String>,
    /// `http2_keepalive_timeout` (duration).
    pub http2_keepalive_timeout: Option<String>,
    /// `max_connection_age` (duration).
    pub max_connection_age: Option<String>,
    /// `max_connection_age_grace` (duration).
    pub max_connection_age_grace: Option<String>,
    /// `http_header_timeout` (duration).
    pub http_header_timeout: Option<String>,
    /// `http_idle_timeout` (duration).
    pub http_idle_timeout: Option<String>,
    /// `request_timeout` (duration).
    pub request_timeout: Option<String>,
}

impl GatewaySettings {
    /// Reads a TOML config file (keys as the field names above).
    pub fn from_file(path: &Path) -> Result<GatewaySettings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses TOML text; `path` is only for error messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<GatewaySettings, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::ParseFile {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// `self` stacked over `lower`: each setting from `self` when set there.
    pub fn over(self, lower: GatewaySettings) -> GatewaySettings {
        GatewaySettings {
            grpc_listen: self.grpc_listen.or(lower.grpc_listen),
            http_listen: self.http_listen.or(lower.http_listen),
            sink: self.sink.or(lower.sink),
            nats_stream: self.nats_stream.or(lower.nats_stream),
            nats_subject: self.nats_subject.or(lower.nats_subject),
            nats_ack_timeout: self.nats_ack_timeout.or(lower.nats_ack_timeout),
            nats_duplicate_window: self.nats_duplicate_window.or(lower.nats_duplicate_window),
            file_rotate_bytes: self.file_rotate_bytes.or(lower.file_rotate_bytes),
            license_keys: self.license_keys.or(lower.license_keys),
            service_tokens: self.service_tokens.or(lower.service_tokens),
            accept_any_license: self.accept_any_license.or(lower.accept_any_license),
            publish_concurrency: self.publish_concurrency.or(lower.publish_concurrency),
            shutdown_timeout: self.shutdown_timeout.or(lower.shutdown_timeout),
            max_connections: self.max_connections.or(lower.max_connections),
            http2_max_streams: self.http2_max_streams.or(lower.http2_max_streams),
            http2_keepalive_interval: self
                .http2_keepalive_interval
                .or(lower.http2_keepalive_interval),
            http2_keepalive_timeout: self
                .http2_keepalive_timeout
                .or(lower.http2_keepalive_timeout),
            max_connection_age: self.max_connection_age.or(lower.max_connection_age),
            max_connection_age_grace: self
                .max_connection_age_grace
                .or(lower.max_connection_age_grace),
            http_header_timeout: self.http_header_timeout.or(lower.http_header_timeout),
            http_idle_timeout: self.http_idle_timeout.or(lower.http_idle_timeout),
            request_timeout: self.request_timeout.or(lower.request_timeout),
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> GatewayConfig {
        GatewayConfig {
            grpc_listen: SocketAddr::from(([0, 0, 0, 0], 10080)),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 10081)),
            sink: SinkSpec::File(PathBuf::from("./telespool-gateway/events.jsonl")),
            nats: NatsConfig {
                stream: DEFAULT_NATS_STREAM.to_owned(),
                subject: DEFAULT_NATS_SUBJECT.to_owned(),
                ack_timeout: DEFAULT_NATS_ACK_TIMEOUT,
                duplicate_window: DEFAULT_NATS_DUPLICATE_WINDOW,
            },
            file: FileConfig {
                rotate_bytes: DEFAULT_FILE_ROTATE_BYTES,
            },
            license_keys: None,
            service_tokens: None,
            accept_any_license: false,
            publish_concurrency: DEFAULT_PUBLISH_CONCURRENCY,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            limits: ListenerLimits::gateway(),
        }
    }
}

impl GatewayConfig {
    /// Fills the unset settings with the defaults, parses, and validates.
    pub fn resolve(settings: GatewaySettings) -> Result<GatewayConfig, ConfigError> {
        let d = GatewayConfig::default();
        let config = GatewayConfig {
            grpc_listen: address("grpc_listen", settings.grpc_listen, d.grpc_listen)?,
            http_listen: address("http_listen", settings.http_listen, d.http_listen)?,
            sink: match settings.sink {
                None => d.sink,
                Some(value) => value
                    .parse()
                    .map_err(|source| ConfigError::BadSink { value, source })?,
            },
            nats: NatsConfig {
                stream: settings.nats_stream.unwrap_or(d.nats.stream),
                subject: settings.nats_subject.unwrap_or(d.nats.subject),
                ack_timeout: duration(
                    "nats_ack_timeout",
                    settings.nats_ack_timeout,
                    d.nats.ack_timeout,
                )?,
                duplicate_window: duration(
                    "nats_duplicate_window",
                    settings.nats_duplicate_window,
                    d.nats.duplicate_window,
                )?,
            },
            file: FileConfig {
                rotate_bytes: settings.file_rotate_bytes.unwrap_or(d.file.rotate_bytes),
            },
            license_keys: settings.license_keys,
            service_tokens: settings.service_tokens,
            accept_any_license: settings.accept_any_license.unwrap_or(false),
            publish_concurrency: match settings.publish_concurrency {
                None => d.publish_concurrency,
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            },
            shutdown_timeout: duration(
                "shutdown_timeout",
                settings.shutdown_timeout,
                d.shutdown_timeout,
            )?,
            limits: ListenerLimits {
                max_connections: settings
                    .max_connections
                    .map_or(d.limits.max_connections, |n| {
                        usize::try_from(n).unwrap_or(usize::MAX)
                    }),
                http2_max_streams: settings
                    .http2_max_streams
                    .map_or(d.limits.http2_max_streams, |n| {
                        u32::try_from(n).unwrap_or(u32::MAX)
                    }),
                http2_keepalive_interval: duration(
                    "http2_keepalive_interval",
                    settings.http2_keepalive_interval,
                    d.limits.http2_keepalive_interval,
                )?,
                http2_keepalive_timeout: duration(
                    "http2_keepalive_timeout",
                    settings.http2_keepalive_timeout,
                    d.limits.http2_keepalive_timeout,
                )?,
                max_connection_age: duration(
                    "max_connection_age",
                    settings.max_connection_age,
                    d.limits.max_connection_age,
                )?,
                max_connection_age_grace: duration(
                    "max_connection_age_grace",
                    settings.max_connection_age_grace,
                    d.limits.max_connection_age_grace,
                )?,
                http_header_timeout: duration(
                    "http_header_timeout",
                    settings.http_header_timeout,
                    d.limits.http_header_timeout,
                )?,
                http_idle_timeout: duration(
                    "http_idle_timeout",
                    settings.http_idle_timeout,
                    d.limits.http_idle_timeout,
                )?,
                request_timeout: duration(
                    "request_timeout",
                    settings.request_timeout,
                    d.limits.request_timeout,
                )?,
            },
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and names; each error names its setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        in_range(
            "publish_concurrency",
            self.publish_concurrency as u64,
            1,
            MAX_PUBLISH_CONCURRENCY as u64,
        )?;
        in_range(
            "file_rotate_bytes",
            self.file.rotate_bytes,
            MIN_FILE_ROTATE_BYTES,
            u64::MAX,
        )?;
        for (setting, value) in [
            ("nats_ack_timeout", self.nats.ack_timeout),
            ("nats_duplicate_window", self.nats.duplicate_window),
            ("shutdown_timeout", self.shutdown_timeout),
        ] {
            let millis = u64::try_from(value.as_millis()).unwrap_or(u64::MAX);
            in_range(setting, millis, 1, u64::MAX).map_err(|_| ConfigError::BadName {
                setting,
                value: humantime::format_duration(value).to_string(),
                reason: "must be at least 1ms",
            })?;
        }
        check_stream_name(&self.nats.stream)?;
        check_subject(&self.nats.subject)?;
        self.limits.validate()?;
        if self.grpc_listen == self.http_listen && self.grpc_listen.port() != 0 {
            return Err(ConfigError::SameAddress {
                address: self.grpc_listen,
            });
        }
        Ok(())
    }
}

fn address(
    setting: SettingName,
    value: Option<String>,
    default: SocketAddr,
) -> Result<SocketAddr, ConfigError> {
    match value {
        None => Ok(default),
        Some(value) => value.parse().map_err(|source| ConfigError::BadAddress {
            setting,
            value,
            source,
        }),
    }
}

fn duration(
    setting: SettingName,
    value: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(value) => {
            humantime::parse_duration(&value).map_err(|source| ConfigError::BadDuration {
                setting,
                value,
                source,
            })
        }
    }
}

fn in_range(setting: SettingName, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            setting,
            value,
            min,
            max,
        })
    }
}

/// JetStream stream names: no whitespace, `.`, `*`, `>`, path separators.
fn check_stream_name(name: &str) -> Result<(), ConfigError> {
    let bad = |reason| ConfigError::BadName {
        setting: "nats_stream",
        value: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("must not be empty"));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        return Err(bad(
            "must not contain whitespace, '.', '*', '>', '/' or '\\'",
        ));
    }
    Ok(())
}

/// A literal NATS subject: dot-separated non-empty tokens, no wildcards.
fn check_subject(subject: &str) -> Result<(), ConfigError> {
    let bad = |reason| ConfigError::BadName {
        setting: "nats_subject",
        value: subject.to_owned(),
        reason,
    };
    if subject.is_empty() {
        return Err(bad("must not be empty"));
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not contain whitespace"));
    }
    for token in subject.split('.') {
        if token.is_empty() {
            return Err(bad("tokens between dots must not be empty"));
        }
        if token == "*" || token == ">" {
            return Err(bad("must be a literal subject, without wildcards"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> GatewaySettings {
        GatewaySettings::from_toml(toml, Path::new("test.toml")).unwrap()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = GatewayConfig::resolve(GatewaySettings::default()).unwrap();
        assert_eq!(config, GatewayConfig::default());
        assert_eq!(config.grpc_listen.to_string(), DEFAULT_GRPC_LISTEN);
        assert_eq!(config.http_listen.to_string(), DEFAULT_HTTP_LISTEN);
        assert_eq!(config.sink.to_string(), DEFAULT_SINK);
        assert_eq!(config.publish_concurrency, 250);
        assert_eq!(config.file.rotate_bytes, 256 * 1024 * 1024);
    }

    #[test]
    fn a_higher_layer_wins_setting_by_setting() {
        let file = settings(
            "grpc_listen = \"127.0.0.1:1\"\nhttp_listen = \"127.0.0.1:2\"\npublish_concurrency = 10",
        );
        let flags = GatewaySettings {
            grpc_listen: Some("127.0.0.1:3".into()),
            ..GatewaySettings::default()
        };
        let config = GatewayConfig::resolve(flags.over(file)).unwrap();
        assert_eq!(config.grpc_listen.to_string(), "127.0.0.1:3");
        assert_eq!(config.http_listen.to_string(), "127.0.0.1:2");
        assert_eq!(config.publish_concurrency, 10);
    }

    #[test]
    fn every_key_of_the_file_is_known_and_unknown_keys_are_refused() {
        let all = settings(
            r#"
            grpc_listen = "127.0.0.1:1"
            http_listen = "127.0.0.1:2"
            sink = "nats://127.0.0.1:4222"
            nats_stream = "s"
            nats_subject = "a.b"
            nats_ack_timeout = "2s"
            nats_duplicate_window = "10m"
            file_rotate_bytes = 8192
            license_keys = "keys.txt"
            service_tokens = "tokens.txt"
            accept_any_license = true
            publish_concurrency = 7
            shutdown_timeout = "1m"
            max_connections = 8
            http2_max_streams = 10
            http2_keepalive_interval = "30s"
            http2_keepalive_timeout = "5s"
            max_connection_age = "10m"
            max_connection_age_grace = "1m"
            http_header_timeout = "1s"
            http_idle_timeout = "2m"
            request_timeout = "15s"
            "#,
        );
        let config = GatewayConfig::resolve(all).unwrap();
        assert_eq!(
            config.limits,
            ListenerLimits {
                max_connections: 8,
                http2_max_streams: 10,
                http2_keepalive_interval: Duration::from_secs(30),
                http2_keepalive_timeout: Duration::from_secs(5),
                max_connection_age: Duration::from_secs(600),
                max_connection_age_grace: Duration::from_secs(60),
                http_header_timeout: Duration::from_secs(1),
                http_idle_timeout: Duration::from_secs(120),
                request_timeout: Duration::from_secs(15),
            }
        );
        assert_eq!(config.sink, SinkSpec::Nats("nats://127.0.0.1:4222".into()));
        assert_eq!(config.nats.ack_timeout, Duration::from_secs(2));
        assert_eq!(config.nats.duplicate_window, Duration::from_secs(600));
        assert_eq!(config.shutdown_timeout, Duration::from_secs(60));
        assert!(config.accept_any_license);
        let err = GatewaySettings::from_toml("grpc_lsten = \"x\"", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c.toml") && err.contains("grpc_lsten"),
            "{err}"
        );
    }

    #[test]
    fn sink_specs_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!("log".parse(), Ok(SinkSpec::Log));
        assert_eq!(
            "file:/x/y.jsonl".parse(),
            Ok(SinkSpec::File(PathBuf::from("/x/y.jsonl")))
        );
        assert_eq!(
            "nats://h:1".parse(),
            Ok(SinkSpec::Nats("nats://h:1".into()))
        );
        let err = GatewayConfig::resolve(GatewaySettings {
            sink: Some("kafka://x".into()),
            ..GatewaySettings::default()
        })
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "sink = \"kafka://x\" is invalid: expected file:PATH, nats://HOST:PORT or log"
        );
    }

    #[test]
    fn errors_name_the_setting() {
        let cases: [(GatewaySettings, &str); 8] = [
            (
                GatewaySettings {
                    max_connections: Some(0),
                    ..Default::default()
                },
                "max_connections = 0 is outside 1..=1000000",
            ),
            (
                GatewaySettings {
                    http_header_timeout: Some("0s".into()),
                    ..Default::default()
                },
                "http_header_timeout",
            ),
            (
                GatewaySettings {
                    grpc_listen: Some("nope".into()),
                    ..Default::default()
                },
                "grpc_listen",
            ),
            (
                GatewaySettings {
                    publish_concurrency: Some(0),
                    ..Default::default()
                },
                "publish_concurrency = 0 is outside 1..=10000",
            ),
            (
                GatewaySettings {
                    nats_ack_timeout: Some("soon".into()),
                    ..Default::default()
                },
                "nats_ack_timeout",
            ),
            (
                GatewaySettings {
                    nats_subject: Some("a.*".into()),
                    ..Default::default()
                },
                "nats_subject",
            ),
            (
                GatewaySettings {
                    nats_stream: Some("a.b".into()),
                    ..Default::default()
                },
                "nats_stream",
            ),
            (
                GatewaySettings {
                    file_rotate_bytes: Some(10),
                    ..Default::default()
                },
                "file_rotate_bytes",
            ),
        ];
        for (settings, expected) in cases {
            let err = GatewayConfig::resolve(settings).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }

    #[test]
    fn grpc_and_http_on_the_same_address_are_refused() {
        let err = GatewayConfig::resolve(GatewaySettings {
            grpc_listen: Some("127.0.0.1:9".into()),
            http_listen: Some("127.0.0.1:9".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(err, ConfigError::SameAddress { .. }), "{err}");
    }
}
