//! Export drain benchmark: a real `telespool serve` process with a
//! pre-filled backlog of 1,000,000 events of about 600 B exports to an
//! acknowledge-only gateway (a fake that decodes and acknowledges, and
//! publishes nothing) in this process, on loopback. Reports events/s from
//! the first acknowledgement to the last, and the sidecar's peak anonymous
//! resident memory (RssAnon, from /proc/PID/status) sampled every 100 ms.
//!
//! Run: `cargo bench --bench export` (`EXPORT_BENCH_EVENTS=N` to change the
//! backlog). Under `cargo test` it runs with 20,000 events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[allow(dead_code)]
#[path = "../tests/common/fake_gateway.rs"]
mod fake_gateway;

use prost::Message;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use telespool::proto::telemetrygateway::v1::{
    Event, EventParameters, EventSource, EventUser, event_source,
};
use telespool::{Batch, Queue, QueueConfig, SyncPolicy};

fn event(i: u64) -> Vec<u8> {
    let mut metadata = std::collections::BTreeMap::new();
    for k in 0..24 {
        metadata.insert(format!("metric{k:02}"), (i % 97) as f64 + k as f64 / 3.0);
    }
    Event {
        id: uuid::Uuid::now_v7().to_string(),
        timestamp: Some(prost_types::Timestamp {
            seconds: 1_764_000_000 + (i as i64 % 86_400),
            nanos: 0,
        }),
        feature: "cody.completion".into(),
        action: "accepted".into(),
        source: Some(EventSource {
            server: Some(event_source::Server {
                version: "5.9.0".into(),
            }),
            client: Some(event_source::Client {
                name: "VSCODE".into(),
                version: Some("1.2.3".into()),
            }),
        }),
        parameters: Some(EventParameters {
            version: 1,
            metadata,
            ..Default::default()
        }),
        user: Some(EventUser {
            user_id: Some(i as i64 % 5000),
            anonymous_user_id: Some(format!("anon-{:032}", i % 5000)),
            sams_external_id: None,
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn rss_anon_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::var("EXPORT_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench_mode { 1_000_000 } else { 20_000 });
    let dir = tempfile::tempdir().unwrap();
    let sample = event(0);
    {
        let (q, _) = Queue::open_dir(
            dir.path(),
            QueueConfig {
                sync: SyncPolicy::Never,
                quota_bytes: 16 << 30,
                ..QueueConfig::default()
            },
        )
        .unwrap();
        let mut i = 0;
        while i < n {
            let k = 1000.min(n - i);
            let events: Vec<Vec<u8>> = (i..i + k).map(event).collect();
            q.append(Batch::from_slices(&events)).unwrap();
            i += k;
        }
        q.close().unwrap();
    }
    println!("backlog: {n} events of {} bytes", sample.len());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fake = fake_gateway::Fake::new(fake_gateway::Mode::AckAll);
    let mut fake_nodecode = fake.clone();
    fake_nodecode.decode = false;
    let addr = rt.block_on(fake_nodecode.serve());

    let mut child = Command::new(env!("CARGO_BIN_EXE_telespool"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--queue-quota",
            "16GiB",
        ])
        .args(["--export-addr", &format!("http://{addr}")])
        .env("TELESPOOL_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let acked = |f: &fake_gateway::Fake| f.seen.lock().unwrap().acked.len() as u64;
    let mut peak_rss = 0u64;
    let mut first: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(r) = rss_anon_kib(pid) {
            peak_rss = peak_rss.max(r);
        }
        let a = acked(&fake);
        if a > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if a >= n || Instant::now() > deadline {
            break;
        }
    }
    let elapsed = first.map(|f| f.elapsed()).unwrap_or_default();
    let a = acked(&fake);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let status = child.wait().unwrap();
    println!(
        "export drain: {a} of {n} events acknowledged in {:.2}s from the first ack: {:.0} events/s; sidecar peak RssAnon {:.1} MiB; sidecar exit {status}",
        elapsed.as_secs_f64(),
        a as f64 / elapsed.as_secs_f64().max(1e-9),
        peak_rss as f64 / 1024.0
    );
    assert_eq!(a, n, "every event must be acknowledged");
}
