//! Queue benchmarks on real files (this machine's disk), with the real sled
//! index. Each bench writes under a temporary directory, raises the quota so
//! the data fits, and removes everything when done.
//!
//! Run: `cargo bench --bench queue` (or one group: `cargo bench --bench
//! queue -- durable_append`). Figures and their commands are recorded in
//! `docs/benchmarks.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::{Duration, Instant};
use telespool::queue::DEFAULT_SEGMENT_BYTES;
use telespool::{Batch, Queue, QueueConfig, RecordId, SyncPolicy};

const EVENT: usize = 600;

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs each
/// bench once without it, so the data sets shrink to keep tests fast.
fn full_size() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn config(sync: SyncPolicy) -> QueueConfig {
    QueueConfig {
        sync,
        quota_bytes: 1 << 40,
        ..QueueConfig::default()
    }
}

fn event() -> Vec<u8> {
    (0..EVENT).map(|i| (i * 7 % 251) as u8).collect()
}

/// Runs `writers` threads, each appending `iters` batches of `batch`
/// events; returns the elapsed time. Resolves and purges as it goes so the
/// disk does not fill up across samples.
fn append_load(q: &Arc<Queue>, writers: usize, batch: usize, iters: u64) -> Duration {
    let ev = event();
    let events: Vec<&[u8]> = (0..batch).map(|_| ev.as_slice()).collect();
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..writers {
            let q = q.clone();
            let events = events.clone();
            s.spawn(move || {
                for _ in 0..iters {
                    q.append(Batch::from_slices(&events)).unwrap();
                }
            });
        }
    });
    let took = start.elapsed();
    // Housekeeping outside the measurement: everything appended is resolved
    // and purged (retention zero) to keep the data set bounded.
    let segs = q.segments();
    if let (Some(first), Some(last)) = (segs.first(), segs.last()) {
        let ids: Vec<RecordId> = (first.meta.first_id.0..=last.meta.last_id.map_or(0, |l| l.0))
            .map(RecordId)
            .collect();
        for chunk in ids.chunks(100_000) {
            q.resolve(chunk, telespool::index::Resolution::Acked);
        }
        q.purge(Duration::ZERO).unwrap();
    }
    took
}

