//! One `RecordEvents` stream, with the rules of Sourcegraph's gateway:
//!
//! ```text
//! metadata    first and only once      second one → InvalidArgument "received metadata more than once"
//!             identifier checked       refused    → the identity error's status
//! events      only after metadata      before     → InvalidArgument "got events when metadata not yet received"
//!             at most --max-events     more       → InvalidArgument "payload holds N events, over the limit
//!                                                   of M (--max-events …)", counted, none decoded
//!             decoded one at a time    bad event  → Internal with prost's message (as prost's codec)
//!             published, then exactly one RecordEventsResponse per payload (an empty
//!             payload gets an empty response)
//! (no payload) ignored
//! client EOF  → OK, once every payload received has been answered
//! ```
//!
//! Messages arrive decoded lazily ([`crate::grpc_limits`]): the metadata is
//! decoded, a payload's events are only counted until the checks above
//! pass. Each message's share of the decode budget is taken from the call's
//! [`MessageReservations`] and held until its payload is published.
//!
//! Payloads are published in their own tasks, up to
//! [`PAYLOADS_IN_FLIGHT`] per stream at once (so one stream's payloads share
//! group commits and acks), and answered in the order they arrived. Before a
//! stream ends, with an error or not, every payload already received is
//! answered. On shutdown the stream stops reading, answers the payloads it
//! has, and ends with `Unavailable` so the client reconnects elsewhere or
//! later.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::{Status, Streaming};

use super::identity::Identity;
use super::metrics;
use super::publish::{PayloadSummary, Publisher, StreamContext};
use super::shutdown::Shutdown;
use crate::grpc_limits::lazy::decode_status;
use crate::grpc_limits::{
    LazyPayload, LazyRecordEventsRequest, MessageReservations, TooManyEvents,
};
use crate::proto::telemetrygateway::v1::RecordEventsResponse;

/// Payloads of one stream being published at once.
pub const PAYLOADS_IN_FLIGHT: usize = 4;
/// Streams that take longer than this are logged as slow (Sourcegraph's).
pub const SLOW_STREAM: Duration = Duration::from_secs(30);

/// Message when a second metadata arrives.
pub const METADATA_TWICE: &str = "received metadata more than once";
/// Message when events arrive before metadata.
pub const EVENTS_BEFORE_METADATA: &str = "got events when metadata not yet received";
/// Message when the gateway stops while a stream is open.
pub const SHUTTING_DOWN: &str = "the gateway is shutting down";
/// The setting named when a payload holds too many events.
pub const MAX_EVENTS_SETTING: &str = "--max-events (TELESPOOL_GATEWAY_MAX_EVENTS)";

/// The response channel of a stream.
pub type Responses = mpsc::Sender<Result<RecordEventsResponse, Status>>;

/// What one stream needs.
#[derive(Debug)]
pub struct StreamTask {
    /// The identifier checks.
    pub identity: Arc<Identity>,
    /// Where events go.
    pub publisher: Publisher,
    /// The call's `authorization` metadata.
    pub authorization: Option<String>,
    /// The gateway's shutdown signal.
    pub shutdown: Shutdown,
    /// Where responses go.
    pub responses: Responses,
    /// Most events per payload.
    pub max_events: usize,
    /// The decode-budget reservations of the call's messages.
    pub reservations: MessageReservations,
}

