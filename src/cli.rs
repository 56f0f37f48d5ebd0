//! Command-line definitions (clap). Parsing only; the commands live in
//! `commands/`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Default data directory of the sidecar.
pub const DEFAULT_DATA_DIR: &str = "./telespool-data";

/// telespool: a durable telemetry sidecar and gateway for Sourcegraph's
/// telemetrygateway.v1 protocol.
#[derive(Debug, Parser)]
#[command(name = "telespool", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sidecar: gRPC and HTTP ingest, the tee into the export queue
    /// and event_logs, the admin API, cleanup and (when configured) export.
    Serve(Box<ServeArgs>),
    /// CRC-check every segment of a data directory (read-only); exits 1 if
    /// any record is damaged.
    Verify(VerifyArgs),
    /// Show the queue: segments, records, backlog, watermarks.
    Status(StatusArgs),
    /// Admin analytics over the unredacted event_logs mirror.
    EventLogs(EventLogsArgs),
    /// List or requeue dead letters (invalid events and events the gateway kept refusing).
    DeadLetter(DeadLetterArgs),
    /// Run the Telemetry Gateway: serve telemetrygateway.v1 and publish each
    /// event as JSON to a sink (JSONL file, NATS JetStream, or the log).
    Gateway(Box<GatewayArgs>),
}

/// `telespool event-logs`.
#[derive(Debug, Args)]
pub struct EventLogsArgs {
    /// What to show.
    #[command(subcommand)]
    pub command: EventLogsCommand,
    /// Data directory, opened directly when no sidecar holds it.
    #[arg(long, global = true, default_value = DEFAULT_DATA_DIR, env = "TELESPOOL_DATA_DIR")]
    pub dir: PathBuf,
    /// Ask the running sidecar whose HTTP address this is (host:port);
    /// admin token from TELESPOOL_ADMIN_TOKEN.
    #[arg(long, global = true, value_name = "ADDR")]
    pub addr: Option<String>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `telespool event-logs` subcommands.
#[derive(Debug, Subcommand)]
pub enum EventLogsCommand {
    /// Recent events, newest first, with filters.
    Recent(crate::ingest::queries::RecentParams),
    /// Events by name per UTC day.
    Counts(crate::ingest::queries::RangeParams),
    /// Distinct users per UTC day (user id, else anonymous id).
    Users(crate::ingest::queries::RangeParams),
    /// Erase one user's rows (a privacy request): hidden from every query
    /// at once, then removed from disk by a compaction.
    Erase(crate::ingest::queries::EraseParams),
}

/// `telespool dead-letter`.
#[derive(Debug, Args)]
pub struct DeadLetterArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DeadLetterCommand,
    /// Data directory, opened directly when no sidecar holds it.
    #[arg(long, global = true, default_value = DEFAULT_DATA_DIR, env = "TELESPOOL_DATA_DIR")]
    pub dir: PathBuf,
    /// Ask the running sidecar whose HTTP address this is (host:port);
    /// admin token from TELESPOOL_ADMIN_TOKEN.
    #[arg(long, global = true, value_name = "ADDR")]
    pub addr: Option<String>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `telespool dead-letter` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// List dead letters with their reasons.
    List(crate::ingest::queries::DeadLetterParams),
    /// Put export dead letters (poison events) back in the queue.
    Requeue {
        /// Requeue at most this many [default: all].
        #[arg(long)]
        limit: Option<usize>,
    },
}

