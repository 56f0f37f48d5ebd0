//! Mirror micro-benchmark: what the `event_logs` mirror thread does per
//! group commit, on one thread, and the sled experiments that chose how it
//! does it.
//!
//! Every run writes commits of `MIRROR_BENCH_COMMIT` rows (default 1,600:
//! 16 streams x 100 events, one mirror group commit under the ingest
//! benchmark's load), each followed by one flush, into a fresh sled
//! database on this machine's disk, for `MIRROR_BENCH_SECS` seconds of
//! commit time (default 3). Rows/s counts only the time spent inserting
//! and flushing (the rows are built beforehand); rows/cpu-s divides by the
//! committing thread's own CPU time instead (less sensitive to other
//! tenants of the machine); "process" is the CPU of all threads (sled's
//! I/O threads included) over the run. Keys are what the store writes: a
//! 12-byte time prefix plus a UUID v7 event id (36 B), and the id alone
//! for the dedup index, each id looked up before it is written. Each row
//! has a value of its own (a shared one would keep sled's cache empty).
//!
//! Runs (`MIRROR_BENCH_ONLY=<substring>` selects by name):
//!
//! - `encode/*`: encoding rows on one thread, no I/O: `serde_json` of the
//!   row (format 1) against [`EventLogStore::encode_row`] (format 2).
//! - `sled/<mode>/<value size>/<cache>`: bare sled with values of 1,024,
//!   600 and 100 B and a 16 or 64 MiB cache. Modes: `tx3` one transaction
//!   over three trees (rows, ids, meta: format 1's writes); `batch1` one
//!   tree with prefixed key spaces and one `apply_batch` per commit;
//!   `batch1-chunked` the same in batches of `MIRROR_BENCH_CHUNK` rows
//!   (default 200, the store's `BATCH_ROWS`: format 2's writes);
//!   `plain-journal` one record listing the commit's keys, then plain
//!   inserts (row, then id entry) into two trees (the alternative that was
//!   considered: crash-consistent only through sled recovering a prefix of
//!   its log, and a repair at open). At 600 B and 16 MiB only:
//!   `tx3x16` 16 transactions of 100 rows per flush (what the old mirror
//!   did, one per submitter); `batch1-nocheck` without the dedup lookups;
//!   `batch1-16B-ids` with the UUIDs stored as 16 bytes instead of 36;
//!   `batch2` one `apply_batch` per tree, two trees (not atomic);
//!   `plain1` and `plain` plain inserts into one tree or two (no record
//!   of the keys, no atomicity: the floor); `plain-2-threads` the plain inserts of each commit
//!   split over two threads, one flush (its rows/cpu-s counts one thread
//!   only).
//! - `store/*`: the real thing. `v1-emulated` is format 1's
//!   `insert_batch` rebuilt here (serde_json on the mirror thread, one
//!   transaction over three trees), for a before/after on the same binary;
//!   `insert_batch` is [`EventLogStore::insert_batch`] (encodes on the
//!   calling thread); `insert_encoded` takes rows encoded beforehand, as
//!   the mirror does now (`Tee::prepare` encodes them), in one call per
//!   commit; `insert_encoded-per-100` in one call per 100-row payload, as
//!   the mirror calls it (once per submitter). Each plus one `flush` per
//!   commit. The last two are the mirror's figure.
//!
//! The binary uses the `telespool` binary's allocator (mimalloc).
//!
//! Run: `cargo bench --bench mirror`. Figures and the commands are in
//! `docs/benchmarks.md` ("Mirror").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use telespool::event_logs::{EventLogConfig, EventLogRow, EventLogStore, InsertOutcome, translate};

#[path = "support/events.rs"]
mod events;

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
    commit: usize,
    only: String,
}

impl Settings {
    fn wants(&self, name: &str) -> bool {
        name.contains(self.only.as_str())
    }
}

