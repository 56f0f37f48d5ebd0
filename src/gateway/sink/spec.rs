//! The sink's settings: [`SinkSpec`] (where events go, `sink`), the NATS
//! URL taken apart ([`NatsUrl`]), [`NatsConfig`] (the `nats_*` keys) and
//! [`FileConfig`] (the `file_*` keys), with their validation.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::dedup::{DEFAULT_DEDUP_MAX_IDS, DEFAULT_DEDUP_WINDOW};
use crate::settings::SettingError;

/// Default JetStream stream name.
pub const DEFAULT_NATS_STREAM: &str = "telemetry-events";
/// Default subject events are published on.
pub const DEFAULT_NATS_SUBJECT: &str = "telemetry.events";
/// Default publish-ack timeout: async-nats' default for awaited acks.
pub const DEFAULT_NATS_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Default duplicate window of a stream the gateway creates (JetStream's
/// own default): [`DEFAULT_DEDUP_WINDOW`].
pub const DEFAULT_NATS_DUPLICATE_WINDOW: Duration = DEFAULT_DEDUP_WINDOW;
/// Default size at which the JSONL file is rotated: 256 MiB.
pub const DEFAULT_FILE_ROTATE_BYTES: u64 = 256 * 1024 * 1024;
/// Default number of rotated JSONL files kept (older ones are deleted):
/// with the default rotation size, about 2.5 GiB.
pub const DEFAULT_FILE_KEEP: u64 = 10;

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
    /// `file:` with nothing after it. The operator adds the path.
    #[error("file: needs a path, as in file:./telespool-gateway/events.jsonl")]
    EmptyPath,
    /// `nats://` with no host and port. The operator adds them.
    #[error("nats:// needs HOST:PORT, as in nats://127.0.0.1:4222")]
    EmptyNatsAddress,
    /// Userinfo that does not percent-decode to UTF-8. The operator
    /// percent-encodes the user, password or token.
    #[error("the user, password or token in the nats:// URL is not valid percent-encoded UTF-8")]
    BadNatsUserinfo,
    /// Something else. The operator picks one of the three forms.
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

impl Default for NatsConfig {
    fn default() -> NatsConfig {
        NatsConfig {
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
        }
    }
}

impl Default for FileConfig {
    fn default() -> FileConfig {
        FileConfig {
            rotate_bytes: DEFAULT_FILE_ROTATE_BYTES,
            keep: DEFAULT_FILE_KEEP,
            max_age: None,
            dedup_window: DEFAULT_DEDUP_WINDOW,
            dedup_max_ids: DEFAULT_DEDUP_MAX_IDS,
        }
    }
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
    /// A line whose dedup key was written this recently is not written
    /// again. Default [`DEFAULT_DEDUP_WINDOW`] (2 min).
    pub dedup_window: Duration,
    /// Most dedup keys remembered (the oldest go first). Default
    /// [`DEFAULT_DEDUP_MAX_IDS`] (2,000,000).
    pub dedup_max_ids: usize,
}

impl NatsConfig {
    /// The stream and subject names and the durations (checked whatever
    /// the sink, so that a mistake shows before NATS is used).
    pub fn validate(&self) -> Result<(), SettingError> {
        check_stream_name(&self.stream)?;
        check_subject(&self.subject)?;
        for (key, value) in [
            ("nats_ack_timeout", self.ack_timeout),
            ("dedup_window", self.duplicate_window),
        ] {
            SettingError::check_duration(key, value, MIN_DURATION, None)?;
        }
        Ok(())
    }

    /// For a NATS sink at `url`: the TLS pair, and the credentials given
    /// one way: a creds file, a password (with the user in the URL), or a
    /// token.
    pub fn validate_for(&self, url: &str) -> Result<(), SettingError> {
        paired(
            ("nats_tls_cert", &self.tls_cert),
            ("nats_tls_key", &self.tls_key),
        )?;
        let userinfo = NatsUrl::parse(url)
            .map_err(|source| SettingError::Rejected {
                key: "sink",
                value: crate::secret::redact_url(url),
                source: Box::new(source),
            })?
            .userinfo;
        let conflict = |key, other| {
            Err(SettingError::Conflict {
                key,
                other,
                hint: "give the NATS credentials one way",
            })
        };
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
                    return Err(SettingError::Needs {
                        key: "nats_password_file",
                        needs: "a user in the sink URL",
                        detail: ": nats://USER@HOST:PORT",
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

/// Shortest accepted NATS timeout or window.
const MIN_DURATION: Duration = Duration::from_millis(1);

impl FileConfig {
    /// The rotation size, the number of files kept and their age.
    pub fn validate(&self) -> Result<(), SettingError> {
        SettingError::check_range(
            "file_rotate_bytes",
            self.rotate_bytes,
            MIN_FILE_ROTATE_BYTES,
            u64::MAX,
        )?;
        SettingError::check_range("file_keep", self.keep, 1, MAX_FILE_KEEP)?;
        if let Some(age) = self.max_age {
            SettingError::check_duration("file_max_age", age, MIN_FILE_MAX_AGE, None)?;
        }
        SettingError::check_duration("dedup_window", self.dedup_window, MIN_DURATION, None)?;
        SettingError::check_range(
            "dedup_max_ids",
            self.dedup_max_ids as u64,
            1,
            MAX_DEDUP_MAX_IDS,
        )?;
        Ok(())
    }
}

/// Largest accepted `dedup_max_ids` (~5 GiB of keys).
pub const MAX_DEDUP_MAX_IDS: u64 = 100_000_000;

/// Smallest accepted rotation size: 4 KiB.
pub const MIN_FILE_ROTATE_BYTES: u64 = 4096;
/// Largest accepted `file_keep`.
pub const MAX_FILE_KEEP: u64 = 1_000_000;
/// Smallest accepted `file_max_age`.
pub const MIN_FILE_MAX_AGE: Duration = Duration::from_secs(1);

/// Both settings or neither.
pub fn paired(
    (a, a_value): (&'static str, &Option<PathBuf>),
    (b, b_value): (&'static str, &Option<PathBuf>),
) -> Result<(), SettingError> {
    match (a_value, b_value) {
        (Some(_), None) => Err(SettingError::Unpaired { key: a, missing: b }),
        (None, Some(_)) => Err(SettingError::Unpaired { key: b, missing: a }),
        _ => Ok(()),
    }
}

/// JetStream stream names: no whitespace, `.`, `*`, `>`, path separators.
fn check_stream_name(name: &str) -> Result<(), SettingError> {
    let bad = |reason| SettingError::Invalid {
        key: "nats_stream",
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
fn check_subject(subject: &str) -> Result<(), SettingError> {
    let bad = |reason| SettingError::Invalid {
        key: "nats_subject",
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
