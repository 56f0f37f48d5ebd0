//! `telespool event-logs recent|counts|users|erase`: admin analytics over
//! the event_logs mirror, and erasure of one user's rows, through a running
//! sidecar (`--addr`) or on the data directory.

use super::{CmdError, EXIT_IN_USE, client};
use crate::cli::{EventLogsArgs, EventLogsCommand};
use crate::clock::{Clock, SystemClock};
use crate::event_logs::store::{EventLogConfig, EventLogError, EventLogStore};
use crate::ingest::queries;
use serde_json::Value;
use std::process::ExitCode;

fn open(dir: &std::path::Path) -> Result<EventLogStore, CmdError> {
    let path = dir.join("event_logs");
    if !path.is_dir() {
        return Err(CmdError::new(format!(
            "{} holds no event_logs store",
            dir.display()
        )));
    }
    EventLogStore::open(&path, EventLogConfig::default()).map_err(|e| match e {
        EventLogError::InUse { .. } => CmdError {
            message: format!(
                "{} is in use by a running telespool; ask it instead with --addr (its --http-listen address)",
                path.display()
            ),
            code: EXIT_IN_USE,
        },
        other => CmdError::new(other.to_string()),
    })
}

fn query_string<T: serde::Serialize>(p: &T) -> Result<String, CmdError> {
    let q = serde_urlencoded::to_string(p).map_err(|e| CmdError::new(e.to_string()))?;
    Ok(if q.is_empty() { q } else { format!("?{q}") })
}

fn offline(r: Result<Value, queries::QueryError>) -> Result<Value, CmdError> {
    r.map_err(|e| CmdError::new(e.to_string()))
}

/// Runs the subcommand.
pub fn run(a: &EventLogsArgs) -> Result<ExitCode, CmdError> {
    let now = SystemClock.now();
    let (v, kind) = match &a.command {
        EventLogsCommand::Recent(p) => {
            let v = match &a.addr {
                Some(addr) => {
                    client::get_json(addr, &format!("/v1/event-logs/recent{}", query_string(p)?))?
                }
                None => offline(queries::recent(&open(&a.dir)?, p, now))?,
            };
            (v, "recent")
        }
        EventLogsCommand::Counts(p) => {
            let v = match &a.addr {
                Some(addr) => {
                    client::get_json(addr, &format!("/v1/event-logs/counts{}", query_string(p)?))?
                }
                None => offline(queries::counts(&open(&a.dir)?, p, now))?,
            };
            (v, "counts")
        }
        EventLogsCommand::Erase(p) => {
            let v = match &a.addr {
                Some(addr) => {
                    client::post_json(addr, &format!("/v1/event-logs/erase{}", query_string(p)?))?
                }
                None => offline(queries::erase(&open(&a.dir)?, p, true))?,
            };
            (v, "erase")
        }
        EventLogsCommand::Users(p) => {
            let v = match &a.addr {
                Some(addr) => {
                    client::get_json(addr, &format!("/v1/event-logs/users{}", query_string(p)?))?
                }
                None => offline(queries::users(&open(&a.dir)?, p, now))?,
            };
            (v, "users")
        }
    };
    if a.json {
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    match kind {
        "recent" => {
            let rows = v["rows"].as_array().cloned().unwrap_or_default();
            println!(
                "{:<30} {:<40} {:>10} {:<20} event id",
                "timestamp", "name", "user", "source"
            );
            for r in &rows {
                let user = match r["user_id"].as_i64() {
                    Some(u) if u != 0 => u.to_string(),
                    _ => r["anonymous_user_id"].as_str().unwrap_or("").to_string(),
                };
                println!(
                    "{:<30} {:<40} {:>10} {:<20} {}",
                    r["timestamp"].as_str().unwrap_or(""),
                    r["name"].as_str().unwrap_or(""),
                    user,
                    r["source"].as_str().unwrap_or(""),
                    r["event_id"].as_str().unwrap_or("")
                );
            }
            println!("{} rows", rows.len());
            if let Some(next) = v["next"].as_str() {
                println!("more: --before {next}");
            }
        }
        "erase" => {
            println!(
                "{}: {} rows on {} days {}",
                v["erased"].as_str().unwrap_or(""),
                v["rows"].as_u64().unwrap_or(0),
                v["days"].as_u64().unwrap_or(0),
                if v["compaction"] == "done" {
                    "removed from disk"
                } else {
                    "hidden now; the sidecar removes them from disk in the background"
                }
            );
        }
        "counts" => {
            println!("{:<12} {:>10}  name", "day", "count");
            for c in v["counts"].as_array().cloned().unwrap_or_default() {
                println!(
                    "{:<12} {:>10}  {}",
                    c["day"].as_str().unwrap_or(""),
                    c["count"].as_u64().unwrap_or(0),
                    c["name"].as_str().unwrap_or("")
                );
            }
        }
        _ => {
            println!("{:<12} {:>10}", "day", "users");
            for c in v["users"].as_array().cloned().unwrap_or_default() {
                println!(
                    "{:<12} {:>10}",
                    c["day"].as_str().unwrap_or(""),
                    c["users"].as_u64().unwrap_or(0)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