fn rows(n: usize, from: &mut u64) -> Vec<EventLogRow> {
    let allowlist = telespool::event::Allowlist::builtin();
    (0..n)
        .map(|_| {
            *from += 1;
            let e = events::event(*from);
            translate(
                &e,
                allowlist.is_allowed(&e),
                "telespool-bench",
                telespool::UnixNanos(0),
            )
        })
        .collect()
}

fn temp_dir() -> tempfile::TempDir {
    match std::env::var("MIRROR_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    }
}

/// On-CPU time of the calling thread, from the scheduler's statistics.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// CPU time of the whole process (all threads: sled's flusher and I/O
/// threads included), in clock ticks of 10 ms.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((n(11) + n(12)) * 10)
}

/// Commit times of one run.
struct Commits {
    rows: u64,
    times: Vec<Duration>,
    flush: Duration,
    /// On-CPU time of the committing thread during the commits.
    cpu: Duration,
    /// CPU time of the process over the run, and the run's wall time.
    process: (Duration, Duration),
}

impl Commits {
    fn report(&mut self, name: &str) {
        self.times.sort();
        let busy: Duration = self.times.iter().sum();
        let pct = |p: usize| {
            self.times[(self.times.len() * p / 100).min(self.times.len() - 1)].as_secs_f64() * 1e3
        };
        println!(
            "{name:<36} {:>7.0} rows/s {:>7.0} rows/cpu-s  (commit p50 {:.1} ms, p99 {:.1} ms; flush {:.0}% of it; process {:.2} cores)",
            self.rows as f64 / busy.as_secs_f64(),
            self.rows as f64 / self.cpu.as_secs_f64(),
            pct(50),
            pct(99),
            self.flush.as_secs_f64() * 100.0 / busy.as_secs_f64(),
            self.process.0.as_secs_f64() / self.process.1.as_secs_f64(),
        );
    }
}

/// Runs `commit` (which returns the rows it wrote, the time its insert and
/// flush took, the flush's part of it, and its thread's CPU time) until `secs` of commit time have
/// passed; at least 3 commits.
fn timed(secs: f64, mut commit: impl FnMut() -> (u64, Duration, Duration, Duration)) -> Commits {
    let mut c = Commits {
        rows: 0,
        times: Vec::new(),
        flush: Duration::ZERO,
        cpu: Duration::ZERO,
        process: (Duration::ZERO, Duration::ZERO),
    };
    let budget = Duration::from_secs_f64(secs);
    let mut busy = Duration::ZERO;
    let (p0, w0) = (process_cpu(), Instant::now());
    while busy < budget || c.times.len() < 3 {
        let (rows, took, flush, cpu) = commit();
        c.rows += rows;
        c.flush += flush;
        c.cpu += cpu;
        busy += took;
        c.times.push(took);
    }
    c.process = (process_cpu() - p0, w0.elapsed());
    c
}

// ---- encoding -------------------------------------------------------------

fn encode(s: &Settings) {
    let mut n = 0;
    let rows = rows(s.commit, &mut n);
    let json_len: usize = rows
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap().len())
        .sum();
    let enc_len: usize = rows
        .iter()
        .map(|r| EventLogStore::encode_row(r).unwrap().stored_len())
        .sum();
    println!(
        "stored value per row: serde_json {} B, encode_row {} B (the key, 48 B, not included)",
        json_len / rows.len(),
        enc_len / rows.len()
    );
    let per_row = |name: &str, f: &dyn Fn(&EventLogRow) -> usize| {
        if !s.wants(name) {
            return;
        }
        let started = Instant::now();
        let mut done = 0u64;
        while started.elapsed().as_secs_f64() < s.secs.min(2.0) || done == 0 {
            for r in &rows {
                black_box(f(black_box(r)));
            }
            done += rows.len() as u64;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{name:<44} {:>9.0} rows/s  ({:.2} us per row, one thread)",
            done as f64 / secs,
            secs * 1e6 / done as f64
        );
    };
    per_row("encode/serde_json", &|r| {
        serde_json::to_vec(r).unwrap().len()
    });
    per_row("encode/encode_row", &|r| {
        EventLogStore::encode_row(r).unwrap().stored_len()
    });
    per_row("encode/translate+drop (for scale)", &|r| {
        // What building a row costs, against which the encoding is small.
        let clone = r.clone();
        clone.name.len()
    });
}

