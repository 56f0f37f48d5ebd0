//! gRPC `RecordEvents` load, shared by `benches/ingest.rs` and the load
//! client `examples/grpc_load.rs` (which `scripts/bench-vs-postgres.sh`
//! runs).
//!
//! `streams` streams (one connection each) send payloads of `batch`
//! realistic events ([`crate::events::event_with_id`], ~600 B encoded), each
//! with a fresh id from a userspace generator ([`IdGen`]: no system call per
//! id, which on a small machine would take CPU from the server).
//!
//! - **Closed loop** (no `rate`): each stream sends its next payload as soon
//!   as the last one is answered (the most the server sustains; latency is
//!   then in-flight / rate).
//! - **Paced** (`rate`, events/s over all streams): each stream sends on a
//!   fixed schedule, staggered over one period, and latency is measured
//!   from the scheduled send time, so a slow answer that delays the next
//!   send is charged to that payload too (no coordinated omission).
//!
//! A warm-up comes first, then the measured window. Throughput counts the
//! events of the payloads answered inside the window; latency is taken for
//! every payload sent (closed loop) or scheduled (paced) inside the window,
//! however late its answer comes: streams stop sending at the window's end
//! but wait for their answers, and a paced stream that fell behind first
//! sends the payloads it still owes for the window (so an overloaded
//! server's slowest answers are in the percentiles, not cut off at the
//! window's end). Every answer is checked: an
//! event is *acked* when its id is in the payload's `succeeded_events`
//! ([`Figures::acked`] counts them over the whole run, warm-up included, so
//! that a caller can compare it with what the server queued). A failed
//! stream (an error status, a closed stream, a refused connection) is
//! counted in [`Figures::errors`] and reopened; its unanswered payload is
//! not acked.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use telespool::proto::telemetrygateway::v1 as pb;
use telespool::proto::telemetrygateway::v1::telemetery_gateway_service_client::TelemeteryGatewayServiceClient;
use tokio::sync::mpsc;

use crate::events::event_with_id;

/// Which event ids the load carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    /// Random (UUID v4), as older Sourcegraph versions send: no order for
    /// an id index to lean on.
    V4,
    /// Time-ordered (UUID v7), as current generators make them.
    V7,
}

impl IdKind {
    /// `v4` or `v7`.
    pub fn name(self) -> &'static str {
        match self {
            IdKind::V4 => "v4",
            IdKind::V7 => "v7",
        }
    }

    /// Parses `v4` or `v7`.
    pub fn parse(s: &str) -> Option<IdKind> {
        match s.trim() {
            "v4" => Some(IdKind::V4),
            "v7" => Some(IdKind::V7),
            _ => None,
        }
    }
}

/// Fresh UUIDs from a userspace generator seeded once from the system.
#[derive(Debug)]
pub struct IdGen {
    rng: SmallRng,
    kind: IdKind,
}

impl IdGen {
    /// A generator of `kind` ids.
    pub fn new(kind: IdKind) -> IdGen {
        IdGen {
            rng: SmallRng::from_rng(&mut rand::rng()),
            kind,
        }
    }

    /// The next id.
    pub fn next_id(&mut self) -> uuid::Uuid {
        match self.kind {
            IdKind::V4 => uuid::Builder::from_random_bytes(self.rng.random()).into_uuid(),
            IdKind::V7 => {
                let millis = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                uuid::Builder::from_unix_timestamp_millis(
                    u64::try_from(millis).unwrap_or(u64::MAX),
                    &self.rng.random(),
                )
                .into_uuid()
            }
        }
    }
}

/// The stream's first message: an unlicensed instance.
pub fn metadata() -> pb::RecordEventsRequest {
    pb::RecordEventsRequest {
        payload: Some(pb::record_events_request::Payload::Metadata(
            pb::RecordEventsRequestMetadata {
                request_id: uuid::Uuid::now_v7().to_string(),
                identifier: Some(pb::Identifier {
                    identifier: Some(pb::identifier::Identifier::UnlicensedInstance(
                        pb::identifier::UnlicensedInstanceIdentifier {
                            instance_id: "bench-instance".into(),
                            external_url: "https://sourcegraph.example.com".into(),
                        },
                    )),
                }),
            },
        )),
    }
}