/// Like [`append_load`], with the writers as tokio tasks on a 2-worker
/// runtime awaiting [`Queue::submit`], as the sidecar's ingest handlers do:
/// a waiting writer costs a task wake, not an OS context switch.
fn append_load_tasks(
    q: &Arc<Queue>,
    rt: &tokio::runtime::Runtime,
    writers: usize,
    batch: usize,
    iters: u64,
) -> Duration {
    let ev = event();
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::with_capacity(writers);
        for _ in 0..writers {
            let q = q.clone();
            let ev = ev.clone();
            tasks.push(tokio::spawn(async move {
                let events: Vec<&[u8]> = (0..batch).map(|_| ev.as_slice()).collect();
                for _ in 0..iters {
                    q.submit(Batch::from_slices(&events))
                        .unwrap()
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let took = start.elapsed();
    let segs = q.segments();
    if let (Some(first), Some(last)) = (segs.first(), segs.last()) {
        let ids: Vec<RecordId> = (first.meta.first_id.0..=last.meta.last_id.map_or(0, |l| l.0))
            .map(RecordId)
            .collect();
        for chunk in ids.chunks(100_000) {
            q.resolve(chunk, telespool::index::Resolution::Acked);
        }
        q.purge(Duration::ZERO).unwrap();
    }
    took
}

fn durable_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("durable_append");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(2));
    for (writers, batch) in [(64usize, 1usize), (8, 100), (32, 100)] {
        let dir = tempfile::tempdir().unwrap();
        let (q, _) = Queue::open_dir(dir.path(), config(SyncPolicy::Always)).unwrap();
        let q = Arc::new(q);
        g.throughput(Throughput::Elements((writers * batch) as u64));
        g.bench_function(format!("{writers}_writers_x{batch}"), |b| {
            b.iter_custom(|iters| append_load(&q, writers, batch, iters));
        });
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (writers, batch) in [(64usize, 1usize), (8, 100)] {
        let dir = tempfile::tempdir().unwrap();
        let (q, _) = Queue::open_dir(dir.path(), config(SyncPolicy::Always)).unwrap();
        let q = Arc::new(q);
        g.throughput(Throughput::Elements((writers * batch) as u64));
        g.bench_function(format!("{writers}_tasks_x{batch}"), |b| {
            b.iter_custom(|iters| append_load_tasks(&q, &rt, writers, batch, iters));
        });
    }
    g.finish();
}

fn unsynced_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("never_append");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(2));
    let dir = tempfile::tempdir().unwrap();
    let (q, _) = Queue::open_dir(dir.path(), config(SyncPolicy::Never)).unwrap();
    let q = Arc::new(q);
    g.throughput(Throughput::Elements(4 * 100));
    g.bench_function("4_writers_x100", |b| {
        b.iter_custom(|iters| append_load(&q, 4, 100, iters));
    });
    g.finish();
}

/// Fills a queue with `sealed` full segments and an active segment of
/// `active_bytes`, unsynced (fast), then closes it.
fn fill(dir: &std::path::Path, sealed: usize, active_bytes: u64) {
    let (q, _) = Queue::open_dir(dir, config(SyncPolicy::Never)).unwrap();
    let ev = event();
    let events: Vec<&[u8]> = (0..1000).map(|_| ev.as_slice()).collect();
    while q.segments().len() <= sealed {
        q.append(Batch::from_slices(&events)).unwrap();
    }
    loop {
        let active = q.segments().last().unwrap().meta.bytes;
        if active >= active_bytes {
            break;
        }
        q.append(Batch::from_slices(&events)).unwrap();
        q.sync().unwrap();
    }
    q.close().unwrap();
}

fn sealed_read(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), if full_size() { 4 } else { 1 }, 0);
    let (q, _) = Queue::open_dir(dir.path(), config(SyncPolicy::Never)).unwrap();
    let sealed: Vec<_> = q.segments().into_iter().filter(|s| s.meta.sealed).collect();
    let bytes: u64 = sealed.iter().map(|s| s.meta.bytes).sum();
    let last = sealed.last().unwrap().meta.last_id.unwrap();
    // Warm the page cache and the maps.
    let mut n = 0;
    let mut from = RecordId(1);
    while from <= last {
        let recs = q.read(from, 10_000, usize::MAX).unwrap();
        n += recs.len();
        from = recs.last().unwrap().id.next();
    }
    assert!(n > 0);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("sealed_segments_page_cache", |b| {
        b.iter(|| {
            let mut from = RecordId(1);
            let mut total = 0usize;
            while from <= last {
                let recs = q.read(from, 10_000, usize::MAX).unwrap();
                total += recs.len();
                from = recs.last().unwrap().id.next();
            }
            total
        });
    });
    g.finish();
}

fn open(c: &mut Criterion) {
    let mut g = c.benchmark_group("open");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();
    let (sealed, active) = if full_size() {
        (
            (1u64 << 30).div_ceil(DEFAULT_SEGMENT_BYTES) as usize,
            60 * 1024 * 1024,
        )
    } else {
        (1, 1024 * 1024)
    };
    fill(dir.path(), sealed, active);
    g.bench_function("1GiB_sealed_plus_60MiB_active", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let (q, report) = Queue::open_dir(dir.path(), config(SyncPolicy::Always)).unwrap();
                total += start.elapsed();
                assert_eq!(report.scanned.len(), 1);
                drop(q);
            }
            total
        });
    });
    g.finish();
}

criterion_group!(benches, durable_append, unsynced_append, sealed_read, open);
criterion_main!(benches);