impl StreamTask {
    /// Serves the stream until the client's EOF, an error, or shutdown.
    pub async fn run(mut self, mut inbound: Streaming<LazyRecordEventsRequest>) {
        let started = Instant::now();
        let mut ctx: Option<Arc<StreamContext>> = None;
        let mut in_flight: FuturesOrdered<JoinHandle<PayloadSummary>> = FuturesOrdered::new();
        let mut client_gone = false;
        let mut events = 0usize;
        let end: Result<(), Status> = loop {
            tokio::select! {
                biased;
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    if let Err(status) = self.answer(done, &mut client_gone).await {
                        break Err(status);
                    }
                }
                () = self.shutdown.recv() => break Err(Status::unavailable(SHUTTING_DOWN)),
                message = inbound.message(), if in_flight.len() < PAYLOADS_IN_FLIGHT => {
                    let request = match message {
                        Ok(Some(request)) => request,
                        Ok(None) => break Ok(()),
                        Err(status) => break Err(status),
                    };
                    // This message's share of the decode budget, held for
                    // as long as the message or its events are kept.
                    let reservation = self.reservations.next();
                    match request.payload {
                        None => {}
                        Some(LazyPayload::Metadata(metadata)) => {
                            if ctx.is_some() {
                                break Err(Status::invalid_argument(METADATA_TWICE));
                            }
                            let source = match self.identity.check(&metadata, self.authorization.as_deref()) {
                                Ok(source) => source,
                                Err(e) => break Err(e.to_status()),
                            };
                            tracing::debug!(request_id = ?metadata.request_id, source = ?source.as_str(), "stream opened");
                            match self.publisher.context(metadata, source) {
                                Ok(c) => ctx = Some(Arc::new(c)),
                                Err(e) => break Err(Status::internal(format!("rendering the stream metadata: {e}"))),
                            }
                        }
                        Some(LazyPayload::Events(payload)) => {
                            let Some(ctx) = ctx.clone() else {
                                break Err(Status::invalid_argument(EVENTS_BEFORE_METADATA));
                            };
                            if payload.count() > self.max_events {
                                let refused = TooManyEvents {
                                    count: payload.count(),
                                    limit: self.max_events,
                                    setting: MAX_EVENTS_SETTING,
                                };
                                tracing::warn!(request_id = %ctx.metadata.request_id, source = %ctx.source, events = refused.count, limit = refused.limit, "payload refused: too many events");
                                break Err(refused.to_status());
                            }
                            let decoded = match payload.decode_all() {
                                Ok(decoded) => decoded,
                                Err(e) => break Err(decode_status(&e)),
                            };
                            drop(payload);
                            events += decoded.len();
                            let publisher = self.publisher.clone();
                            in_flight.push_back(tokio::spawn(async move {
                                let summary = publisher.publish_payload(&ctx, decoded).await;
                                drop(reservation);
                                summary
                            }));
                        }
                    }
                }
            }
        };
        // Every payload already received is answered before the stream ends.
        let mut end = end;
        while let Some(done) = in_flight.next().await {
            if let Err(status) = self.answer(done, &mut client_gone).await
                && end.is_ok()
            {
                end = Err(status);
            }
        }
        let code = end.as_ref().err().map_or(tonic::Code::Ok, Status::code);
        metrics::record_call(metrics::STREAMS, code);
        if let Err(status) = end
            && !client_gone
        {
            let _ = self.responses.send(Err(status)).await;
        }
        let took = started.elapsed();
        let request_id = ctx
            .as_ref()
            .map(|c| c.metadata.request_id.as_str())
            .unwrap_or("");
        if took > SLOW_STREAM {
            tracing::error!(
                request_id,
                events,
                took_ms = took.as_millis(),
                "slow request"
            );
        } else {
            tracing::debug!(request_id, events, took_ms = took.as_millis(), code = ?code, "stream ended");
        }
    }

    /// Sends one payload's response. A publishing task that died is an
    /// internal error for the stream.
    async fn answer(
        &self,
        done: Result<PayloadSummary, tokio::task::JoinError>,
        client_gone: &mut bool,
    ) -> Result<(), Status> {
        let summary =
            done.map_err(|e| Status::internal(format!("publishing a payload failed: {e}")))?;
        if !*client_gone {
            let response = RecordEventsResponse {
                succeeded_events: summary.succeeded,
            };
            if self.responses.send(Ok(response)).await.is_err() {
                // The client went away; the payloads still finish publishing.
                *client_gone = true;
            }
        }
        Ok(())
    }
}
