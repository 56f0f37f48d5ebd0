//! The settings table of `telespool gateway`: every setting's key (= TOML
//! key; the flag is the key with `-`), environment variable, help, type
//! and default, once (see [`crate::settings::table`]). docs/gateway.md
//! lists the same rows. [`GatewayConfig::resolve`] layers them (flag >
//! environment > file > default) and builds the [`GatewayConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;

use super::config::{
    DEFAULT_DECODE_BUDGET_BYTES, DEFAULT_FILE_KEEP, DEFAULT_FILE_ROTATE_BYTES, DEFAULT_MAX_EVENTS,
    DEFAULT_NATS_ACK_TIMEOUT, DEFAULT_NATS_STREAM, DEFAULT_NATS_SUBJECT,
    DEFAULT_PUBLISH_CONCURRENCY, DEFAULT_PUBLISH_LICENSE_KEY, DEFAULT_SHUTDOWN_TIMEOUT, FileConfig,
    GatewayConfig, NatsConfig, PublishLicenseKey, SinkSpec,
};
use super::sink::dedup::{DEFAULT_DEDUP_MAX_IDS, DEFAULT_DEDUP_WINDOW};
use crate::net::ListenerLimits;
use crate::net::limits as net;
use crate::settings::{
    ByteSize, ConfigError, ReadableDuration, Resolved, SettingError, SettingValue, ValueError,
    settings_table, text_setting_value,
};