// ---- bare sled --------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Tx3,
    Tx3x16,
    Batch1,
    Batch1NoCheck,
    Batch1Short,
    Batch1x16,
    Batch2,
    Plain1,
    PlainJournal,
    Plain,
    Plain2Threads,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Tx3 => "tx3",
            Mode::Tx3x16 => "tx3x16",
            Mode::Batch1 => "batch1",
            Mode::Batch1NoCheck => "batch1-nocheck",
            Mode::Batch1Short => "batch1-16B-ids",
            Mode::Batch1x16 => "batch1-chunked",
            Mode::Batch2 => "batch2",
            Mode::Plain1 => "plain1",
            Mode::PlainJournal => "plain-journal",
            Mode::Plain => "plain",
            Mode::Plain2Threads => "plain-2-threads",
        }
    }
}

/// One row of the bare-sled runs.
struct Row {
    id: Vec<u8>,
    key: Vec<u8>,
    /// A value of its own (as real rows have, so sled's cache holds real
    /// bytes), copied from the template.
    value: sled::IVec,
}

/// One commit's worth of rows: time-ordered keys, as events recorded now
/// have.
fn keys(n: usize, template: &[u8]) -> Vec<Row> {
    (0..n)
        .map(|_| {
            let id = uuid::Uuid::now_v7().to_string().into_bytes();
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap();
            let mut key = (now.as_secs() ^ (1 << 63)).to_be_bytes().to_vec();
            key.extend_from_slice(&now.subsec_nanos().to_be_bytes());
            key.extend_from_slice(&id);
            Row {
                id,
                key,
                value: sled::IVec::from(template),
            }
        })
        .collect()
}

fn prefixed(p: u8, k: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(k.len() + 1);
    v.push(p);
    v.extend_from_slice(k);
    v
}

