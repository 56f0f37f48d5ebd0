//! `telespool event-logs recent|counts|users|erase`: admin analytics over
//! the event_logs mirror, and erasure of one user's rows, through a running
//! sidecar (`--addr`) or on the data directory.

use super::{CmdError, EXIT_IN_USE, client, print_json};
use crate::admin::{self, Compaction, DailyUsers, Erased, EventCounts, QueryError, RecentEvents};
use crate::cli::{EventLogsArgs, EventLogsCommand};
use crate::clock::{Clock, SystemClock};
use crate::event_logs::store::{EventLogConfig, EventLogError, EventLogStore};
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

fn offline<T>(r: Result<T, QueryError>) -> Result<T, CmdError> {
    r.map_err(|e| CmdError::new(e.to_string()))
}

/// Runs the subcommand.
pub fn run(a: &EventLogsArgs) -> Result<ExitCode, CmdError> {
    let now = SystemClock.now();
    match &a.command {
        EventLogsCommand::Recent(p) => {
            let page: RecentEvents = match &a.addr {
                Some(addr) => client::get(addr, &client::with_query("/v1/event-logs/recent", p)?)?,
                None => offline(admin::recent(&open(&a.dir)?, p, now))?,
            };
            if a.json {
                print_json(&page)?;
            } else {
                print_recent(&page);
            }
        }
        EventLogsCommand::Counts(p) => {
            let counts: EventCounts = match &a.addr {
                Some(addr) => client::get(addr, &client::with_query("/v1/event-logs/counts", p)?)?,
                None => offline(admin::counts(&open(&a.dir)?, p, now))?,
            };
            if a.json {
                print_json(&counts)?;
            } else {
                print_counts(&counts);
            }
        }
        EventLogsCommand::Erase(p) => {
            let erased: Erased = match &a.addr {
                Some(addr) => client::post(addr, &client::with_query("/v1/event-logs/erase", p)?)?,
                None => offline(admin::erase(&open(&a.dir)?, p, true))?,
            };
            if a.json {
                print_json(&erased)?;
            } else {
                print_erased(&erased);
            }
        }
        EventLogsCommand::Users(p) => {
            let users: DailyUsers = match &a.addr {
                Some(addr) => client::get(addr, &client::with_query("/v1/event-logs/users", p)?)?,
                None => offline(admin::users(&open(&a.dir)?, p, now))?,
            };
            if a.json {
                print_json(&users)?;
            } else {
                print_users(&users);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_recent(page: &RecentEvents) {
    println!(
        "{:<30} {:<40} {:>10} {:<20} event id",
        "timestamp", "name", "user", "source"
    );
    for r in &page.rows {
        let user = if r.user_id != 0 {
            r.user_id.to_string()
        } else {
            r.anonymous_user_id.clone()
        };
        println!(
            "{:<30} {:<40} {:>10} {:<20} {}",
            r.timestamp, r.name, user, r.source, r.event_id
        );
    }
    println!("{} rows", page.rows.len());
    if let Some(next) = &page.next {
        println!("more: --before {next}");
    }
}

fn print_erased(e: &Erased) {
    println!(
        "{}: {} rows on {} days {}",
        e.erased,
        e.rows,
        e.days,
        match e.compaction {
            Compaction::Done => "removed from disk",
            Compaction::Pending =>
                "hidden now; the sidecar removes them from disk in the background",
        }
    );
}

fn print_counts(counts: &EventCounts) {
    println!("{:<12} {:>10}  name", "day", "count");
    for c in &counts.counts {
        println!("{:<12} {:>10}  {}", c.day, c.count, c.name);
    }
}

fn print_users(users: &DailyUsers) {
    println!("{:<12} {:>10}", "day", "users");
    for c in &users.users {
        println!("{:<12} {:>10}", c.day, c.users);
    }
}
