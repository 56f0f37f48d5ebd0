//! Protojson parsing of one event, the reference (prost-reflect: JSON to a
//! `DynamicMessage`, encoded, decoded by prost) against the typed parser
//! (JSON straight into the prost `Event`), on the ingest benchmark's
//! realistic event (~600 B encoded, ~830 B of JSON): time per event
//! (criterion) and, printed first as a table, heap allocations per event (a
//! counting global allocator around the binary's mimalloc) and CPU time per
//! event (this thread's on-CPU time from `/proc/thread-self/schedstat`,
//! which a busy machine does not inflate as it does wall time).
//!
//! Paths, each from the event's JSON text:
//! - `reference_text`: `parse_event_reference` (what `parse_event` was);
//! - `typed_text`: `parse_event_str` (what HTTP ingest calls per event once
//!   the body is split into raw events);
//! - `value_then_reference`: `serde_json::Value` first, then
//!   `parse_event_value_reference` (HTTP ingest's per-event work before);
//! - `value_then_typed`: `Value` first, then `parse_event_value` (HTTP
//!   ingest's per-event work while the body is still parsed into a `Value`).
//!
//! Run: `cargo bench --bench protojson`. Figures are recorded in
//! `docs/benchmarks.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use testkit::alloc::{Counting, allocations};
use testkit::events;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use telespool::protojson;

#[global_allocator]
static GLOBAL: Counting = Counting(mimalloc::MiMalloc);

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs each
/// bench once without it, so the counting loop shrinks.
fn full_size() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// 64 realistic events as JSON text (they differ in feature, action and
/// metadata values).
fn texts() -> Vec<String> {
    (0..64)
        .map(|n| {
            protojson::render_event(&events::event(n))
                .unwrap()
                .to_string()
        })
        .collect()
}

type Path = (
    &'static str,
    fn(&str) -> telespool::proto::telemetrygateway::v1::Event,
);

const PATHS: [Path; 4] = [
    ("reference_text", |t| {
        protojson::parse_event_reference(t.as_bytes()).unwrap()
    }),
    ("typed_text", |t| protojson::parse_event_str(t).unwrap()),
    ("value_then_reference", |t| {
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        protojson::parse_event_value_reference(&v).unwrap()
    }),
    ("value_then_typed", |t| {
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        protojson::parse_event_value(&v).unwrap()
    }),
];

/// This thread's time on a CPU so far (Linux), in nanoseconds.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Allocations, allocated bytes and CPU time per event on each path, the
/// parsed event's own allocations included (and its drop, which frees
/// them).
fn allocation_table(texts: &[String]) {
    let rounds = if full_size() { 200 } else { 2 };
    let encoded: usize = texts
        .iter()
        .map(|t| protojson::parse_event_str(t).unwrap().encoded_len())
        .sum::<usize>()
        / texts.len();
    let json: usize = texts.iter().map(String::len).sum::<usize>() / texts.len();
    println!("protojson parse, {json} B of JSON per event ({encoded} B encoded):");
    println!(
        "{:<22} {:>12} {:>14} {:>16}",
        "path", "allocs/event", "bytes/event", "cpu µs/event"
    );
    for (name, parse) in PATHS {
        // Warm up (descriptor pool, lazy statics).
        black_box(parse(&texts[0]));
        let (a0, b0) = allocations();
        let cpu0 = thread_cpu_ns();
        for _ in 0..rounds {
            for t in texts {
                black_box(parse(t));
            }
        }
        let n = (rounds * texts.len()) as f64;
        let cpu = match (cpu0, thread_cpu_ns()) {
            (Some(a), Some(b)) => format!("{:.2}", (b - a) as f64 / n / 1000.0),
            _ => "-".to_owned(),
        };
        let (a1, b1) = allocations();
        let allocs = (a1 - a0) as f64 / n;
        let bytes = (b1 - b0) as f64 / n;
        println!("{name:<22} {allocs:>12.1} {bytes:>14.0} {cpu:>16}");
    }
}

fn parse(c: &mut Criterion) {
    let texts = texts();
    allocation_table(&texts);
    let mut group = c.benchmark_group("protojson_parse");
    group.throughput(Throughput::Elements(texts.len() as u64));
    for (name, parse) in PATHS {
        group.bench_function(name, |b| {
            b.iter(|| {
                for t in &texts {
                    black_box(parse(black_box(t)));
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
