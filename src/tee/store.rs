//! The tee store: one event in, two writes out.
//!
//! ```text
//!            validate + fill defaults
//!  events ─────────────┬──────────────────────────────────────────────┐
//!                      │ unredacted                                   │ invalid
//!                      ▼                                              ▼
//!        event_logs row (translate)        redact → encode      dead letter
//!                      │                          │ (if the export   (gRPC path)
//!                      │                          │  mode queues it)     │
//!                      ▼                          ▼                      ▼
//!            mirror group commit ◀──────── both awaited ────────▶ queue group commit
//! ```
//!
//! [`Tee::prepare`] does the CPU work (validation, defaults, translation
//! and encoding of the `event_logs` row, redaction, encoding of the queued
//! event) and says, per event, what will happen to it;
//! [`Tee::submit`] hands the queue batch and the mirror rows to their group
//! committers (it may block briefly on the queue's quota work: call it off
//! the async runtime); the returned [`Commit`] resolves when the queue holds
//! the events durably and the mirror rows are flushed. Only then may the
//! caller acknowledge.
//!
//! The queue holds exactly the bytes that will be exported: the redacted
//! event, encoded once here. A retried event id never produces a second
//! `event_logs` row (the mirror is keyed by event id), but it is queued again
//! (the gateway acknowledges by id; at-least-once).
//!
//! An invalid event on the dead-letter path keeps its reason and only the
//! first [`INGEST_EVENT_PREFIX_BYTES`] (64 KiB) of its encoding, with its
//! original size: an event refused for its size can be up to the 16 MiB
//! message limit. It is logged with its feature and action escaped
//! ([`crate::untrusted`]): they are the sender's text.

use super::config::TeeConfig;
use super::mirror::{Mirror, MirrorError, MirrorPending};
use crate::clock::Clock;
use crate::dead_letter::{
    DeadLetterEntry, DeadLetterSource, DeadLetterStore, INGEST_EVENT_PREFIX_BYTES,
};
use crate::event::export_mode::ExportMode;
use crate::event::redact::{mode_for, redact};
use crate::event::validate::{
    EventField, ValidationError, check_event_count, fill_defaults, new_event_id, validate_event,
};
use crate::event_logs::store::{EncodedRow, EventLogStore};
use crate::proto::telemetrygateway::v1::Event;
use crate::queue::{AppendAck, Batch, PendingAppend};
use crate::queue::{Queue, QueueError};
use crate::untrusted::Escaped;
use prost::Message;
use std::sync::Arc;

/// Metric: events refused by validation.
pub const INVALID_EVENTS: &str = "telespool_ingest_invalid_events_total";

/// What happens to events that fail validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidPolicy {
    /// Report them to the caller only (HTTP: per-event errors).
    Report,
    /// Store them in the dead-letter store (gRPC streams, whose protocol can
    /// only name successes).
    DeadLetter,
}

/// Where missing ids come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ids {
    /// An event without id gets a UUID v7 (HTTP).
    Generate,
    /// An event without id is invalid: it cannot be named (gRPC).
    Require,
}

/// The fate of one event of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded: in `event_logs`, and in the queue if the export mode keeps it.
    Recorded {
        /// The event id (generated ones included).
        id: String,
        /// Whether it was queued for export.
        queued: bool,
    },
    /// Invalid; dead-lettered under [`InvalidPolicy::DeadLetter`].
    Invalid {
        /// The event id, if it had one.
        id: Option<String>,
        /// Why.
        error: ValidationError,
    },
}

/// A request's events, ready to submit.
#[derive(Debug)]
pub struct Prepared {
    outcomes: Vec<Outcome>,
    batch: Batch,
    rows: Vec<EncodedRow>,
    dead: Vec<DeadLetterEntry>,
}

impl Prepared {
    /// The outcome of every event, by index.
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }
}

/// Why a record call failed as a whole (nothing of it is acknowledged).
#[derive(Debug, thiserror::Error)]
pub enum TeeError {
    /// The request holds more events than allowed. The client splits it;
    /// retrying it unchanged fails again.
    #[error(transparent)]
    TooMany(ValidationError),
    /// The queue refused or failed (full, poisoned, disk full, closed).
    /// Full: the client retries later (or the operator raises the quota);
    /// an event too large: the client drops it; poisoned or closed: the
    /// sidecar needs a restart, the client retries against it.
    #[error("export queue: {0}")]
    Queue(#[from] QueueError),
    /// The mirror or dead-letter store failed. Nothing is acknowledged;
    /// the client retries.
    #[error(transparent)]
    Mirror(#[from] MirrorError),
}

/// The tee.
#[derive(Debug)]
pub struct Tee {
    queue: Arc<Queue>,
    mirror: Mirror,
    config: TeeConfig,
    clock: Arc<dyn Clock>,
}

/// A submitted record call.
pub struct Commit {
    queue: Option<PendingAppend>,
    mirror: MirrorPending,
    outcomes: Vec<Outcome>,
}

impl std::fmt::Debug for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commit")
            .field("outcomes", &self.outcomes)
            .finish_non_exhaustive()
    }
}

impl Commit {
    /// Waits until the queue and the mirror hold the request durably.
    pub async fn done(self) -> Result<Vec<Outcome>, TeeError> {
        let queue = async {
            match self.queue {
                Some(p) => p.await.map(Some).map_err(|e| TeeError::Queue(e.into())),
                None => Ok::<Option<AppendAck>, TeeError>(None),
            }
        };
        let (q, m) = futures::join!(queue, self.mirror);
        q?;
        m?;
        Ok(self.outcomes)
    }