settings_table! {
    /// `telespool gateway`. Every setting also has an environment variable and
    /// a key in the TOML config file (the flag name with underscores);
    /// precedence: flags, then environment, then the file, then the defaults.
    pub struct GatewayArgs;
    /// The gateway's settings, one per flag, typed; [`Default`] holds the
    /// documented defaults.
    pub struct GatewaySettings for "gateway" {
        /// TOML config file (keys: grpc_listen, http_listen, sink, ...).
        #[arg(env = "TELESPOOL_GATEWAY_CONFIG", value_name = "FILE")]
        config;
        /// gRPC listen address [default: 0.0.0.0:10080].
        #[arg(env = "TELESPOOL_GATEWAY_GRPC_LISTEN", value_name = "ADDR")]
        grpc_listen: SocketAddr = GatewayConfig::default().grpc_listen;
        /// HTTP listen address for /healthz, /readyz, /metrics [default: 0.0.0.0:10081].
        #[arg(env = "TELESPOOL_GATEWAY_HTTP_LISTEN", value_name = "ADDR")]
        http_listen: SocketAddr = GatewayConfig::default().http_listen;
        /// Where events go: file:PATH, nats://HOST:PORT (or nats://USER:PASSWORD@HOST:PORT, nats://TOKEN@HOST:PORT) or log [default: file:./telespool-gateway/events.jsonl].
        #[arg(env = "TELESPOOL_GATEWAY_SINK", value_name = "SINK", hide_env_values = true)]
        sink: SinkSpec = GatewayConfig::default().sink;
        /// JetStream stream, created when missing [default: telemetry-events].
        #[arg(env = "TELESPOOL_GATEWAY_NATS_STREAM", value_name = "S")]
        nats_stream: String = DEFAULT_NATS_STREAM.to_owned();
        /// Subject events are published on [default: telemetry.events].
        #[arg(env = "TELESPOOL_GATEWAY_NATS_SUBJECT", value_name = "S")]
        nats_subject: String = DEFAULT_NATS_SUBJECT.to_owned();
        /// How long to wait for a JetStream publish ack [default: 5s].
        #[arg(env = "TELESPOOL_GATEWAY_NATS_ACK_TIMEOUT", value_name = "DURATION")]
        nats_ack_timeout: ReadableDuration = ReadableDuration(DEFAULT_NATS_ACK_TIMEOUT);
        /// A repeat of an event (same instance and event id) within this long of its first copy is dropped: the file sink's window, and the duplicate window of a JetStream stream the gateway creates [default: 2m].
        #[arg(env = "TELESPOOL_GATEWAY_DEDUP_WINDOW", value_name = "DURATION")]
        dedup_window: Option<ReadableDuration> = None;
        /// Former name of dedup_window, still accepted; giving both with different values is refused [default: none].
        #[arg(env = "TELESPOOL_GATEWAY_NATS_DUPLICATE_WINDOW", value_name = "DURATION")]
        nats_duplicate_window: Option<ReadableDuration> = None;
        /// Most dedup keys the file sink remembers (~50 B each); past it the oldest are forgotten early [default: 2000000].
        #[arg(env = "TELESPOOL_GATEWAY_DEDUP_MAX_IDS", value_name = "N")]
        dedup_max_ids: usize = DEFAULT_DEDUP_MAX_IDS;
        /// Rotate the JSONL file before it grows past this size (bytes, or with KiB, MiB, GiB) [default: 256MiB].
        #[arg(env = "TELESPOOL_GATEWAY_FILE_ROTATE_BYTES", value_name = "SIZE")]
        file_rotate_bytes: ByteSize = ByteSize(DEFAULT_FILE_ROTATE_BYTES);
        /// File of accepted license keys or their SHA-256 hashes, one per line [default: none].
        #[arg(env = "TELESPOOL_GATEWAY_LICENSE_KEYS", value_name = "FILE")]
        license_keys: Option<PathBuf> = None;
        /// File of managed-service bearer tokens: TOKEN or SERVICE_ID TOKEN per line [default: none].
        #[arg(env = "TELESPOOL_GATEWAY_SERVICE_TOKENS", value_name = "FILE")]
        service_tokens: Option<PathBuf> = None;
        /// Accept any non-empty license key (development only) [default: false].
        #[arg(env = "TELESPOOL_GATEWAY_ACCEPT_ANY_LICENSE", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        accept_any_license: bool = false;
        /// Events of one payload published at once [default: 250].
        #[arg(env = "TELEMETRY_GATEWAY_EVENTS_STREAM_PUBLISH_CONCURRENCY", value_name = "N")]
        publish_concurrency: usize = DEFAULT_PUBLISH_CONCURRENCY;
        /// Time in-flight payloads get to finish on SIGTERM or ctrl-c [default: 30s].
        #[arg(env = "TELESPOOL_GATEWAY_SHUTDOWN_TIMEOUT", value_name = "DURATION")]
        shutdown_timeout: ReadableDuration = ReadableDuration(DEFAULT_SHUTDOWN_TIMEOUT);
        /// Rotated JSONL files kept; older ones are deleted, 1..=1000000 [default: 10].
        #[arg(env = "TELESPOOL_GATEWAY_FILE_KEEP", value_name = "N")]
        file_keep: u64 = DEFAULT_FILE_KEEP;
        /// Delete rotated JSONL files last modified longer ago than this, at least 1s [default: none].
        #[arg(env = "TELESPOOL_GATEWAY_FILE_MAX_AGE", value_name = "DURATION")]
        file_max_age: Option<ReadableDuration> = None;
        /// License key in published JSON: raw | sha256 | omit [default: sha256].
        #[arg(env = "TELESPOOL_GATEWAY_PUBLISH_LICENSE_KEY", value_name = "MODE")]
        publish_license_key: PublishLicenseKey = DEFAULT_PUBLISH_LICENSE_KEY;
        /// Certificate chain (PEM) of the gRPC listener; with --tls-key, gRPC is TLS only; reloaded on SIGHUP [default: none: plain text].
        #[arg(env = "TELESPOOL_GATEWAY_TLS_CERT", value_name = "FILE")]
        tls_cert: Option<PathBuf> = None;
        /// Private key (PEM) of --tls-cert [default: none].
        #[arg(env = "TELESPOOL_GATEWAY_TLS_KEY", value_name = "FILE")]
        tls_key: Option<PathBuf> = None;
        /// CA bundle (PEM) client certificates must chain to: mutual TLS [default: none: no client certificates].
        #[arg(env = "TELESPOOL_GATEWAY_TLS_CLIENT_CA", value_name = "FILE")]
        tls_client_ca: Option<PathBuf> = None;
        /// NATS credentials file (user JWT and nkey seed) [default: none].
        #[arg(env = "TELESPOOL_GATEWAY_NATS_CREDS", value_name = "FILE")]
        nats_creds: Option<PathBuf> = None;
        /// CA bundle (PEM) for the NATS server's certificate; requires TLS [default: none: system roots].
        #[arg(env = "TELESPOOL_GATEWAY_NATS_TLS_CA", value_name = "FILE")]
        nats_tls_ca: Option<PathBuf> = None;
        /// Client certificate (PEM) for NATS mutual TLS; requires TLS [default: none].
        #[arg(env = "TELESPOOL_GATEWAY_NATS_TLS_CERT", value_name = "FILE")]
        nats_tls_cert: Option<PathBuf> = None;
        /// Private key (PEM) of --nats-tls-cert [default: none].
        #[arg(env = "TELESPOOL_GATEWAY_NATS_TLS_KEY", value_name = "FILE")]
        nats_tls_key: Option<PathBuf> = None;
        /// File holding the NATS password of the user in the sink URL (nats://USER@HOST:PORT) [default: none].
        #[arg(env = "TELESPOOL_GATEWAY_NATS_PASSWORD_FILE", value_name = "FILE")]
        nats_password_file: Option<PathBuf> = None;
        /// File holding a NATS authentication token [default: none].
        #[arg(env = "TELESPOOL_GATEWAY_NATS_TOKEN_FILE", value_name = "FILE")]
        nats_token_file: Option<PathBuf> = None;
        /// Most events in one RecordEvents payload; more is refused before decoding [default: 10000].
        #[arg(env = "TELESPOOL_GATEWAY_MAX_EVENTS", value_name = "N")]
        max_events: usize = DEFAULT_MAX_EVENTS;
        /// Bytes of gRPC messages being received, decoded or held at once; past it, RESOURCE_EXHAUSTED [default: 256MiB].
        #[arg(env = "TELESPOOL_GATEWAY_DECODE_BUDGET", value_name = "SIZE")]
        decode_budget: ByteSize = ByteSize(DEFAULT_DECODE_BUDGET_BYTES);
        /// Connections each listener holds at once; past it, new ones wait in the kernel backlog [default: 20000].
        #[arg(env = "TELESPOOL_GATEWAY_MAX_CONNECTIONS", value_name = "N")]
        max_connections: usize = net::GATEWAY_MAX_CONNECTIONS;
        /// HTTP/2 streams open at once per connection (SETTINGS_MAX_CONCURRENT_STREAMS) [default: 100].
        #[arg(env = "TELESPOOL_GATEWAY_HTTP2_MAX_STREAMS", value_name = "N")]
        http2_max_streams: u32 = net::DEFAULT_HTTP2_MAX_STREAMS;
        /// The server pings an HTTP/2 connection silent for this long [default: 60s].
        #[arg(env = "TELESPOOL_GATEWAY_HTTP2_KEEPALIVE_INTERVAL", value_name = "DURATION")]
        http2_keepalive_interval: ReadableDuration = ReadableDuration(net::DEFAULT_HTTP2_KEEPALIVE_INTERVAL);
        /// An HTTP/2 ping unanswered for this long closes the connection [default: 20s].
        #[arg(env = "TELESPOOL_GATEWAY_HTTP2_KEEPALIVE_TIMEOUT", value_name = "DURATION")]
        http2_keepalive_timeout: ReadableDuration = ReadableDuration(net::DEFAULT_HTTP2_KEEPALIVE_TIMEOUT);
        /// Connections are asked to go away (HTTP/2 GOAWAY) at this age [default: 30m].
        #[arg(env = "TELESPOOL_GATEWAY_MAX_CONNECTION_AGE", value_name = "DURATION")]
        max_connection_age: ReadableDuration = ReadableDuration(net::DEFAULT_MAX_CONNECTION_AGE);
        /// Time an aged connection gets to finish its calls before it is closed [default: 5m].
        #[arg(env = "TELESPOOL_GATEWAY_MAX_CONNECTION_AGE_GRACE", value_name = "DURATION")]
        max_connection_age_grace: ReadableDuration = ReadableDuration(net::DEFAULT_MAX_CONNECTION_AGE_GRACE);
        /// A connection must send its first bytes, and an HTTP/1 request its head, within this [default: 10s].
        #[arg(env = "TELESPOOL_GATEWAY_HTTP_HEADER_TIMEOUT", value_name = "DURATION")]
        http_header_timeout: ReadableDuration = ReadableDuration(net::DEFAULT_HTTP_HEADER_TIMEOUT);
        /// An HTTP connection with no byte moving either way for this long is closed [default: 60s].
        #[arg(env = "TELESPOOL_GATEWAY_HTTP_IDLE_TIMEOUT", value_name = "DURATION")]
        http_idle_timeout: ReadableDuration = ReadableDuration(net::DEFAULT_HTTP_IDLE_TIMEOUT);
        /// Time an HTTP request or unary gRPC call has to be answered; streams are exempt [default: 30s].
        #[arg(env = "TELESPOOL_GATEWAY_REQUEST_TIMEOUT", value_name = "DURATION")]
        request_timeout: ReadableDuration = ReadableDuration(net::DEFAULT_REQUEST_TIMEOUT);
    }
}

