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
