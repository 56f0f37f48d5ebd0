//! The export task: drains the queue to a gateway over `RecordEvents`
//! streams, acknowledging records only by the ids the gateway returns.
//!
//! A *round* is one stream: the metadata message, then payloads of at most
//! 1 MiB of events (an event larger than that goes alone), up to
//! [`MAX_INFLIGHT`] payloads in flight, until the batch size (Sourcegraph's
//! `EXPORT_BATCH_SIZE`: events per stream) is reached or nothing is left;
//! then the stream is half-closed and its last answers drained. Rounds
//! follow each other while there is a backlog; when idle the task sleeps
//! until an append wakes it or the export interval passes.
//!
//! Acknowledgement: each answer's `succeeded_events` is treated as a set;
//! an id acknowledges every in-flight record carrying it (retries of one
//! event share its id); ids not in flight are ignored and counted. Records
//! left out are sent again in a later round, after an exponential backoff
//! with jitter. An answer counts as an *attempt* against the records it
//! left out only when it acknowledged others of the same payload: an
//! answer with no ids at all (a gateway whose sink is down), a broken
//! stream, a refused stream or an outage never ages records toward the
//! dead-letter store. After `max_attempts` answered attempts a record is
//! dead-lettered (durably) and resolved, so it cannot pin its segment.
//!
//! A gateway connection that goes away gracefully (HTTP/2 `GOAWAY` with
//! `NO_ERROR`: the gateway's max connection age, or its shutdown) is a
//! reconnect, not a failure. The streams it had accepted finish normally;
//! a stream opened as the `GOAWAY` crossed it fails with h2's
//! `GoAway(NO_ERROR, Remote)` (tonic: `Internal` "h2 protocol error") and
//! was never processed. That round is retried at once on a new connection,
//! counted in `telespool_export_goaway_retries_total`, not in
//! `telespool_export_errors_total`, with no backoff; only after
//! [`MAX_GOAWAY_RETRIES`] in a row does it count as a failure (a gateway
//! sending `GOAWAY` on every connection).
//!
//! Records are sent as the queue holds them: the event bytes go on the wire
//! untouched (see `telespool.v1.RawEventsPayload`).

use super::backoff::Backoff;
use super::config::ExportConfig;
use super::identity;
use super::round_error::{Phase, RoundError, classify};
use super::wire::event_id;
use crate::clock::Clock;
use crate::dead_letter::{DeadLetterEntry, DeadLetterSource, DeadLetterStore};
use crate::ids::RecordId;
use crate::proto::telemetrygateway::v1::{Identifier, RecordEventsResponse};
use crate::proto::telespool::v1::{
    RawEventsPayload, RawRecordEventsRequest, raw_record_events_request,
};
use crate::queue::Queue;
use crate::queue::{Record, Resolution};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, watch};
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

/// Metric: events the gateway acknowledged (Sourcegraph's name).
pub const EXPORTED_EVENTS: &str = "src_telemetrygatewayexporter_exported_events";
/// Metric: events per exported payload (Sourcegraph's name).
pub const BATCH_SIZE: &str = "src_telemetrygatewayexporter_batch_size";
/// Metric: events moved to the dead-letter store after too many attempts.
pub const DEAD_LETTERED: &str = "telespool_export_dead_lettered_total";
/// Metric: failed export rounds, by `kind`.
pub const ERRORS: &str = "telespool_export_errors_total";
/// Metric: rounds retried at once after a graceful `GOAWAY`.
pub const GOAWAY_RETRIES: &str = "telespool_export_goaway_retries_total";
/// Metric: acknowledged ids that matched no in-flight record.
pub const UNKNOWN_IDS: &str = "telespool_export_unknown_ids_total";
/// Metric: time from sending a payload to its answer.
pub const ROUNDTRIP_SECONDS: &str = "telespool_export_roundtrip_seconds";

/// The gRPC method path (with Sourcegraph's typo).
pub const RECORD_EVENTS_PATH: &str = "/telemetrygateway.v1.TelemeteryGatewayService/RecordEvents";
/// Largest payload, by the sum of its events' sizes (Sourcegraph's chunker).
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Payloads in flight on one stream.
pub const MAX_INFLIGHT: usize = 8;
/// How long an answer to a payload may take before the stream is
/// considered stalled and abandoned.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long shutdown waits for the answers to in-flight payloads.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Rounds refused by a graceful `GOAWAY` retried at once, in a row, before
/// the next one counts as a failure and backs off.
pub const MAX_GOAWAY_RETRIES: u32 = 3;

