//! The settings table of `telespool serve`: every setting's key (= TOML
//! key; the flag is the key with `-`), environment variable, help, type
//! and default, once (see [`crate::settings::table`]). README.md's
//! settings table lists the same rows.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::event::export_mode::ExportMode;
use crate::net::limits as net;
use crate::queue::FullPolicy;
use crate::queue::SyncPolicy;
use crate::settings::{
    ByteSize, ChoiceError, ReadableDuration, Secret, SettingValue, UrlSetting, ValueError,
    settings_table, text_setting_value,
};

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./telespool-data";

const fn size(n: u64) -> ByteSize {
    ByteSize(n)
}

const fn duration(d: std::time::Duration) -> ReadableDuration {
    ReadableDuration(d)
}

settings_table! {
    /// `telespool serve`. Every setting: flag > environment variable > TOML
    /// file (`--config`, keys named like the flags with `_`) > default.
    pub struct ServeArgs;
    /// The sidecar's settings, one per flag, typed; [`Default`] holds the
    /// documented defaults (taken from the components' constants).
    pub struct ServeSettings for "serve" {
        /// TOML configuration file.
        #[arg(env = "TELESPOOL_CONFIG", value_name = "FILE")]
        config;
        /// Data directory (queue, indexes, event_logs, dead letters) [default: ./telespool-data].
        #[arg(env = "TELESPOOL_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf = PathBuf::from(DEFAULT_DATA_DIR);
        /// gRPC ingest address (telemetrygateway.v1) [default: 127.0.0.1:10085].
        #[arg(env = "TELESPOOL_GRPC_LISTEN", value_name = "ADDR")]
        grpc_listen: SocketAddr = crate::ingest::config::DEFAULT_GRPC_LISTEN;
        /// HTTP address: POST /v1/events, admin API, /metrics, /healthz, /readyz [default: 127.0.0.1:10086].
        #[arg(env = "TELESPOOL_HTTP_LISTEN", value_name = "ADDR")]
        http_listen: SocketAddr = crate::ingest::config::DEFAULT_HTTP_LISTEN;
        /// Bearer token that opens the admin API to non-loopback clients [default: none: loopback only].
        #[arg(env = "TELESPOOL_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
        admin_token: Option<Secret> = None;
        /// Queue sync policy: always | interval(MS) | never (tests only) [default: always].
        #[arg(env = "TELESPOOL_SYNC", value_name = "POLICY")]
        sync: SyncPolicy = SyncPolicy::Always;
        /// Roll a queue segment at this size [default: 64MiB].
        #[arg(env = "TELESPOOL_SEGMENT_SIZE", value_name = "SIZE")]
        segment_size: ByteSize = size(crate::queue::DEFAULT_SEGMENT_BYTES);
        /// Roll a non-empty queue segment at this age [default: 1h].
        #[arg(env = "TELESPOOL_SEGMENT_AGE", value_name = "DURATION")]
        segment_age: ReadableDuration = duration(crate::queue::DEFAULT_SEGMENT_AGE);
        /// Disk quota of the export queue [default: 1GiB].
        #[arg(env = "TELESPOOL_QUEUE_QUOTA", value_name = "SIZE")]
        queue_quota: ByteSize = size(crate::queue::DEFAULT_QUOTA_BYTES);
        /// When the queue is full: refuse | drop-oldest [default: refuse].
        #[arg(env = "TELESPOOL_QUEUE_FULL_POLICY", value_name = "POLICY")]
        queue_full_policy: FullPolicy = FullPolicy::Refuse;
        /// Which events are queued for export: all | cody-only | disabled [default: all].
        #[arg(env = "TELESPOOL_EXPORT_MODE", value_name = "MODE")]
        export_mode: ExportMode = ExportMode::All;
        /// Sourcegraph.com mode: export private metadata and marketing unredacted [default: false].
        #[arg(env = "TELESPOOL_DOTCOM", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        dotcom: bool = false;
        /// Extra allowlisted event types: feature::action::key1::key2,... [default: none].
        #[arg(env = "SRC_TELEMETRY_SENSITIVEMETADATA_ADDITIONAL_ALLOWED_EVENT_TYPES", value_name = "LIST")]
        allowed_event_types: Option<String> = None;
        /// Largest event, protobuf-encoded [default: 1MiB].
        #[arg(env = "TELESPOOL_MAX_EVENT_SIZE", value_name = "SIZE")]
        max_event_size: ByteSize = size(crate::event::validate::DEFAULT_MAX_EVENT_BYTES as u64);
        /// Largest HTTP request body [default: 16MiB].
        #[arg(env = "TELESPOOL_MAX_BODY_SIZE", value_name = "SIZE")]
        max_body_size: ByteSize = size(crate::ingest::config::DEFAULT_MAX_BODY_BYTES as u64);
        /// Most events per request or payload [default: 10000].
        #[arg(env = "TELESPOOL_MAX_EVENTS", value_name = "N")]
        max_events: usize = crate::event::validate::DEFAULT_MAX_EVENTS;
        /// Deepest private-metadata nesting [default: 64].
        #[arg(env = "TELESPOOL_MAX_DEPTH", value_name = "N")]
        max_depth: usize = crate::event::validate::DEFAULT_MAX_DEPTH;
        /// How long event_logs rows are kept [default: 93d].
        #[arg(env = "TELESPOOL_EVENT_LOGS_RETENTION", value_name = "DURATION")]
        event_logs_retention: ReadableDuration = duration(crate::event_logs::store::DEFAULT_RETENTION);
        /// Memory for decoded event_logs blocks (queries, dedup checks), at least 1MiB [default: 2MiB].
        #[arg(env = "TELESPOOL_EVENT_LOGS_CACHE", value_name = "SIZE")]
        event_logs_cache: ByteSize = size(crate::event_logs::store::DEFAULT_CACHE_BYTES);
        /// Disk the event_logs mirror may use, at least 1MiB; past it the oldest rows are evicted, never those of the newest hour [default: 2GiB].
        #[arg(env = "TELESPOOL_EVENT_LOGS_QUOTA", value_name = "SIZE")]
        event_logs_quota: ByteSize = size(crate::event_logs::store::DEFAULT_QUOTA_BYTES);
        /// Version written to event_logs rows of events without one [default: telespool-VERSION].
        #[arg(env = "TELESPOOL_SERVER_VERSION", value_name = "VERSION")]
        server_version: String = crate::tee::config::default_server_version();
        /// Telemetry Gateway to export to, https://HOST:PORT [default: none: export off].
        #[arg(env = "TELEMETRY_GATEWAY_EXPORTER_EXPORT_ADDR", value_name = "URL")]
        export_addr: Option<UrlSetting> = None;
        /// Poll interval when there is nothing to export, at most 1h [default: 5m].
        #[arg(env = "TELEMETRY_GATEWAY_EXPORTER_EXPORT_INTERVAL", value_name = "DURATION")]
        export_interval: ReadableDuration = duration(crate::export::config::DEFAULT_EXPORT_INTERVAL);
        /// Events per export stream before it is reopened, at least 100 [default: 10000].
        #[arg(env = "TELEMETRY_GATEWAY_EXPORTER_EXPORT_BATCH_SIZE", value_name = "N")]
        export_batch_size: usize = crate::export::config::DEFAULT_EXPORT_BATCH_SIZE;
        /// How long fully exported queue segments are kept [default: 24h].
        #[arg(env = "TELEMETRY_GATEWAY_EXPORTER_EXPORTED_EVENTS_RETENTION", value_name = "DURATION")]
        exported_events_retention: ReadableDuration = duration(crate::export::config::DEFAULT_EXPORTED_RETENTION);
        /// How often exported segments and old event_logs rows are purged [default: 30m].
        #[arg(env = "TELEMETRY_GATEWAY_EXPORTER_QUEUE_CLEANUP_INTERVAL", value_name = "DURATION")]
        queue_cleanup_interval: ReadableDuration = duration(crate::export::config::DEFAULT_CLEANUP_INTERVAL);
        /// Answered export attempts before an event is dead-lettered [default: 10].
        #[arg(env = "TELESPOOL_EXPORT_MAX_ATTEMPTS", value_name = "N")]
        export_max_attempts: u32 = crate::export::config::DEFAULT_EXPORT_MAX_ATTEMPTS;
        /// Instance id sent to the gateway [default: a UUID kept in the data dir].
        #[arg(env = "TELESPOOL_INSTANCE_ID", value_name = "ID")]
        instance_id: Option<String> = None;
        /// License key: export as a licensed instance [default: none: unlicensed].
        #[arg(env = "TELESPOOL_LICENSE_KEY", value_name = "KEY", hide_env_values = true)]
        license_key: Option<Secret> = None;
        /// External URL sent to the gateway [default: empty].
        #[arg(env = "TELESPOOL_EXTERNAL_URL", value_name = "URL")]
        external_url: String = String::new();
        /// Allow plain-text export to a non-loopback gateway [default: false].
        #[arg(env = "TELESPOOL_EXPORT_INSECURE", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        export_insecure: bool = false;
        /// Compress export payloads with gzip [default: false].
        #[arg(env = "TELESPOOL_EXPORT_GZIP", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        export_gzip: bool = false;
        /// Byte quota of the dead-letter store; the oldest entries go first past it, at least 1MiB [default: 256MiB].
        #[arg(env = "TELESPOOL_DEAD_LETTER_QUOTA", value_name = "SIZE")]
        dead_letter_quota: ByteSize = size(crate::dead_letter::store::DEFAULT_QUOTA_BYTES);
        /// Require the admin token from loopback clients too (needs --admin-token) [default: false].
        #[arg(env = "TELESPOOL_ADMIN_REQUIRE_TOKEN", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        admin_require_token: bool = false;
        /// Bytes of POST /v1/events bodies read and decoded at once; past it requests wait up to 10s, then 503 [default: 64MiB].
        #[arg(env = "TELESPOOL_MAX_INGEST_IN_FLIGHT", value_name = "SIZE")]
        max_ingest_in_flight: ByteSize = size(crate::ingest::config::DEFAULT_MAX_INGEST_IN_FLIGHT as u64);
        /// PEM CA bundle trusted for the gateway's certificate, instead of the public roots; reloaded on SIGHUP [default: none: public roots].
        #[arg(env = "TELESPOOL_EXPORT_CA_FILE", value_name = "FILE")]
        export_ca_file: Option<PathBuf> = None;
        /// Client certificate chain (PEM) for mutual TLS with the gateway; reloaded on SIGHUP [default: none].
        #[arg(env = "TELESPOOL_EXPORT_CLIENT_CERT", value_name = "FILE")]
        export_client_cert: Option<PathBuf> = None;
        /// Private key (PEM) of --export-client-cert [default: none].
        #[arg(env = "TELESPOOL_EXPORT_CLIENT_KEY", value_name = "FILE")]
        export_client_key: Option<PathBuf> = None;
        /// File holding the license key (kept out of `ps`); instead of --license-key [default: none].
        #[arg(env = "TELESPOOL_LICENSE_KEY_FILE", value_name = "FILE")]
        license_key_file: Option<PathBuf> = None;
        /// File holding the admin token (kept out of `ps`); instead of --admin-token [default: none].
        #[arg(env = "TELESPOOL_ADMIN_TOKEN_FILE", value_name = "FILE")]
        admin_token_file: Option<PathBuf> = None;
        /// Bytes of gRPC messages being received, decoded or held at once; past it, RESOURCE_EXHAUSTED [default: 256MiB].
        #[arg(env = "TELESPOOL_DECODE_BUDGET", value_name = "SIZE")]
        decode_budget: ByteSize = size(crate::ingest::config::DEFAULT_DECODE_BUDGET_BYTES);
        /// Connections each listener holds at once; past it, new ones wait in the kernel backlog [default: 1024].
        #[arg(env = "TELESPOOL_MAX_CONNECTIONS", value_name = "N")]
        max_connections: usize = net::SIDECAR_MAX_CONNECTIONS;
        /// HTTP/2 streams open at once per connection (SETTINGS_MAX_CONCURRENT_STREAMS) [default: 100].
        #[arg(env = "TELESPOOL_HTTP2_MAX_STREAMS", value_name = "N")]
        http2_max_streams: u32 = net::DEFAULT_HTTP2_MAX_STREAMS;
        /// The server pings an HTTP/2 connection silent for this long [default: 60s].
        #[arg(env = "TELESPOOL_HTTP2_KEEPALIVE_INTERVAL", value_name = "DURATION")]
        http2_keepalive_interval: ReadableDuration = duration(net::DEFAULT_HTTP2_KEEPALIVE_INTERVAL);
        /// An HTTP/2 ping unanswered for this long closes the connection [default: 20s].
        #[arg(env = "TELESPOOL_HTTP2_KEEPALIVE_TIMEOUT", value_name = "DURATION")]
        http2_keepalive_timeout: ReadableDuration = duration(net::DEFAULT_HTTP2_KEEPALIVE_TIMEOUT);
        /// Connections are asked to go away (HTTP/2 GOAWAY) at this age [default: 30m].
        #[arg(env = "TELESPOOL_MAX_CONNECTION_AGE", value_name = "DURATION")]
        max_connection_age: ReadableDuration = duration(net::DEFAULT_MAX_CONNECTION_AGE);
        /// Time an aged connection gets to finish its calls before it is closed [default: 5m].
        #[arg(env = "TELESPOOL_MAX_CONNECTION_AGE_GRACE", value_name = "DURATION")]
        max_connection_age_grace: ReadableDuration = duration(net::DEFAULT_MAX_CONNECTION_AGE_GRACE);
        /// A connection must send its first bytes, and an HTTP/1 request its head, within this [default: 10s].
        #[arg(env = "TELESPOOL_HTTP_HEADER_TIMEOUT", value_name = "DURATION")]
        http_header_timeout: ReadableDuration = duration(net::DEFAULT_HTTP_HEADER_TIMEOUT);
        /// An HTTP connection with no byte moving either way for this long is closed [default: 60s].
        #[arg(env = "TELESPOOL_HTTP_IDLE_TIMEOUT", value_name = "DURATION")]
        http_idle_timeout: ReadableDuration = duration(net::DEFAULT_HTTP_IDLE_TIMEOUT);
        /// Time an HTTP request or unary gRPC call has to be answered; streams are exempt [default: 30s].
        #[arg(env = "TELESPOOL_REQUEST_TIMEOUT", value_name = "DURATION")]
        request_timeout: ReadableDuration = duration(net::DEFAULT_REQUEST_TIMEOUT);
    }
}

// The sidecar's component types as setting values. Their own `FromStr`
// errors are text, so a parse failure says which values are allowed.

impl SettingValue for SyncPolicy {
    type Raw = String;

    fn from_raw(raw: &String) -> Result<SyncPolicy, ValueError> {
        raw.trim().parse().map_err(|_| {
            ValueError::parse(ChoiceError {
                allowed: &["always", "interval(MS)", "never"],
            })
        })
    }

    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.to_string()))
    }
}

impl SettingValue for FullPolicy {
    type Raw = String;

    fn from_raw(raw: &String) -> Result<FullPolicy, ValueError> {
        raw.trim().parse().map_err(|_| {
            ValueError::parse(ChoiceError {
                allowed: &["refuse", "drop-oldest"],
            })
        })
    }

    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(
            match self {
                FullPolicy::Refuse => "refuse",
                FullPolicy::DropOldest => "drop-oldest",
            }
            .to_owned(),
        ))
    }
}

text_setting_value!(ExportMode, None);
