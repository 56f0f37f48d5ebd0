//! The `telespool` binary: parses the command line and runs a command.

use std::process::ExitCode;
use telespool::cli::Command;
use telespool::commands;

/// mimalloc instead of glibc's malloc: the gateway and the sidecar
/// allocate per event on one thread and free on another (events, sled
/// nodes), where glibc's malloc spent 25-30% of the CPU; measured in
/// `benches/gateway.rs` and docs/benchmarks.md ("Mirror"). Built without
/// transparent huge pages, which kept resident memory down.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = telespool::cli::parse();
    // Servers log their lifecycle at info; one-shot commands only warnings.
    let default_level = match cli.command {
        Command::Serve(_) | Command::Gateway(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TELESPOOL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // Colour only on a terminal: logs piped to files or collectors
        // stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Verify(a) => commands::verify::run(&a.dir, a.json),
        Command::Status(a) => commands::status::run(&a.dir, a.addr.as_deref(), a.json),
        Command::Serve(a) => commands::serve::run(&a),
        Command::EventLogs(a) => commands::event_logs::run(&a),
        Command::DeadLetter(a) => commands::dead_letter::run(&a),
        Command::Gateway(a) => commands::gateway::run(*a),
        Command::Config(a) => commands::config::run(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("telespool: {e}");
            ExitCode::from(e.code)
        }
    }
}
