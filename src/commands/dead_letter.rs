//! `telespool dead-letter list|requeue`, from a running sidecar (`--addr`)
//! or the data directory.

use super::{CmdError, EXIT_IN_USE, client};
use crate::cli::{DeadLetterArgs, DeadLetterCommand};
use crate::dead_letter::{DeadLetterConfig, DeadLetterError, DeadLetterStore};
use crate::ingest::queries;
use crate::queue::{Queue, QueueConfig};
use std::process::ExitCode;

fn open(dir: &std::path::Path) -> Result<DeadLetterStore, CmdError> {
    let path = dir.join("dead_letters");
    if !path.is_dir() {
        return Err(CmdError::new(format!(
            "{} holds no dead-letter store",
            dir.display()
        )));
    }
    DeadLetterStore::open(&path, DeadLetterConfig::default()).map_err(|e| match e {
        DeadLetterError::InUse { .. } => CmdError {
            message: format!(
                "{} is in use by a running telespool; ask it instead with --addr (its --http-listen address)",
                path.display()
            ),
            code: EXIT_IN_USE,
        },
        other => CmdError::new(other.to_string()),
    })
}

/// Runs the subcommand.
pub fn run(a: &DeadLetterArgs) -> Result<ExitCode, CmdError> {
    match &a.command {
        DeadLetterCommand::List(p) => {
            let v = match &a.addr {
                Some(addr) => {
                    let q =
                        serde_urlencoded::to_string(p).map_err(|e| CmdError::new(e.to_string()))?;
                    client::get_json(addr, &format!("/v1/dead-letter?{q}"))?
                }
                None => queries::dead_letters(&open(&a.dir)?, p)
                    .map_err(|e| CmdError::new(e.to_string()))?,
            };
            if a.json {
                println!("{v}");
            } else {
                let list = v["dead_letters"].as_array().cloned().unwrap_or_default();
                println!(
                    "{:>8} {:<8} {:>8} {:<38} reason",
                    "seq", "source", "attempts", "event id"
                );
                for d in &list {
                    println!(
                        "{:>8} {:<8} {:>8} {:<38} {}",
                        d["seq"].as_u64().unwrap_or(0),
                        d["source"].as_str().unwrap_or(""),
                        d["attempts"].as_u64().unwrap_or(0),
                        d["event_id"].as_str().unwrap_or("-"),
                        d["reason"].as_str().unwrap_or("")
                    );
                }
                println!(
                    "{} shown, {} in the store",
                    list.len(),
                    v["count"].as_u64().unwrap_or(0)
                );
            }
        }
        DeadLetterCommand::Requeue { limit } => {
            let limit = limit.unwrap_or(usize::MAX);
            let v = match &a.addr {
                Some(addr) => {
                    let q = if limit == usize::MAX {
                        String::new()
                    } else {
                        format!("?limit={limit}")
                    };
                    client::post_json(addr, &format!("/v1/dead-letter/requeue{q}"))?
                }
                None => {
                    let store = open(&a.dir)?;
                    let (queue, _) = Queue::open_dir(&a.dir, QueueConfig::default())?;
                    let v = queries::requeue(&store, &queue, limit)
                        .map_err(|e| CmdError::new(e.to_string()))?;
                    queue.close()?;
                    v
                }
            };
            if a.json {
                println!("{v}");
            } else {
                println!(
                    "requeued {} dead letters for export ({} from ingest left in place: they are invalid events)",
                    v["requeued"].as_u64().unwrap_or(0),
                    v["skipped"].as_u64().unwrap_or(0)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
