//! Mirror benchmark: the `event_logs` store (format 3: day files of
//! compressed columnar blocks) alone, against the leanest sled layout, on
//! the ingest benchmark's events (`support/events.rs`, ~600 B of JSON each)
//! with random UUID v4 ids (as older Sourcegraph versions send) and, beside
//! them, time-ordered v7 ids.
//!
//! Runs (`MIRROR_BENCH_ONLY=<substring>` selects by name):
//!
//! - `encode`: [`EventLogStore::encode_row`] on one thread (the callers'
//!   share of a row, done in `Tee::prepare`).
//! - `codec/<ids>/<level>`: building and compressing 1,600-row blocks,
//!   no I/O, sections raw or at zstd levels -5, -1, 1 (the store's), 3, 6
//!   (the fast negative levels stand for lz4).
//! - `write/<ids>/<group>`: the store alone, rows encoded beforehand, one
//!   commit per group: `1600` is the mirror's call under the ingest
//!   benchmark's load (16 streams x 100 events: `insert_encoded_groups`
//!   with 16 groups), `100` one `insert_encoded` of 100 rows. Rows/s counts
//!   only the time inside the store call; rows/cpu-s divides by the
//!   calling thread's CPU time.
//! - `disk/<ids>`: bytes on disk per row after ingesting
//!   `MIRROR_BENCH_DISK_ROWS` (1,000,000) rows of today in groups of
//!   1,600, open (blocks as written) and after the day is sealed.
//! - `queries`: `MIRROR_BENCH_DAYS` (93) days x `MIRROR_BENCH_PER_DAY`
//!   (100,000) rows, v4 ids, each day sealed once written; then, in a
//!   child process that opens the store cold (so that its memory is the
//!   store's alone): open time, counts by name and distinct users per day
//!   over the last 30 days, a page of 100 recent rows with a name filter
//!   (and without), the process's RssAnon before and after; then dropping
//!   the oldest day (a retention pass).
//! - `alt/sled-lean`: the alternative measured against: sled 0.34, one
//!   tree, row key = 12-byte time + 16-byte UUID, value = the row in
//!   format 2's binary form, id entry = 16-byte UUID → time; dedup lookup
//!   per row; batches of 200 rows (format 2's atomicity unit); one flush
//!   per commit. Write rate in groups of 1,600 and 100, bytes per row after
//!   `MIRROR_BENCH_DISK_ROWS` rows, and a counts-by-name scan over them.
//!
//! Under `cargo test` (criterion's test mode, no `--bench`) every run is
//! tiny: 3 days of 2,000 rows, 5,000 rows for the disk figures.
//!
//! Run: `cargo bench --bench mirror`. Figures and the commands are in
//! `docs/benchmarks.md` ("Mirror").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use telespool::event_logs::{
    EncodedRow, EventLogConfig, EventLogRow, EventLogStore, RecentQuery, translate,
};
use telespool::{Clock, ManualClock, UnixNanos};

use testkit::events;

/// The allocator of the `telespool` binary (src/main.rs), so the figures
/// are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Settings {
    secs: f64,
    only: String,
    days: usize,
    per_day: usize,
    disk_rows: usize,
}

