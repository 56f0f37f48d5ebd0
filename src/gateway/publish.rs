//! Publishing one payload: per event, validate, render, publish, and decide
//! whether its id is acknowledged.
//!
//! ```text
//! event ─ migrate legacy metadata ─ validate_event ─ render body ─ body < 10 MB ─ sink
//!            (int64 → double)        (id, feature,    (protojson)   (Pub/Sub's
//!                                     action, time)                   limit)
//! ```
//!
//! Acknowledgement rules (Sourcegraph's, section (f)):
//!
//! | outcome | Sourcegraph instance | managed service |
//! |---|---|---|
//! | published (sink confirmed) | acknowledged | acknowledged |
//! | sink failure, retryable | left out (retried) | left out |
//! | invalid, unrenderable, body ≥ 10 MB, permanent sink failure | acknowledged and **dropped**: error log, `telespool_gateway_events_dropped_total` | left out |
//!
//! A payload's events go to the sink in windows of at most
//! `publish_concurrency` events (default 250, Sourcegraph's
//! `TELEMETRY_GATEWAY_EVENTS_STREAM_PUBLISH_CONCURRENCY`): the sink
//! publishes a window's messages concurrently and the next window starts
//! when it has answered, so no payload has more events in flight than that.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::metrics;
use super::render::{self, PublisherSource, RenderedMetadata};
use super::sink::{Message, Sink, SinkError};
use crate::proto::telemetrygateway::v1::{Event, RecordEventsRequestMetadata};
use crate::protojson::ProtojsonError;
use crate::tee::validate::{self, Limits, ValidationError};

/// Bodies this large or larger are not published (Pub/Sub's maximum publish
/// request size, 10 MB, which Sourcegraph's gateway enforces).
pub const MAX_BODY_BYTES: usize = 10_000_000;

/// The per-event limits the gateway validates with. Only the nesting depth
/// is ours ([`validate::DEFAULT_MAX_DEPTH`]); event size is bounded by the
/// 16 MiB gRPC message and the 10 MB body limit, as in Sourcegraph's gateway.
pub fn gateway_limits() -> Limits {
    Limits {
        max_event_bytes: super::config::MAX_MESSAGE_BYTES,
        max_events: usize::MAX,
        max_depth: validate::DEFAULT_MAX_DEPTH,
    }
}

/// A stream that passed the identifier checks: its metadata as sent, who
/// publishes, and the metadata rendered once.
#[derive(Clone, Debug)]
pub struct StreamContext {
    /// The metadata as sent (license key included).
    pub metadata: RecordEventsRequestMetadata,
    /// Who publishes.
    pub source: PublisherSource,
    rendered: RenderedMetadata,
}

impl StreamContext {
    /// Renders the metadata once for every event of the stream.
    pub fn new(
        metadata: RecordEventsRequestMetadata,
        source: PublisherSource,
    ) -> Result<StreamContext, ProtojsonError> {
        let rendered = RenderedMetadata::new(&metadata)?;
        Ok(StreamContext {
            metadata,
            source,
            rendered,
        })
    }
}

/// Why one event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The event breaks the rules (id, feature/action, timestamp, depth).
    #[error("invalid event: {0}")]
    Invalid(#[from] ValidationError),
    /// The event cannot be rendered as protojson.
    #[error("encoding the event as JSON: {0}")]
    Render(#[from] ProtojsonError),
    /// The body reached [`MAX_BODY_BYTES`].
    #[error("message body is {size} bytes, at or over the limit of {limit} bytes")]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The sink failed it.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl PublishError {
    /// Whether the sender should retry (only retryable sink failures).
    pub fn is_retryable(&self) -> bool {
        matches!(self, PublishError::Sink(e) if e.is_retryable())
    }

    /// The `result` label of `telespool_gateway_events_total`.
    pub fn label(&self) -> &'static str {
        match self {
            PublishError::Invalid(_) | PublishError::Render(_) => "invalid",
            PublishError::TooLarge { .. } => "too_large",
            PublishError::Sink(_) => "sink_failure",
        }
    }
}

/// Whether an event's id goes into `succeeded_events`.
pub fn is_acknowledged(outcome: &Result<(), PublishError>, source: &PublisherSource) -> bool {
    match outcome {
        Ok(()) => true,
        Err(e) => !e.is_retryable() && source.is_sourcegraph_instance(),
    }
}

/// What became of a payload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PayloadSummary {
    /// Ids to put in `succeeded_events` (published, or dropped for good).
    pub succeeded: Vec<String>,
    /// Events in the payload.
    pub events: usize,
    /// Events the sink confirmed.
    pub published: usize,
    /// Events acknowledged without being published.
    pub dropped: usize,
}

impl PayloadSummary {
    /// `success`, `partial_failure` or `complete_failure` (Sourcegraph's
    /// categories): whether every, some or none of the ids are acknowledged.
    pub fn result(&self) -> &'static str {
        match self.succeeded.len() {
            n if n >= self.events => "success",
            0 => "complete_failure",
            _ => "partial_failure",
        }
    }
}

