//! `telespool verify DIR`: CRC-check every segment of the queue and every
//! block of the `event_logs` day files, read-only.

use super::{CmdError, human_bytes};
use crate::index::{Index, SledIndex};
use crate::queue::verify::{SegmentCheck, verify_dir};
use crate::queue::{open::take_lock, queue_dir};
use crate::storage::{FsStorage, Storage};
use std::path::Path;
use std::process::ExitCode;

/// Runs verify; exit code 1 if any record is damaged or a segment is
/// unusable.
pub fn run(data_dir: &Path, json: bool) -> Result<ExitCode, CmdError> {
    let dir = queue_dir(data_dir);
    if !dir.is_dir() {
        return Err(CmdError::new(format!(
            "{} holds no queue (no {} directory)",
            data_dir.display(),
            dir.display()
        )));
    }
    let storage = FsStorage;
    let _lock = take_lock(&storage, &dir)?;
    let index_path = dir.join("index");
    let metas = if index_path.exists() {
        SledIndex::open(&index_path)?.load()?
    } else {
        Vec::new()
    };
    let checks = verify_dir(&storage as &dyn Storage, &dir, &metas)
        .map_err(|e| CmdError::new(format!("reading {}: {e}", dir.display())))?;
    let days = crate::event_logs::verify::verify_store(&data_dir.join("event_logs"))
        .map_err(|e| CmdError::new(e.to_string()))?;
    let damaged = checks.iter().filter(|c| c.is_damaged()).count()
        + days.iter().filter(|d| d.is_damaged()).count();
    if json {
        let mut v: serde_json::Value =
            serde_json::from_str(&to_json(&checks)).unwrap_or(serde_json::Value::Null);
        if !days.is_empty() {
            v["event_logs"] = days_json(&days);
        }
        println!("{v}");
    } else {
        print_text(&checks);
        print_days(&days);
    }
    Ok(if damaged > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_text(checks: &[SegmentCheck]) {
    let mut lost = 0;
    for c in checks {
        let name = c
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match &c.header {
            Err(e) => {
                println!("{name}: UNUSABLE: {e}");
                continue;
            }
            Ok(_) => {
                let range = match (c.first, c.last) {
                    (Some(a), Some(b)) => format!("records {a}..={b}"),
                    _ => "no records".to_string(),
                };
                let status = if c.is_damaged() { "DAMAGED" } else { "ok" };
                println!(
                    "{name}: {status}: {} valid, {range}, {}",
                    c.records,
                    human_bytes(c.bytes)
                );
            }
        }
        for d in &c.damage {
            let ids = d.lost.map_or("no record ids".to_string(), |(a, b)| {
                format!("records {a}..={b} lost")
            });
            println!(
                "  damage at offset {} ({} bytes): {}; {ids}",
                d.offset, d.len, d.cause
            );
        }
        if let Some(t) = &c.tail {
            if c.missing.is_some() {
                println!(
                    "  damaged end at offset {} ({} bytes): {}",
                    t.offset, t.len, t.cause
                );
            } else {
                println!(
                    "  torn tail at offset {} ({} bytes): {}; nothing acknowledged is in it, the next open truncates it",
                    t.offset, t.len, t.cause
                );
            }
        }
        if let Some((a, b)) = c.missing {
            println!("  records {a}..={b} known to the index are missing from the file");
        }
        lost += c.lost_records();
    }
    let damaged = checks.iter().filter(|c| c.is_damaged()).count();
    println!(
        "{} segments checked, {damaged} damaged, {lost} records lost",
        checks.len()
    );
}

fn print_days(days: &[crate::event_logs::verify::DayCheck]) {
    if days.is_empty() {
        return;
    }
    for d in days {
        let name = d
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match &d.header {
            Err(e) => println!("event_logs {name}: UNUSABLE: {e}"),
            Ok(()) => println!(
                "event_logs {name}: {}: {} blocks, {} rows, {}",
                if d.is_damaged() { "DAMAGED" } else { "ok" },
                d.blocks,
                d.rows,
                human_bytes(d.bytes)
            ),
        }
        for x in &d.damage {
            println!(
                "  damage at offset {} ({} bytes): {}; the block there is lost",
                x.offset, x.len, x.cause
            );
        }
        if let Some(t) = &d.tail {
            println!(
                "  torn tail at offset {} ({} bytes): {}; the next open truncates it",
                t.offset, t.len, t.cause
            );
        }
    }
    println!(
        "event_logs: {} days checked, {} damaged",
        days.len(),
        days.iter().filter(|d| d.is_damaged()).count()
    );
}

fn days_json(days: &[crate::event_logs::verify::DayCheck]) -> serde_json::Value {
    serde_json::json!({
        "days": days.iter().map(|d| serde_json::json!({
            "day": d.day,
            "path": d.path.display().to_string(),
            "bytes": d.bytes,
            "header_error": d.header.as_ref().err().map(ToString::to_string),
            "blocks": d.blocks,
            "rows": d.rows,
            "damage": d.damage.iter().map(|x| serde_json::json!({"offset": x.offset, "len": x.len, "cause": x.cause})).collect::<Vec<_>>(),
            "tail": d.tail.as_ref().map(|t| serde_json::json!({"offset": t.offset, "len": t.len, "cause": t.cause})),
            "damaged": d.is_damaged(),
        })).collect::<Vec<_>>(),
        "damaged": days.iter().filter(|d| d.is_damaged()).count(),
    })
}

fn to_json(checks: &[SegmentCheck]) -> String {
    let segs: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "segment": c.id.0,
                "path": c.path.display().to_string(),
                "bytes": c.bytes,
                "header_error": c.header.as_ref().err().map(ToString::to_string),
                "records": c.records,
                "first_record": c.first.map(|r| r.0),
                "last_record": c.last.map(|r| r.0),
                "damage": c.damage.iter().map(|d| serde_json::json!({
                    "offset": d.offset, "len": d.len, "cause": d.cause.to_string(),
                    "lost": d.lost.map(|(a, b)| [a.0, b.0]),
                })).collect::<Vec<_>>(),
                "tail": c.tail.map(|t| serde_json::json!({"offset": t.offset, "len": t.len, "cause": t.cause.to_string()})),
                "missing": c.missing.map(|(a, b)| [a.0, b.0]),
                "damaged": c.is_damaged(),
                "lost_records": c.lost_records(),
            })
        })
        .collect();
    serde_json::json!({
        "segments": segs,
        "damaged": checks.iter().filter(|c| c.is_damaged()).count(),
        "lost_records": checks.iter().map(SegmentCheck::lost_records).sum::<u64>(),
    })
    .to_string()
}
