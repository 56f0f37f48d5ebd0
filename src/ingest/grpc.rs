//! gRPC ingest: the sidecar serves `telemetrygateway.v1.TelemeteryGatewayService`
//! itself, so anything that can talk to a gateway can record into it.
//!
//! `RecordEvents` follows the gateway's stream rules: metadata first and
//! only once (else `InvalidArgument`); the identifier is checked for shape
//! only (the sidecar exports under its own identity); an empty message is
//! ignored. Each events payload is answered with one response naming the
//! ids now durable. An invalid event is reported as succeeded, as the
//! gateway does for instance sources, so the sender stops retrying it, but
//! it is dead-lettered with its reason, counted and logged; one without id
//! cannot be named and is dead-lettered and counted only. A payload with
//! more events than allowed (`--max-events`) fails the stream with
//! `InvalidArgument`, counted before any of its events is decoded; a
//! message that cannot be read fails it with tonic's status (`Internal` for
//! a protobuf parse error, as gRPC's status-code guide says; `OutOfRange`
//! over the 16 MiB message limit; `ResourceExhausted` past the decode
//! budget, `--decode-budget`).
//!
//! Messages arrive decoded lazily ([`crate::grpc_limits`]): the metadata is
//! decoded, a payload's events are counted, and decoded (one at a time,
//! into the `Vec` the tee takes) only once the metadata was accepted and
//! the count is within the limit. Each message's share of the decode
//! budget is held until its payload is answered.
//!
//! `RecordEvent` records one event from any identifier and answers
//! `InvalidArgument` with the reason for an invalid one.

use super::status::{RecordError, grpc_status};
use crate::event::validate::check_event_count;
use crate::grpc_limits::lazy::decode_status;
use crate::grpc_limits::{
    DecodeBudget, GrpcLimits, LazyPayload, LazyRecordEventsRequest, MessageReservations,
    TelemetryServer, TelemetryService,
};
use crate::proto::telemetrygateway::v1::identifier::Identifier as Id;
use crate::proto::telemetrygateway::v1::{
    Event, RecordEventRequest, RecordEventResponse, RecordEventsRequestMetadata,
    RecordEventsResponse,
};
use crate::tee::store::{Ids, InvalidPolicy, Outcome, Prepared, Tee, TeeError};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{Notify, mpsc};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

/// Metric: events received, by `transport`.
pub const EVENTS: &str = "telespool_ingest_events_total";
/// Metric: time from a decoded request to its events being durable.
pub const RECORD_SECONDS: &str = "telespool_ingest_record_seconds";

/// The sidecar's gRPC service.
#[derive(Clone, Debug)]
pub struct IngestService {
    tee: Arc<Tee>,
    wake: Arc<Notify>,
}

impl IngestService {
    /// A service recording through `tee`, waking the exporter after each
    /// durable record.
    pub fn new(tee: Arc<Tee>, wake: Arc<Notify>) -> IngestService {
        IngestService { tee, wake }
    }

    /// The tonic server for this service: messages up to `max_message_bytes`
    /// (no compression), within `budget`.
    pub fn into_server(
        self,
        budget: Arc<DecodeBudget>,
        max_message_bytes: usize,
    ) -> TelemetryServer<IngestService> {
        TelemetryServer::new(
            self,
            GrpcLimits {
                budget,
                max_message_bytes,
                accept_gzip: false,
            },
        )
    }
}

/// Checks an identifier's shape (the sidecar does not verify licenses).
pub fn check_identifier(m: &RecordEventsRequestMetadata) -> Result<(), Status> {
    match m.identifier.as_ref().and_then(|i| i.identifier.as_ref()) {
        Some(Id::LicensedInstance(l)) if l.license_key.is_empty() => {
            Err(Status::invalid_argument("invalid license_key: empty"))
        }
        Some(Id::LicensedInstance(_)) => Ok(()),
        Some(Id::UnlicensedInstance(u)) if u.instance_id.is_empty() => Err(
            Status::invalid_argument("instance_id is required for unlicensed instance"),
        ),
        Some(Id::UnlicensedInstance(_)) => Ok(()),
        Some(Id::ManagedService(s)) if s.service_id.is_empty() => Err(Status::invalid_argument(
            "service_id is required for managed services",
        )),
        Some(Id::ManagedService(_)) => Ok(()),
        None => Err(Status::unimplemented("unsupported identifier type")),
    }
}

/// Records events: prepares them on the caller's thread, then
/// [`record_prepared`].
pub(crate) async fn record(
    tee: &Arc<Tee>,
    wake: &Notify,
    events: Vec<Event>,
    ids: Ids,
    invalid: InvalidPolicy,
) -> Result<Vec<Outcome>, RecordError> {
    let started = std::time::Instant::now();
    let prepared = tee.prepare(events, ids, invalid)?;
    record_prepared(tee, wake, prepared, started).await
}

