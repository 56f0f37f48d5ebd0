//! The admin API's operations and types, without HTTP.
//!
//! `telespool status`, `event-logs` and `dead-letter` ask either a running
//! sidecar (its HTTP admin API, since sled locks the data directory) or the
//! data directory itself. Both paths run the operations here over the same
//! stores and exchange the same types:
//!
//! ```text
//!  queue, event_logs, dead-letter store
//!            │  admin::{queue_status, recent, counts, users, erase,
//!            │         dead_letters, requeue}
//!            ▼
//!  QueueStatus, RecentEvents, EventCounts, DailyUsers, Erased,
//!  DeadLetterListing, Requeued
//!            │ serialized by                      │ printed by
//!            ▼                                    ▼
//!  ingest::admin (GET /v1/status, ...)   commands (offline: the directory)
//!            │ JSON
//!            ▼
//!  commands (--addr: deserialized into the same types, then printed)
//! ```
//!
//! The query types ([`RecentParams`], [`RangeParams`], [`EraseParams`],
//! [`DeadLetterParams`], [`RequeueParams`]) are both the HTTP query strings
//! and the CLI's flags. Everything here is synchronous: the HTTP routes call
//! it from a blocking thread.
//!
//! The JSON shapes are the admin API's contract (tests/ingest_bad_input.rs,
//! tests/ingest_e2e.rs, tests/cli.rs): a field is added, never renamed.

mod dead_letter;
mod event_logs;
mod params;
mod status;
#[cfg(test)]
mod tests;

pub use dead_letter::{
    DEFAULT_DEAD_LETTER_LIMIT, DeadLetterListing, DeadLetterView, dead_letters, requeue,
};
pub use event_logs::{
    Compaction, DailyUsers, Erased, EventCounts, RecentEvents, counts, erase, recent, users,
};
pub use params::{DeadLetterParams, EraseParams, RangeParams, RecentParams, RequeueParams};
pub use status::{BacklogStatus, QueueStatus, RecoveryStatus, SegmentStatus, queue_status};

pub use crate::tee::requeue::Requeued;

use serde::{Deserialize, Serialize};

/// The body of every error answer of the sidecar's HTTP API:
/// `{"error": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// What went wrong, for a person.
    pub error: String,
}

/// Why an admin query cannot be answered.
///
/// [`QueryError::is_bad_request`] tells the caller's mistakes (HTTP 400)
/// from the stores' failures (HTTP 500).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A time parameter is not RFC 3339. The caller fixes the parameter.
    #[error("{param}={value:?} is not an RFC 3339 time (like 2026-11-25T00:00:00Z): {source}")]
    BadTime {
        /// The parameter (`from`, `to`).
        param: &'static str,
        /// The value given.
        value: String,
        /// The parser's error.
        source: humantime::TimestampError,
    },
    /// `from` is not before `to`. The caller fixes the range.
    #[error("from must be before to")]
    EmptyRange,
    /// A `limit` outside `1..=max`. The caller asks for fewer (or pages).
    #[error("limit must be between 1 and {max}, got {limit}")]
    LimitOutOfRange {
        /// The limit given.
        limit: usize,
        /// The largest accepted.
        max: usize,
    },
    /// An erasure by `user_id` 0, which means "no user id". The caller
    /// erases by `anonymous_user_id` instead.
    #[error("user_id must not be 0 (0 means no user id; erase by anonymous_user_id)")]
    ZeroUserId,
    /// An erasure by an empty `anonymous_user_id`. The caller names one.
    #[error("anonymous_user_id must not be empty")]
    EmptyAnonymousUserId,
    /// An erasure naming both ids, or neither. The caller gives exactly
    /// one.
    #[error("give exactly one of user_id and anonymous_user_id")]
    EraseNeedsOneUser,
    /// A requeue `limit` of 0. The caller gives at least 1, or none (all).
    #[error("limit must be at least 1")]
    ZeroLimit,
    /// The `before` cursor is not one this API handed out. The caller
    /// passes the `next` of the previous page unchanged.
    #[error("before: {0}")]
    BadCursor(#[source] crate::event_logs::query::ParseCursorError),
    /// The event_logs store failed. Nothing changed; the operator looks at
    /// the sidecar's log and disk.
    #[error(transparent)]
    EventLogs(#[from] crate::event_logs::store::EventLogError),
    /// The dead-letter store failed. Nothing changed; the operator looks at
    /// the sidecar's log and disk.
    #[error(transparent)]
    DeadLetter(#[from] crate::dead_letter::DeadLetterError),
    /// A requeue failed part way: what was appended stays queued and in the
    /// dead-letter store (it may be exported twice, never lost). The
    /// operator retries once the cause is fixed.
    #[error(transparent)]
    Requeue(#[from] crate::tee::requeue::RequeueError),
}

impl QueryError {
    /// Whether the parameters are at fault (HTTP 400), not a store (500).
    pub fn is_bad_request(&self) -> bool {
        match self {
            QueryError::BadTime { .. }
            | QueryError::EmptyRange
            | QueryError::LimitOutOfRange { .. }
            | QueryError::ZeroLimit
            | QueryError::ZeroUserId
            | QueryError::EmptyAnonymousUserId
            | QueryError::EraseNeedsOneUser
            | QueryError::BadCursor(_) => true,
            QueryError::EventLogs(_) | QueryError::DeadLetter(_) | QueryError::Requeue(_) => false,
        }
    }
}
