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
//! publishes a window's messages concurrently, and the next window is
//! handed over only when it has answered, so no payload has more events at
//! the sink than that. The next window is validated and rendered while the
//! sink works on the current one, so a slow confirmation (an fsync, a
//! JetStream ack) does not leave the CPU idle and the file sink's group
//! commits fill up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::config::{DEFAULT_PUBLISH_LICENSE_KEY, PublishLicenseKey};
use super::metrics;
use super::render::{self, PublisherSource, RenderedMetadata};
use super::sink::dedup::dedup_key;
use super::sink::{Message, Sink, SinkError};
use crate::event::validate::{self, Limits, ValidationError};
use crate::proto::telemetrygateway::v1::{Event, RecordEventsRequestMetadata};
use crate::protojson::ProtojsonError;
use crate::untrusted::Escaped;

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
    /// The bounded `source` metric label ([`metrics::source_label`]).
    source_label: String,
    /// Who sent the events, for their dedup keys ([`instance_of`]).
    instance: String,
}

impl StreamContext {
    /// Renders the metadata once for every event of the stream, the license
    /// key as sent ([`PublishLicenseKey::Raw`]).
    pub fn new(
        metadata: RecordEventsRequestMetadata,
        source: PublisherSource,
    ) -> Result<StreamContext, ProtojsonError> {
        Self::with_license_key(metadata, source, PublishLicenseKey::Raw)
    }

    /// Renders the metadata once for every event of the stream, the license
    /// key as `mode` says ([`render::published_metadata`]).
    pub fn with_license_key(
        metadata: RecordEventsRequestMetadata,
        source: PublisherSource,
        mode: PublishLicenseKey,
    ) -> Result<StreamContext, ProtojsonError> {
        let rendered = RenderedMetadata::with_license_key(&metadata, mode)?;
        let source_label = metrics::source_label(&source);
        let instance = instance_of(&metadata);
        Ok(StreamContext {
            metadata,
            source,
            rendered,
            source_label,
            instance,
        })
    }
}

/// The sender an identifier names, as the first part of an event's dedup
/// key ([`dedup_key`]): the kind and the license key, instance id or
/// managed-service id.
fn instance_of(metadata: &RecordEventsRequestMetadata) -> String {
    use crate::proto::telemetrygateway::v1::identifier::Identifier as Id;
    match metadata
        .identifier
        .as_ref()
        .and_then(|i| i.identifier.as_ref())
    {
        Some(Id::LicensedInstance(l)) => format!("licensed:{}", l.license_key),
        Some(Id::UnlicensedInstance(u)) => format!("unlicensed:{}", u.instance_id),
        Some(Id::ManagedService(m)) => format!("service:{}", m.service_id),
        None => String::new(),
    }
}

/// Why one event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The event breaks the rules (id, feature/action, timestamp, depth).
    /// It is left unacknowledged; the sender dead-letters it eventually.
    #[error("invalid event: {0}")]
    Invalid(#[from] ValidationError),
    /// The event cannot be rendered as protojson (a value JSON cannot
    /// hold). Left unacknowledged, as an invalid event.
    #[error("encoding the event as JSON: {0}")]
    Render(#[from] ProtojsonError),
    /// The body reached [`MAX_BODY_BYTES`]. Left unacknowledged, as an
    /// invalid event.
    #[error("message body is {size} bytes, at or over the limit of {limit} bytes")]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The sink failed it. Left unacknowledged; the sidecar retries.
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
    license_key: PublishLicenseKey,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("sink", &self.sink.name())
            .field("concurrency", &self.concurrency)
            .field("license_key", &self.license_key)
            .finish()
    }
}

impl Publisher {
    /// A publisher with at most `concurrency` events of a payload in
    /// flight, publishing license keys as [`DEFAULT_PUBLISH_LICENSE_KEY`]
    /// says.
    pub fn new(sink: Arc<dyn Sink>, concurrency: usize) -> Publisher {
        Publisher {
            sink,
            concurrency: concurrency.max(1),
            limits: gateway_limits(),
            license_key: DEFAULT_PUBLISH_LICENSE_KEY,
        }
    }

    /// The same publisher, publishing license keys as `mode` says.
    pub fn with_license_key(mut self, mode: PublishLicenseKey) -> Publisher {
        self.license_key = mode;
        self
    }

