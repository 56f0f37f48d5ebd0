//! `telespool dead-letter list|requeue`, from a running sidecar (`--addr`)
//! or the data directory.

use super::{CmdError, EXIT_IN_USE, client, print_json};
use crate::admin::{self, DeadLetterListing, RequeueParams, Requeued};
use crate::cli::{DeadLetterArgs, DeadLetterCommand};
use crate::dead_letter::{DeadLetterConfig, DeadLetterError, DeadLetterStore};
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
            let listing: DeadLetterListing = match &a.addr {
                Some(addr) => client::get(addr, &client::with_query("/v1/dead-letter", p)?)?,
                None => admin::dead_letters(&open(&a.dir)?, p)
                    .map_err(|e| CmdError::new(e.to_string()))?,
            };
            if a.json {
                print_json(&listing)?;
            } else {
                print_listing(&listing);
            }
        }
        DeadLetterCommand::Requeue { limit } => {
            let requeued: Requeued = match &a.addr {
                Some(addr) => {
                    let params = RequeueParams { limit: *limit };
                    client::post(
                        addr,
                        &client::with_query("/v1/dead-letter/requeue", &params)?,
                    )?
                }
                None => {
                    let store = open(&a.dir)?;
                    let (queue, _) = Queue::open_dir(&a.dir, QueueConfig::default())?;
                    let r = admin::requeue(&store, &queue, limit.unwrap_or(usize::MAX))
                        .map_err(|e| CmdError::new(e.to_string()))?;
                    queue.close()?;
                    r
                }
            };
            if a.json {
                print_json(&requeued)?;
            } else {
                println!(
                    "requeued {} dead letters for export ({} from ingest left in place: they are invalid events)",
                    requeued.requeued, requeued.skipped
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_listing(listing: &DeadLetterListing) {
    println!(
        "{:>8} {:<8} {:>8} {:<38} reason",
        "seq", "source", "attempts", "event id"
    );
    for d in &listing.dead_letters {
        println!(
            "{:>8} {:<8} {:>8} {:<38} {}",
            d.seq,
            d.source.to_string(),
            d.attempts,
            d.event_id.as_deref().unwrap_or("-"),
            d.reason
        );
    }
    println!(
        "{} shown, {} in the store",
        listing.dead_letters.len(),
        listing.count
    );
}