/// Counters of the exporter (also exported as metrics).
#[derive(Debug, Default)]
pub struct ExportStats {
    /// Records acknowledged.
    pub acked: AtomicU64,
    /// Payloads sent.
    pub payloads: AtomicU64,
    /// Streams opened.
    pub rounds: AtomicU64,
    /// Acknowledged ids that were not in flight.
    pub unknown_ids: AtomicU64,
    /// Records dead-lettered.
    pub dead_lettered: AtomicU64,
    /// Failed rounds.
    pub errors: AtomicU64,
    /// Rounds retried at once after a graceful `GOAWAY`.
    pub goaway_retries: AtomicU64,
}

struct Sent {
    /// Record id and event id of every record still waiting for an ack.
    records: Vec<(RecordId, Option<String>)>,
    /// Event bytes, for dead-lettering.
    events: HashMap<RecordId, bytes::Bytes>,
    sent_at: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Retry {
    attempts: u32,
    not_before: Instant,
}

/// The exporter.
pub struct Exporter {
    queue: Arc<Queue>,
    dead_letters: Arc<DeadLetterStore>,
    clock: Arc<dyn Clock>,
    config: ExportConfig,
    identifier: Identifier,
    channel: Channel,
    wake: Arc<Notify>,
    stats: Arc<ExportStats>,
    backoff: Backoff,
    retries: HashMap<RecordId, Retry>,
    last_error: HashMap<RecordId, String>,
    /// Woken after each resolution: the [`super::ack_flush`] task.
    resolved: Arc<Notify>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

enum RoundEnd {
    /// Nothing was there to send.
    Idle,
    /// Sent what there was (or the batch size); more may follow.
    Done { left_out: usize },
    /// Stopped by shutdown.
    Stopped,
}

impl Exporter {
    /// An exporter over the queue to the gateway behind `channel`.
    #[expect(
        clippy::too_many_arguments,
        reason = "the wiring: each argument is a separate collaborator or limit"
    )]
    pub fn new(
        queue: Arc<Queue>,
        dead_letters: Arc<DeadLetterStore>,
        clock: Arc<dyn Clock>,
        config: ExportConfig,
        identifier: Identifier,
        channel: Channel,
        wake: Arc<Notify>,
        stats: Arc<ExportStats>,
    ) -> Exporter {
        Exporter {
            queue,
            dead_letters,
            clock,
            config,
            identifier,
            channel,
            wake,
            stats,
            backoff: Backoff::default(),
            retries: HashMap::new(),
            last_error: HashMap::new(),
            resolved: Arc::new(Notify::new()),
        }
    }

    /// Overrides the backoff (tests).
    pub fn with_backoff(mut self, backoff: Backoff) -> Exporter {
        self.backoff = backoff;
        self
    }