    /// The context of a stream (or unary call) whose identifier passed:
    /// its metadata rendered once, the license key as configured.
    pub fn context(
        &self,
        metadata: RecordEventsRequestMetadata,
        source: PublisherSource,
    ) -> Result<StreamContext, ProtojsonError> {
        StreamContext::with_license_key(metadata, source, self.license_key)
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
        let mut outcomes = Vec::with_capacity(events.len());
        let mut events = events.into_iter().peekable();
        // Window k+1 is prepared while window k is at the sink; it is
        // handed over only once window k is answered, so the sink never
        // holds more than `concurrency` events of this payload.
        let mut at_sink: Option<Window> = None;
        while events.peek().is_some() {
            let window = self.prepare_window(ctx, events.by_ref().take(self.concurrency));
            if let Some(previous) = at_sink.take() {
                outcomes.extend(self.finish(previous).await);
            }
            at_sink = Some(self.submit(window));
        }
        if let Some(last) = at_sink.take() {
            outcomes.extend(self.finish(last).await);
        }
        for (id, outcome) in outcomes {
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
                    tracing::error!(event_id = ?id, source = ?ctx.source.as_str(), error = %Escaped(e), "dropping an event that can never be published (reported as succeeded)");
                    ::metrics::counter!(metrics::EVENTS_DROPPED, "reason" => e.label(), "source" => ctx.source_label.clone()).increment(1);
                }
                Err(e) if e.is_retryable() => {
                    tracing::warn!(event_id = ?id, source = ?ctx.source.as_str(), error = %Escaped(e), "event not published; the sender will retry it");
                }
                Err(e) => {
                    tracing::warn!(event_id = ?id, source = ?ctx.source.as_str(), error = %Escaped(e), "refusing an event that can never be published");
                }
            }
            if acknowledged && !id.is_empty() {
                summary.succeeded.push(id);
            }
        }
        for ((result, acknowledged), n) in counts {
            ::metrics::counter!(metrics::EVENTS, "result" => result, "acknowledged" => acknowledged.to_string(), "source" => ctx.source_label.clone()).increment(n);
        }
        ::metrics::histogram!(metrics::PAYLOAD_EVENTS, "result" => summary.result(), "source" => ctx.source_label.clone())
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
        let window = self.submit(self.prepare_window(ctx, std::iter::once(event)));
        let outcome = self.finish(window).await.into_iter().next().map_or(
            Err(PublishError::Sink(SinkError::Closed {
                sink: self.sink.name(),
            })),
            |(_, o)| o,
        );
        let label = match &outcome {
            Ok(()) => "published",
            Err(e) => e.label(),
        };
        ::metrics::counter!(metrics::EVENTS, "result" => label, "acknowledged" => outcome.is_ok().to_string(), "source" => ctx.source_label.clone()).increment(1);
        outcome
    }

    /// Prepares each event of a window (CPU only).
    fn prepare_window(&self, ctx: &StreamContext, events: impl Iterator<Item = Event>) -> Window {
        let mut window = Window {
            outcomes: Vec::with_capacity(self.concurrency),
            slots: Vec::with_capacity(self.concurrency),
            messages: Vec::with_capacity(self.concurrency),
            at_sink: None,
        };
        for mut event in events {
            let id = event.id.clone();
            match prepare(ctx, &mut event, &self.limits) {
                Ok(message) => {
                    window.slots.push(window.outcomes.len());
                    window.messages.push(message);
                    window.outcomes.push((id, Ok(())));
                }
                Err(e) => window.outcomes.push((id, Err(e))),
            }
        }
        window
    }

    /// Hands a window's messages to the sink, in a task of their own so
    /// the sink's work (formatting, sending) runs beside the caller's.
    fn submit(&self, mut window: Window) -> Window {
        if !window.messages.is_empty() {
            let sink = self.sink.clone();
            let messages = std::mem::take(&mut window.messages);
            window.at_sink = Some((
                Instant::now(),
                tokio::spawn(async move { sink.publish(messages).await }),
            ));
        }
        window
    }

    /// Waits for the sink's answers and folds them into the outcomes.
    async fn finish(&self, window: Window) -> Vec<(String, Result<(), PublishError>)> {
        let Window {
            mut outcomes,
            slots,
            at_sink,
            ..
        } = window;
        let Some((started, task)) = at_sink else {
            return outcomes;
        };
        let results = task.await.unwrap_or_default();
        ::metrics::histogram!(metrics::PUBLISH_SECONDS, "sink" => self.sink.name())
            .record(started.elapsed().as_secs_f64());
        let mut results = results.into_iter();
        let mut failed: BTreeMap<bool, u64> = BTreeMap::new();
        for slot in slots {
            // A sink that answered short (or whose task died) failed the rest.
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

/// A window of events: what was decided while preparing, and the sink's
/// pending answer for the messages.
struct Window {
    outcomes: Vec<(String, Result<(), PublishError>)>,
    slots: Vec<usize>,
    messages: Vec<Message>,
    at_sink: Option<(
        Instant,
        tokio::task::JoinHandle<Vec<super::sink::PublishResult>>,
    )>,
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
        dedup_key: dedup_key(&ctx.instance, &event.id),
        id: std::mem::take(&mut event.id),
        body: Bytes::from(body),
        attributes: render::attributes(event, &ctx.source),
    })
}
