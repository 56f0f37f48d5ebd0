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
    /// CRC-check every segment of a data directory (read-only); exits 1 if
    /// any record is damaged.
    Verify(VerifyArgs),
    /// Show the queue: segments, records, backlog, watermarks.
    Status(StatusArgs),
    /// Run the Telemetry Gateway: serve telemetrygateway.v1 and publish each
    /// event as JSON to a sink (JSONL file, NATS JetStream, or the log).
    Gateway(Box<GatewayArgs>),
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
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
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
