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
/// Default number of rotated JSONL files kept (older ones are deleted):
/// with the default rotation size, about 2.5 GiB.
pub const DEFAULT_FILE_KEEP: u64 = 10;
/// Largest accepted `file_keep`.
pub const MAX_FILE_KEEP: u64 = 1_000_000;
/// Smallest accepted `file_max_age`.
pub const MIN_FILE_MAX_AGE: Duration = Duration::from_secs(1);
/// Default treatment of the license key in published JSON: its SHA-256
/// (see [`PublishLicenseKey`]).
pub const DEFAULT_PUBLISH_LICENSE_KEY: PublishLicenseKey = PublishLicenseKey::Sha256;
/// Default time in-flight work gets to finish after a shutdown signal.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest gRPC message the gateway accepts: 16 MiB, so that the event
/// limits, not the transport, answer. It applies to the inflated message of
/// a gzip request.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Default most events in one `RecordEvents` payload (the sidecar's
/// default too); a payload over it is refused before any event is decoded.
pub const DEFAULT_MAX_EVENTS: usize = 10_000;
/// Largest accepted `max_events`.
pub const MAX_MAX_EVENTS: usize = 1_000_000;
/// Default decode budget: bytes of gRPC messages being received, decoded or
/// held at once, over all calls (see [`crate::grpc_limits`]).
pub const DEFAULT_DECODE_BUDGET_BYTES: u64 = crate::grpc_limits::DEFAULT_DECODE_BUDGET_BYTES;

/// Where events go. `Display` and `Debug` show a `nats://` URL without
/// its userinfo.
#[derive(Clone, PartialEq, Eq)]
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
    /// Userinfo that does not percent-decode to UTF-8.
    #[error("the user, password or token in the nats:// URL is not valid percent-encoded UTF-8")]
    BadNatsUserinfo,
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
        } else if s.starts_with("nats://") {
            NatsUrl::parse(s)?;
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
            SinkSpec::Nats(url) => f.write_str(&crate::secret::redact_url(url)),
            SinkSpec::Log => f.write_str("log"),
        }
    }
}

/// What the published JSON carries in `metadata.identifier.licensedInstance.licenseKey`.
///
/// Sourcegraph's gateway publishes the key as sent. A license key is a
/// credential (the gateway accepts a stream on it), and the published
/// events go to files and streams that more people and systems read than
/// the gateway's own configuration, which keeps only hashes
/// (`--license-keys`). The default is therefore [`PublishLicenseKey::Sha256`]:
/// consumers can still group and join events by license (the hash is
/// stable, and is the form `--license-keys` accepts), but cannot reuse it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishLicenseKey {
    /// The key as sent (Sourcegraph's behaviour; byte-compatible output).
    Raw,
    /// `sha256:` and the lowercase hex SHA-256 of the key.
    Sha256,
    /// No `licenseKey` field at all.
    Omit,
}

/// A `publish_license_key` value that is none of the three.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected raw, sha256 or omit")]
pub struct PublishLicenseKeyError;

impl FromStr for PublishLicenseKey {
    type Err = PublishLicenseKeyError;

    fn from_str(s: &str) -> Result<PublishLicenseKey, PublishLicenseKeyError> {
        match s {
            "raw" => Ok(PublishLicenseKey::Raw),
            "sha256" => Ok(PublishLicenseKey::Sha256),
            "omit" => Ok(PublishLicenseKey::Omit),
            _ => Err(PublishLicenseKeyError),
        }
    }
}

impl fmt::Display for PublishLicenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PublishLicenseKey::Raw => "raw",
            PublishLicenseKey::Sha256 => "sha256",
            PublishLicenseKey::Omit => "omit",
        })
    }
}

impl fmt::Debug for SinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkSpec::File(path) => f.debug_tuple("File").field(path).finish(),
            SinkSpec::Nats(url) => f
                .debug_tuple("Nats")
                .field(&crate::secret::redact_url(url))
                .finish(),
            SinkSpec::Log => f.write_str("Log"),
        }
    }
}

/// Credentials carried by a `nats://` URL's userinfo (percent-decoded).
#[derive(Clone, PartialEq, Eq)]
pub enum NatsUserinfo {
    /// `nats://USER:PASSWORD@HOST:PORT`.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// `nats://NAME@HOST:PORT`: a token, or the user when the password
    /// comes from `nats_password_file`.
    Single(String),
}

