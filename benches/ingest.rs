//! Ingest benchmark: gRPC `RecordEvents` on loopback, acknowledged as the
//! record path does (the queue durable with fsync policy `always`, group
//! commit; the `event_logs` mirror flushed), with the load client on the
//! same cores as the sidecar.
//!
//! Load: 16 concurrent streams (one connection each), each sending
//! payloads of 100 realistic events (~600 B encoded: feature/action,
//! source, numeric metadata, private metadata, user, feature flags) and
//! waiting for each payload's answer before sending the next. Reported:
//! events/s, payload latency percentiles (send to answer), and anonymous
//! resident memory (RssAnon); the in-process runs also count heap
//! allocations per event acknowledged (`testkit::alloc`, around mimalloc).
//!
//! Two runs:
//! 1. in-process: the sidecar (`app::start`) and the client share this
//!    process and its 2-worker runtime; RssAnon is the whole process's.
//! 2. separate process: `telespool serve` (the bench-profile binary) with
//!    this process as its client; RssAnon is read from `/proc/PID/status`
//!    of the sidecar alone, sampled every 100 ms (the peak is reported).
//!
//! A last run measures the mirror's share alone: the same events'
//! `event_logs` rows, encoded beforehand, inserted (one call per 100-row
//! payload) and flushed by one thread in commits of 16 x 100 rows (what
//! one mirror group commit holds under this load). The sidecar and this
//! benchmark use the binary's allocator (mimalloc).
//!
//! Each place (in-process, separate process) runs closed loop (each stream sends its next payload
//! when the last is answered: the throughput the sidecar sustains; with
//! 16 x 100 events always in flight, latency is then in-flight / rate) and
//! paced at fixed offered rates (default 50,000 events/s, the target, and
//! 20,000 events/s; latency measured from each payload's scheduled send
//! time). The load is `testkit::load` (also behind
//! `examples/grpc_load.rs`), with random v4 ids (v7 beside them, `INGEST_BENCH_IDS`).
//!
//! Run: `cargo bench --bench ingest`. Settings from the environment:
//! `INGEST_BENCH_RATE` (offered events/s of the paced runs, comma-separated,
//! default `50000,20000`),
//! `INGEST_BENCH_ONLY` (run only the runs whose name contains this),
//! `INGEST_BENCH_IDS` (the events' id kinds, default `v4,v7`: closed loops
//! run with each, paced runs with the first),
//! `INGEST_BENCH_SECS` (measured seconds per run, default 10; a 2 s warm-up
//! comes first), `INGEST_BENCH_STREAMS` (16), `INGEST_BENCH_BATCH` (100),
//! `TELESPOOL_BIN` (the `telespool` binary of the separate-process runs;
//! default the one cargo built for this bench),
//! `INGEST_BENCH_DIR` (where the data directories go; default the system
//! temporary directory; it must be a real disk for fsync to mean anything).
//! Figures and their commands are recorded in `docs/benchmarks.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use telespool::app;
use telespool::cli::ServeArgs;
use telespool::config::ServeConfig;
use telespool::proto::telemetrygateway::v1 as pb;

/// The allocator of the `telespool` binary (src/main.rs), so the figures
/// are the binary's, counting allocations for the in-process runs.
#[global_allocator]
static GLOBAL: Counting = Counting(mimalloc::MiMalloc);
use testkit::alloc::{Counting, allocations};
use testkit::events::event;
use testkit::load::{Figures, IdKind};

const WARMUP: Duration = Duration::from_secs(2);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the load (`testkit::load`: warm-up, then `secs` measured) with
/// `ids`; every payload must be answered with all its ids.
async fn load(
    addr: SocketAddr,
    streams: usize,
    batch: usize,
    secs: u64,
    rate: Option<f64>,
    ids: IdKind,
) -> Figures {
    let f = testkit::load::run(&testkit::load::Spec {
        addr,
        streams,
        batch,
        warmup: WARMUP,
        measure: Duration::from_secs(secs),
        rate,
        ids,
    })
    .await;
    assert_eq!(f.errors, 0, "load failed: {:?}", f.first_error);
    assert_eq!(f.acked, f.sent, "every event sent is acknowledged");
    f
}