    /// Runs until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let flusher = tokio::spawn(super::ack_flush::run(
            self.queue.clone(),
            self.resolved.clone(),
            super::ack_flush::ACK_FLUSH_DELAY,
            stop.clone(),
        ));
        self.run_rounds(&mut stop).await;
        flusher.abort();
        // What the flusher had not flushed yet.
        self.flush_resolutions().await;
        tracing::info!("exporter stopped");
    }

    async fn run_rounds(&mut self, stop: &mut watch::Receiver<bool>) {
        let mut failures = 0u32;
        let mut goaways = 0u32;
        tracing::info!(
            addr = %crate::secret::redact_url(self.config.addr.as_deref().unwrap_or("")),
            "exporter started"
        );
        loop {
            if *stop.borrow() {
                break;
            }
            // The round's answers are flushed by the acknowledgement
            // flusher, not here: a flush awaited after each round held the
            // next one back by an fsync.
            let result = self.round(stop).await;
            if !result.as_ref().is_err_and(RoundError::is_goaway) {
                goaways = 0;
            }
            let pause = match result {
                Ok(RoundEnd::Stopped) => break,
                Err(e) if e.is_goaway() && goaways < MAX_GOAWAY_RETRIES => {
                    goaways += 1;
                    self.stats.goaway_retries.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(GOAWAY_RETRIES).increment(1);
                    tracing::debug!(error = %e, "the gateway connection went away; reconnecting");
                    None
                }
                Ok(RoundEnd::Idle) => {
                    failures = 0;
                    Some(self.config.interval)
                }
                Ok(RoundEnd::Done { left_out }) => {
                    failures = 0;
                    // Records left out wait for their own backoff; go on
                    // with the rest at once, but do not spin on a queue
                    // whose every record is waiting.
                    (left_out > 0 && self.only_waiting_records()).then(|| self.next_retry_in())
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(ERRORS, "kind" => e.kind()).increment(1);
                    let d = self.backoff.delay(failures);
                    tracing::warn!(error = %crate::untrusted::Escaped(&e), retry_in_ms = d.as_millis() as u64, "export round failed");
                    Some(d)
                }
            };
            if let Some(d) = pause {
                tokio::select! {
                    () = tokio::time::sleep(d) => {},
                    () = self.wake.notified(), if failures == 0 => {},
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        }
    }

    /// Makes this round's acknowledgements durable in the index now (the
    /// [`super::ack_flush`] task does so within ~20 ms of each answer too).
    async fn flush_resolutions(&self) {
        let q = self.queue.clone();
        match tokio::task::spawn_blocking(move || q.flush_index()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "flushing acknowledgements to the index failed");
            }
            Err(e) => tracing::warn!(error = %e, "flushing acknowledgements to the index failed"),
        }
    }

    fn only_waiting_records(&self) -> bool {
        let backlog = self.queue.backlog().records as usize;
        let now = Instant::now();
        let waiting = self.retries.values().filter(|r| r.not_before > now).count();
        backlog > 0 && waiting >= backlog
    }

    fn next_retry_in(&self) -> Duration {
        let now = Instant::now();
        self.retries
            .values()
            .map(|r| r.not_before.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
            .min()
            .unwrap_or(self.backoff.base)
            .min(self.config.interval)
    }

    async fn read(&self, from: RecordId) -> Result<Vec<Record>, RoundError> {
        let q = self.queue.clone();
        tokio::task::spawn_blocking(move || q.read(from, 4096, MAX_PAYLOAD_BYTES))
            .await
            .map_err(RoundError::Task)?
            .map_err(RoundError::Queue)
    }

    /// Reads the next payload from `cursor`, skipping records waiting for
    /// their retry time. Returns the records and the new cursor.
    async fn next_payload(
        &self,
        cursor: &mut RecordId,
        budget: usize,
    ) -> Result<Vec<Record>, RoundError> {
        let mut out: Vec<Record> = Vec::new();
        let mut bytes = 0usize;
        let now = Instant::now();
        loop {
            let recs = self.read(*cursor).await?;
            if recs.is_empty() {
                return Ok(out);
            }
            for r in recs {
                if out.len() >= budget {
                    return Ok(out);
                }
                if self.retries.get(&r.id).is_some_and(|t| t.not_before > now) {
                    *cursor = r.id.next();
                    continue;
                }
                let len = r.event.len();
                if !out.is_empty() && bytes + len > MAX_PAYLOAD_BYTES {
                    return Ok(out);
                }
                *cursor = r.id.next();
                bytes += len;
                out.push(r);
                if bytes >= MAX_PAYLOAD_BYTES {
                    return Ok(out);
                }
            }
        }
    }

    /// One stream.
    async fn round(&mut self, stop: &mut watch::Receiver<bool>) -> Result<RoundEnd, RoundError> {
        let mut cursor = RecordId(1);
        let batch_size = self.config.batch_size;
        let started = Instant::now();
        let first = self.next_payload(&mut cursor, batch_size).await?;
        let first_read = started.elapsed();
        if first.is_empty() {
            return Ok(RoundEnd::Idle);
        }
        self.stats.rounds.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel::<RawRecordEventsRequest>(MAX_INFLIGHT + 2);
        let meta = RawRecordEventsRequest {
            payload: Some(raw_record_events_request::Payload::Metadata(
                identity::metadata(&self.identifier),
            )),
        };
        let _ = tx.send(meta).await;
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .max_decoding_message_size(crate::grpc_limits::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(crate::grpc_limits::MAX_MESSAGE_BYTES);
        if self.config.gzip {
            grpc = grpc
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip);
        }
        let mut inflight: VecDeque<Sent> = VecDeque::new();
        let mut sent_events = 0usize;
        let mut exhausted = false;
        self.send(&tx, first, &mut inflight, &mut sent_events).await;

        grpc.ready().await.map_err(RoundError::Connect)?;
        let codec =
            tonic_prost::ProstCodec::<RawRecordEventsRequest, RecordEventsResponse>::default();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(RECORD_EVENTS_PATH);
        let req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        let call = tokio::time::timeout(ANSWER_TIMEOUT, grpc.streaming(req, path, codec)).await;
        let mut inbound = match call {
            Err(_) => return Err(RoundError::Timeout(ANSWER_TIMEOUT)),
            Ok(Err(s)) => return Err(classify(s, Phase::Opening)),
            Ok(Ok(r)) => r.into_inner(),
        };
        let mut tx = Some(tx);
        let mut left_out = 0usize;
        let mut stopping = false;
        loop {
            // Keep the pipeline full.
            while !stopping
                && !exhausted
                && inflight.len() < MAX_INFLIGHT
                && sent_events < batch_size
            {
                let recs = self
                    .next_payload(&mut cursor, batch_size - sent_events)
                    .await?;
                if recs.is_empty() {
                    exhausted = true;
                    break;
                }
                if let Some(t) = &tx {
                    self.send(t, recs, &mut inflight, &mut sent_events).await;
                }
            }
            if inflight.is_empty() {
                break;
            }
            if !stopping && (exhausted || sent_events >= batch_size) {
                // Nothing more for this stream: half-close it.
                tx = None;
            }
            let wait = if stopping {
                SHUTDOWN_GRACE
            } else {
                ANSWER_TIMEOUT
            };
            let answer = tokio::select! {
                a = tokio::time::timeout(wait, inbound.message()) => a,
                _ = stop.wait_for(|s| *s), if !stopping => {
                    stopping = true;
                    tx = None;
                    tracing::info!(inflight = inflight.len(), "exporter stopping: waiting for the answers to in-flight payloads");
                    continue;
                }
            };
            match answer {
                Err(_) if stopping => break,
                Err(_) => return Err(RoundError::Timeout(wait)),
                Ok(Err(status)) => return Err(classify(status, Phase::Streaming)),
                Ok(Ok(None)) => return Err(RoundError::ClosedEarly(inflight.len())),
                Ok(Ok(Some(resp))) => {
                    let Some(payload) = inflight.pop_front() else {
                        continue;
                    };
                    let (acked, out) = self.handle(resp, payload, &mut inflight).await?;
                    left_out += out;
                    if acked == 0 {
                        return Err(RoundError::NothingAcked);
                    }
                }
            }
        }
        drop(tx);
        if stopping {
            return Ok(RoundEnd::Stopped);
        }
        let answered = started.elapsed();
        // Drain until the gateway ends the stream (it answered everything).
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Ok(Some(_)) = inbound.message().await {}
        })
        .await;
        tracing::debug!(
            events = sent_events,
            first_read_us = first_read.as_micros() as u64,
            answered_us = answered.as_micros() as u64,
            closed_us = started.elapsed().as_micros() as u64,
            "export stream done"
        );
        Ok(RoundEnd::Done { left_out })
    }

    async fn send(
        &self,
        tx: &mpsc::Sender<RawRecordEventsRequest>,
        recs: Vec<Record>,
        inflight: &mut VecDeque<Sent>,
        sent_events: &mut usize,
    ) {
        let mut records = Vec::with_capacity(recs.len());
        let mut events = Vec::with_capacity(recs.len());
        let mut bytes_by_id = HashMap::with_capacity(recs.len());
        for r in recs {
            records.push((r.id, event_id(&r.event).map(str::to_string)));
            bytes_by_id.insert(r.id, r.event.clone());
            events.push(r.event);
        }
        let n = events.len();
        metrics::histogram!(BATCH_SIZE).record(n as f64);
        let msg = RawRecordEventsRequest {
            payload: Some(raw_record_events_request::Payload::Events(
                RawEventsPayload { events },
            )),
        };
        *sent_events += n;
        self.stats.payloads.fetch_add(1, Ordering::Relaxed);
        inflight.push_back(Sent {
            records,
            events: bytes_by_id,
            sent_at: Instant::now(),
        });
        // A closed channel means the call failed; the answer loop sees why.
        let _ = tx.send(msg).await;
    }

    /// Applies one answer to its payload (and to any other in-flight record
    /// carrying an acknowledged id). Returns (records acknowledged from this
    /// payload, records left out).
    async fn handle(
        &mut self,
        resp: RecordEventsResponse,
        payload: Sent,
        others: &mut VecDeque<Sent>,
    ) -> Result<(usize, usize), RoundError> {
        metrics::histogram!(ROUNDTRIP_SECONDS).record(payload.sent_at.elapsed().as_secs_f64());
        let ids: HashSet<&str> = resp.succeeded_events.iter().map(String::as_str).collect();
        let mut acked: Vec<RecordId> = Vec::new();
        let mut known: HashSet<String> = HashSet::new();
        let mut left: Vec<RecordId> = Vec::new();
        for (rid, eid) in &payload.records {
            match eid.as_deref() {
                Some(e) if ids.contains(e) => {
                    acked.push(*rid);
                    known.insert(e.to_string());
                }
                _ => left.push(*rid),
            }
        }
        let from_payload = acked.len();
        // The same ids acknowledge their retries in other in-flight payloads.
        for other in others.iter_mut() {
            other.records.retain(|(rid, eid)| match eid.as_deref() {
                Some(e) if ids.contains(e) => {
                    acked.push(*rid);
                    known.insert(e.to_string());
                    false
                }
                _ => true,
            });
        }
        let unknown = ids.len() - known.len();
        if unknown > 0 {
            self.stats
                .unknown_ids
                .fetch_add(unknown as u64, Ordering::Relaxed);
            metrics::counter!(UNKNOWN_IDS).increment(unknown as u64);
        }
        if !acked.is_empty() {
            let r = self.queue.resolve(&acked, Resolution::Acked);
            self.resolved.notify_one();
            self.stats.acked.fetch_add(r.resolved, Ordering::Relaxed);
            metrics::counter!(EXPORTED_EVENTS).increment(r.resolved);
            for id in &acked {
                self.retries.remove(id);
                self.last_error.remove(id);
            }
        }
        if left.is_empty() {
            return Ok((from_payload, 0));
        }
        // An attempt counts only when the gateway acknowledged others of the
        // same payload and left these out.
        if from_payload > 0 {
            let now = Instant::now();
            let mut poison = Vec::new();
            for id in &left {
                let r = self.retries.entry(*id).or_insert(Retry {
                    attempts: 0,
                    not_before: now,
                });
                r.attempts += 1;
                r.not_before = now + self.backoff.delay(r.attempts);
                self.last_error.insert(
                    *id,
                    format!(
                        "left out of succeeded_events by the gateway ({} of {} acknowledged)",
                        from_payload,
                        payload.records.len()
                    ),
                );
                if r.attempts >= self.config.max_attempts {
                    poison.push(*id);
                }
            }
            if !poison.is_empty() {
                self.dead_letter(&poison, &payload).await?;
            }
        }
        Ok((from_payload, left.len()))
    }

    async fn dead_letter(&mut self, ids: &[RecordId], payload: &Sent) -> Result<(), RoundError> {
        let now = self.clock.now();
        let entries: Vec<DeadLetterEntry> = ids
            .iter()
            .map(|id| {
                let event = payload.events.get(id).cloned().unwrap_or_default();
                DeadLetterEntry {
                    event_id: event_id(&event).map(str::to_string),
                    event: event.to_vec(),
                    reason: format!(
                        "the gateway left it unacknowledged in {} answered attempts",
                        self.config.max_attempts
                    ),
                    source: DeadLetterSource::Export,
                    attempts: self.retries.get(id).map_or(0, |r| r.attempts),
                    recorded_at: now,
                    last_error: self.last_error.get(id).cloned(),
                    original_size: None,
                }
            })
            .collect();
        let store = self.dead_letters.clone();
        tokio::task::spawn_blocking(move || {
            store.put_batch(&entries)?;
            store.flush()
        })
        .await
        .map_err(RoundError::Task)?
        .map_err(RoundError::DeadLetter)?;
        // Durable in the dead-letter store: now it may stop pinning its segment.
        self.queue.resolve(ids, Resolution::DeadLettered);
        self.resolved.notify_one();
        for id in ids {
            self.retries.remove(id);
            self.last_error.remove(id);
        }
        self.stats
            .dead_lettered
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        metrics::counter!(DEAD_LETTERED).increment(ids.len() as u64);
        tracing::error!(
            records = ids.len(),
            "refused events moved to the dead-letter store after repeated refusals"
        );
        Ok(())
    }
}