impl fmt::Debug for NatsUserinfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatsUserinfo::UserPassword { .. } => f.write_str("UserPassword(<redacted>)"),
            NatsUserinfo::Single(_) => f.write_str("Single(<redacted>)"),
        }
    }
}

/// A `nats://` sink URL taken apart: the address the client connects to
/// (no userinfo, safe to log) and the credentials the URL carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsUrl {
    /// `nats://HOST:PORT…` without userinfo.
    pub address: String,
    /// The userinfo, decoded.
    pub userinfo: Option<NatsUserinfo>,
}

impl NatsUrl {
    /// Parses a `nats://[USER[:PASSWORD]@]HOST:PORT` URL (the one place
    /// that does). The userinfo ends at the last `@`; its parts are
    /// percent-decoded (`%40` for `@`, `%3A` for `:`).
    pub fn parse(url: &str) -> Result<NatsUrl, SinkSpecError> {
        let rest = url.strip_prefix("nats://").ok_or(SinkSpecError::Unknown)?;
        let authority = crate::secret::url_authority(url).unwrap_or(rest);
        let (userinfo, host) = crate::secret::split_userinfo(authority);
        if host.is_empty() {
            return Err(SinkSpecError::EmptyNatsAddress);
        }
        let decode = |part: &str| -> Result<String, SinkSpecError> {
            percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| SinkSpecError::BadNatsUserinfo)
        };
        let userinfo = match userinfo {
            None | Some("") => None,
            Some(info) => Some(match info.split_once(':') {
                Some((user, password)) => NatsUserinfo::UserPassword {
                    user: decode(user)?,
                    password: decode(password)?,
                },
                None => NatsUserinfo::Single(decode(info)?),
            }),
        };
        Ok(NatsUrl {
            address: crate::secret::redact_url(url),
            userinfo,
        })
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
    /// NATS credentials file (user JWT and nkey seed). Default none.
    pub creds: Option<PathBuf>,
    /// PEM CA bundle for the server's certificate; setting it (or a client
    /// certificate) requires TLS. Default none: the system roots, and TLS
    /// only when the server asks for it.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for NATS mutual TLS. Default none.
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of `tls_cert`. Default none.
    pub tls_key: Option<PathBuf>,
    /// File holding the password of the user named in the sink URL
    /// (`nats://USER@HOST:PORT`). Default none.
    pub password_file: Option<PathBuf>,
    /// File holding an authentication token. Default none.
    pub token_file: Option<PathBuf>,
}

impl NatsConfig {
    /// Whether TLS is required (a CA file or a client certificate is set).
    pub fn tls_required(&self) -> bool {
        self.tls_ca.is_some() || self.tls_cert.is_some()
    }
}

/// JSONL file sink settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileConfig {
    /// The file is rotated (renamed with a numeric suffix) before it would
    /// grow past this many bytes. Default [`DEFAULT_FILE_ROTATE_BYTES`].
    pub rotate_bytes: u64,
    /// Rotated files kept; the oldest beyond this are deleted (at start and
    /// after each rotation). Default [`DEFAULT_FILE_KEEP`] (10);
    /// 1..=[`MAX_FILE_KEEP`].
    pub keep: u64,
    /// Rotated files last modified longer ago than this are deleted. Default
    /// none; at least [`MIN_FILE_MAX_AGE`].
    pub max_age: Option<Duration>,
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
    /// The license key in published JSON. Default
    /// [`DEFAULT_PUBLISH_LICENSE_KEY`] (`sha256`).
    pub publish_license_key: PublishLicenseKey,
    /// Certificate chain (PEM, leaf first) of the gRPC listener: with
    /// `tls_key`, the gRPC listener speaks TLS only. Default none: plain
    /// text. Reloaded on SIGHUP.
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of `tls_cert`. Default none.
    pub tls_key: Option<PathBuf>,
    /// CA bundle (PEM) that client certificates must chain to: mutual TLS,
    /// clients without a valid certificate are refused. Default none.
    pub tls_client_ca: Option<PathBuf>,
    /// Most events in one `RecordEvents` payload; more is refused with
    /// `INVALID_ARGUMENT` before any is decoded. Default
    /// [`DEFAULT_MAX_EVENTS`] (10,000).
    pub max_events: usize,
    /// Bytes of gRPC messages being received, decoded or held at once;
    /// past it, `RESOURCE_EXHAUSTED`. At least [`MAX_MESSAGE_BYTES`].
    /// Default [`DEFAULT_DECODE_BUDGET_BYTES`] (256 MiB).
    pub decode_budget_bytes: u64,
    /// Connection limits, deadlines and HTTP/2 settings of both listeners.
    /// Default [`ListenerLimits::gateway`] (see [`crate::net`]).
    pub limits: ListenerLimits,
}

