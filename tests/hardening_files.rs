//! Owner-only data, untrusted text in logs, and the bounded dead letters,
//! with real processes where the process matters:
//!
//! - `telespool serve` started under `umask 022` keeps its data directory
//!   `0700` and every file `0600` while it records events, and tightens a
//!   data directory left with looser modes (logging it); the gateway's
//!   JSONL is `0600` in a `0700` directory it created.
//! - A symbolic link planted where a segment file is created is refused,
//!   not followed.
//! - A `feature` (or event id) holding a newline cannot forge a log line
//!   in either process's log: every line of their stderr is one
//!   well-formed log line.
//! - An invalid 1 MiB event is dead-lettered as a 64 KiB prefix with its
//!   original size.
//! - Warnings: `--dotcom` (exports unredacted) and an empty license-keys
//!   file (accepts nobody).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use telespool::proto::telemetrygateway::v1 as pb;
use testkit::process::{self, Proc};
use testkit::sidecar::*;

/// What a forged line would start with.
const FORGED: &str = "level=ERROR forged";

/// `telespool ARGS` through `sh -c 'umask 022; exec ...'` (Rust cannot
/// set the umask of a child without unsafe code), its stderr collected.
fn start(args: &[&str]) -> Proc {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"umask 022; exec "$0" "$@""#)
        .arg(process::bin())
        .args(args)
        .env("TELESPOOL_LOG", "info")
        .env_remove("TELESPOOL_CONFIG")
        .env_remove("TELESPOOL_GATEWAY_CONFIG");
    Proc::spawn(command)
}

/// Waits (up to 30 s) for a log line containing `text`; returns it.
fn wait_for(p: &mut Proc, text: &str) -> String {
    p.wait_for_line(text, Duration::from_secs(30))
}

/// SIGTERM, then waits (up to 30 s) for the exit; returns the whole log.
fn stop(mut p: Proc) -> String {
    p.terminate(Duration::from_secs(30));
    p.stderr()
}

/// Starts `telespool serve` on port-0 listeners; returns it and its
/// addresses (read from the "serving" log line).
async fn serve(data: &Path, extra: &[&str]) -> (Proc, SocketAddr, SocketAddr) {
    let mut args = vec![
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--grpc-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let mut p = start(&args);
    let line = wait_for(&mut p, "telespool sidecar serving");
    (
        p,
        process::addr_field(&line, "grpc"),
        process::addr_field(&line, "http"),
    )
}

/// Every entry under `root` (root included): (path, permission bits, is dir).
fn walk(root: &Path) -> Vec<(PathBuf, u32, bool)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_owned()];
    let meta = std::fs::symlink_metadata(root).unwrap();
    out.push((root.to_owned(), meta.permissions().mode() & 0o7777, true));
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            out.push((entry.path(), mode, meta.is_dir()));
            if meta.is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    out
}

/// Asserts that `root` and everything in it is owner-only: directories
/// `0700`, files `0600`.
fn assert_owner_only(root: &Path) {
    let entries = walk(root);
    for (path, mode, dir) in &entries {
        let want = if *dir { 0o700 } else { 0o600 };
        assert_eq!(
            *mode,
            want,
            "{} is {mode:o}, not {want:o}\n{:#?}",
            path.display(),
            entries
                .iter()
                .map(|(p, m, _)| format!("{m:o} {}", p.display()))
                .collect::<Vec<_>>()
        );
    }
}

