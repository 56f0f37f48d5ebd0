//! `telespool status [DIR | --addr ADDR]`: the queue as the sidecar sees it.

use super::{CmdError, client, human_bytes};
use crate::admin::{QueueStatus, queue_status};
use crate::clock::{Clock, SystemClock};
use crate::queue::{Queue, QueueConfig};
use std::path::Path;
use std::process::ExitCode;

/// Opens the queue (recovery included, as a start of the sidecar would) or
/// asks the sidecar at `addr`, and prints the state.
pub fn run(data_dir: &Path, addr: Option<&str>, json_out: bool) -> Result<ExitCode, CmdError> {
    let status: QueueStatus = match addr {
        Some(a) => client::get(a, "/v1/status")?,
        None => {
            let dir = crate::queue::queue_dir(data_dir);
            if !dir.is_dir() {
                return Err(CmdError::new(format!(
                    "{} holds no queue (no {} directory)",
                    data_dir.display(),
                    dir.display()
                )));
            }
            let (q, report) = Queue::open_dir(data_dir, QueueConfig::default())?;
            let status = queue_status(&q, Some(&report), SystemClock.now());
            q.close()?;
            status
        }
    };
    if json_out {
        super::print_json(&status)?;
    } else {
        print_text(&status);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(s: &QueueStatus) {
    let segs = &s.segments;
    let sealed = segs.iter().filter(|g| g.sealed).count();
    println!("queue       {}", s.dir);
    println!(
        "segments    {} ({sealed} sealed), {} on disk of a {} quota",
        segs.len(),
        human_bytes(s.disk_bytes),
        human_bytes(s.quota_bytes)
    );
    println!(
        "records     {} in the queue, next record id {}",
        s.records, s.next_record_id
    );
    let b = &s.backlog;
    let oldest = match (&b.oldest_append, b.oldest_age_seconds) {
        (Some(t), Some(age)) => format!("{t} ({age}s ago)"),
        _ => "-".to_string(),
    };
    println!(
        "backlog     {} unexported records (~{}), oldest appended {oldest}",
        b.records,
        human_bytes(b.bytes)
    );
    println!(
        "resolved    {} acked, {} dead-lettered, {} lost, {} dropped (in segments still on disk)",
        segs.iter().map(|g| g.acked).sum::<u64>(),
        segs.iter().map(|g| g.dead_lettered).sum::<u64>(),
        segs.iter().map(|g| g.lost).sum::<u64>(),
        segs.iter().map(|g| g.dropped).sum::<u64>(),
    );
    if let Some(p) = &s.poisoned {
        println!("POISONED    {p}");
    }
    println!();
    println!(
        "{:>8} {:>12} {:>12} {:>10} {:>10} {:>12} {:>10}  state",
        "segment", "first", "last", "records", "unexported", "watermark", "bytes"
    );
    for g in segs {
        let state = if g.active {
            "active".to_string()
        } else if let Some(t) = &g.fully_exported_at {
            format!("sealed, fully exported at {t}")
        } else {
            "sealed".to_string()
        };
        println!(
            "{:>8} {:>12} {:>12} {:>10} {:>10} {:>12} {:>10}  {state}",
            g.segment,
            g.first_record,
            g.last_record.map_or("-".to_string(), |l| l.to_string()),
            g.records,
            g.unresolved,
            g.watermark,
            human_bytes(g.bytes),
        );
    }
}