/// The sink: errors and `config check` show a `nats://` URL with its
/// userinfo masked.
impl SettingValue for SinkSpec {
    type Raw = String;

    fn from_raw(raw: &String) -> Result<SinkSpec, ValueError> {
        raw.parse().map_err(ValueError::parse)
    }

    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(match self {
            SinkSpec::File(path) => format!("file:{}", path.display()),
            SinkSpec::Nats(url) => url.clone(),
            SinkSpec::Log => "log".to_owned(),
        }))
    }

    fn show(&self) -> Option<String> {
        Some(match self {
            SinkSpec::Nats(url) => crate::secret::mask_userinfo(url),
            other => other.to_string(),
        })
    }

    fn mask(text: &str) -> String {
        crate::secret::redact_url(text)
    }
}

text_setting_value!(PublishLicenseKey, None);

impl GatewayConfig {
    /// Takes the settings from flags, environment, the `--config` file and
    /// the defaults, then builds and validates the configuration.
    pub fn resolve(args: &GatewayArgs) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::resolve_with_origins(args).map(|(config, _)| config)
    }

    /// [`GatewayConfig::resolve`], with the settings and their origins
    /// (what `telespool config check` prints).
    pub fn resolve_with_origins(
        args: &GatewayArgs,
    ) -> Result<(GatewayConfig, Resolved<GatewaySettings>), ConfigError> {
        let resolved = crate::settings::resolve::<GatewaySettings>(args)?;
        let config =
            GatewayConfig::from_settings(&resolved.settings).map_err(|e| resolved.explain(e))?;
        Ok((config, resolved))
    }

    /// The configuration of `s`, validated.
    pub fn from_settings(s: &GatewaySettings) -> Result<GatewayConfig, SettingError> {
        let dedup_window = match (s.dedup_window, s.nats_duplicate_window) {
            (Some(a), Some(b)) if a.get() != b.get() => {
                return Err(SettingError::Conflict {
                    key: "nats_duplicate_window",
                    other: "dedup_window",
                    hint: "nats_duplicate_window is the former name of dedup_window: give one",
                });
            }
            (a, b) => a.or(b).map_or(DEFAULT_DEDUP_WINDOW, ReadableDuration::get),
        };
        let config = GatewayConfig {
            grpc_listen: s.grpc_listen,
            http_listen: s.http_listen,
            sink: s.sink.clone(),
            nats: NatsConfig {
                stream: s.nats_stream.clone(),
                subject: s.nats_subject.clone(),
                ack_timeout: s.nats_ack_timeout.get(),
                duplicate_window: dedup_window,
                creds: s.nats_creds.clone(),
                tls_ca: s.nats_tls_ca.clone(),
                tls_cert: s.nats_tls_cert.clone(),
                tls_key: s.nats_tls_key.clone(),
                password_file: s.nats_password_file.clone(),
                token_file: s.nats_token_file.clone(),
            },
            file: FileConfig {
                rotate_bytes: s.file_rotate_bytes.bytes(),
                keep: s.file_keep,
                max_age: s.file_max_age.map(ReadableDuration::get),
                dedup_window,
                dedup_max_ids: s.dedup_max_ids,
            },
            license_keys: s.license_keys.clone(),
            service_tokens: s.service_tokens.clone(),
            accept_any_license: s.accept_any_license,
            publish_concurrency: s.publish_concurrency,
            shutdown_timeout: s.shutdown_timeout.get(),
            publish_license_key: s.publish_license_key,
            tls_cert: s.tls_cert.clone(),
            tls_key: s.tls_key.clone(),
            tls_client_ca: s.tls_client_ca.clone(),
            max_events: s.max_events,
            decode_budget_bytes: s.decode_budget.bytes(),
            limits: ListenerLimits {
                max_connections: s.max_connections,
                http2_max_streams: s.http2_max_streams,
                http2_keepalive_interval: s.http2_keepalive_interval.get(),
                http2_keepalive_timeout: s.http2_keepalive_timeout.get(),
                max_connection_age: s.max_connection_age.get(),
                max_connection_age_grace: s.max_connection_age_grace.get(),
                http_header_timeout: s.http_header_timeout.get(),
                http_idle_timeout: s.http_idle_timeout.get(),
                request_timeout: s.request_timeout.get(),
            },
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