fn bare_sled(s: &Settings, mode: Mode, value_size: usize, cache_mib: u64) {
    use sled::Transactional;
    let name = format!("sled/{}/{value_size}B/{cache_mib}MiB", mode.name());
    if !s.wants(&name) {
        return;
    }
    let dir = temp_dir();
    let db = sled::Config::new()
        .path(dir.path().join("db"))
        .cache_capacity(cache_mib << 20)
        .flush_every_ms(Some(500))
        .open()
        .unwrap();
    let rows_t = db.open_tree("rows").unwrap();
    let ids_t = db.open_tree("ids").unwrap();
    let meta_t = db.open_tree("meta").unwrap();
    let one = db.open_tree("one").unwrap();
    let value: sled::IVec = (0..value_size)
        .map(|i| b"{\"name\":\"cody.completion.suggested\",\"user_id\":1042}"[i % 50])
        .collect::<Vec<u8>>()
        .into();
    let n = s.commit;
    let mut count = 0u64;
    let mut c = {
        let db = &db;
        let value = &value;
        let (rows_t, ids_t, meta_t, one) = (&rows_t, &ids_t, &meta_t, &one);
        let count = &mut count;
        timed(s.secs, move || {
            // Keys are made outside the timed part.
            let batch = keys(n, value);
            let c0 = thread_cpu();
            let t0 = Instant::now();
            let wrote = match mode {
                Mode::Tx3 | Mode::Tx3x16 => {
                    let per = if mode == Mode::Tx3 { n } else { n / 16 };
                    let mut wrote = 0;
                    for chunk in batch.chunks(per.max(1)) {
                        wrote += (rows_t, ids_t, meta_t)
                            .transaction(|(r, i, m)| {
                                let mut w = 0u64;
                                for Row { id, key, value } in chunk {
                                    if i.get(id)?.is_some() {
                                        continue;
                                    }
                                    i.insert(id.as_slice(), key.as_slice())?;
                                    r.insert(key.as_slice(), value.clone())?;
                                    w += 1;
                                }
                                let old = m.get(b"rows")?.map_or(0, |v| {
                                    u64::from_be_bytes(v.as_ref().try_into().unwrap())
                                });
                                m.insert(b"rows", &(old + w).to_be_bytes())?;
                                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(w)
                            })
                            .unwrap();
                    }
                    wrote
                }
                Mode::Batch1 => {
                    let mut b = sled::Batch::default();
                    let mut w = 0u64;
                    for Row { id, key, value } in &batch {
                        let ik = prefixed(b'i', id);
                        if one.get(&ik).unwrap().is_some() {
                            continue;
                        }
                        b.insert(ik, &key[..12]);
                        b.insert(prefixed(b'r', key), value.clone());
                        w += 1;
                    }
                    *count += w;
                    b.insert(b"mrows".as_slice(), &count.to_be_bytes());
                    one.apply_batch(b).unwrap();
                    w
                }
                Mode::Batch1Short => {
                    let mut b = sled::Batch::default();
                    let mut w = 0u64;
                    for Row { id, key, value } in &batch {
                        let uuid = uuid::Uuid::parse_str(std::str::from_utf8(id).unwrap()).unwrap();
                        let ik = prefixed(b'i', uuid.as_bytes());
                        if one.get(&ik).unwrap().is_some() {
                            continue;
                        }
                        let mut rk = prefixed(b'r', &key[..12]);
                        rk.extend_from_slice(uuid.as_bytes());
                        b.insert(ik, &key[..12]);
                        b.insert(rk, value.clone());
                        w += 1;
                    }
                    *count += w;
                    b.insert(b"mrows".as_slice(), &count.to_be_bytes());
                    one.apply_batch(b).unwrap();
                    w
                }
                Mode::Batch2 => {
                    let mut rb = sled::Batch::default();
                    let mut ib = sled::Batch::default();
                    let mut w = 0u64;
                    for Row { id, key, value } in &batch {
                        if ids_t.get(id).unwrap().is_some() {
                            continue;
                        }
                        ib.insert(id.as_slice(), &key[..12]);
                        rb.insert(key.as_slice(), value.clone());
                        w += 1;
                    }
                    *count += w;
                    rb.insert(b"~count".as_slice(), &count.to_be_bytes());
                    rows_t.apply_batch(rb).unwrap();
                    ids_t.apply_batch(ib).unwrap();
                    w
                }
                Mode::PlainJournal => {
                    let mut fresh = Vec::with_capacity(batch.len());
                    for Row { id, key, value } in &batch {
                        if ids_t.get(id).unwrap().is_some() {
                            continue;
                        }
                        fresh.push((id, key, value));
                    }
                    *count += fresh.len() as u64;
                    let mut journal = count.to_be_bytes().to_vec();
                    for (_, key, _) in &fresh {
                        journal.push(key.len() as u8);
                        journal.extend_from_slice(key);
                    }
                    meta_t.insert(b"journal", journal).unwrap();
                    for (id, key, value) in &fresh {
                        rows_t.insert(key.as_slice(), (*value).clone()).unwrap();
                        ids_t.insert(id.as_slice(), &key[..12]).unwrap();
                    }
                    fresh.len() as u64
                }
                Mode::Plain1 => {
                    let mut w = 0u64;
                    for Row { id, key, value } in &batch {
                        let ik = prefixed(b'i', id);
                        if one.get(&ik).unwrap().is_some() {
                            continue;
                        }
                        one.insert(ik, &key[..12]).unwrap();
                        one.insert(prefixed(b'r', key), value.clone()).unwrap();
                        w += 1;
                    }
                    w
                }
                Mode::Batch1x16 => {
                    let mut w = 0u64;
                    let chunk_rows = env_or(
                        "MIRROR_BENCH_CHUNK",
                        telespool::event_logs::store::BATCH_ROWS,
                    )
                    .max(1);
                    for chunk in batch.chunks(chunk_rows) {
                        let mut b = sled::Batch::default();
                        for Row { id, key, value } in chunk {
                            let ik = prefixed(b'i', id);
                            if one.get(&ik).unwrap().is_some() {
                                continue;
                            }
                            b.insert(ik, &key[..12]);
                            b.insert(prefixed(b'r', key), value.clone());
                            w += 1;
                            *count += 1;
                        }
                        b.insert(b"mrows".as_slice(), &count.to_be_bytes());
                        one.apply_batch(b).unwrap();
                    }
                    w
                }
                Mode::Batch1NoCheck => {
                    let mut b = sled::Batch::default();
                    let mut w = 0u64;
                    for Row { id, key, value } in &batch {
                        b.insert(prefixed(b'i', id), &key[..12]);
                        b.insert(prefixed(b'r', key), value.clone());
                        w += 1;
                    }
                    *count += w;
                    b.insert(b"mrows".as_slice(), &count.to_be_bytes());
                    one.apply_batch(b).unwrap();
                    w
                }
                Mode::Plain => {
                    let mut w = 0u64;
                    for Row { id, key, value } in &batch {
                        if ids_t.get(id).unwrap().is_some() {
                            continue;
                        }
                        ids_t.insert(id.as_slice(), key.as_slice()).unwrap();
                        rows_t.insert(key.as_slice(), value.clone()).unwrap();
                        w += 1;
                    }
                    w
                }
                Mode::Plain2Threads => std::thread::scope(|sc| {
                    let (a, b) = batch.split_at(batch.len() / 2);
                    let work = |part: &[Row]| {
                        let mut w = 0u64;
                        for Row { id, key, value } in part {
                            if ids_t.get(id).unwrap().is_some() {
                                continue;
                            }
                            ids_t.insert(id.as_slice(), key.as_slice()).unwrap();
                            rows_t.insert(key.as_slice(), value.clone()).unwrap();
                            w += 1;
                        }
                        w
                    };
                    let h = sc.spawn(move || work(a));
                    let w = work(b);
                    w + h.join().unwrap()
                }),
            };
            let tf = Instant::now();
            db.flush().unwrap();
            (wrote, t0.elapsed(), tf.elapsed(), thread_cpu() - c0)
        })
    };
    c.report(&name);
    drop(db);
}