/// Records valid events over both APIs and one invalid event (a dead
/// letter).
async fn record_some(grpc: SocketAddr, http: SocketAddr) {
    let mut client = grpc_client(grpc).await;
    let ok = valid("cody.completion", "accepted");
    let mut bad = valid("cody.completion", "accepted");
    bad.feature = "Invalid".into();
    let succeeded = record_payload(&mut client, vec![ok.clone(), bad.clone()])
        .await
        .unwrap();
    assert_eq!(succeeded, [ok.id, bad.id]);
    let answer = post_json_events(http, &[event_json(&valid("search", "submitted"))]).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_umask_022_the_data_dir_is_0700_and_every_file_0600_while_serve_records_events() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // The export address is a closed port: export is on (so the instance id
    // is generated and kept), it just never connects.
    let (p, grpc, http) = serve(&data, &["--export-addr", "http://127.0.0.1:9"]).await;
    record_some(grpc, http).await;
    let names: Vec<String> = walk(&data)
        .iter()
        .map(|(p, _, _)| p.strip_prefix(&data).unwrap().display().to_string())
        .collect();
    for expected in [
        "instance_id",
        "queue",
        "queue/index/db",
        "event_logs/conf",
        "dead_letters/db",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    assert!(names.iter().any(|n| n.ends_with(".seg")), "{names:?}");
    assert_owner_only(&data);
    let log = stop(p);
    assert_owner_only(&data);
    assert!(
        !log.contains("removed group and other access"),
        "a fresh data directory needs no tightening:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_left_world_readable_is_tightened_at_start_and_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (p, grpc, http) = serve(&data, &[]).await;
    record_some(grpc, http).await;
    stop(p);
    // As an older telespool (or `cp -r` under umask 022) would leave it.
    for (path, _, dir) in walk(&data) {
        let mode = if dir { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let (p, grpc, http) = serve(&data, &[]).await;
    assert_owner_only(&data);
    record_some(grpc, http).await;
    let log = stop(p);
    assert_owner_only(&data);
    let tightened: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("removed group and other access"))
        .collect();
    assert!(tightened.len() >= 5, "{log}");
    assert!(
        tightened
            .iter()
            .any(|l| l.contains("from=\"644\"") || l.contains("from=644")),
        "{log}"
    );
}

#[tokio::test]
async fn a_symbolic_link_planted_where_a_segment_is_created_is_refused_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let queue = data.join("queue");
    std::fs::create_dir_all(&queue).unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let first = telespool::log::segment::file_name(telespool::SegmentId(1));
    std::os::unix::fs::symlink(&victim, queue.join(&first)).unwrap();
    let err = telespool::Queue::open_dir(&data, telespool::QueueConfig::default())
        .expect_err("the open must fail")
        .to_string();
    assert!(
        err.contains(&first) && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(
        std::fs::symlink_metadata(queue.join(&first))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// Asserts that every line of a captured log is one log line of the text
/// formatter (timestamp, level, target), and that none was forged.
fn assert_every_line_is_a_log_line(log: &str) {
    assert!(!log.is_empty());
    for line in log.lines() {
        let well_formed = line.len() > 30
            && line.as_bytes()[..4].iter().all(u8::is_ascii_digit)
            && line.as_bytes()[4] == b'-'
            && line.as_bytes()[10] == b'T'
            && [" TRACE ", " DEBUG ", "  INFO ", "  WARN ", " ERROR "]
                .iter()
                .any(|level| line[..40.min(line.len())].contains(level));
        assert!(well_formed, "not a log line: {line:?}\nin:\n{log}");
        assert!(!line.starts_with(FORGED), "forged: {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feature_with_a_newline_does_not_forge_a_line_in_the_sidecar_log() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (mut p, grpc, _) = serve(&data, &[]).await;
    let mut client = grpc_client(grpc).await;
    let mut bad = valid("cody.completion", "accepted");
    bad.feature = format!("a\n{FORGED}");
    bad.action = format!("b\r\n{FORGED} too");
    let succeeded = record_payload(&mut client, vec![bad.clone()])
        .await
        .unwrap();
    assert_eq!(succeeded, [bad.id]);
    let line = wait_for(&mut p, "invalid event dead-lettered");
    assert!(line.contains(r"a\nlevel=ERROR forged"), "{line}");
    let log = stop(p);
    assert_every_line_is_a_log_line(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_with_newlines_does_not_forge_a_line_in_the_gateway_log() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = format!("file:{}", tmp.path().join("out/events.jsonl").display());
    let mut p = start(&[
        "gateway",
        "--accept-any-license",
        "--grpc-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--sink",
        &sink,
    ]);
    let line = wait_for(&mut p, "telespool gateway serving");
    let mut client = grpc_client(process::addr_field(&line, "grpc")).await;
    let mut bad = valid("cody.completion", "accepted");
    bad.id = format!("id\n{FORGED} id");
    bad.feature = format!("a\n{FORGED}");
    let succeeded = record_payload(&mut client, vec![bad.clone()])
        .await
        .unwrap();
    // Invalid events from an instance are acknowledged and dropped, loudly.
    assert_eq!(succeeded, [bad.id]);
    let line = wait_for(&mut p, "dropping an event that can never be published");
    assert!(line.contains(r"id\nlevel=ERROR forged id"), "{line}");
    let log = stop(p);
    assert_every_line_is_a_log_line(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_umask_022_the_gateway_jsonl_is_0600_in_a_0700_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out/nested");
    let path = out.join("events.jsonl");
    let sink = format!("file:{}", path.display());
    let mut p = start(&[
        "gateway",
        "--accept-any-license",
        "--grpc-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--sink",
        &sink,
        "--file-rotate-bytes",
        "4096",
    ]);
    let line = wait_for(&mut p, "telespool gateway serving");
    let mut client = grpc_client(process::addr_field(&line, "grpc")).await;
    // A payload is one write, never split: the second one rotates the file.
    for _ in 0..2 {
        let events: Vec<pb::Event> = (0..10)
            .map(|_| valid("cody.completion", "accepted"))
            .collect();
        let succeeded = record_payload(&mut client, events).await.unwrap();
        assert_eq!(succeeded.len(), 10);
    }
    stop(p);
    assert!(
        path.with_extension("jsonl.1").exists(),
        "rotated at least once"
    );
    assert_owner_only(&tmp.path().join("out"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_license_keys_file_starts_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    std::fs::write(&keys, "# keys to come\n\n").unwrap();
    let sink = format!("file:{}", tmp.path().join("events.jsonl").display());
    let mut p = start(&[
        "gateway",
        "--license-keys",
        keys.to_str().unwrap(),
        "--grpc-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--sink",
        &sink,
    ]);
    let line = wait_for(&mut p, "license-keys file holds no keys");
    assert!(line.contains("WARN"), "{line}");
    wait_for(&mut p, "telespool gateway serving");
    stop(p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotcom_mode_warns_at_start_that_exports_are_unredacted() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut p, _, _) = serve(&tmp.path().join("data"), &["--dotcom"]).await;
    let line = wait_for(&mut p, "--dotcom is on");
    assert!(
        line.contains("WARN") && line.contains("NOT redacted"),
        "{line}"
    );
    let (q, _, _) = serve(&tmp.path().join("other"), &[]).await;
    let log = stop(q);
    assert!(!log.contains("--dotcom is on"), "{log}");
    stop(p);
}

#[tokio::test]
async fn an_invalid_1_mib_event_is_dead_lettered_as_a_64_kib_prefix_with_its_size() {
    let tmp = tempfile::tempdir().unwrap();
    let sidecar = Sidecar::start(config(tmp.path())).await;
    let mut client = sidecar.grpc().await;
    let mut big = valid("cody.completion", "accepted");
    big.parameters.as_mut().unwrap().private_metadata =
        Some(private(&[("blob", string_value(&"x".repeat(1024 * 1024)))]));
    let size = prost::Message::encoded_len(&big) as u64;
    assert!(size > 1024 * 1024);
    let succeeded = record_payload(&mut client, vec![big.clone()])
        .await
        .unwrap();
    assert_eq!(succeeded, [big.id.clone()]);
    let letters = sidecar.running.dead_letters().list(None, 10).unwrap();
    assert_eq!(letters.len(), 1);
    let entry = &letters[0].entry;
    assert_eq!(entry.event_id.as_deref(), Some(big.id.as_str()));
    assert_eq!(
        entry.event.len(),
        telespool::dead_letter::INGEST_EVENT_PREFIX_BYTES
    );
    assert_eq!(entry.original_size, Some(size));
    assert!(entry.reason.contains("max_event_bytes"), "{}", entry.reason);
    // The prefix is the start of the event as received.
    assert_eq!(
        entry.event,
        prost::Message::encode_to_vec(&big)[..entry.event.len()]
    );
    let listed = get(sidecar.http_addr(), "/v1/dead-letter").await.json();
    assert_eq!(listed["dead_letters"][0]["original_size"], size);
    assert_eq!(
        listed["dead_letters"][0]["event_bytes"],
        telespool::dead_letter::INGEST_EVENT_PREFIX_BYTES
    );
    sidecar.stop().await;
}
