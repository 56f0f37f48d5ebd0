//! A load client for a running sidecar's gRPC `RecordEvents`
//! (telemetrygateway.v1): `--streams` streams, one connection each, send
//! payloads of `--batch` realistic events (~600 B encoded), every event with
//! a fresh id (`--ids v4`, random, the default; or `v7`, time-ordered) made
//! by a userspace generator. Closed loop by default; `--rate` paces the load
//! at that many events/s, latency then counted from each payload's scheduled
//! send time (no coordinated omission). The load itself is
//! `testkit::load`, which `benches/ingest.rs` runs too.
//!
//! ```text
//! cargo build --release --example grpc_load
//! target/release/examples/grpc_load --addr 127.0.0.1:10085 --secs 20
//! ```
//!
//! It ends with a human line and one machine-readable line:
//!
//! ```text
//! events=N acked=N sent=N secs=S rate=R p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. errors=E client_cpu_s=C wall_s=W client_cores=K
//! ```
//!
//! `events` and `rate` count the payloads answered inside the measured
//! window (after `--warmup`), the latencies every payload sent (paced:
//! scheduled) inside it, however late its answer (see `testkit::load`);
//! `acked` and `sent` count the whole run, warm-up included
//! (an event is acked when its id is in its payload's `succeeded_events`),
//! so that `acked` can be compared with the records the sidecar queued.
//! `client_cpu_s` is this process's own CPU time (user + system) over the
//! run's `wall_s` (a paced run behind its schedule lasts longer than
//! warm-up + window), `client_cores` their ratio: how much of a shared
//! machine the client took. The exit code is 0 whenever
//! the run completed; failures are in `errors` (and the first one is
//! printed).
//!
//! `--write-http-body FILE` writes instead a `POST /v1/events` body
//! (`{"events": [...]}`) of `--batch` of the same events rendered as
//! protojson, each id replaced by `@ID@`, for an HTTP load generator to fill
//! in (`scripts/bench-vs-postgres.sh`, wrk).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use prost::Message;
use testkit::load::{IdKind, Spec};

/// The binary's allocator, as in `telespool` itself and the benches.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Ids {
    /// Random UUIDs (version 4).
    V4,
    /// Time-ordered UUIDs (version 7).
    V7,
}

/// gRPC RecordEvents load client for a telespool sidecar.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The sidecar's gRPC address.
    #[arg(long, default_value = "127.0.0.1:10085")]
    addr: SocketAddr,
    /// Concurrent streams, one connection each.
    #[arg(long, default_value_t = 16)]
    streams: usize,
    /// Events per payload.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 20.0)]
    secs: f64,
    /// Unmeasured seconds before them.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Offered events/s over all streams (paced); default: closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Event ids.
    #[arg(long, value_enum, default_value_t = Ids::V4)]
    ids: Ids,
    /// Write a POST /v1/events body of --batch events (ids `@ID@`) to this
    /// file and exit.
    #[arg(long, value_name = "FILE")]
    write_http_body: Option<PathBuf>,
}

/// CPU seconds (user + system) this process used so far, from
/// `/proc/self/stat` (in USER_HZ ticks, 100 per second on Linux).
fn own_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    (n(11) + n(12)) as f64 / 100.0
}

fn write_http_body(path: &PathBuf, batch: usize) {
    let events: Vec<serde_json::Value> = (0..batch as u64)
        .map(|n| {
            let e = testkit::events::event_with_id(n, "@ID@".into());
            telespool::protojson::render_event(&e).unwrap()
        })
        .collect();
    let body = serde_json::json!({ "events": events }).to_string();
    std::fs::write(path, &body).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    let encoded: usize = (0..batch as u64)
        .map(|n| testkit::events::event(n).encoded_len())
        .sum();
    println!(
        "wrote {}: {batch} events, {} B of JSON ({:.0} B per event; {:.0} B per event protobuf-encoded)",
        path.display(),
        body.len(),
        body.len() as f64 / batch.max(1) as f64,
        encoded as f64 / batch.max(1) as f64
    );
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(path) = &args.write_http_body {
        write_http_body(path, args.batch);
        return;
    }
    let spec = Spec {
        addr: args.addr,
        streams: args.streams,
        batch: args.batch,
        warmup: Duration::from_secs_f64(args.warmup),
        measure: Duration::from_secs_f64(args.secs),
        rate: args.rate,
        ids: match args.ids {
            Ids::V4 => IdKind::V4,
            Ids::V7 => IdKind::V7,
        },
    };
    let cpu0 = own_cpu_secs();
    let started = Instant::now();
    let f = testkit::load::run(&spec).await;
    let took = started.elapsed();
    let cpu = own_cpu_secs() - cpu0;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mode = match args.rate {
        Some(r) => format!("paced at {r:.0} events/s"),
        None => "closed loop".into(),
    };
    println!(
        "grpc_load: {} streams x {} events ({:?} ids), {mode}, {:.1} s after {:.1} s warm-up: {:.0} events/s; payload latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} events sent, {} acked, {} errors; client CPU {cpu:.2} s ({:.2} cores)",
        args.streams,
        args.batch,
        args.ids,
        args.secs,
        args.warmup,
        f.rate(),
        ms(f.percentile(0.50)),
        ms(f.percentile(0.90)),
        ms(f.percentile(0.99)),
        ms(f.max()),
        f.sent,
        f.acked,
        f.errors,
        cpu / took.as_secs_f64(),
    );
    if let Some(e) = &f.first_error {
        println!("grpc_load: first error: {e}");
    }
    println!(
        "events={} acked={} sent={} secs={:.3} rate={:.0} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3} errors={} client_cpu_s={cpu:.2} wall_s={:.3} client_cores={:.2}",
        f.events,
        f.acked,
        f.sent,
        f.window.as_secs_f64(),
        f.rate(),
        ms(f.percentile(0.50)),
        ms(f.percentile(0.90)),
        ms(f.percentile(0.99)),
        ms(f.max()),
        f.errors,
        took.as_secs_f64(),
        cpu / took.as_secs_f64(),
    );
}
