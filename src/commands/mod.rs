//! The subcommands. Each returns the process exit code or a [`CmdError`]
//! that `main` prints.

pub mod client;
pub mod config;
pub mod dead_letter;
pub mod event_logs;
pub mod gateway;
pub mod serve;
pub mod status;
pub mod verify;

use crate::queue::QueueError;

/// Exit code for "the configuration is invalid" (`serve`, `config check`).
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for "the data directory is in use by a running sidecar".
pub const EXIT_IN_USE: u8 = 3;

/// A command failure: a message for the user and an exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CmdError {
    /// What to print.
    pub message: String,
    /// The exit code.
    pub code: u8,
}

impl CmdError {
    /// A failure with exit code 1.
    pub fn new(message: impl Into<String>) -> CmdError {
        CmdError {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<QueueError> for CmdError {
    fn from(e: QueueError) -> CmdError {
        match e {
            QueueError::InUse { dir, owner } => CmdError {
                message: format!(
                    "{} is in use by a running telespool ({owner}); ask it through its admin API instead, e.g. `telespool status --addr 127.0.0.1:10086`",
                    dir.display()
                ),
                code: EXIT_IN_USE,
            },
            other => CmdError::new(other.to_string()),
        }
    }
}

impl From<crate::index::IndexError> for CmdError {
    fn from(e: crate::index::IndexError) -> CmdError {
        CmdError::new(e.to_string())
    }
}

/// Prints an admin answer as one line of JSON (`--json`). It goes through
/// a `serde_json::Value`, whose objects keep their keys sorted: the line
/// is the same, byte for byte, as before the answers were typed.
pub fn print_json<T: serde::Serialize>(answer: &T) -> Result<(), CmdError> {
    let v = serde_json::to_value(answer).map_err(|e| CmdError::new(e.to_string()))?;
    println!("{v}");
    Ok(())
}

/// Formats a byte count for people.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    match UNITS.get(u) {
        Some(unit) if u > 0 => format!("{v:.1} {unit}"),
        _ => format!("{n} B"),
    }
}