/// Publishes payloads to a sink with bounded concurrency.
#[derive(Clone)]
pub struct Publisher {
    sink: Arc<dyn Sink>,
    concurrency: usize,
    limits: Limits,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("sink", &self.sink.name())
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl Publisher {
    /// A publisher with at most `concurrency` events of a payload in flight.
    pub fn new(sink: Arc<dyn Sink>, concurrency: usize) -> Publisher {
        Publisher {
            sink,
            concurrency: concurrency.max(1),
            limits: gateway_limits(),
        }
    }

    /// The sink.
    pub fn sink(&self) -> &Arc<dyn Sink> {
        &self.sink
    }

    /// Publishes a payload and decides which ids are acknowledged.
    pub async fn publish_payload(&self, ctx: &StreamContext, events: Vec<Event>) -> PayloadSummary {
        let mut summary = PayloadSummary {
            events: events.len(),
            ..PayloadSummary::default()
        };
        let mut counts: BTreeMap<(&'static str, bool), u64> = BTreeMap::new();
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let window: Vec<Event> = events.by_ref().take(self.concurrency).collect();
            for (id, outcome) in self.publish_window(ctx, window).await {
                let acknowledged = is_acknowledged(&outcome, &ctx.source);
                let label = match &outcome {
                    Ok(()) => "published",
                    Err(e) => e.label(),
                };
                *counts.entry((label, acknowledged)).or_default() += 1;
                match &outcome {
                    Ok(()) => summary.published += 1,
                    Err(e) if acknowledged => {
                        summary.dropped += 1;
                        tracing::error!(event_id = %id, source = %ctx.source, error = %e, "dropping an event that can never be published (reported as succeeded)");
                        ::metrics::counter!(metrics::EVENTS_DROPPED, "reason" => e.label(), "source" => ctx.source.to_string()).increment(1);
                    }
                    Err(e) if e.is_retryable() => {
                        tracing::warn!(event_id = %id, source = %ctx.source, error = %e, "event not published; the sender will retry it");
                    }
                    Err(e) => {
                        tracing::warn!(event_id = %id, source = %ctx.source, error = %e, "refusing an event that can never be published");
                    }
                }
                if acknowledged && !id.is_empty() {
                    summary.succeeded.push(id);
                }
            }
        }
        for ((result, acknowledged), n) in counts {
            ::metrics::counter!(metrics::EVENTS, "result" => result, "acknowledged" => acknowledged.to_string(), "source" => ctx.source.to_string()).increment(n);
        }
        ::metrics::histogram!(metrics::PAYLOAD_EVENTS, "result" => summary.result(), "source" => ctx.source.to_string())
            .record(summary.events as f64);
        summary
    }

    /// Publishes one event (the unary `RecordEvent`): any failure is
    /// returned.
    pub async fn publish_event(
        &self,
        ctx: &StreamContext,
        event: Event,
    ) -> Result<(), PublishError> {
        let outcome = self
            .publish_window(ctx, vec![event])
            .await
            .into_iter()
            .next()
            .map_or(
                Err(PublishError::Sink(SinkError::Closed {
                    sink: self.sink.name(),
                })),
                |(_, o)| o,
            );
        let label = match &outcome {
            Ok(()) => "published",
            Err(e) => e.label(),
        };
        ::metrics::counter!(metrics::EVENTS, "result" => label, "acknowledged" => outcome.is_ok().to_string(), "source" => ctx.source.to_string()).increment(1);
        outcome
    }

    /// Prepares each event and publishes the valid ones as one sink batch.
    async fn publish_window(
        &self,
        ctx: &StreamContext,
        window: Vec<Event>,
    ) -> Vec<(String, Result<(), PublishError>)> {
        let mut outcomes = Vec::with_capacity(window.len());
        let mut messages = Vec::with_capacity(window.len());
        let mut slots = Vec::with_capacity(window.len());
        for mut event in window {
            let id = event.id.clone();
            match prepare(ctx, &mut event, &self.limits) {
                Ok(message) => {
                    slots.push(outcomes.len());
                    messages.push(message);
                    outcomes.push((id, Ok(())));
                }
                Err(e) => outcomes.push((id, Err(e))),
            }
        }
        if messages.is_empty() {
            return outcomes;
        }
        let started = Instant::now();
        let mut results = self.sink.publish(messages).await.into_iter();
        ::metrics::histogram!(metrics::PUBLISH_SECONDS, "sink" => self.sink.name())
            .record(started.elapsed().as_secs_f64());
        let mut failed: BTreeMap<bool, u64> = BTreeMap::new();
        for slot in slots {
            let result = results.next().unwrap_or(Err(SinkError::Closed {
                sink: self.sink.name(),
            }));
            if let (Err(e), Some((_, outcome))) = (result, outcomes.get_mut(slot)) {
                *failed.entry(e.is_retryable()).or_default() += 1;
                *outcome = Err(PublishError::Sink(e));
            }
        }
        for (retryable, n) in failed {
            ::metrics::counter!(metrics::SINK_ERRORS, "sink" => self.sink.name(), "retryable" => retryable.to_string()).increment(n);
        }
        outcomes
    }
}

/// Migrates, validates and renders one event into its message.
pub fn prepare(
    ctx: &StreamContext,
    event: &mut Event,
    limits: &Limits,
) -> Result<Message, PublishError> {
    render::migrate_legacy_metadata(event);
    validate::validate_event(event, limits)?;
    let body = render::message_body_with(event, &ctx.rendered)?;
    if body.len() >= MAX_BODY_BYTES {
        return Err(PublishError::TooLarge {
            size: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    Ok(Message {
        id: std::mem::take(&mut event.id),
        body: Bytes::from(body),
        attributes: render::attributes(event, &ctx.source),
    })
}
