//! The gateway's configuration: [`GatewayConfig`], with its defaults as
//! constants and [`GatewayConfig::validate`], whose errors name the
//! setting's key. The sink's parts ([`SinkSpec`], [`NatsConfig`],
//! [`FileConfig`]) are in `sink/spec.rs`, the connection limits
//! ([`ListenerLimits`]) in `net/limits.rs`, shared with the sidecar.
//!
//! The settings themselves (flag, environment variable, TOML key, type,
//! default) are the rows of the gateway's table, [`super::settings`];
//! they are layered by [`crate::settings`] (flag > environment > file >
//! default, with each value's origin) and turned into a [`GatewayConfig`]
//! by [`GatewayConfig::from_settings`](super::settings).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::net::ListenerLimits;
use crate::settings::SettingError;

pub use super::sink::spec::{
    DEFAULT_FILE_KEEP, DEFAULT_FILE_ROTATE_BYTES, DEFAULT_NATS_ACK_TIMEOUT,
    DEFAULT_NATS_DUPLICATE_WINDOW, DEFAULT_NATS_STREAM, DEFAULT_NATS_SUBJECT, FileConfig,
    MAX_FILE_KEEP, MIN_FILE_MAX_AGE, MIN_FILE_ROTATE_BYTES, NatsConfig, NatsUrl, NatsUserinfo,
    SinkSpec, SinkSpecError,
};

/// Default gRPC listen address (Sourcegraph's gateway port).
pub const DEFAULT_GRPC_LISTEN: &str = "0.0.0.0:10080";
/// Default HTTP listen address (health and `/metrics`).
pub const DEFAULT_HTTP_LISTEN: &str = "0.0.0.0:10081";
/// Default sink: a JSONL file.
pub const DEFAULT_SINK: &str = "file:./telespool-gateway/events.jsonl";
/// Default number of a payload's events published at once (Sourcegraph's
/// `TELEMETRY_GATEWAY_EVENTS_STREAM_PUBLISH_CONCURRENCY` default).
pub const DEFAULT_PUBLISH_CONCURRENCY: usize = 250;
/// Largest accepted publish concurrency.
pub const MAX_PUBLISH_CONCURRENCY: usize = 10_000;
/// Default treatment of the license key in published JSON: its SHA-256
/// (see [`PublishLicenseKey`]).
pub const DEFAULT_PUBLISH_LICENSE_KEY: PublishLicenseKey = PublishLicenseKey::Sha256;
/// Default time in-flight work gets to finish after a shutdown signal.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest gRPC message the gateway accepts: 16 MiB, so that the event
/// limits, not the transport, answer. It applies to the inflated message of
/// a gzip request.
pub const MAX_MESSAGE_BYTES: usize = crate::grpc_limits::MAX_MESSAGE_BYTES;
/// Default most events in one `RecordEvents` payload (the sidecar's
/// default too); a payload over it is refused before any event is decoded.
pub const DEFAULT_MAX_EVENTS: usize = 10_000;
/// Largest accepted `max_events`.
pub const MAX_MAX_EVENTS: usize = 1_000_000;
/// Default decode budget: bytes of gRPC messages being received, decoded or
/// held at once, over all calls (see [`crate::grpc_limits`]).
pub const DEFAULT_DECODE_BUDGET_BYTES: u64 = crate::grpc_limits::DEFAULT_DECODE_BUDGET_BYTES;

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

impl Default for GatewayConfig {
    fn default() -> GatewayConfig {
        GatewayConfig {
            grpc_listen: SocketAddr::from(([0, 0, 0, 0], 10080)),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 10081)),
            sink: SinkSpec::File(PathBuf::from("./telespool-gateway/events.jsonl")),
            nats: NatsConfig::default(),
            file: FileConfig::default(),
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
    /// Checks ranges, names and pairs; each error names its setting.
    pub fn validate(&self) -> Result<(), SettingError> {
        SettingError::check_range(
            "publish_concurrency",
            self.publish_concurrency as u64,
            1,
            MAX_PUBLISH_CONCURRENCY as u64,
        )?;
        SettingError::check_range(
            "max_events",
            self.max_events as u64,
            1,
            MAX_MAX_EVENTS as u64,
        )?;
        SettingError::check_range(
            "decode_budget",
            self.decode_budget_bytes,
            MAX_MESSAGE_BYTES as u64,
            u64::MAX,
        )?;
        self.file.validate()?;
        self.nats.validate()?;
        SettingError::check_duration(
            "shutdown_timeout",
            self.shutdown_timeout,
            Duration::from_millis(1),
            None,
        )?;
        self.limits.validate()?;
        if self.grpc_listen == self.http_listen && self.grpc_listen.port() != 0 {
            return Err(SettingError::SameAddress {
                key: "grpc_listen",
                other: "http_listen",
                address: self.grpc_listen,
            });
        }
        super::sink::spec::paired(("tls_cert", &self.tls_cert), ("tls_key", &self.tls_key))?;
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return Err(SettingError::Needs {
                key: "tls_client_ca",
                needs: "tls_cert",
                detail: " and tls_key (mutual TLS is TLS with client certificates)",
            });
        }
        if let SinkSpec::Nats(url) = &self.sink {
            self.nats.validate_for(url)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert!(GatewayConfig::default().validate().is_ok());
        assert_eq!(
            GatewayConfig::default().grpc_listen.to_string(),
            DEFAULT_GRPC_LISTEN
        );
        assert_eq!(
            GatewayConfig::default().http_listen.to_string(),
            DEFAULT_HTTP_LISTEN
        );
        assert_eq!(GatewayConfig::default().sink.to_string(), DEFAULT_SINK);
    }

    #[test]
    fn tls_files_come_in_pairs_and_a_client_ca_needs_a_certificate() {
        let check = |tweak: fn(&mut GatewayConfig)| {
            let mut config = GatewayConfig::default();
            tweak(&mut config);
            config
                .validate()
                .map(|()| config)
                .map_err(|e| e.to_string())
        };
        let err = check(|c| c.tls_cert = Some("cert.pem".into())).unwrap_err();
        assert_eq!(err, "tls_cert is set but tls_key is not: they go together");
        let err = check(|c| c.tls_key = Some("key.pem".into())).unwrap_err();
        assert!(err.starts_with("tls_key is set but tls_cert"), "{err}");
        let err = check(|c| c.tls_client_ca = Some("ca.pem".into())).unwrap_err();
        assert!(err.starts_with("tls_client_ca needs tls_cert"), "{err}");
        let config = check(|c| {
            c.tls_cert = Some("cert.pem".into());
            c.tls_key = Some("key.pem".into());
            c.tls_client_ca = Some("ca.pem".into());
        })
        .unwrap();
        let files = config.server_tls_files().unwrap();
        assert_eq!(files.cert.setting, "tls_cert");
        assert_eq!(files.client_ca.unwrap().path, PathBuf::from("ca.pem"));
        assert!(GatewayConfig::default().server_tls_files().is_none());
    }

    #[test]
    fn grpc_and_http_on_the_same_address_are_refused() {
        let err = GatewayConfig {
            grpc_listen: "127.0.0.1:9".parse().unwrap(),
            http_listen: "127.0.0.1:9".parse().unwrap(),
            ..GatewayConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(matches!(err, SettingError::SameAddress { .. }), "{err}");
    }
}