impl GatewayConfig {
    /// The TLS files of the gRPC listener, when TLS is on.
    pub fn server_tls_files(&self) -> Option<crate::tls::server::ServerTlsFiles> {
        use crate::tls::PemFile;
        let (cert, key) = self.tls_cert.as_ref().zip(self.tls_key.as_ref())?;
        Some(crate::tls::server::ServerTlsFiles {
            cert: PemFile::new("tls_cert", cert),
            key: PemFile::new("tls_key", key),
            client_ca: self
                .tls_client_ca
                .as_ref()
                .map(|ca| PemFile::new("tls_client_ca", ca)),
        })
    }
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
        /// The parser's complaint: line, column, key and reason, never the
        /// value (it may be a secret).
        source: crate::settings::TomlError,
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
    /// A `publish_license_key` that does not parse.
    #[error("publish_license_key = {value:?} is invalid: {source}")]
    BadPublishLicenseKey {
        /// The value given.
        value: String,
        /// What is wrong.
        source: PublishLicenseKeyError,
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
    /// One of two settings that go together.
    #[error("{setting} is set but {missing} is not: they go together")]
    Unpaired {
        /// The setting given.
        setting: SettingName,
        /// The one missing.
        missing: SettingName,
    },
    /// A setting that needs another.
    #[error("{setting} needs {needs}")]
    Needs {
        /// The setting given.
        setting: SettingName,
        /// What it needs.
        needs: &'static str,
    },
    /// Settings that exclude each other.
    #[error("{setting} and {other} cannot both be set: give the NATS credentials one way")]
    Conflict {
        /// One setting.
        setting: SettingName,
        /// The other (or the part of the sink URL).
        other: &'static str,
    },
    /// A size that does not parse (`256MiB`, `1GiB`, a number of bytes).
    #[error("{setting} = {value:?} is not a size: {reason}")]
    BadSize {
        /// The setting.
        setting: SettingName,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
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
    /// `file_keep`.
    pub file_keep: Option<u64>,
    /// `file_max_age` (duration).
    pub file_max_age: Option<String>,
    /// `publish_license_key` (`raw`, `sha256` or `omit`).
    pub publish_license_key: Option<String>,
    /// `tls_cert`.
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`.
    pub tls_key: Option<PathBuf>,
    /// `tls_client_ca`.
    pub tls_client_ca: Option<PathBuf>,
    /// `nats_creds`.
    pub nats_creds: Option<PathBuf>,
    /// `nats_tls_ca`.
    pub nats_tls_ca: Option<PathBuf>,
    /// `nats_tls_cert`.
    pub nats_tls_cert: Option<PathBuf>,
    /// `nats_tls_key`.
    pub nats_tls_key: Option<PathBuf>,
    /// `nats_password_file`.
    pub nats_password_file: Option<PathBuf>,
    /// `nats_token_file`.
    pub nats_token_file: Option<PathBuf>,
    /// `max_events`.
    pub max_events: Option<u64>,
    /// `decode_budget` (size: bytes, or with KiB, MiB, GiB).
    pub decode_budget: Option<String>,
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
        crate::settings::file::parse(text).map_err(|source| ConfigError::ParseFile {
            path: path.to_owned(),
            source,
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
            file_keep: self.file_keep.or(lower.file_keep),
            file_max_age: self.file_max_age.or(lower.file_max_age),
            publish_license_key: self.publish_license_key.or(lower.publish_license_key),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            tls_client_ca: self.tls_client_ca.or(lower.tls_client_ca),
            nats_creds: self.nats_creds.or(lower.nats_creds),
            nats_tls_ca: self.nats_tls_ca.or(lower.nats_tls_ca),
            nats_tls_cert: self.nats_tls_cert.or(lower.nats_tls_cert),
            nats_tls_key: self.nats_tls_key.or(lower.nats_tls_key),
            nats_password_file: self.nats_password_file.or(lower.nats_password_file),
            nats_token_file: self.nats_token_file.or(lower.nats_token_file),
            max_events: self.max_events.or(lower.max_events),
            decode_budget: self.decode_budget.or(lower.decode_budget),
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
                creds: None,
                tls_ca: None,
                tls_cert: None,
                tls_key: None,
                password_file: None,
                token_file: None,
            },
            file: FileConfig {
                rotate_bytes: DEFAULT_FILE_ROTATE_BYTES,
                keep: DEFAULT_FILE_KEEP,
                max_age: None,
            },
            license_keys: None,
            service_tokens: None,
            accept_any_license: false,
            publish_concurrency: DEFAULT_PUBLISH_CONCURRENCY,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            publish_license_key: DEFAULT_PUBLISH_LICENSE_KEY,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            max_events: DEFAULT_MAX_EVENTS,
            decode_budget_bytes: DEFAULT_DECODE_BUDGET_BYTES,
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
                Some(value) => value.parse().map_err(|source| ConfigError::BadSink {
                    value: crate::secret::redact_url(&value),
                    source,
                })?,
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
                creds: settings.nats_creds,
                tls_ca: settings.nats_tls_ca,
                tls_cert: settings.nats_tls_cert,
                tls_key: settings.nats_tls_key,
                password_file: settings.nats_password_file,
                token_file: settings.nats_token_file,
            },
            file: FileConfig {
                rotate_bytes: settings.file_rotate_bytes.unwrap_or(d.file.rotate_bytes),
                keep: settings.file_keep.unwrap_or(d.file.keep),
                max_age: match settings.file_max_age {
                    None => None,
                    Some(value) => Some(duration("file_max_age", Some(value), Duration::ZERO)?),
                },
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
            publish_license_key: match settings.publish_license_key {
                None => d.publish_license_key,
                Some(value) => value
                    .parse()
                    .map_err(|source| ConfigError::BadPublishLicenseKey { value, source })?,
            },
            tls_cert: settings.tls_cert,
            tls_key: settings.tls_key,
            tls_client_ca: settings.tls_client_ca,
            max_events: match settings.max_events {
                None => d.max_events,
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            },
            decode_budget_bytes: match settings.decode_budget {
                None => d.decode_budget_bytes,
                Some(value) => {
                    crate::config::parse_bytes(&value).map_err(|reason| ConfigError::BadSize {
                        setting: "decode_budget",
                        value,
                        reason,
                    })?
                }
            },
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
            "max_events",
            self.max_events as u64,
            1,
            MAX_MAX_EVENTS as u64,
        )?;
        in_range(
            "decode_budget",
            self.decode_budget_bytes,
            MAX_MESSAGE_BYTES as u64,
            u64::MAX,
        )?;
        in_range(
            "file_rotate_bytes",
            self.file.rotate_bytes,
            MIN_FILE_ROTATE_BYTES,
            u64::MAX,
        )?;
        in_range("file_keep", self.file.keep, 1, MAX_FILE_KEEP)?;
        if let Some(age) = self.file.max_age
            && age < MIN_FILE_MAX_AGE
        {
            return Err(ConfigError::BadName {
                setting: "file_max_age",
                value: humantime::format_duration(age).to_string(),
                reason: "must be at least 1s",
            });
        }
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
        paired(("tls_cert", &self.tls_cert), ("tls_key", &self.tls_key))?;
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return Err(ConfigError::Needs {
                setting: "tls_client_ca",
                needs: "tls_cert and tls_key (mutual TLS is TLS with client certificates)",
            });
        }
        if let SinkSpec::Nats(url) = &self.sink {
            self.nats.validate(url)?;
        }
        Ok(())
    }
}

/// Both settings or neither.
fn paired(
    (a, a_value): (SettingName, &Option<PathBuf>),
    (b, b_value): (SettingName, &Option<PathBuf>),
) -> Result<(), ConfigError> {
    match (a_value, b_value) {
        (Some(_), None) => Err(ConfigError::Unpaired {
            setting: a,
            missing: b,
        }),
        (None, Some(_)) => Err(ConfigError::Unpaired {
            setting: b,
            missing: a,
        }),
        _ => Ok(()),
    }
}

impl NatsConfig {
    /// The NATS credentials come one way: a creds file, a password (with
    /// the user in the URL), or a token; TLS certificate and key together.
    fn validate(&self, url: &str) -> Result<(), ConfigError> {
        paired(
            ("nats_tls_cert", &self.tls_cert),
            ("nats_tls_key", &self.tls_key),
        )?;
        let userinfo = NatsUrl::parse(url)
            .map_err(|source| ConfigError::BadSink {
                value: crate::secret::redact_url(url),
                source,
            })?
            .userinfo;
        let conflict = |setting, other| Err(ConfigError::Conflict { setting, other });
        if self.creds.is_some() {
            if self.password_file.is_some() {
                return conflict("nats_creds", "nats_password_file");
            }
            if self.token_file.is_some() {
                return conflict("nats_creds", "nats_token_file");
            }
            if userinfo.is_some() {
                return conflict("nats_creds", "a user or token in the sink URL");
            }
        }
        if self.password_file.is_some() {
            if self.token_file.is_some() {
                return conflict("nats_password_file", "nats_token_file");
            }
            match userinfo {
                Some(NatsUserinfo::Single(_)) => {}
                Some(NatsUserinfo::UserPassword { .. }) => {
                    return conflict("nats_password_file", "a password in the sink URL");
                }
                None => {
                    return Err(ConfigError::Needs {
                        setting: "nats_password_file",
                        needs: "a user in the sink URL: nats://USER@HOST:PORT",
                    });
                }
            }
        }
        if self.token_file.is_some() && userinfo.is_some() {
            return conflict("nats_token_file", "a user or token in the sink URL");
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
        assert_eq!(config.file.keep, 10);
        assert_eq!(config.file.max_age, None);
        assert_eq!(config.publish_license_key, PublishLicenseKey::Sha256);
        assert_eq!(config.max_events, 10_000);
        assert_eq!(config.decode_budget_bytes, 256 * 1024 * 1024);
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
            file_keep = 3
            file_max_age = "7d"
            publish_license_key = "omit"
            tls_cert = "cert.pem"
            tls_key = "key.pem"
            tls_client_ca = "ca.pem"
            nats_creds = "user.creds"
            nats_tls_ca = "nats-ca.pem"
            nats_tls_cert = "nats-cert.pem"
            nats_tls_key = "nats-key.pem"
            max_events = 500
            decode_budget = "64MiB"
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
        assert_eq!(config.file.keep, 3);
        assert_eq!(config.file.max_age, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(config.publish_license_key, PublishLicenseKey::Omit);
        assert_eq!(config.max_events, 500);
        assert_eq!(config.decode_budget_bytes, 64 << 20);
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
        let cases: [(GatewaySettings, &str); 14] = [
            (
                GatewaySettings {
                    file_keep: Some(0),
                    ..Default::default()
                },
                "file_keep = 0 is outside 1..=1000000",
            ),
            (
                GatewaySettings {
                    file_max_age: Some("10ms".into()),
                    ..Default::default()
                },
                "file_max_age",
            ),
            (
                GatewaySettings {
                    publish_license_key: Some("md5".into()),
                    ..Default::default()
                },
                "publish_license_key = \"md5\" is invalid: expected raw, sha256 or omit",
            ),
            (
                GatewaySettings {
                    max_events: Some(0),
                    ..Default::default()
                },
                "max_events = 0 is outside 1..=1000000",
            ),
            (
                GatewaySettings {
                    decode_budget: Some("1MiB".into()),
                    ..Default::default()
                },
                "decode_budget = 1048576 is outside 16777216..",
            ),
            (
                GatewaySettings {
                    decode_budget: Some("lots".into()),
                    ..Default::default()
                },
                "decode_budget = \"lots\" is not a size",
            ),
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
    fn tls_files_come_in_pairs_and_a_client_ca_needs_a_certificate() {
        let err = GatewayConfig::resolve(GatewaySettings {
            tls_cert: Some("cert.pem".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert_eq!(err, "tls_cert is set but tls_key is not: they go together");
        let err = GatewayConfig::resolve(GatewaySettings {
            tls_key: Some("key.pem".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("tls_key is set but tls_cert"), "{err}");
        let err = GatewayConfig::resolve(GatewaySettings {
            tls_client_ca: Some("ca.pem".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("tls_client_ca needs tls_cert"), "{err}");
        let config = GatewayConfig::resolve(GatewaySettings {
            tls_cert: Some("cert.pem".into()),
            tls_key: Some("key.pem".into()),
            tls_client_ca: Some("ca.pem".into()),
            ..Default::default()
        })
        .unwrap();
        let files = config.server_tls_files().unwrap();
        assert_eq!(files.cert.setting, "tls_cert");
        assert_eq!(files.client_ca.unwrap().path, PathBuf::from("ca.pem"));
        assert!(GatewayConfig::default().server_tls_files().is_none());
    }

    #[test]
    fn nats_urls_give_up_their_userinfo_percent_decoded() {
        let url = NatsUrl::parse("nats://alice:p%40ss:w@127.0.0.1:4222").unwrap();
        assert_eq!(url.address, "nats://127.0.0.1:4222");
        assert_eq!(
            url.userinfo,
            Some(NatsUserinfo::UserPassword {
                user: "alice".into(),
                password: "p@ss:w".into()
            })
        );
        let url = NatsUrl::parse("nats://s3cr3t-token@nats.example.com").unwrap();
        assert_eq!(url.address, "nats://nats.example.com");
        assert_eq!(
            url.userinfo,
            Some(NatsUserinfo::Single("s3cr3t-token".into()))
        );
        assert_eq!(NatsUrl::parse("nats://h:1").unwrap().userinfo, None);
        assert_eq!(
            NatsUrl::parse("nats://user@"),
            Err(SinkSpecError::EmptyNatsAddress)
        );
        assert_eq!(
            NatsUrl::parse("nats://%ff@h:1"),
            Err(SinkSpecError::BadNatsUserinfo)
        );
        assert!(!format!("{:?}", url_debug()).contains("hunter2"));
    }

    fn url_debug() -> (NatsUrl, SinkSpec, GatewayConfig) {
        let url = "nats://alice:hunter2@h:1";
        let config = GatewayConfig::resolve(GatewaySettings {
            sink: Some(url.into()),
            ..Default::default()
        })
        .unwrap();
        (NatsUrl::parse(url).unwrap(), url.parse().unwrap(), config)
    }

    #[test]
    fn a_nats_sink_shows_no_password_in_display_debug_or_errors() {
        let (_, spec, config) = url_debug();
        assert_eq!(spec.to_string(), "nats://h:1");
        assert!(!format!("{spec:?} {config:?}").contains("hunter2"));
        let err = GatewayConfig::resolve(GatewaySettings {
            sink: Some("nats://alice:hunter2@".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(!err.contains("hunter2") && err.contains("nats://"), "{err}");
    }

    #[test]
    fn nats_credentials_are_given_one_way() {
        let nats = |sink: &str, tweak: fn(&mut GatewaySettings)| {
            let mut settings = GatewaySettings {
                sink: Some(sink.into()),
                ..Default::default()
            };
            tweak(&mut settings);
            GatewayConfig::resolve(settings).map_err(|e| e.to_string())
        };
        assert!(nats("nats://u:p@h:1", |_| {}).is_ok());
        assert!(nats("nats://u@h:1", |s| s.nats_password_file = Some("pw".into())).is_ok());
        assert!(nats("nats://h:1", |s| s.nats_token_file = Some("t".into())).is_ok());
        assert!(nats("nats://h:1", |s| s.nats_creds = Some("c".into())).is_ok());
        type Case = (&'static str, fn(&mut GatewaySettings), &'static str);
        let refused: [Case; 6] = [
            (
                "nats://h:1",
                |s| s.nats_password_file = Some("pw".into()),
                "nats_password_file needs a user in the sink URL",
            ),
            (
                "nats://u:p@h:1",
                |s| s.nats_password_file = Some("pw".into()),
                "nats_password_file and a password in the sink URL",
            ),
            (
                "nats://u@h:1",
                |s| s.nats_creds = Some("c".into()),
                "nats_creds and a user or token in the sink URL",
            ),
            (
                "nats://t@h:1",
                |s| s.nats_token_file = Some("t".into()),
                "nats_token_file and a user or token",
            ),
            (
                "nats://h:1",
                |s| {
                    s.nats_token_file = Some("t".into());
                    s.nats_creds = Some("c".into());
                },
                "nats_creds and nats_token_file",
            ),
            (
                "nats://h:1",
                |s| s.nats_tls_cert = Some("c.pem".into()),
                "nats_tls_cert is set but nats_tls_key is not",
            ),
        ];
        for (sink, tweak, expected) in refused {
            let err = nats(sink, tweak).unwrap_err();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
        // NATS settings do not matter to other sinks.
        assert!(nats("log", |s| s.nats_password_file = Some("pw".into())).is_ok());
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

    #[test]
    fn a_secret_on_a_bad_line_of_the_file_is_not_in_the_error() {
        let secret = "lk-0123456789-very-secret";
        for text in [
            format!("license_keys = \"keys.txt\"\nfile_keep = \"{secret}\"\n"),
            format!("sink = \"{secret}\n"),
            format!("accept_any_license = \"{secret}\"\n"),
        ] {
            let err = GatewaySettings::from_toml(&text, Path::new("gw.toml"))
                .unwrap_err()
                .to_string();
            assert!(!err.contains(secret), "{err}");
            assert!(!err.contains("very-secret"), "{err}");
            assert!(err.contains("gw.toml") && err.contains("line "), "{err}");
        }
    }
}