/// Submits prepared events (off the runtime when the queue's quota work may
/// block), waits until they are durable, then wakes the exporter.
/// `started` is when the request was decoded (for [`RECORD_SECONDS`]).
pub(crate) async fn record_prepared(
    tee: &Arc<Tee>,
    wake: &Notify,
    prepared: Prepared,
    started: std::time::Instant,
) -> Result<Vec<Outcome>, RecordError> {
    // Submitting only queues work for the writer and mirror threads, except
    // near the queue's quota, where it may purge or drop first: only then
    // is it worth a hop to a blocking thread (a hop that, on a busy
    // machine, costs a thread wake-up on every payload's latency).
    let commit = if tee.submit_is_quick(&prepared) {
        tee.submit(prepared)?
    } else {
        let t = tee.clone();
        tokio::task::spawn_blocking(move || t.submit(prepared))
            .await
            .map_err(RecordError::Task)??
    };
    let outcomes = commit.done().await?;
    metrics::histogram!(RECORD_SECONDS).record(started.elapsed().as_secs_f64());
    wake.notify_one();
    Ok(outcomes)
}

/// Records one events payload of a stream: counted against the limit
/// before any event is decoded, then decoded and recorded; answers with the
/// ids now durable.
async fn record_payload(
    tee: &Arc<Tee>,
    wake: &Notify,
    payload: &crate::grpc_limits::RawEvents,
) -> Result<RecordEventsResponse, Status> {
    let n = payload.count();
    check_event_count(n, &tee.config().limits)
        .map_err(|e| grpc_status(&TeeError::TooMany(e).into()))?;
    let events = payload.decode_all().map_err(|e| decode_status(&e))?;
    match record(tee, wake, events, Ids::Require, InvalidPolicy::DeadLetter).await {
        Ok(outcomes) => {
            let succeeded: Vec<String> = outcomes
                .into_iter()
                .filter_map(|o| match o {
                    Outcome::Recorded { id, .. } => Some(id),
                    Outcome::Invalid { id, .. } => id,
                })
                .collect();
            metrics::counter!(EVENTS, "transport" => "grpc").increment(n as u64);
            Ok(RecordEventsResponse {
                succeeded_events: succeeded,
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, events = n, "gRPC ingest payload failed");
            Err(grpc_status(&e))
        }
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<RecordEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TelemetryService for IngestService {
    type RecordEventsStream = ResponseStream;

    async fn record_events(
        &self,
        request: Request<Streaming<LazyRecordEventsRequest>>,
    ) -> Result<Response<Self::RecordEventsStream>, Status> {
        let reservations = MessageReservations::of(&request);
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let tee = self.tee.clone();
        let wake = self.wake.clone();
        tokio::spawn(async move {
            let mut metadata: Option<RecordEventsRequestMetadata> = None;
            loop {
                let msg = match inbound.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(status) => {
                        // A message that cannot be read (undecodable, nested
                        // past protobuf's recursion limit, over the 16 MiB
                        // message limit) fails the stream with tonic's
                        // status for it, so the sender knows its payload was
                        // not recorded. If the client went away instead,
                        // nobody hears the answer.
                        match status.code() {
                            tonic::Code::Cancelled | tonic::Code::Unknown => {
                                tracing::debug!(status = %crate::untrusted::Escaped(&status), "ingest stream ended by the client");
                            }
                            _ => {
                                tracing::warn!(code = ?status.code(), message = status.message(), "unreadable message on an ingest stream");
                            }
                        }
                        let _ = tx.send(Err(status)).await;
                        break;
                    }
                };
                // This message's share of the decode budget, held until
                // its payload is answered.
                let _reservation = reservations.next();
                let answer = match msg.payload {
                    None => continue,
                    Some(LazyPayload::Metadata(m)) => {
                        if metadata.is_some() {
                            Err(Status::invalid_argument("received metadata more than once"))
                        } else {
                            match check_identifier(&m) {
                                Ok(()) => {
                                    metadata = Some(m);
                                    continue;
                                }
                                Err(s) => Err(s),
                            }
                        }
                    }
                    Some(LazyPayload::Events(_)) if metadata.is_none() => Err(
                        Status::invalid_argument("got events when metadata not yet received"),
                    ),
                    Some(LazyPayload::Events(p)) => record_payload(&tee, &wake, &p).await,
                };
                let stop = answer.is_err();
                if tx.send(answer).await.is_err() || stop {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn record_event(
        &self,
        request: Request<RecordEventRequest>,
    ) -> Result<Response<RecordEventResponse>, Status> {
        // The message stays counted in the budget until it is recorded.
        let _reservation = MessageReservations::of(&request).next();
        let req = request.into_inner();
        let Some(event) = req.event else {
            return Err(Status::invalid_argument("event is required"));
        };
        let outcomes = record(
            &self.tee,
            &self.wake,
            vec![event],
            Ids::Require,
            InvalidPolicy::Report,
        )
        .await
        .map_err(|e| grpc_status(&e))?;
        match outcomes.into_iter().next() {
            Some(Outcome::Invalid { error, .. }) => {
                Err(Status::invalid_argument(format!("invalid event: {error}")))
            }
            _ => {
                metrics::counter!(EVENTS, "transport" => "grpc").increment(1);
                Ok(Response::new(RecordEventResponse {}))
            }
        }
    }
}
