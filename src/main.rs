//! The `telespool` binary: parses the command line and runs a command.

use clap::Parser;
use std::process::ExitCode;
use telespool::cli::{Cli, Command};
use telespool::commands;

/// mimalloc instead of glibc's malloc: sled's writes (the `event_logs`
/// mirror) allocate and free nodes across threads, and glibc's arenas made
/// that a quarter of the record path's CPU (docs/benchmarks.md, "Mirror").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Servers log their lifecycle at info; one-shot commands only warnings.
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TELESPOOL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Verify(a) => commands::verify::run(&a.dir, a.json),
        Command::Status(a) => commands::status::run(&a.dir, a.addr.as_deref(), a.json),
        Command::Serve(a) => commands::serve::run(&a),
        Command::EventLogs(a) => commands::event_logs::run(&a),
        Command::DeadLetter(a) => commands::dead_letter::run(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("telespool: {e}");
            ExitCode::from(e.code)
        }
    }
}
