//! A real full disk: `telespool serve` on a size-limited tmpfs the test
//! mounts (as root; elsewhere it says why it is skipped), filled through the
//! sidecar's own HTTP API.
//!
//! ENOSPC from the queue's segment or the `event_logs` day file refuses the
//! request with 507 and `Retry-After` without poisoning anything
//! (`/readyz` stays 200); once space is freed, appends resume without a
//! restart; every acknowledged event is in the queue (and every 7th in
//! `event_logs`, a lookup each), and `telespool verify` finds both stores
//! intact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use telespool::event_logs::{EventLogConfig, EventLogStore};
use telespool::ids::RecordId;
use telespool::queue::{Queue, QueueConfig};
use testkit::net::{free_addr, wait_listening};
use testkit::process::{self, Proc};

/// Unmounts (lazily) when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Mounts a tmpfs of `size` at `at`, or says why it cannot.
fn mount_tmpfs(at: &Path, size: &str) -> Result<Mounted, String> {
    std::fs::create_dir_all(at).unwrap();
    let out = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(at)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(Mounted(at.to_owned()))
    } else {
        Err(format!(
            "mount -t tmpfs failed (needs root): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// POSTs `ids` as events: the status and the ids acknowledged.
fn post(addr: SocketAddr, ids: &[String]) -> (u16, Vec<String>, String) {
    let events: Vec<String> = ids
        .iter()
        .map(|id| {
            format!(
                r#"{{"id":"{id}","feature":"cody.completion","action":"accepted","source":{{"server":{{"version":"5.9.0"}},"client":{{"name":"VSCODE","version":"1.2.3"}}}},"parameters":{{"version":1,"metadata":{{"latencyMs":12,"ratio":0.5}},"privateMetadata":{{"query":"{}"}}}},"user":{{"userId":"7"}}}}"#,
                "x".repeat(300)
            )
        })
        .collect();
    let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status: u16 = out[9..12].parse().unwrap();
    let json = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    let acked = if status == 200 {
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["failed"], serde_json::json!([]), "{json}");
        v["succeeded"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect()
    } else {
        assert!(
            out.to_ascii_lowercase().contains("retry-after:"),
            "{status} without Retry-After: {out}"
        );
        Vec::new()
    };
    (status, acked, json)
}

fn get(addr: SocketAddr, path: &str) -> u16 {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out[9..12].parse().unwrap()
}

#[test]
fn a_full_disk_answers_507_keeps_what_it_acknowledged_and_resumes_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let fs = dir.path().join("fs");
    let _mounted = match mount_tmpfs(&fs, "8m") {
        Ok(m) => m,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    // Space the test frees later.
    let ballast = fs.join("ballast");
    std::fs::write(&ballast, vec![0u8; 2 << 20]).unwrap();
    let data = fs.join("data");
    let http = free_addr();
    let mut command = Command::new(process::bin());
    command
        .args(["serve", "--sync", "always", "--data-dir"])
        .arg(&data)
        .arg("--grpc-listen")
        .arg(free_addr().to_string())
        .arg("--http-listen")
        .arg(http.to_string())
        .env("TELESPOOL_LOG", "warn");
    let mut serve = Proc::spawn(command);
    wait_listening(http, Duration::from_secs(30));

    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut refused = 0;
    let mut n = 0u64;
    let mut batch = || -> Vec<String> {
        n += 1;
        (0..50).map(|j| format!("full-{n:05}-{j:02}")).collect()
    };
    // Fill until the disk refuses a few requests.
    for _ in 0..5_000 {
        let (status, ok, body) = post(http, &batch());
        match status {
            200 => acked.extend(ok),
            507 => {
                assert!(
                    body.contains("space") || body.contains("disk full"),
                    "{body}"
                );
                refused += 1;
                if refused == 5 {
                    break;
                }
            }
            other => panic!("answered {other} on a full disk: {body}"),
        }
    }
    assert_eq!(refused, 5, "the disk never filled");
    assert!(acked.len() > 500, "only {} acknowledged", acked.len());
    // Nothing is poisoned.
    assert_eq!(get(http, "/readyz"), 200);

    // Space comes back: appends resume without a restart.
    std::fs::remove_file(&ballast).unwrap();
    let mut resumed = 0;
    for _ in 0..20 {
        let (status, ok, body) = post(http, &batch());
        assert!(status == 200 || status == 507, "{status}: {body}");
        if status == 200 {
            acked.extend(ok);
            resumed += 1;
        }
    }
    assert!(
        resumed >= 10,
        "only {resumed} of 20 requests succeeded after space was freed"
    );
    assert!(
        serve.terminate(Duration::from_secs(30)).success(),
        "{}",
        serve.stderr()
    );

    // Both stores hold every acknowledged event, and are intact.
    let verify = Command::new(process::bin())
        .arg("verify")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let (queue, _) = Queue::open_dir(&data, QueueConfig::default()).unwrap();
    let mut queued = BTreeSet::new();
    let mut from = RecordId(1);
    loop {
        let records = queue.read(from, 10_000, usize::MAX).unwrap();
        let Some(last) = records.last() else { break };
        from = RecordId(last.id.0 + 1);
        for r in &records {
            queued.insert(
                telespool::export::wire::event_id(&r.event)
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    let missing = acked.difference(&queued).count();
    assert_eq!(
        missing, 0,
        "{missing} acknowledged events are not in the queue"
    );
    drop(queue);
    // A lookup by id reads a block: every 7th id (and the last) is enough
    // to see a lost group commit (a block holds one group).
    let logs = EventLogStore::open(&data.join("event_logs"), EventLogConfig::default()).unwrap();
    let missing: Vec<&String> = acked
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 7 == 0 || *i == acked.len() - 1)
        .map(|(_, id)| id)
        .filter(|id| logs.get(id).unwrap().is_none())
        .take(5)
        .collect();
    assert!(missing.is_empty(), "not in event_logs: {missing:?}");
    println!(
        "disk full: {} events acknowledged, {refused} requests refused with 507, {resumed} of 20 accepted after freeing space",
        acked.len()
    );
}
