//! End to end with real processes: `telespool serve` exporting to
//! `telespool gateway` (file sink).
//!
//! 1. Every recorded event appears in the gateway's JSONL exactly as the
//!    gateway renders it, once (no kills, no duplicates).
//! 2. Events are recorded while the sidecar is killed with SIGKILL at
//!    random moments and restarted, several times. At the end the gateway
//!    holds every event the sidecar acknowledged to its callers (at least
//!    once). Duplicates are counted and reported: they come from records
//!    exported before a kill whose resolution the index had not flushed yet
//!    (it flushes every second), so they must stay a small fraction.
//! 3. Acknowledgements are durable promptly: with long export streams and
//!    a gateway that writes every copy (no dedup window), no event the
//!    gateway acknowledged more than 1 s before a kill is sent again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::net::{free_addr, wait_listening};
use testkit::process::{self, Proc};

/// Events per export stream: a kill can re-export at most the stream in
/// flight, since acknowledgements are flushed to the index after each.
const BATCH_SIZE: usize = 100;

/// How long a started process may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

fn gateway(dir: &Path, grpc: SocketAddr, http: SocketAddr, extra: &[&str]) -> Proc {
    let mut command = Command::new(process::bin());
    command
        .args(["gateway", "--accept-any-license"])
        .args(extra)
        .arg("--grpc-listen")
        .arg(grpc.to_string())
        .arg("--http-listen")
        .arg(http.to_string())
        .arg("--sink")
        .arg(format!("file:{}", dir.join("events.jsonl").display()))
        .env("TELESPOOL_LOG", "warn");
    let p = Proc::spawn(command);
    wait_listening(grpc, LISTEN_TIMEOUT);
    p
}

struct Sidecar {
    data: PathBuf,
    grpc: SocketAddr,
    http: SocketAddr,
    gateway: SocketAddr,
    /// `--export-batch-size`: events per export stream.
    batch_size: usize,
}

impl Sidecar {
    /// Starts `telespool serve` (`TELESPOOL_SIDECAR_BIN`: another build of
    /// it, to compare).
    fn start(&self) -> Proc {
        let mut command = Command::new(process::bin_or_env("TELESPOOL_SIDECAR_BIN"));
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--grpc-listen")
            .arg(self.grpc.to_string())
            .arg("--http-listen")
            .arg(self.http.to_string())
            .arg("--export-addr")
            .arg(format!("http://{}", self.gateway))
            .args(["--export-interval", "1s", "--instance-id", "e2e-instance"])
            .args(["--export-batch-size", &self.batch_size.to_string()])
            .env("TELESPOOL_LOG", "warn");
        let p = Proc::spawn(command);
        wait_listening(self.http, LISTEN_TIMEOUT);
        p
    }
}

fn event_json(id: &str, i: u64) -> String {
    format!(
        r#"{{"id":"{id}","timestamp":"2026-11-25T10:00:{:02}.{:03}Z","feature":"cody.completion","action":"accepted","source":{{"server":{{"version":"5.9.0"}},"client":{{"name":"VSCODE","version":"1.2.3"}}}},"parameters":{{"version":1,"metadata":{{"latencyMs":{i},"ratio":0.5}}}},"user":{{"userId":"{}"}}}}"#,
        i % 60,
        i % 1000,
        i % 100 + 1
    )
}

/// POSTs a batch; `Some(succeeded ids)` on a 200, `None` if the outcome is
/// unknown (connection refused or cut: the sidecar was killed).
fn post(addr: SocketAddr, ids: &[String], base: u64) -> Option<Vec<String>> {
    let events: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(k, id)| event_json(id, base + k as u64))
        .collect();
    let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    if !out.starts_with("HTTP/1.1 200") {
        return None;
    }
    let json = out.split("\r\n\r\n").nth(1)?;
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(
        v["succeeded"]
            .as_array()?
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
    )
}

/// Complete JSONL lines of the gateway's file sink: event id -> lines.
fn delivered(dir: &Path) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut out: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let text = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_default();
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["data"]["event"]["id"].as_str().unwrap().to_string();
        out.entry(id).or_default().push(v);
    }
    out
}