/// RssAnon of a process, in KiB.
fn rss_anon_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Machine-wide CPU jiffies from `/proc/stat`: (busy, total).
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// CPU jiffies (user + system) used by a process so far.
fn process_jiffies(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (in parentheses): state, then
    // numbers; utime and stime are the 14th and 15th fields of the line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

/// CPU use during a run: the machine's, and what the named processes took.
struct CpuUse {
    machine: (u64, u64),
    ours: u64,
    pids: Vec<String>,
    started: Instant,
}

impl CpuUse {
    fn start(pids: &[&str]) -> CpuUse {
        CpuUse {
            machine: machine_jiffies(),
            ours: pids.iter().map(|p| process_jiffies(p)).sum(),
            pids: pids.iter().map(|p| p.to_string()).collect(),
            started: Instant::now(),
        }
    }

    /// (machine busy cores, cores used by our processes, others' cores).
    fn end(self) -> (f64, f64, f64) {
        let (busy, total) = machine_jiffies();
        let ours: u64 = self.pids.iter().map(|p| process_jiffies(p)).sum();
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
        let machine = if total > self.machine.1 {
            (busy - self.machine.0) as f64 / (total - self.machine.1) as f64 * cores
        } else {
            0.0
        };
        // Process times are in 1/100 s (USER_HZ).
        let ours = (ours - self.ours) as f64 / 100.0 / self.started.elapsed().as_secs_f64();
        (machine, ours, (machine - ours).max(0.0))
    }
}

/// Samples RssAnon of `pid` every 100 ms until `stop`; returns the peak.
fn sample_rss(pid: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            if let Some(k) = rss_anon_kib(&pid) {
                peak = peak.max(k);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        peak
    })
}

fn report(name: &str, f: &Figures, rss_peak_kib: u64, rss_what: &str, cpu: (f64, f64, f64)) {
    println!("ingest/{name}:");
    println!(
        "  CPU during the run: machine {:.2} cores busy, this benchmark {:.2}, others {:.2}",
        cpu.0, cpu.1, cpu.2
    );
    println!(
        "  {:.0} events/s ({} events in {:.1} s, {} payloads)",
        f.rate(),
        f.events,
        f.window.as_secs_f64(),
        f.latencies.len()
    );
    println!(
        "  payload latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        f.percentile(0.50).as_secs_f64() * 1e3,
        f.percentile(0.90).as_secs_f64() * 1e3,
        f.percentile(0.99).as_secs_f64() * 1e3,
        f.latencies
            .last()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3
    );
    println!(
        "  RssAnon peak ({rss_what}): {:.1} MiB",
        rss_peak_kib as f64 / 1024.0
    );
}

fn base_dir() -> tempfile::TempDir {
    testkit::dirs::temp_dir_under_env("INGEST_BENCH_DIR")
}

