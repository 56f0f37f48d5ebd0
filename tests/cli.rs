//! The offline CLI: `verify` and `status` against real directories.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;
use telespool::log::record::encoded_len;
use telespool::log::segment::HEADER_LEN;
use telespool::{Batch, Queue, QueueConfig};

fn telespool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_telespool"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn filled(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (q, _) = Queue::open_dir(dir.path(), QueueConfig::default()).unwrap();
    let events: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 100]).collect();
    q.append(Batch::from_slices(&events)).unwrap();
    q.close().unwrap();
    dir
}

#[test]
fn verify_passes_a_clean_directory() {
    let dir = filled(10);
    let (code, out, _) = telespool(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("10 valid, records 1..=10"), "{out}");
    assert!(out.contains("0 damaged, 0 records lost"), "{out}");
}

#[test]
fn verify_reports_damaged_records_by_id_and_exits_non_zero() {
    let dir = filled(10);
    let seg = dir.path().join("queue/00000000000000000001.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = HEADER_LEN + 4 * encoded_len(100) + 30;
    bytes[at] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let (code, out, _) = telespool(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("DAMAGED"), "{out}");
    assert!(out.contains("records 5..=5 lost"), "{out}");
    let (code, json, _) = telespool(&["verify", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["lost_records"], 1);
    // verify changed nothing.
    assert_eq!(std::fs::read(&seg).unwrap(), bytes);
}

#[test]
fn status_prints_the_number_of_records_in_the_queue() {
    let dir = filled(7);
    let (code, out, err) = telespool(&["status", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("7 in the queue"), "{out}");
    assert!(out.contains("7 unexported records"), "{out}");
    let (_, json, _) = telespool(&["status", "--json", dir.path().to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["records"], 7);
    assert_eq!(v["backlog"]["records"], 7);
}

#[test]
fn commands_say_clearly_when_a_running_sidecar_holds_the_directory() {
    let dir = filled(3);
    // The queue closed by `filled` may hold its sled index's lock a moment
    // longer (sled's flusher thread winds down after the drop).
    let started = std::time::Instant::now();
    let (q, _) = loop {
        match Queue::open_dir(dir.path(), QueueConfig::default()) {
            Ok(q) => break q,
            Err(e) => {
                assert!(started.elapsed() < std::time::Duration::from_secs(5), "{e}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    };
    for cmd in ["status", "verify"] {
        let (code, _, err) = telespool(&[cmd, dir.path().to_str().unwrap()]);
        assert_eq!(code, 3, "{cmd}: {err}");
        assert!(err.contains("in use by a running telespool"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
    }
    drop(q);
}

#[test]
fn commands_refuse_a_directory_without_a_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = telespool(&["status", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("holds no queue"), "{err}");
}

/// A data directory with a queue and an event_logs store holding `n` rows
/// of users 1 and 2 on 2024-03-01.
fn with_event_logs(n: usize) -> tempfile::TempDir {
    use telespool::event_logs::{EventLogConfig, EventLogStore, translate};
    use telespool::proto::telemetrygateway::v1::{Event, EventUser};
    let dir = filled(1);
    let store =
        EventLogStore::open(&dir.path().join("event_logs"), EventLogConfig::default()).unwrap();
    let rows: Vec<_> = (0..n)
        .map(|i| {
            let e = Event {
                id: format!("e{i}"),
                timestamp: Some(prost_types::Timestamp {
                    seconds: 1_709_287_200 + i as i64,
                    nanos: 0,
                }),
                feature: "search".into(),
                action: "view".into(),
                user: Some(EventUser {
                    user_id: Some(1 + (i % 2) as i64),
                    anonymous_user_id: None,
                    sams_external_id: None,
                }),
                ..Default::default()
            };
            translate(&e, None, "6.0.0", telespool::UnixNanos(0))
        })
        .collect();
    store.insert_batch(&rows).unwrap();
    drop(store);
    dir
}

#[test]
fn verify_checks_the_event_logs_blocks_and_reports_a_damaged_one() {
    let dir = with_event_logs(500);
    let (code, out, _) = telespool(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("event_logs 2024-03-01.evl: ok: 1 blocks, 500 rows"),
        "{out}"
    );
    let day = dir.path().join("event_logs/days/2024-03-01.evl");
    let mut bytes = std::fs::read(&day).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x10;
    std::fs::write(&day, &bytes).unwrap();
    let (code, out, _) = telespool(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("event_logs 2024-03-01.evl"), "{out}");
    assert!(
        out.contains("torn tail") || out.contains("DAMAGED"),
        "{out}"
    );
    let (_, json, _) = telespool(&["verify", "--json", dir.path().to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["event_logs"]["days"][0]["day"], "2024-03-01");
    // verify changed nothing.
    assert_eq!(std::fs::read(&day).unwrap(), bytes);
}

#[test]
fn event_logs_erase_removes_a_users_rows_offline() {
    let dir = with_event_logs(100);
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = telespool(&["event-logs", "--dir", d, "erase", "--user-id", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("user id 2: 50 rows on 1 days removed from disk"),
        "{out}"
    );
    let (code, json, err) = telespool(&[
        "event-logs",
        "--dir",
        d,
        "--json",
        "recent",
        "--from",
        "2024-03-01T00:00:00Z",
        "--to",
        "2024-03-02T00:00:00Z",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|r| r["user_id"] == 1));
    let (code, _, err) = telespool(&["event-logs", "--dir", d, "erase", "--user-id", "0"]);
    assert_eq!(code, 1);
    assert!(err.contains("user_id must not be 0"), "{err}");
}