/// `telespool verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Data directory (the queue is in DIR/queue).
    #[arg(default_value = DEFAULT_DATA_DIR, env = "TELESPOOL_DATA_DIR")]
    pub dir: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `telespool status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Data directory (the queue is in DIR/queue); opened directly when no
    /// sidecar holds it.
    #[arg(default_value = DEFAULT_DATA_DIR, env = "TELESPOOL_DATA_DIR")]
    pub dir: PathBuf,
    /// Ask the running sidecar whose HTTP address this is (host:port)
    /// instead of opening the directory; admin token from TELESPOOL_ADMIN_TOKEN.
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `telespool serve`. Every setting: flag > environment variable > TOML
/// file (`--config`, keys named like the flags with `_`) > default.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "TELESPOOL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (queue, indexes, event_logs, dead letters) [default: ./telespool-data].
    #[arg(long, env = "TELESPOOL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// gRPC ingest address (telemetrygateway.v1) [default: 127.0.0.1:10085].
    #[arg(long, env = "TELESPOOL_GRPC_LISTEN", value_name = "ADDR")]
    pub grpc_listen: Option<String>,
    /// HTTP address: POST /v1/events, admin API, /metrics, /healthz, /readyz [default: 127.0.0.1:10086].
    #[arg(long, env = "TELESPOOL_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<String>,
    /// Bearer token that opens the admin API to non-loopback clients [default: none: loopback only].
    #[arg(
        long,
        env = "TELESPOOL_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// Queue sync policy: always | interval(MS) | never (tests only) [default: always].
    #[arg(long, env = "TELESPOOL_SYNC", value_name = "POLICY")]
    pub sync: Option<String>,
    /// Roll a queue segment at this size [default: 64MiB].
    #[arg(long, env = "TELESPOOL_SEGMENT_SIZE", value_name = "SIZE")]
    pub segment_size: Option<String>,
    /// Roll a non-empty queue segment at this age [default: 1h].
    #[arg(long, env = "TELESPOOL_SEGMENT_AGE", value_name = "DURATION")]
    pub segment_age: Option<String>,
    /// Disk quota of the export queue [default: 1GiB].
    #[arg(long, env = "TELESPOOL_QUEUE_QUOTA", value_name = "SIZE")]
    pub queue_quota: Option<String>,
    /// When the queue is full: refuse | drop-oldest [default: refuse].
    #[arg(long, env = "TELESPOOL_QUEUE_FULL_POLICY", value_name = "POLICY")]
    pub queue_full_policy: Option<String>,
    /// Which events are queued for export: all | cody-only | disabled [default: all].
    #[arg(long, env = "TELESPOOL_EXPORT_MODE", value_name = "MODE")]
    pub export_mode: Option<String>,
    /// Sourcegraph.com mode: export private metadata and marketing unredacted.
    #[arg(long, env = "TELESPOOL_DOTCOM")]
    pub dotcom: bool,
    /// Extra allowlisted event types: feature::action::key1::key2,... [default: none].
    #[arg(
        long,
        env = "SRC_TELEMETRY_SENSITIVEMETADATA_ADDITIONAL_ALLOWED_EVENT_TYPES",
        value_name = "LIST"
    )]
    pub allowed_event_types: Option<String>,
    /// Largest event, protobuf-encoded [default: 1MiB].
    #[arg(long, env = "TELESPOOL_MAX_EVENT_SIZE", value_name = "SIZE")]
    pub max_event_size: Option<String>,
    /// Largest HTTP request body [default: 16MiB].
    #[arg(long, env = "TELESPOOL_MAX_BODY_SIZE", value_name = "SIZE")]
    pub max_body_size: Option<String>,
    /// Most events per request or payload [default: 10000].
    #[arg(long, env = "TELESPOOL_MAX_EVENTS", value_name = "N")]
    pub max_events: Option<usize>,
    /// Deepest private-metadata nesting [default: 64].
    #[arg(long, env = "TELESPOOL_MAX_DEPTH", value_name = "N")]
    pub max_depth: Option<usize>,
    /// How long event_logs rows are kept [default: 93d].
    #[arg(long, env = "TELESPOOL_EVENT_LOGS_RETENTION", value_name = "DURATION")]
    pub event_logs_retention: Option<String>,
    /// Memory for decoded event_logs blocks (queries, dedup checks), at least 1MiB [default: 2MiB].
    #[arg(long, env = "TELESPOOL_EVENT_LOGS_CACHE", value_name = "SIZE")]
    pub event_logs_cache: Option<String>,
    /// Version written to event_logs rows of events without one [default: telespool-VERSION].
    #[arg(long, env = "TELESPOOL_SERVER_VERSION", value_name = "VERSION")]
    pub server_version: Option<String>,
    /// Telemetry Gateway to export to, https://HOST:PORT [default: none: export off].
    #[arg(
        long,
        env = "TELEMETRY_GATEWAY_EXPORTER_EXPORT_ADDR",
        value_name = "URL"
    )]
    pub export_addr: Option<String>,
    /// Poll interval when there is nothing to export, at most 1h [default: 5m].
    #[arg(
        long,
        env = "TELEMETRY_GATEWAY_EXPORTER_EXPORT_INTERVAL",
        value_name = "DURATION"
    )]
    pub export_interval: Option<String>,
    /// Events per export stream before it is reopened, at least 100 [default: 10000].
    #[arg(
        long,
        env = "TELEMETRY_GATEWAY_EXPORTER_EXPORT_BATCH_SIZE",
        value_name = "N"
    )]
    pub export_batch_size: Option<usize>,
    /// How long fully exported queue segments are kept [default: 24h].
    #[arg(
        long,
        env = "TELEMETRY_GATEWAY_EXPORTER_EXPORTED_EVENTS_RETENTION",
        value_name = "DURATION"
    )]
    pub exported_events_retention: Option<String>,
    /// How often exported segments and old event_logs rows are purged [default: 30m].
    #[arg(
        long,
        env = "TELEMETRY_GATEWAY_EXPORTER_QUEUE_CLEANUP_INTERVAL",
        value_name = "DURATION"
    )]
    pub queue_cleanup_interval: Option<String>,
    /// Answered export attempts before an event is dead-lettered [default: 10].
    #[arg(long, env = "TELESPOOL_EXPORT_MAX_ATTEMPTS", value_name = "N")]
    pub export_max_attempts: Option<u32>,
    /// Instance id sent to the gateway [default: a UUID kept in the data dir].
    #[arg(long, env = "TELESPOOL_INSTANCE_ID", value_name = "ID")]
    pub instance_id: Option<String>,
    /// License key: export as a licensed instance [default: none: unlicensed].
    #[arg(
        long,
        env = "TELESPOOL_LICENSE_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub license_key: Option<String>,
    /// External URL sent to the gateway [default: empty].
    #[arg(long, env = "TELESPOOL_EXTERNAL_URL", value_name = "URL")]
    pub external_url: Option<String>,
    /// Allow plain-text export to a non-loopback gateway.
    #[arg(long, env = "TELESPOOL_EXPORT_INSECURE")]
    pub export_insecure: bool,
    /// Compress export payloads with gzip.
    #[arg(long, env = "TELESPOOL_EXPORT_GZIP")]
    pub export_gzip: bool,
    /// Disk the event_logs mirror may use, at least 1MiB; past it the oldest rows are evicted, never those of the newest hour [default: 2GiB].
    #[arg(long, env = "TELESPOOL_EVENT_LOGS_QUOTA", value_name = "SIZE")]
    pub event_logs_quota: Option<String>,
}

/// `telespool gateway`. Every setting also has an environment variable and
/// a key in the TOML config file (the flag name with underscores);
/// precedence: flags, then environment, then the file, then the defaults.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// TOML config file (keys: grpc_listen, http_listen, sink, ...).
    #[arg(long, env = "TELESPOOL_GATEWAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// gRPC listen address [default: 0.0.0.0:10080].
    #[arg(long, env = "TELESPOOL_GATEWAY_GRPC_LISTEN", value_name = "ADDR")]
    pub grpc_listen: Option<String>,
    /// HTTP listen address for /healthz, /readyz, /metrics [default: 0.0.0.0:10081].
    #[arg(long, env = "TELESPOOL_GATEWAY_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<String>,
    /// Where events go: file:PATH, nats://HOST:PORT or log [default: file:./telespool-gateway/events.jsonl].
    #[arg(long, env = "TELESPOOL_GATEWAY_SINK", value_name = "SINK")]
    pub sink: Option<String>,
    /// JetStream stream, created when missing [default: telemetry-events].
    #[arg(long, env = "TELESPOOL_GATEWAY_NATS_STREAM", value_name = "S")]
    pub nats_stream: Option<String>,
    /// Subject events are published on [default: telemetry.events].
    #[arg(long, env = "TELESPOOL_GATEWAY_NATS_SUBJECT", value_name = "S")]
    pub nats_subject: Option<String>,
    /// How long to wait for a JetStream publish ack [default: 5s].
    #[arg(
        long,
        env = "TELESPOOL_GATEWAY_NATS_ACK_TIMEOUT",
        value_name = "DURATION"
    )]
    pub nats_ack_timeout: Option<String>,
    /// Duplicate window of a stream the gateway creates [default: 2m].
    #[arg(
        long,
        env = "TELESPOOL_GATEWAY_NATS_DUPLICATE_WINDOW",
        value_name = "DURATION"
    )]
    pub nats_duplicate_window: Option<String>,
    /// Rotate the JSONL file before it grows past this many bytes [default: 268435456].
    #[arg(
        long,
        env = "TELESPOOL_GATEWAY_FILE_ROTATE_BYTES",
        value_name = "BYTES"
    )]
    pub file_rotate_bytes: Option<u64>,
    /// File of accepted license keys or their SHA-256 hashes, one per line.
    #[arg(long, env = "TELESPOOL_GATEWAY_LICENSE_KEYS", value_name = "FILE")]
    pub license_keys: Option<PathBuf>,
    /// File of managed-service bearer tokens: TOKEN or SERVICE_ID TOKEN per line.
    #[arg(long, env = "TELESPOOL_GATEWAY_SERVICE_TOKENS", value_name = "FILE")]
    pub service_tokens: Option<PathBuf>,
    /// Accept any non-empty license key (development only).
    #[arg(
        long,
        env = "TELESPOOL_GATEWAY_ACCEPT_ANY_LICENSE",
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub accept_any_license: Option<bool>,
    /// Events of one payload published at once [default: 250].
    #[arg(
        long,
        env = "TELEMETRY_GATEWAY_EVENTS_STREAM_PUBLISH_CONCURRENCY",
        value_name = "N"
    )]
    pub publish_concurrency: Option<u64>,
    /// Time in-flight payloads get to finish on SIGTERM or ctrl-c [default: 30s].
    #[arg(
        long,
        env = "TELESPOOL_GATEWAY_SHUTDOWN_TIMEOUT",
        value_name = "DURATION"
    )]
    pub shutdown_timeout: Option<String>,
}