fn in_process(streams: usize, batch: usize, secs: u64, rate: Option<f64>, ids: IdKind, name: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = base_dir();
    let mut config = ServeConfig::resolve(&ServeArgs {
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    config.listen.grpc = "127.0.0.1:0".parse().unwrap();
    config.listen.http = "127.0.0.1:0".parse().unwrap();
    config.queue.quota_bytes = 8 << 30;
    assert_eq!(config.queue.sync, telespool::SyncPolicy::Always);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss("self".into(), stop.clone());
    let cpu = CpuUse::start(&["self"]);
    let f = rt.block_on(async {
        let (g, h) = app::bind(&config).await.unwrap();
        let running = app::start(config, g, h).await.unwrap();
        let a0 = allocations();
        let f = load(running.grpc_addr, streams, batch, secs, rate, ids).await;
        let a1 = allocations();
        running.shutdown().await.unwrap();
        (f, a0, a1)
    });
    let (f, a0, a1) = f;
    let cpu = cpu.end();
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    report(
        name,
        &f,
        peak,
        "whole process: sidecar and load client",
        cpu,
    );
    let acked = f.acked.max(1) as f64;
    println!(
        "  heap allocations (whole process: sidecar and load client, warm-up included): {:.1} per event acknowledged, {:.0} bytes",
        (a1.0 - a0.0) as f64 / acked,
        (a1.1 - a0.1) as f64 / acked
    );
}

fn separate_process(
    streams: usize,
    batch: usize,
    secs: u64,
    rate: Option<f64>,
    ids: IdKind,
    name: &str,
) {
    let dir = base_dir();
    // TELESPOOL_BIN overrides the binary (a target directory shared by
    // several checkouts may hold another checkout's `telespool`).
    let bin = testkit::process::bin_or_env("TELESPOOL_BIN");
    let mut sidecar = testkit::process::sidecar_with(
        &bin,
        dir.path(),
        &["--queue-quota", "8GiB", "--sync", "always"],
    );
    let (grpc, http) = (sidecar.grpc, Some(sidecar.http));
    let pid = sidecar.proc.pid().to_string();
    let idle = rss_anon_kib(&pid).unwrap_or(0);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(pid.clone(), stop.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cpu = CpuUse::start(&["self", &pid]);
    let f = rt.block_on(load(grpc, streams, batch, secs, rate, ids));
    let cpu = cpu.end();
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    if std::env::var_os("INGEST_BENCH_METRICS").is_some()
        && let Some(http) = http
    {
        print_latency_histograms(http);
    }
    let code = sidecar.proc.terminate(Duration::from_secs(600)).code();
    report(
        name,
        &f,
        peak,
        "telespool serve alone, from /proc/PID/status",
        cpu,
    );
    println!(
        "  RssAnon of telespool serve when idle before the load: {:.1} MiB; exit code after SIGTERM: {code:?}",
        idle as f64 / 1024.0
    );
}

/// With `INGEST_BENCH_METRICS` set: the sidecar's own fsync and mirror
/// commit latency histograms (cumulative bucket counts from `/metrics`),
/// to tell which of the two an acknowledgement waited for.
fn print_latency_histograms(http: SocketAddr) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(http) else {
        return;
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    for line in body.lines() {
        if (line.starts_with("telespool_queue_fsync_seconds")
            || line.starts_with("telespool_mirror_commit_seconds")
            || line.starts_with("telespool_ingest_record_seconds"))
            && !line.contains("_sum")
        {
            println!("  {line}");
        }
    }
}

/// The mirror's share: `event_logs` rows translated from the same events
/// and encoded beforehand (as `Tee::prepare` does on the callers' threads),
/// inserted and flushed by one thread in commits of `streams x batch` (one
/// group commit with every stream's payload in it: one
/// `insert_encoded_groups` with a group per stream's payload, as the mirror
/// thread does). Prints rows/s on one
/// thread, nothing else running.
fn mirror_alone(streams: usize, batch: usize, secs: u64) {
    use telespool::event_logs::{EventLogConfig, EventLogStore, translate};
    let dir = base_dir();
    let store =
        EventLogStore::open(&dir.path().join("event_logs"), EventLogConfig::default()).unwrap();
    let allowlist = telespool::event::Allowlist::builtin();
    let per_commit = streams * batch;
    let mut n = 0u64;
    let mut rows_done = 0u64;
    let mut commit_times = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let cpu = CpuUse::start(&["self"]);
    while Instant::now() < deadline {
        let rows: Vec<_> = (0..per_commit)
            .map(|_| {
                n += 1;
                let e = event(n);
                let row = translate(
                    &e,
                    allowlist.is_allowed(&e),
                    "telespool-bench",
                    telespool::UnixNanos(0),
                );
                EventLogStore::encode_row(&row).unwrap()
            })
            .collect();
        let t = Instant::now();
        let groups: Vec<&[_]> = rows.chunks(batch).collect();
        store.insert_encoded_groups(&groups).unwrap();
        store.flush().unwrap();
        commit_times.push(t.elapsed());
        rows_done += per_commit as u64;
    }
    let took = started.elapsed();
    let cpu = cpu.end();
    commit_times.sort();
    let busy: Duration = commit_times.iter().sum();
    println!(
        "ingest/mirror-alone (event_logs insert_encoded_groups, a group per payload, + flush, one thread):"
    );
    println!(
        "  CPU during the run: machine {:.2} cores busy, this benchmark {:.2}, others {:.2}",
        cpu.0, cpu.1, cpu.2
    );
    println!(
        "  {:.0} rows/s inserted and flushed ({rows_done} rows in {:.1} s, of which {:.1} s in insert + flush); one commit of {per_commit} rows: p50 {:.1} ms, p99 {:.1} ms",
        rows_done as f64 / busy.as_secs_f64(),
        took.as_secs_f64(),
        busy.as_secs_f64(),
        commit_times[commit_times.len() / 2].as_secs_f64() * 1e3,
        commit_times[(commit_times.len() * 99 / 100).min(commit_times.len() - 1)].as_secs_f64()
            * 1e3,
    );
}

/// For comparison with [`mirror_alone`]: the same rows JSON-encoded as
/// format 1 stored them (1 KB each), written to bare sled without a
/// transaction: per commit, one `get` per id (the dedup check), then one
/// `Batch` per tree (rows, ids), then a flush. Not crash-atomic across the
/// two trees; kept from the first measurements (docs/benchmarks.md).
fn bare_sled(streams: usize, batch: usize, secs: u64) {
    use telespool::event_logs::translate;
    let dir = base_dir();
    let db = sled::Config::new()
        .path(dir.path().join("bare"))
        .cache_capacity(16 << 20)
        .open()
        .unwrap();
    let rows_tree = db.open_tree("rows").unwrap();
    let ids_tree = db.open_tree("ids").unwrap();
    let allowlist = telespool::event::Allowlist::builtin();
    let per_commit = streams * batch;
    let mut n = 0u64;
    let mut rows_done = 0u64;
    let mut busy = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let rows: Vec<_> = (0..per_commit)
            .map(|_| {
                n += 1;
                let e = event(n);
                translate(
                    &e,
                    allowlist.is_allowed(&e),
                    "telespool-bench",
                    telespool::UnixNanos(0),
                )
            })
            .collect();
        let t = Instant::now();
        let mut rb = sled::Batch::default();
        let mut ib = sled::Batch::default();
        for (i, r) in rows.iter().enumerate() {
            if ids_tree.get(r.event_id.as_bytes()).unwrap().is_some() {
                continue;
            }
            let mut key = (n * per_commit as u64 + i as u64).to_be_bytes().to_vec();
            key.extend_from_slice(r.event_id.as_bytes());
            rb.insert(key.clone(), serde_json::to_vec(r).unwrap());
            ib.insert(r.event_id.as_bytes(), key);
        }
        rows_tree.apply_batch(rb).unwrap();
        ids_tree.apply_batch(ib).unwrap();
        db.flush().unwrap();
        busy += t.elapsed();
        rows_done += per_commit as u64;
    }
    println!(
        "ingest/mirror-alone/bare-sled (no transaction; for comparison): {:.0} rows/s inserted and flushed",
        rows_done as f64 / busy.as_secs_f64()
    );
}

/// The load client's own share of the in-process runs' allocation counts,
/// estimated: building a payload's events, encoding it and decoding an
/// answer naming every id (what `testkit::load` does per payload, without
/// tonic's framing).
fn client_allocations(batch: usize) {
    let rounds = 200;
    let (a0, b0) = allocations();
    for r in 0..rounds {
        let events: Vec<pb::Event> = (0..batch as u64).map(|n| event(r * 1000 + n)).collect();
        let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        let bytes = testkit::load::payload(events).encode_to_vec();
        let answer = pb::RecordEventsResponse {
            succeeded_events: ids,
        }
        .encode_to_vec();
        std::hint::black_box(pb::RecordEventsResponse::decode(answer.as_slice()).unwrap());
        std::hint::black_box(bytes);
    }
    let (a1, b1) = allocations();
    let n = (rounds as usize * batch) as f64;
    println!(
        "load client's share of the in-process allocation counts (estimated: build, encode, decode the answer): {:.1} per event, {:.0} bytes",
        (a1 - a0) as f64 / n,
        (b1 - b0) as f64 / n
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this with
    // no argument: do a short smoke run then.
    let benching = std::env::args().any(|a| a == "--bench");
    let secs = if benching {
        env_or("INGEST_BENCH_SECS", 10)
    } else {
        1
    };
    let streams = env_or("INGEST_BENCH_STREAMS", 16);
    let batch = env_or("INGEST_BENCH_BATCH", 100);
    let sizes: Vec<usize> = (0..100).map(|n| event(n).encoded_len()).collect();
    println!(
        "ingest: {streams} streams x payloads of {batch} events, {:.0} B per event encoded (min {}, max {}); fsync always; {secs} s measured after {} s warm-up",
        sizes.iter().sum::<usize>() as f64 / sizes.len() as f64,
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap(),
        WARMUP.as_secs()
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average before: {}", load.trim());
    }
    client_allocations(batch);
    let rates: Vec<f64> = std::env::var("INGEST_BENCH_RATE")
        .unwrap_or_else(|_| "50000,20000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let only = std::env::var("INGEST_BENCH_ONLY").unwrap_or_default();
    // Random v4 ids first (what the figures are), time-ordered v7 beside
    // them for the closed loop.
    let id_kinds: Vec<IdKind> = std::env::var("INGEST_BENCH_IDS")
        .unwrap_or_else(|_| "v4,v7".into())
        .split(',')
        .filter_map(IdKind::parse)
        .collect();
    let first = id_kinds.first().copied().unwrap_or(IdKind::V4);
    for separate in [false, true] {
        let place = if separate {
            "separate-process"
        } else {
            "in-process"
        };
        let runs = id_kinds
            .iter()
            .map(|&ids| (ids, None))
            .chain(rates.iter().map(|&r| (first, Some(r))));
        for (ids, rate) in runs {
            let name = match rate {
                None => format!("{place}/closed-loop/{}", ids.name()),
                Some(r) => format!("{place}/paced-{r:.0}-events-per-s/{}", ids.name()),
            };
            if !name.contains(only.as_str()) {
                continue;
            }
            if separate {
                separate_process(streams, batch, secs, rate, ids, &name);
            } else {
                in_process(streams, batch, secs, rate, ids, &name);
            }
        }
    }
    if "mirror-alone".contains(only.as_str()) {
        mirror_alone(streams, batch, secs);
        bare_sled(streams, batch, secs);
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average after: {}", load.trim());
    }
}