    /// Blocks the thread until done (for synchronous callers and tests).
    pub fn wait(self) -> Result<Vec<Outcome>, TeeError> {
        futures::executor::block_on(self.done())
    }
}

impl Tee {
    /// A tee over the export queue, the `event_logs` store (day files) and
    /// the dead-letter store (sled).
    pub fn new(
        queue: Arc<Queue>,
        event_logs: Arc<EventLogStore>,
        dead_letters: Arc<DeadLetterStore>,
        config: TeeConfig,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Tee> {
        Ok(Tee {
            queue,
            mirror: Mirror::start(event_logs, dead_letters)?,
            config,
            clock,
        })
    }

    /// The settings.
    pub fn config(&self) -> &TeeConfig {
        &self.config
    }

    /// The queue.
    pub fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// Validates, fills defaults, translates (and encodes the `event_logs`
    /// rows) and redacts a request's events. Fails as a whole only when
    /// there are more events than allowed, or (it cannot happen with
    /// validated events) when a row does not encode.
    pub fn prepare(
        &self,
        events: Vec<Event>,
        ids: Ids,
        invalid: InvalidPolicy,
    ) -> Result<Prepared, TeeError> {
        check_event_count(events.len(), &self.config.limits).map_err(TeeError::TooMany)?;
        let now = self.clock.now();
        let mut p = Prepared {
            outcomes: Vec::with_capacity(events.len()),
            batch: Batch::new(),
            rows: Vec::with_capacity(events.len()),
            dead: Vec::new(),
        };
        for mut event in events {
            let checked = if ids == Ids::Require && event.id.is_empty() {
                Err(ValidationError::Missing {
                    field: EventField::Id,
                })
            } else {
                fill_defaults(&mut event, now, new_event_id);
                validate_event(&event, &self.config.limits)
            };
            if let Err(error) = checked {
                let id = (!event.id.is_empty()).then(|| event.id.clone());
                metrics::counter!(INVALID_EVENTS).increment(1);
                if invalid == InvalidPolicy::DeadLetter {
                    tracing::warn!(event_id = ?id.as_deref().unwrap_or(""), feature = ?event.feature, action = ?event.action, error = %Escaped(&error), "invalid event dead-lettered");
                    let mut dead = DeadLetterEntry {
                        event_id: id.clone(),
                        event: event.encode_to_vec(),
                        reason: error.to_string(),
                        source: DeadLetterSource::Ingest,
                        attempts: 0,
                        recorded_at: now,
                        last_error: None,
                        original_size: None,
                    };
                    // An invalid event may be up to the message limit
                    // (16 MiB): only a prefix is kept, with its size.
                    dead.truncate_event(INGEST_EVENT_PREFIX_BYTES);
                    p.dead.push(dead);
                }
                p.outcomes.push(Outcome::Invalid { id, error });
                continue;
            }
            // Encoded here, on the caller's thread: the mirror's single
            // thread only writes. The allowlist is asked once, for the row
            // and for the redaction.
            let allowed = self.config.allowlist.is_allowed(&event);
            let row =
                EventLogStore::encode_event(&event, allowed, &self.config.server_version, now)
                    .map_err(|e| TeeError::Mirror(e.into()))?;
            p.rows.push(row);
            let queued = self.config.export_mode.should_queue(&event);
            let id = if queued {
                let mode = mode_for(allowed, self.config.dotcom);
                let mut export = event;
                redact(&mut export, mode);
                p.batch.push_with(|buf| {
                    // Encoding into a Vec cannot fail.
                    let _ = export.encode(buf);
                });
                // Encoded: the id moves to the outcome, uncopied.
                export.id
            } else {
                event.id
            };
            p.outcomes.push(Outcome::Recorded { id, queued });
        }
        Ok(p)
    }

    /// Hands a prepared request to the queue and the mirror. May block on
    /// the queue's quota work: call it off the async runtime.
    pub fn submit(&self, p: Prepared) -> Result<Commit, TeeError> {
        let queue = if p.batch.is_empty() || self.config.export_mode == ExportMode::Disabled {
            None
        } else {
            Some(self.queue.submit(p.batch)?)
        };
        let mirror = self.mirror.submit(p.rows, p.dead);
        Ok(Commit {
            queue,
            mirror,
            outcomes: p.outcomes,
        })
    }

    /// Whether [`Tee::submit`] of `p` returns at once (see
    /// [`Queue::submit_is_quick`]); when not, async callers should submit
    /// from a blocking thread.
    pub fn submit_is_quick(&self, p: &Prepared) -> bool {
        p.batch.is_empty()
            || self.config.export_mode == ExportMode::Disabled
            || self.queue.submit_is_quick(&p.batch)
    }

    /// Prepares, submits and waits (for synchronous callers and tests).
    pub fn record(
        &self,
        events: Vec<Event>,
        ids: Ids,
        invalid: InvalidPolicy,
    ) -> Result<Vec<Outcome>, TeeError> {
        let p = self.prepare(events, ids, invalid)?;
        self.submit(p)?.wait()
    }

    /// Stops the mirror after writing what was submitted.
    pub fn close(&mut self) {
        self.mirror.close();
    }
}
