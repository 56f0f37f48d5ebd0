//! `telespool status [DIR | --addr ADDR]`: the queue as the sidecar sees it.

use super::{CmdError, client, human_bytes};
use crate::clock::{Clock, SystemClock};
use crate::queue::open::OpenReport;
use crate::queue::{Queue, QueueConfig, SegmentInfo};
use serde_json::{Value, json};
use std::path::Path;
use std::process::ExitCode;

/// The queue's state as JSON (shared by the CLI and the admin API).
pub fn status_json(q: &Queue, report: Option<&OpenReport>) -> Value {
    let segments = q.segments();
    let backlog = q.backlog();
    let next_id = segments
        .last()
        .map_or(0, |s| s.meta.last_id.map_or(s.meta.first_id.0, |l| l.0 + 1));
    let mut v = json!({
        "dir": q.dir().display().to_string(),
        "segments": segments.iter().map(segment_json).collect::<Vec<_>>(),
        "records": segments.iter().map(|s| s.meta.records()).sum::<u64>(),
        "backlog": {
            "records": backlog.records,
            "bytes": backlog.bytes,
            "oldest_append": backlog.oldest_append.map(|t| t.to_string()),
            "oldest_age_seconds": backlog.oldest_append.map(|t| SystemClock.now().since(t).as_secs()),
        },
        "disk_bytes": backlog.disk_bytes,
        "quota_bytes": q.config().quota_bytes,
        "next_record_id": next_id,
        "poisoned": q.poisoned().map(|e| e.to_string()),
    });
    if let Some(r) = report {
        v["recovery"] = json!({
            "truncated": r.truncated.len(),
            "lost_records": r.lost_records(),
        });
    }
    v
}

/// Opens the queue (recovery included, as a start of the sidecar would) or
/// asks the sidecar at `addr`, and prints the state.
pub fn run(data_dir: &Path, addr: Option<&str>, json_out: bool) -> Result<ExitCode, CmdError> {
    let v = match addr {
        Some(a) => client::get_json(a, "/v1/status")?,
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
            let v = status_json(&q, Some(&report));
            q.close()?;
            v
        }
    };
    if json_out {
        println!("{v}");
    } else {
        print_text(&v);
    }
    Ok(ExitCode::SUCCESS)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn print_text(v: &Value) {
    let segs = v["segments"].as_array().cloned().unwrap_or_default();
    let sealed = segs
        .iter()
        .filter(|s| s["sealed"].as_bool() == Some(true))
        .count();
    println!("queue       {}", v["dir"].as_str().unwrap_or("-"));
    println!(
        "segments    {} ({sealed} sealed), {} on disk of a {} quota",
        segs.len(),
        human_bytes(u(&v["disk_bytes"])),
        human_bytes(u(&v["quota_bytes"]))
    );
    println!(
        "records     {} in the queue, next record id {}",
        u(&v["records"]),
        u(&v["next_record_id"])
    );
    let b = &v["backlog"];
    let oldest = match (
        b["oldest_append"].as_str(),
        b["oldest_age_seconds"].as_u64(),
    ) {
        (Some(t), Some(age)) => format!("{t} ({age}s ago)"),
        _ => "-".to_string(),
    };
    println!(
        "backlog     {} unexported records (~{}), oldest appended {oldest}",
        u(&b["records"]),
        human_bytes(u(&b["bytes"]))
    );
    let sum = |k: &str| segs.iter().map(|s| u(&s[k])).sum::<u64>();
    println!(
        "resolved    {} acked, {} dead-lettered, {} lost, {} dropped (in segments still on disk)",
        sum("acked"),
        sum("dead_lettered"),
        sum("lost"),
        sum("dropped")
    );
    if let Some(p) = v["poisoned"].as_str() {
        println!("POISONED    {p}");
    }
    println!();
    println!(
        "{:>8} {:>12} {:>12} {:>10} {:>10} {:>12} {:>10}  state",
        "segment", "first", "last", "records", "unexported", "watermark", "bytes"
    );
    for s in &segs {
        let state = if s["active"].as_bool() == Some(true) {
            "active".to_string()
        } else if let Some(t) = s["fully_exported_at"].as_str() {
            format!("sealed, fully exported at {t}")
        } else {
            "sealed".to_string()
        };
        println!(
            "{:>8} {:>12} {:>12} {:>10} {:>10} {:>12} {:>10}  {state}",
            u(&s["segment"]),
            u(&s["first_record"]),
            s["last_record"]
                .as_u64()
                .map_or("-".to_string(), |l| l.to_string()),
            u(&s["records"]),
            u(&s["unresolved"]),
            u(&s["watermark"]),
            human_bytes(u(&s["bytes"])),
        );
    }
}

fn segment_json(s: &SegmentInfo) -> Value {
    let m = &s.meta;
    json!({
        "segment": m.id.0,
        "first_record": m.first_id.0,
        "last_record": m.last_id.map(|l| l.0),
        "records": m.records(),
        "unresolved": s.unresolved,
        "watermark": m.watermark.0,
        "resolved_above": m.resolved_above.len(),
        "bytes": m.bytes,
        "created": m.created.to_string(),
        "sealed": m.sealed,
        "active": s.active,
        "fully_exported_at": m.fully_resolved_at.map(|t| t.to_string()),
        "acked": m.counts.acked,
        "dead_lettered": m.counts.dead_lettered,
        "lost": m.counts.lost,
        "dropped": m.counts.dropped,
    })
}