// ---- the store ------------------------------------------------------------------

/// Format 1's `insert_batch` (serde_json rows, one transaction over the
/// `rows`, `ids` and `meta` trees, the count in `meta`), rebuilt as it was.
fn v1_emulated(s: &Settings, cache_mib: u64) {
    use sled::Transactional;
    use sled::transaction::ConflictableTransactionError;
    let name = format!("store/v1-emulated+flush/{cache_mib}MiB");
    if !s.wants(&name) {
        return;
    }
    let dir = temp_dir();
    let db = sled::Config::new()
        .path(dir.path().join("db"))
        .cache_capacity(cache_mib << 20)
        .flush_every_ms(Some(500))
        .open()
        .unwrap();
    let (rows_t, ids_t, meta_t) = (
        db.open_tree("rows").unwrap(),
        db.open_tree("ids").unwrap(),
        db.open_tree("meta").unwrap(),
    );
    let mut n = 0u64;
    let mut c = timed(s.secs, || {
        let batch = rows(s.commit, &mut n);
        let c0 = thread_cpu();
        let t = Instant::now();
        let prepared: Vec<(Vec<u8>, sled::IVec, sled::IVec)> = batch
            .iter()
            .map(|r| {
                let ts = r.timestamp.as_bytes();
                // The real key's time prefix; the parse is not the cost.
                let mut key = ts.get(..12).unwrap_or(ts).to_vec();
                key.extend_from_slice(r.event_id.as_bytes());
                (
                    r.event_id.as_bytes().to_vec(),
                    key.into(),
                    serde_json::to_vec(r).unwrap().into(),
                )
            })
            .collect();
        let inserted = (&rows_t, &ids_t, &meta_t)
            .transaction(|(rt, it, mt)| {
                let mut inserted = 0u64;
                for (id, key, value) in &prepared {
                    if it.get(id)?.is_some() {
                        continue;
                    }
                    it.insert(id.as_slice(), key.clone())?;
                    rt.insert(key.clone(), value.clone())?;
                    inserted += 1;
                }
                let count = mt
                    .get(b"rows")?
                    .map_or(0, |v| u64::from_be_bytes(v.as_ref().try_into().unwrap()));
                mt.insert(b"rows", &(count + inserted).to_be_bytes())?;
                Ok::<_, ConflictableTransactionError<()>>(inserted)
            })
            .unwrap();
        drop(prepared);
        drop(batch);
        let tf = Instant::now();
        db.flush().unwrap();
        (inserted, t.elapsed(), tf.elapsed(), thread_cpu() - c0)
    });
    c.report(&name);
}