impl Settings {
    fn wants(&self, name: &str) -> bool {
        name.contains(self.only.as_str())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ids {
    V4,
    V7,
}

impl Ids {
    fn name(self) -> &'static str {
        match self {
            Ids::V4 => "v4",
            Ids::V7 => "v7",
        }
    }

    fn make(self) -> String {
        match self {
            Ids::V4 => uuid::Uuid::new_v4().to_string(),
            Ids::V7 => uuid::Uuid::now_v7().to_string(),
        }
    }
}

/// Row `n` of the benchmark: the ingest benchmark's event `n` with an id of
/// the given kind, at `at` (Unix nanos).
fn row(n: u64, ids: Ids, at: i64) -> EventLogRow {
    thread_local! {
        static ALLOWLIST: telespool::event::Allowlist = telespool::event::Allowlist::builtin();
    }
    let mut e = events::event(n);
    e.id = ids.make();
    e.timestamp = Some(prost_types::Timestamp {
        seconds: at.div_euclid(1_000_000_000),
        nanos: at.rem_euclid(1_000_000_000) as i32,
    });
    ALLOWLIST.with(|a| translate(&e, a.is_allowed(&e), "telespool-bench", UnixNanos(0)))
}

fn encoded(n: u64, ids: Ids, at: i64) -> EncodedRow {
    EventLogStore::encode_row(&row(n, ids, at)).unwrap()
}

fn now_nanos() -> i64 {
    UnixNanos::from_system(std::time::SystemTime::now()).0
}

fn temp_dir() -> tempfile::TempDir {
    testkit::dirs::temp_dir_under_env("MIRROR_BENCH_DIR")
}

/// On-CPU time of the calling thread, from the scheduler's statistics.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// RssAnon of this process, in bytes.
fn rss_anon() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("RssAnon:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut n = 0;
    for e in walk(dir) {
        n += std::fs::metadata(&e).map(|m| m.len()).unwrap_or(0);
    }
    n
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median and max wall time, and median CPU time of the calling thread,
/// of a few runs of `f`, in ms.
fn timings(runs: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    let mut t = Vec::new();
    let mut c = Vec::new();
    for _ in 0..runs {
        let c0 = thread_cpu();
        let s = Instant::now();
        f();
        t.push(ms(s.elapsed()));
        c.push(ms(thread_cpu().checked_sub(c0).unwrap()));
    }
    t.sort_by(f64::total_cmp);
    c.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[t.len() - 1], c[c.len() / 2])
}

// ---- encoding -------------------------------------------------------------------

fn encode(s: &Settings) {
    if !s.wants("encode") {
        return;
    }
    let now = now_nanos();
    let rows: Vec<EventLogRow> = (0..1600).map(|i| row(i, Ids::V4, now)).collect();
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed().as_secs_f64() < s.secs.min(2.0) || done == 0 {
        for r in &rows {
            black_box(EventLogStore::encode_row(black_box(r)).unwrap());
        }
        done += rows.len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "encode/encode_row                       {:>9.0} rows/s  ({:.2} us per row, one thread; the callers' share)",
        done as f64 / secs,
        secs * 1e6 / done as f64
    );
}

/// Building and compressing 1,600-row blocks at several zstd levels (the
/// fast negative levels stand for lz4), no I/O.
fn codec(s: &Settings) {
    if !s.wants("codec") {
        return;
    }
    for ids in [Ids::V4, Ids::V7] {
        let now = now_nanos();
        let rows: Vec<EncodedRow> = (0..16_000)
            .map(|i| encoded(i, ids, now + i as i64))
            .collect();
        for level in [None, Some(-5), Some(-1), Some(1), Some(3), Some(6)] {
            let mut best = Duration::MAX;
            let mut bytes = 0;
            for _ in 0..5 {
                let (b, t) = telespool::event_logs::probe_codec(&rows, level);
                bytes = b;
                best = best.min(t);
            }
            println!(
                "codec/{}/{:<8} {:>9.0} rows/s  {:>5.1} bytes/row  (best of 5, blocks of 1,600 rows, no I/O; load {})",
                ids.name(),
                level.map_or("raw".to_owned(), |l| format!("zstd{l}")),
                rows.len() as f64 / best.as_secs_f64(),
                bytes as f64 / rows.len() as f64,
                load()
            );
        }
    }
}

// ---- writing ---------------------------------------------------------------------

fn write(s: &Settings, ids: Ids, group: usize) {
    let name = format!("write/{}/{group}", ids.name());
    if !s.wants(&name) {
        return;
    }
    let dir = temp_dir();
    let store =
        EventLogStore::open(&dir.path().join("event_logs"), EventLogConfig::default()).unwrap();
    let mut n = 0u64;
    let mut busy = Duration::ZERO;
    let mut cpu = Duration::ZERO;
    let mut rows = 0u64;
    let mut times = Vec::new();
    let budget = Duration::from_secs_f64(s.secs);
    while busy < budget || times.len() < 3 {
        let now = now_nanos();
        let batch: Vec<EncodedRow> = (0..1600)
            .map(|i| {
                n += 1;
                encoded(n, ids, now + i)
            })
            .collect();
        let c0 = thread_cpu();
        let t0 = Instant::now();
        if group == 1600 {
            let groups: Vec<&[EncodedRow]> = batch.chunks(100).collect();
            let out = store.insert_encoded_groups(&groups).unwrap();
            rows += out.iter().map(|o| o.inserted).sum::<u64>();
        } else {
            for chunk in batch.chunks(group) {
                rows += store.insert_encoded(chunk).unwrap().inserted;
            }
        }
        let took = t0.elapsed();
        cpu += thread_cpu().checked_sub(c0).unwrap();
        busy += took;
        times.push(took);
    }
    times.sort();
    let per_commit = if group == 1600 { 1 } else { 1600 / group };
    println!(
        "{name:<24} {:>9.0} rows/s {:>9.0} rows/cpu-s  (commit of {group} rows: p50 {:.2} ms, p99 {:.2} ms; {} bytes/row on disk, load {})",
        rows as f64 / busy.as_secs_f64(),
        rows as f64 / cpu.as_secs_f64(),
        ms(times[times.len() / 2]) / per_commit as f64,
        ms(times[(times.len() * 99 / 100).min(times.len() - 1)]) / per_commit as f64,
        dir_bytes(dir.path()) / rows.max(1),
        load()
    );
}

fn disk(s: &Settings, ids: Ids) {
    let name = format!("disk/{}", ids.name());
    if !s.wants(&name) {
        return;
    }
    let dir = temp_dir();
    let path = dir.path().join("event_logs");
    // Rows of one day (today at 00:00 + i ms... spread over the day).
    let day_start = now_nanos().div_euclid(86_400_000_000_000) * 86_400_000_000_000;
    let clock = Arc::new(ManualClock::new(UnixNanos(
        day_start + 12 * 3_600_000_000_000,
    )));
    let store = EventLogStore::open_with_clock(&path, EventLogConfig::default(), clock).unwrap();
    let step = 86_000_000_000_000 / s.disk_rows as i64;
    let mut n = 0u64;
    let started = Instant::now();
    while (n as usize) < s.disk_rows {
        let batch: Vec<EncodedRow> = (0..1600.min(s.disk_rows - n as usize))
            .map(|_| {
                n += 1;
                encoded(n, ids, day_start + n as i64 * step)
            })
            .collect();
        let groups: Vec<&[EncodedRow]> = batch.chunks(100).collect();
        store.insert_encoded_groups(&groups).unwrap();
    }
    let open_bytes = dir_bytes(&path);
    store
        .expire(UnixNanos(day_start + 2 * 86_400_000_000_000))
        .unwrap();
    let sealed_bytes = dir_bytes(&path);
    let rows = store.row_count().unwrap();
    println!(
        "{name:<24} {} rows: {} bytes/row on disk as written, {} after sealing ({:.1} MB, {:.1} s, load {})",
        rows,
        open_bytes / rows.max(1),
        sealed_bytes / rows.max(1),
        sealed_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        load()
    );
}

// ---- queries over 93 days ---------------------------------------------------------------

const CHILD_ENV: &str = "MIRROR_BENCH_CHILD";
const DAY: i64 = 86_400_000_000_000;

fn queries(s: &Settings) {
    if !s.wants("queries") {
        return;
    }
    let dir = temp_dir();
    // MIRROR_BENCH_STORE keeps the generated store (and reuses it when it
    // is there) for repeated runs of the reads.
    let kept = std::env::var_os("MIRROR_BENCH_STORE").map(std::path::PathBuf::from);
    let path = kept
        .clone()
        .unwrap_or_else(|| dir.path().join("event_logs"));
    let today = match std::fs::read_to_string(path.join("bench-today")) {
        Ok(t) => t.trim().parse().unwrap(),
        Err(_) => now_nanos().div_euclid(DAY),
    };
    let first = today - s.days as i64 + 1;
    let clock = Arc::new(ManualClock::new(UnixNanos(first * DAY)));
    let started = Instant::now();
    if !path.join("bench-today").exists() {
        let store = EventLogStore::open_with_clock(&path, EventLogConfig::default(), clock.clone())
            .unwrap();
        let mut n = 0u64;
        let step = DAY / s.per_day as i64;
        for day in first..=today {
            let mut written = 0;
            while written < s.per_day {
                let batch: Vec<EncodedRow> = (0..1600.min(s.per_day - written))
                    .map(|i| {
                        n += 1;
                        encoded(n, Ids::V4, day * DAY + (written + i) as i64 * step)
                    })
                    .collect();
                written += batch.len();
                let groups: Vec<&[EncodedRow]> = batch.chunks(100).collect();
                store.insert_encoded_groups(&groups).unwrap();
            }
            // The cleanup pass after the day ended seals it (not today).
            if day < today {
                clock.set(UnixNanos((day + 1) * DAY + 2 * 3_600_000_000_000));
                store.expire(clock.now()).unwrap();
            }
        }
        println!(
            "queries: {} rows in {} days generated in {:.0} s ({:.1} bytes/row on disk, load {})",
            store.row_count().unwrap(),
            s.days,
            started.elapsed().as_secs_f64(),
            dir_bytes(&path) as f64 / store.row_count().unwrap().max(1) as f64,
            load()
        );
        drop(store);
        std::fs::write(path.join("bench-today"), today.to_string()).unwrap();
    }
    // The reads, in a fresh process: its memory is the store's.
    for round in 0..2 {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, &path)
            .env("MIRROR_BENCH_TODAY", today.to_string())
            .output()
            .unwrap();
        print!(
            "queries (child process, round {round}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        if !out.status.success() {
            println!("child failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    if kept.is_some() && std::env::var_os("MIRROR_BENCH_DROP").is_none() {
        return;
    }
    // Retention: the oldest day dropped.
    let store = EventLogStore::open_with_clock(
        &path,
        EventLogConfig {
            retention: Duration::from_secs(86_400 * (s.days as u64 - 1)),
            ..EventLogConfig::default()
        },
        clock.clone(),
    )
    .unwrap();
    let before = store.row_count().unwrap();
    // Exactly the oldest day is past the retention; nothing to trim or seal.
    clock.set(UnixNanos((today + 1) * DAY));
    let t = Instant::now();
    let c0 = thread_cpu();
    let removed = store.expire(clock.now()).unwrap();
    let cpu = thread_cpu().checked_sub(c0).unwrap();
    println!(
        "queries/drop-a-day: expire removed {removed} rows (one whole day) in {:.2} ms, {:.2} ms of CPU ({} rows left of {before}; its ids leave the dedup filter in the background; load {})",
        ms(t.elapsed()),
        ms(cpu),
        store.row_count().unwrap(),
        load()
    );
}

/// The child half of [`queries`]: open, query, report.
fn child(path: &Path) {
    let today: i64 = env_or("MIRROR_BENCH_TODAY", 0);
    let base = rss_anon();
    let t = Instant::now();
    let c0 = thread_cpu();
    let store = EventLogStore::open(path, EventLogConfig::default()).unwrap();
    let open_ms = ms(t.elapsed());
    let open_cpu = ms(thread_cpu().checked_sub(c0).unwrap());
    let opened = rss_anon();
    // "Now" is the end of the last day written; ranges end a second later,
    // as the admin API's defaults do.
    let to = UnixNanos((today + 1) * DAY + 1_000_000_000);
    let from30 = UnixNanos(to.0 - 30 * DAY);
    let from7 = UnixNanos(to.0 - 7 * DAY);
    let (c50, cmax, ccpu) = timings(5, || {
        black_box(store.counts_by_name_per_day(from30, to).unwrap());
    });
    let (u50, umax, ucpu) = timings(5, || {
        black_box(store.distinct_users_per_day(from30, to).unwrap());
    });
    let mut q = RecentQuery::new(from7, to);
    q.limit = 100;
    q.name = Some("search.results.viewed".into());
    let (r50, rmax, rcpu) = timings(5, || {
        assert_eq!(store.recent(&q).unwrap().rows.len(), 100);
    });
    let mut q2 = RecentQuery::new(from7, to);
    q2.limit = 100;
    let (a50, amax, acpu) = timings(5, || {
        assert_eq!(store.recent(&q2).unwrap().rows.len(), 100);
    });
    let mut q3 = q.clone();
    q3.name = Some("no.such.name".into());
    let (n50, nmax, ncpu) = timings(5, || {
        assert!(store.recent(&q3).unwrap().rows.is_empty());
    });
    // A range starting at midnight: no partial day at its start.
    let midnight = UnixNanos((today - 29) * DAY);
    let (m50, mmax, mcpu) = timings(5, || {
        black_box(store.distinct_users_per_day(midnight, to).unwrap());
    });
    let after = rss_anon();
    let counts = store.counts_by_name_per_day(from30, to).unwrap();
    let m = store.memory_report();
    println!(
        "  store's memory by part: dedup filter {:.1} MiB, open days {:.1} MiB, block summaries {:.1} MiB, cache {:.1} MiB",
        m.dedup_filter as f64 / 1048576.0,
        m.open_days as f64 / 1048576.0,
        m.summaries as f64 / 1048576.0,
        m.cache as f64 / 1048576.0
    );
    println!(
        "  open {open_ms:.0} ms, {open_cpu:.0} ms of CPU ({} rows)\n  counts by name per day, 30 days: median {c50:.2} ms, max {cmax:.2} ms, CPU {ccpu:.2} ms ({} rows out)\n  distinct users per day, 30 days: median {u50:.2} ms, max {umax:.2} ms, CPU {ucpu:.2} ms; from a midnight: {m50:.2} / {mmax:.2} / {mcpu:.2} ms\n  recent 100 with a name filter: median {r50:.2} ms, max {rmax:.2} ms, CPU {rcpu:.2} ms; without: {a50:.2} / {amax:.2} / {acpu:.2} ms; a name no block holds: {n50:.2} / {nmax:.2} / {ncpu:.2} ms\n  RssAnon: {:.1} MiB before open, {:.1} MiB open (+{:.1}), {:.1} MiB after the queries (+{:.1}); store's own estimate {:.1} MiB; load {}",
        store.row_count().unwrap(),
        counts.len(),
        base as f64 / 1048576.0,
        opened as f64 / 1048576.0,
        (opened.saturating_sub(base)) as f64 / 1048576.0,
        after as f64 / 1048576.0,
        (after.saturating_sub(base)) as f64 / 1048576.0,
        store.memory_bytes() as f64 / 1048576.0,
        load()
    );
}

// ---- the alternative: sled, leanest layout -------------------------------------------------

fn sled_lean(s: &Settings) {
    if !s.wants("alt/sled-lean") {
        return;
    }
    for group in [1600usize, 100] {
        let dir = temp_dir();
        let db = sled::Config::new()
            .path(dir.path().join("db"))
            .cache_capacity(16 << 20)
            .flush_every_ms(Some(500))
            .open()
            .unwrap();
        let tree = db.open_tree("t").unwrap();
        let mut n = 0u64;
        let mut rows = 0u64;
        let mut busy = Duration::ZERO;
        let target = if group == 1600 {
            s.disk_rows
        } else {
            s.disk_rows / 4
        };
        while (rows as usize) < target {
            let now = now_nanos();
            let batch: Vec<(Vec<u8>, [u8; 16], Vec<u8>)> = (0..1600)
                .map(|i| {
                    n += 1;
                    let r = row(n, Ids::V4, now + i);
                    let id = *uuid::Uuid::parse_str(&r.event_id).unwrap().as_bytes();
                    let secs = (now + i).div_euclid(1_000_000_000);
                    let nanos = (now + i).rem_euclid(1_000_000_000) as u32;
                    let mut key = vec![b'r'];
                    key.extend_from_slice(&((secs as u64) ^ (1 << 63)).to_be_bytes());
                    key.extend_from_slice(&nanos.to_be_bytes());
                    key.extend_from_slice(&id);
                    // Format 2's binary row, as format 2 stored it.
                    let v = EventLogStore::encode_row(&r)
                        .unwrap()
                        .stored_bytes()
                        .to_vec();
                    (key, id, v)
                })
                .collect();
            let t = Instant::now();
            for commit in batch.chunks(group) {
                for chunk in commit.chunks(200) {
                    let mut b = sled::Batch::default();
                    for (key, id, v) in chunk {
                        let mut ik = vec![b'i'];
                        ik.extend_from_slice(id);
                        if tree.get(&ik).unwrap().is_some() {
                            continue;
                        }
                        b.insert(ik, &key[1..13]);
                        b.insert(key.as_slice(), v.as_slice());
                        rows += 1;
                    }
                    tree.apply_batch(b).unwrap();
                }
                db.flush().unwrap();
            }
            busy += t.elapsed();
        }
        let bytes = dir_bytes(dir.path());
        println!(
            "alt/sled-lean/{group:<10} {:>9.0} rows/s  ({rows} rows, {} bytes/row on disk; load {})",
            rows as f64 / busy.as_secs_f64(),
            bytes / rows.max(1),
            load()
        );
        if group == 1600 {
            // Counts by name over every row: a scan of the keys' rows.
            // Each row's name (its first field) counted, as format 2's
            // query read only the head of each row.
            let t = Instant::now();
            let mut seen = 0u64;
            let mut names: std::collections::HashMap<Vec<u8>, u64> = Default::default();
            for kv in tree.range([b'r'].as_slice()..[b's'].as_slice()) {
                let (_, v) = kv.unwrap();
                let len = v[0] as usize;
                *names.entry(v[1..=len].to_vec()).or_default() += 1;
                seen += 1;
            }
            black_box(&names);
            let took = t.elapsed();
            println!(
                "alt/sled-lean/scan      {seen} rows scanned in {:.0} ms ({:.0} rows/s): counts by name over 30 days of 100,000 rows would take ~{:.0} ms",
                ms(took),
                seen as f64 / took.as_secs_f64(),
                3_000_000.0 / (seen as f64 / took.as_secs_f64()) * 1e3
            );
        }
    }
}

fn main() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&path));
        return;
    }
    let benching = std::env::args().any(|a| a == "--bench");
    let s = Settings {
        secs: if benching {
            env_or("MIRROR_BENCH_SECS", 3.0)
        } else {
            0.05
        },
        only: std::env::var("MIRROR_BENCH_ONLY").unwrap_or_default(),
        days: if benching {
            env_or("MIRROR_BENCH_DAYS", 93)
        } else {
            3
        },
        per_day: if benching {
            env_or("MIRROR_BENCH_PER_DAY", 100_000)
        } else {
            2_000
        },
        disk_rows: if benching {
            env_or("MIRROR_BENCH_DISK_ROWS", 1_000_000)
        } else {
            5_000
        },
    };
    println!("mirror benchmark; load average before: {}", load());
    encode(&s);
    codec(&s);
    for ids in [Ids::V4, Ids::V7] {
        for group in [1600, 100] {
            write(&s, ids, group);
        }
    }
    for ids in [Ids::V4, Ids::V7] {
        disk(&s, ids);
    }
    sled_lean(&s);
    queries(&s);
    println!("load average after: {}", load());
}
