//! The store's errors ([`EventLogError`]).

use std::path::Path;

use crate::clock::UnixNanos;
use crate::event_logs::block::ReadError;
use crate::event_logs::codec::CodecError;

/// Errors of the `event_logs` store.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// Another process (a running sidecar) holds the store.
    #[error("event_logs store at {path} is in use by another process")]
    InUse {
        /// The store's directory.
        path: String,
    },
    /// sled failed (reading a format-2 store to convert it, or writing
    /// the marker that older binaries read).
    #[error("event_logs database error: {0}")]
    Sled(#[from] sled::Error),
    /// A file operation failed.
    #[error("event_logs: {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The store was written in a format this code does not read.
    #[error(
        "event_logs database at {path} has format {found}, this build reads format {expected} (and converts format 2); \
         move the directory aside (or delete it) to start an empty one"
    )]
    UnsupportedFormat {
        /// The store's directory.
        path: String,
        /// The format found.
        found: u64,
        /// The format this build reads and writes.
        expected: u64,
    },
    /// A day file's header is unusable.
    #[error("event_logs day file {path}: {source}")]
    BadDayFile {
        /// The file.
        path: String,
        /// What is wrong.
        #[source]
        source: crate::event_logs::dayfile::HeaderError,
    },
    /// `cache_bytes` is below the minimum.
    #[error("event_logs cache of {cache_bytes} bytes is below the minimum of {min}")]
    CacheTooSmall {
        /// The configured size.
        cache_bytes: u64,
        /// The smallest accepted size.
        min: u64,
    },
    /// `retention` is zero.
    #[error("event_logs retention must be positive")]
    ZeroRetention,
    /// `quota_bytes` is below the minimum.
    #[error("event_logs quota of {quota_bytes} bytes is below the minimum of {min}")]
    QuotaTooSmall {
        /// The configured quota.
        quota_bytes: u64,
        /// The smallest accepted quota.
        min: u64,
    },
    /// A row to insert has an empty event id (the dedup key).
    #[error("row {index} of the batch has an empty event id")]
    EmptyEventId {
        /// Position of the row in the batch.
        index: usize,
    },
    /// A row to insert has a timestamp that is not RFC 3339 UTC.
    #[error("row for event {event_id} has timestamp {timestamp:?}, not YYYY-MM-DDTHH:MM:SS[.f]Z")]
    BadTimestamp {
        /// The row's event id.
        event_id: String,
        /// The timestamp as given.
        timestamp: String,
    },
    /// A row could not be encoded.
    #[error("row for event {event_id} does not encode: {source}")]
    Encode {
        /// The row's event id.
        event_id: String,
        /// The encoder's error.
        source: serde_json::Error,
    },
    /// An encoded row is larger than [`super::MAX_ROW_BYTES`].
    #[error("row for event {event_id} is {bytes} bytes encoded, above the limit of {max}")]
    RowTooLarge {
        /// The row's event id.
        event_id: String,
        /// Its encoded size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A stored row does not decode.
    #[error("stored row for event {event_id} is unreadable: {source}")]
    Decode {
        /// The event id (lossy UTF-8).
        event_id: String,
        /// The decoder's error.
        source: CodecError,
    },
    /// A block could not be read.
    #[error("event_logs day {day}, block at offset {offset}: {source}")]
    Block {
        /// The UTC day.
        day: String,
        /// File offset of the block.
        offset: u64,
        /// What went wrong.
        #[source]
        source: ReadError,
    },
    /// A stored key or record of a format-2 store has the wrong shape.
    #[error("{tree} key space holds a malformed entry (key {key_hex}, {len} bytes)")]
    BadEntry {
        /// The key space (`rows`, `ids` or `meta`).
        tree: &'static str,
        /// The key, hex.
        key_hex: String,
        /// Length of the malformed key or value.
        len: usize,
    },
    /// An earlier write failed in a way that left a day file in an
    /// unknown state; writes are refused until the store is reopened.
    #[error("event_logs store refuses writes after an earlier failure: {0}")]
    Poisoned(String),
    /// A query range ends before it starts.
    #[error("query range is inverted: from {from} is after to {to}")]
    InvertedRange {
        /// Start of the range.
        from: UnixNanos,
        /// End of the range.
        to: UnixNanos,
    },
    /// A query limit is zero or above the maximum.
    #[error("query limit {limit} is outside 1..={max}")]
    LimitOutOfRange {
        /// The requested limit.
        limit: usize,
        /// The largest accepted limit.
        max: usize,
    },
    /// An erasure names no user (user id 0, or an empty anonymous id).
    #[error("an erasure needs a non-zero user id or a non-empty anonymous user id")]
    BadEraseTarget,
}

impl EventLogError {
    pub(crate) fn io(what: &'static str, path: &Path, source: std::io::Error) -> EventLogError {
        EventLogError::Io {
            what,
            path: path.display().to_string(),
            source,
        }
    }
}
