//! Command-line definitions (clap). Parsing only; the commands live in
//! `commands/`. The flags of `serve` and `gateway` are their settings
//! tables' `Args` ([`crate::config::settings`],
//! [`crate::gateway::settings`]); [`parse`] records, for each of their
//! values, whether it came from the command line or the environment.

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;

pub use crate::config::DEFAULT_DATA_DIR;
pub use crate::config::ServeArgs;
pub use crate::gateway::settings::GatewayArgs;
use crate::settings::{CliOrigins, CommandArgs};

/// Parses the process's command line (exits with clap's message and code
/// on a usage error).
pub fn parse() -> Cli {
    parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// Parses `args` (the program name first) and records the origin of each
/// `serve` and `gateway` setting.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    let sub = |m: &clap::ArgMatches| m.subcommand().map(|(_, m)| m.clone());
    match (&mut cli.command, sub(&matches)) {
        (Command::Serve(a), Some(m)) => a.set_origins(CliOrigins::from_matches(&m)),
        (Command::Gateway(a), Some(m)) => a.set_origins(CliOrigins::from_matches(&m)),
        (Command::Config(c), Some(m)) => {
            // config check <serve|gateway>
            let target = sub(&m).and_then(|check| sub(&check));
            let ConfigCommand::Check(check) = &mut c.command;
            if let Some(m) = target {
                match &mut check.target {
                    CheckTarget::Serve(a) => a.set_origins(CliOrigins::from_matches(&m)),
                    CheckTarget::Gateway(a) => a.set_origins(CliOrigins::from_matches(&m)),
                }
            }
        }
        _ => {}
    }
    Ok(cli)
}

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
    /// Check a configuration without running it.
    Config(ConfigArgs),
}

/// `telespool config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// `telespool config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the settings of `serve` or `gateway` (their flags,
    /// environment and --config file) and print each effective value, secrets
    /// masked, with where it came from: flag, env, file or default. Exits 2
    /// naming the setting when one is invalid.
    Check(CheckArgs),
}

/// `telespool config check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command whose settings to check, with its flags.
    #[command(subcommand)]
    pub target: CheckTarget,
}

/// Whose settings `telespool config check` checks.
#[derive(Debug, Subcommand)]
pub enum CheckTarget {
    /// The sidecar's: `telespool config check serve [--config FILE] [FLAGS]`.
    Serve(Box<ServeArgs>),
    /// The gateway's: `telespool config check gateway [--config FILE] [FLAGS]`.
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
    Recent(crate::admin::RecentParams),
    /// Events by name per UTC day.
    Counts(crate::admin::RangeParams),
    /// Distinct users per UTC day (user id, else anonymous id).
    Users(crate::admin::RangeParams),
    /// Erase one user's rows (a privacy request): hidden from every query
    /// at once, then removed from disk by a compaction.
    Erase(crate::admin::EraseParams),
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
    List(crate::admin::DeadLetterParams),
    /// Put export dead letters (events the gateway refused) back in the queue.
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
