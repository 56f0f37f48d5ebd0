//! The dead-letter store's listing and requeue: `GET /v1/dead-letter`,
//! `POST /v1/dead-letter/requeue` and `telespool dead-letter`.

use prost::Message;
use serde::{Deserialize, Serialize};

use super::QueryError;
use super::params::DeadLetterParams;
use crate::dead_letter::store::MAX_LIST_LIMIT;
use crate::dead_letter::{DeadLetter, DeadLetterSeq, DeadLetterSource, DeadLetterStore};
use crate::proto::telemetrygateway::v1::Event;
use crate::queue::Queue;
use crate::tee::requeue::Requeued;

/// Default [`DeadLetterParams::limit`]: 100 entries.
pub const DEFAULT_DEAD_LETTER_LIMIT: usize = 100;

/// A page of dead letters, with the store's totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterListing {
    /// Entries in the store.
    pub count: u64,
    /// Bytes of the stored values (headers and events).
    pub bytes: u64,
    /// The page, oldest first.
    pub dead_letters: Vec<DeadLetterView>,
}

/// One dead letter as the admin API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterView {
    /// Its position in the store (page with `after`).
    pub seq: u64,
    /// The event id, when the event was readable and had one.
    pub event_id: Option<String>,
    /// Why it is here.
    pub reason: String,
    /// Which path gave up on it.
    pub source: DeadLetterSource,
    /// Export attempts answered without its id (0 for ingest).
    pub attempts: u32,
    /// When it was dead-lettered, RFC 3339.
    pub recorded_at: String,
    /// The last export error seen for it, if any.
    pub last_error: Option<String>,
    /// The event as protojson, when its bytes decode (a cut or unreadable
    /// event has none).
    pub event: Option<serde_json::Value>,
    /// Bytes of the event kept.
    pub event_bytes: u64,
    /// The event's size when only a prefix of it was kept.
    pub original_size: Option<u64>,
}

impl DeadLetterView {
    /// The view of a stored dead letter: the event as protojson when it
    /// decodes, and its size either way.
    pub fn of(d: &DeadLetter) -> DeadLetterView {
        let event = Event::decode(d.entry.event.as_slice())
            .ok()
            .and_then(|e| crate::protojson::render_event(&e).ok());
        DeadLetterView {
            seq: d.seq.0,
            event_id: d.entry.event_id.clone(),
            reason: d.entry.reason.clone(),
            source: d.entry.source,
            attempts: d.entry.attempts,
            recorded_at: d.entry.recorded_at.to_string(),
            last_error: d.entry.last_error.clone(),
            event,
            event_bytes: d.entry.event.len() as u64,
            original_size: d.entry.original_size,
        }
    }
}

/// Dead letters after `p.after`, at most `p.limit` (default
/// [`DEFAULT_DEAD_LETTER_LIMIT`]).
pub fn dead_letters(
    store: &DeadLetterStore,
    p: &DeadLetterParams,
) -> Result<DeadLetterListing, QueryError> {
    let limit = p.limit.unwrap_or(DEFAULT_DEAD_LETTER_LIMIT);
    if limit == 0 || limit > MAX_LIST_LIMIT {
        return Err(QueryError::LimitOutOfRange {
            limit,
            max: MAX_LIST_LIMIT,
        });
    }
    let list = store.list(p.after.map(DeadLetterSeq), limit)?;
    Ok(DeadLetterListing {
        count: store.count()?,
        bytes: store.bytes()?,
        dead_letters: list.iter().map(DeadLetterView::of).collect(),
    })
}

/// Requeues up to `limit` export dead letters (see
/// [`crate::tee::requeue`]).
pub fn requeue(
    store: &DeadLetterStore,
    queue: &Queue,
    limit: usize,
) -> Result<Requeued, QueryError> {
    if limit == 0 {
        return Err(QueryError::ZeroLimit);
    }
    Ok(crate::tee::requeue::requeue(store, queue, limit)?)
}
