//! `telespool status DIR`: the queue as the sidecar would see it.

use super::{CmdError, human_bytes};
use crate::clock::{Clock, SystemClock};
use crate::queue::{Queue, QueueConfig, SegmentInfo};
use std::path::Path;
use std::process::ExitCode;

/// Opens the queue (recovery included, as a start of the sidecar would) and
/// prints its state.
pub fn run(data_dir: &Path, json: bool) -> Result<ExitCode, CmdError> {
    let dir = crate::queue::queue_dir(data_dir);
    if !dir.is_dir() {
        return Err(CmdError::new(format!(
            "{} holds no queue (no {} directory)",
            data_dir.display(),
            dir.display()
        )));
    }
    let (q, report) = Queue::open_dir(data_dir, QueueConfig::default())?;
    let segments = q.segments();
    let backlog = q.backlog();
    let next_id = report.next_id;
    if json {
        let segs: Vec<serde_json::Value> = segments.iter().map(segment_json).collect();
        println!(
            "{}",
            serde_json::json!({
                "dir": q.dir().display().to_string(),
                "segments": segs,
                "records": segments.iter().map(|s| s.meta.records()).sum::<u64>(),
                "backlog": {
                    "records": backlog.records,
                    "bytes": backlog.bytes,
                    "oldest_append": backlog.oldest_append.map(|t| t.to_string()),
                },
                "disk_bytes": backlog.disk_bytes,
                "quota_bytes": q.config().quota_bytes,
                "next_record_id": next_id.0,
                "recovery": {
                    "truncated": report.truncated.len(),
                    "lost_records": report.lost_records(),
                },
            })
        );
    } else {
        let records: u64 = segments.iter().map(|s| s.meta.records()).sum();
        let sealed = segments.iter().filter(|s| s.meta.sealed).count();
        println!("queue       {}", q.dir().display());
        println!(
            "segments    {} ({sealed} sealed), {} on disk of a {} quota",
            segments.len(),
            human_bytes(backlog.disk_bytes),
            human_bytes(q.config().quota_bytes)
        );
        println!("records     {records} in the queue, next record id {next_id}");
        let oldest = backlog.oldest_append.map_or("-".to_string(), |t| {
            format!("{t} ({}s ago)", SystemClock.now().since(t).as_secs())
        });
        println!(
            "backlog     {} unexported records (~{}), oldest appended {oldest}",
            backlog.records,
            human_bytes(backlog.bytes)
        );
        let (mut acked, mut dl, mut lost, mut dropped) = (0, 0, 0, 0);
        for s in &segments {
            acked += s.meta.counts.acked;
            dl += s.meta.counts.dead_lettered;
            lost += s.meta.counts.lost;
            dropped += s.meta.counts.dropped;
        }
        println!(
            "resolved    {acked} acked, {dl} dead-lettered, {lost} lost, {dropped} dropped (in segments still on disk)"
        );
        println!();
        println!(
            "{:>8} {:>12} {:>12} {:>10} {:>10} {:>12} {:>10}  state",
            "segment", "first", "last", "records", "unexported", "watermark", "bytes"
        );
        for s in &segments {
            let m = &s.meta;
            let state = if s.active {
                "active".to_string()
            } else if let Some(t) = m.fully_resolved_at {
                format!("sealed, fully exported at {t}")
            } else {
                "sealed".to_string()
            };
            println!(
                "{:>8} {:>12} {:>12} {:>10} {:>10} {:>12} {:>10}  {state}",
                m.id.0,
                m.first_id.0,
                m.last_id.map_or("-".to_string(), |l| l.0.to_string()),
                m.records(),
                s.unresolved,
                m.watermark.0,
                human_bytes(m.bytes),
            );
        }
    }
    q.close()?;
    Ok(ExitCode::SUCCESS)
}

fn segment_json(s: &SegmentInfo) -> serde_json::Value {
    let m = &s.meta;
    serde_json::json!({
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