fn store_runs(s: &Settings, cache_mib: u64) {
    v1_emulated(s, cache_mib);
    for api in ["insert_batch", "insert_encoded", "insert_encoded-per-100"] {
        let name = format!("store/{api}+flush/{cache_mib}MiB");
        if !s.wants(&name) {
            continue;
        }
        let dir = temp_dir();
        let store = Arc::new(
            EventLogStore::open(
                &dir.path().join("event_logs"),
                EventLogConfig {
                    cache_bytes: cache_mib << 20,
                    ..EventLogConfig::default()
                },
            )
            .unwrap(),
        );
        let mut n = 0u64;
        let mut c = timed(s.secs, || {
            let batch = rows(s.commit, &mut n);
            let t;
            let c0;
            let out = if api == "insert_batch" {
                c0 = thread_cpu();
                t = Instant::now();
                store.insert_batch(&batch).unwrap()
            } else {
                let encoded: Vec<_> = batch
                    .iter()
                    .map(|r| EventLogStore::encode_row(r).unwrap())
                    .collect();
                drop(batch);
                c0 = thread_cpu();
                t = Instant::now();
                if api == "insert_encoded" {
                    store.insert_encoded(&encoded).unwrap()
                } else {
                    // As the mirror does: one call per submitter (a
                    // 100-event payload), one flush for all.
                    let mut out = InsertOutcome::default();
                    for payload in encoded.chunks(100) {
                        out.inserted += store.insert_encoded(payload).unwrap().inserted;
                    }
                    out
                }
            };
            let tf = Instant::now();
            store.flush().unwrap();
            (out.inserted, t.elapsed(), tf.elapsed(), thread_cpu() - c0)
        });
        c.report(&name);
    }
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let s = Settings {
        secs: if benching {
            env_or("MIRROR_BENCH_SECS", 3.0)
        } else {
            0.05
        },
        commit: env_or("MIRROR_BENCH_COMMIT", 1_600),
        only: std::env::var("MIRROR_BENCH_ONLY").unwrap_or_default(),
    };
    println!(
        "mirror: commits of {} rows, one flush each, {} s of commit time per run",
        s.commit, s.secs
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average before: {}", load.trim());
    }
    encode(&s);
    // The three layouts that were candidates, over value sizes and caches;
    // the other variants at the realistic size and the default cache.
    for cache in [16, 64] {
        for size in [1024, 600, 100] {
            for mode in [Mode::Tx3, Mode::Batch1, Mode::Batch1x16, Mode::PlainJournal] {
                bare_sled(&s, mode, size, cache);
            }
        }
    }
    for mode in [
        Mode::Tx3x16,
        Mode::Batch1NoCheck,
        Mode::Batch1Short,
        Mode::Batch2,
        Mode::Plain1,
        Mode::Plain,
        Mode::Plain2Threads,
    ] {
        bare_sled(&s, mode, 600, 16);
    }
    for cache in [16, 64] {
        store_runs(&s, cache);
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average after: {}", load.trim());
    }
}