fn wait_delivered(
    dir: &Path,
    ids: &BTreeSet<String>,
    within: Duration,
) -> BTreeMap<String, Vec<serde_json::Value>> {
    let start = Instant::now();
    loop {
        let d = delivered(dir);
        let missing = ids.iter().filter(|id| !d.contains_key(*id)).count();
        if missing == 0 {
            return d;
        }
        assert!(
            start.elapsed() < within,
            "{missing} acknowledged events never reached the gateway"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_acknowledged_event_reaches_the_gateway_through_repeated_kill_9() {
    let gw_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (gw_grpc, gw_http) = (free_addr(), free_addr());
    let _gw = gateway(gw_dir.path(), gw_grpc, gw_http, &[]);
    let sidecar = Sidecar {
        data: data.path().to_path_buf(),
        grpc: free_addr(),
        http: free_addr(),
        gateway: gw_grpc,
        batch_size: BATCH_SIZE,
    };

    // 1. No kills: every event once, exactly as the gateway renders it.
    let mut side = sidecar.start();
    let ids: Vec<String> = (0..200).map(|i| format!("calm-{i:04}")).collect();
    for (k, chunk) in ids.chunks(50).enumerate() {
        let ok = post(sidecar.http, chunk, k as u64 * 50).expect("sidecar answers");
        assert_eq!(ok.len(), chunk.len());
    }
    let want: BTreeSet<String> = ids.iter().cloned().collect();
    let d = wait_delivered(gw_dir.path(), &want, Duration::from_secs(60));
    for (i, id) in ids.iter().enumerate() {
        let lines = &d[id];
        assert_eq!(
            lines.len(),
            1,
            "{id} delivered {} times without any kill",
            lines.len()
        );
        let sent = telespool::protojson::parse_event(event_json(id, i as u64).as_bytes()).unwrap();
        let rendered = telespool::protojson::render_event(&sent).unwrap();
        assert_eq!(
            lines[0]["data"]["event"], rendered,
            "{id} not delivered as rendered"
        );
        let meta = &lines[0]["data"]["metadata"]["identifier"]["unlicensedInstance"];
        assert_eq!(meta["instanceId"], "e2e-instance");
        assert_eq!(
            lines[0]["attributes"]["publisher.source"],
            "unlicensed_instance"
        );
    }

    // 2. Record while the sidecar is killed (SIGKILL) at random moments,
    // also in the middle of requests, and restarted.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        let http = sidecar.http;
        std::thread::spawn(move || {
            let mut acked: BTreeSet<String> = BTreeSet::new();
            let mut unknown = 0usize;
            let mut batch = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let chunk: Vec<String> = (0..50)
                    .map(|j| format!("storm-{batch:05}-{j:02}"))
                    .collect();
                match post(http, &chunk, batch * 50) {
                    Some(ok) => acked.extend(ok),
                    None => {
                        unknown += chunk.len();
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                batch += 1;
            }
            (acked, unknown, batch)
        })
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7e1e5);
    let kills = 5;
    for _ in 0..kills {
        std::thread::sleep(Duration::from_millis(rng.random_range(300..1200)));
        drop(side); // SIGKILL, whatever the sidecar is doing
        side = sidecar.start();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (acked, unknown, batch) = client.join().unwrap();
    let d = wait_delivered(gw_dir.path(), &acked, Duration::from_secs(90));
    let storm: Vec<(&String, usize)> = d
        .iter()
        .filter(|(id, _)| id.starts_with("storm-"))
        .map(|(id, l)| (id, l.len()))
        .collect();
    let duplicates: usize = storm.iter().map(|(_, n)| n - 1).sum();
    let never_sent = storm.iter().filter(|(id, _)| {
        let b: u64 = id[6..11].parse().unwrap();
        b >= batch
    });
    assert_eq!(
        never_sent.count(),
        0,
        "the gateway received events that were never sent"
    );
    println!(
        "kill -9 x{kills}: {} events acknowledged to callers, {unknown} with unknown outcome (request cut by a kill), {} distinct delivered, {duplicates} duplicate deliveries",
        acked.len(),
        storm.len()
    );
    assert!(
        duplicates <= kills * BATCH_SIZE,
        "{duplicates} duplicates after {kills} kills: a kill may re-export at most the stream in flight ({BATCH_SIZE} events)"
    );
    drop(side);
}

/// Unix time in ms.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn answers_acknowledged_more_than_a_second_before_a_kill_are_not_exported_again() {
    let gw_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (gw_grpc, gw_http) = (free_addr(), free_addr());
    // Every copy written, each with the time the gateway formed its line
    // (just before its fsync and answer).
    let _gw = gateway(gw_dir.path(), gw_grpc, gw_http, &["--dedup-window", "1ms"]);
    let sidecar = Sidecar {
        data: data.path().to_path_buf(),
        grpc: free_addr(),
        http: free_addr(),
        gateway: gw_grpc,
        // Streams long enough to span the kills: only the prompt flushing of
        // answers, not the end of a stream, makes them durable.
        batch_size: 1_000_000,
    };
    let mut side = sidecar.start();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        let http = sidecar.http;
        std::thread::spawn(move || {
            let mut acked: BTreeSet<String> = BTreeSet::new();
            let mut batch = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let chunk: Vec<String> =
                    (0..50).map(|j| format!("ack-{batch:05}-{j:02}")).collect();
                match post(http, &chunk, batch * 50) {
                    Some(ok) => acked.extend(ok),
                    None => std::thread::sleep(Duration::from_millis(20)),
                }
                batch += 1;
            }
            acked
        })
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xacc5);
    let mut kills = Vec::new();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(rng.random_range(1500..3000)));
        kills.push(unix_ms());
        drop(side); // SIGKILL
        side = sidecar.start();
    }
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let acked = client.join().unwrap();
    let d = wait_delivered(gw_dir.path(), &acked, Duration::from_secs(90));
    // For each event sent again by a restarted sidecar: how long before the
    // kill that made it forget the answer the gateway had taken the first
    // copy. A copy sent again by the same sidecar process (a stream retried
    // while it ran) is no lost answer: counted apart.
    let mut lags: Vec<u64> = Vec::new();
    let mut retried_alive = 0usize;
    for lines in d.values().filter(|l| l.len() > 1) {
        let first = lines[0]["published_at_ms"].as_u64().unwrap();
        let again = lines[1]["published_at_ms"].as_u64().unwrap();
        match kills.iter().rev().find(|&&k| k <= again) {
            Some(&kill) if kill > first => lags.push(kill - first),
            _ => retried_alive += 1,
        }
    }
    lags.sort_unstable();
    let at = |q: f64| lags.get(((lags.len() as f64 - 1.0) * q) as usize).copied();
    println!(
        "{} kills, {} events acknowledged, {} sent again after a kill ({} again by the same process); gateway ack to kill for those: p50 {:?} ms, p99 {:?} ms, max {:?} ms",
        kills.len(),
        acked.len(),
        lags.len(),
        retried_alive,
        at(0.5),
        at(0.99),
        lags.last()
    );
    assert!(
        acked.len() > 1000,
        "too little load to say anything: {}",
        acked.len()
    );
    assert!(
        lags.last().is_none_or(|&max| max < 1000),
        "an event acknowledged {:?} ms before a kill was sent again",
        lags.last()
    );
    drop(side);
}