/// An events payload.
pub fn payload(events: Vec<pb::Event>) -> pb::RecordEventsRequest {
    pb::RecordEventsRequest {
        payload: Some(pb::record_events_request::Payload::Events(
            pb::record_events_request::EventsPayload { events },
        )),
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The server's gRPC address.
    pub addr: SocketAddr,
    /// Concurrent streams, one connection each.
    pub streams: usize,
    /// Events per payload.
    pub batch: usize,
    /// Unmeasured time before the window.
    pub warmup: Duration,
    /// The measured window.
    pub measure: Duration,
    /// Offered events/s over all streams; `None`: closed loop.
    pub rate: Option<f64>,
    /// Which ids the events carry.
    pub ids: IdKind,
}

/// What a load run measured.
#[derive(Debug, Default)]
pub struct Figures {
    /// Events of the payloads answered inside the window.
    pub events: u64,
    /// The window's length.
    pub window: Duration,
    /// Latency of each payload sent (or, paced, scheduled) inside the
    /// window, sorted.
    pub latencies: Vec<Duration>,
    /// Events sent, warm-up included.
    pub sent: u64,
    /// Events acknowledged (their id in `succeeded_events`), warm-up
    /// included.
    pub acked: u64,
    /// Failed streams or connection attempts.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
}

impl Figures {
    /// Events/s answered inside the window.
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.window.as_secs_f64()
    }

    /// The latency at quantile `p` (0..=1), nearest rank; zero when nothing
    /// was measured.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1]
    }

    /// The slowest payload of the window.
    pub fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }

    fn merge(&mut self, s: Figures) {
        self.events += s.events;
        self.latencies.extend(s.latencies);
        self.sent += s.sent;
        self.acked += s.acked;
        self.errors += s.errors;
        if self.first_error.is_none() {
            self.first_error = s.first_error;
        }
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }
}

/// Runs the load of `spec` (warm-up, then the window) and returns what it
/// measured. Never panics on the server's answers: failures are counted.
pub async fn run(spec: &Spec) -> Figures {
    let start = Instant::now();
    let m0 = start + spec.warmup;
    let m1 = m0 + spec.measure;
    let counter = Arc::new(AtomicU64::new(0));
    let period = spec
        .rate
        .map(|r| Duration::from_secs_f64(spec.streams as f64 * spec.batch as f64 / r));
    let mut tasks = Vec::new();
    for i in 0..spec.streams {
        let counter = counter.clone();
        let spec = spec.clone();
        tasks.push(tokio::spawn(async move {
            // Streams start staggered over one period.
            let ticks = period.map(|p| {
                let first = start + p.mul_f64(i as f64 / spec.streams as f64);
                let mut t = tokio::time::interval_at(first.into(), p);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                t
            });
            stream(&spec, ticks, &counter, m0, m1).await
        }));
    }
    let mut f = Figures {
        window: m1 - m0,
        ..Figures::default()
    };
    for t in tasks {
        match t.await {
            Ok(s) => f.merge(s),
            Err(e) => f.error(format!("a load stream's task failed: {e}")),
        }
    }
    f.latencies.sort();
    f
}

/// One stream's load, reopened after each failure until the window ends.
async fn stream(
    spec: &Spec,
    mut ticks: Option<tokio::time::Interval>,
    counter: &AtomicU64,
    m0: Instant,
    m1: Instant,
) -> Figures {
    let mut f = Figures::default();
    let mut ids = IdGen::new(spec.ids);
    'connect: while Instant::now() < m1 {
        let client =
            match TelemeteryGatewayServiceClient::connect(format!("http://{}", spec.addr)).await {
                Ok(c) => c,
                Err(e) => {
                    f.error(format!("connect to {}: {e}", spec.addr));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
        let mut client = client
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let (tx, rx) = mpsc::channel(2);
        if tx.send(metadata()).await.is_err() {
            continue;
        }
        let mut answers = match client
            .record_events(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
        {
            Ok(r) => r.into_inner(),
            Err(status) => {
                f.error(format!("RecordEvents refused: {status}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        loop {
            let sent = match ticks.as_mut() {
                Some(t) => t.tick().await.into_std(),
                None => Instant::now(),
            };
            if sent >= m1 {
                break;
            }
            let mut pending = HashSet::with_capacity(spec.batch);
            let events: Vec<pb::Event> = (0..spec.batch)
                .map(|_| {
                    let id = ids.next_id();
                    pending.insert(id);
                    event_with_id(counter.fetch_add(1, Ordering::Relaxed), id.to_string())
                })
                .collect();
            f.sent += spec.batch as u64;
            if tx.send(payload(events)).await.is_err() {
                f.error("the request stream closed".into());
                continue 'connect;
            }
            let answer = match answers.message().await {
                Ok(Some(a)) => a,
                Ok(None) => {
                    f.error("the server ended the stream before answering a payload".into());
                    continue 'connect;
                }
                Err(status) => {
                    f.error(format!("payload failed: {status}"));
                    continue 'connect;
                }
            };
            let done = Instant::now();
            let acked = answer
                .succeeded_events
                .iter()
                .filter(|id| uuid::Uuid::parse_str(id).is_ok_and(|u| pending.remove(&u)))
                .count();
            f.acked += acked as u64;
            if acked < spec.batch {
                f.error(format!(
                    "a payload of {} events was answered with {acked} of its ids",
                    spec.batch
                ));
            }
            if done >= m0 && done <= m1 {
                f.events += spec.batch as u64;
            }
            if sent >= m0 {
                f.latencies.push(done - sent);
            }
        }
        drop(tx);
        while let Ok(Some(_)) = answers.message().await {}
        break;
    }
    f
}
