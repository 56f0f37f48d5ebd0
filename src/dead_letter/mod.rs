//! The dead-letter store: events that were invalid or that the gateway kept
//! refusing, kept with the reason, never silently dropped.
//!
//! Two paths put entries here:
//!
//! - **ingest**: an invalid event that gRPC must report as succeeded (the
//!   protocol can only name successes) is dead-lettered with its validation
//!   error instead of vanishing;
//! - **export**: an event the gateway keeps answering without its id (poison)
//!   is moved here after a bounded number of attempts, so it cannot block
//!   retention or starve later events; the queue then counts its record as
//!   resolved.
//!
//! An operator lists them (admin API), and requeues or removes them.
//!
//! # Layout
//!
//! One sled database (its own directory), two trees:
//!
//! ```text
//! entries  [seq: u64 BE]  →  [header_len: u32 LE][header JSON][event protobuf bytes]
//!          seq order = arrival order; details in `entry`
//!
//! meta     "format"  → u64 BE (1)
//!          "count"   → u64 BE  entries stored
//!          "bytes"   → u64 BE  bytes of the stored values (headers + events)
//!          "trimmed" → u64 BE  entries ever removed by the bounds
//! ```
//!
//! `bytes` was added after `count`: a store without it gets it computed
//! from its entries on open.
//!
//! Seqs come from sled's `generate_id`: monotonic across restarts (after a
//! crash it skips ahead), never reused, not contiguous.
//!
//! # Writes and crash safety
//!
//! Every change ([`DeadLetterStore::put_batch`], [`DeadLetterStore::remove`],
//! [`DeadLetterStore::take`]) is one sled transaction over `entries` and
//! `meta`, recovered all-or-nothing after a crash, so the count always
//! matches the entries and a batch is never half stored. Changes are in
//! memory until [`DeadLetterStore::flush`]: sled's flush survives a process
//! crash but is not an fsync (`sync_file_range`; sled fsyncs every 500 ms in
//! the background). A caller that resolves a queue record because it was
//! dead-lettered must flush first.
//!
//! # Requeue
//!
//! `take` removes and returns entries atomically; if the process dies after
//! `take` but before the caller has durably appended them to the queue,
//! they are lost. The safe order is:
//!
//! ```text
//! peek(limit) → append the events to the queue, durably → remove(seqs) → flush
//! ```
//!
//! A crash between the append and the removal leaves the entries here as
//! well: they may be requeued twice (at-least-once, like every export).
//!
//! # Bounds
//!
//! At most [`DeadLetterConfig::max_entries`] (default 1,000,000) entries and
//! [`DeadLetterConfig::quota_bytes`] (default 256 MiB, `--dead-letter-quota`)
//! bytes of stored values are kept. A batch that would pass either bound
//! removes the oldest entries in the same transaction (and, when the batch
//! alone is over a bound, its own first entries); they are counted
//! ([`PutOutcome::trimmed`], [`DeadLetterStore::trimmed_total`], the
//! `telespool_dead_letters_trimmed_total` metric) and logged at warn, never
//! dropped silently. Entries are small: invalid ingest events keep a 64 KiB
//! prefix of themselves ([`INGEST_EVENT_PREFIX_BYTES`]) and export dead
//! letters are at most the 1 MiB event limit. The quota counts the values
//! stored; sled's files take more on disk (its log keeps replaced pages
//! until it reclaims their segments).
//!
//! # Memory
//!
//! sled's page cache is bounded by [`DeadLetterConfig::cache_bytes`]
//! (default 4 MiB). Listings stop at `limit` entries or after
//! [`store::LIST_BYTE_BUDGET`] (16 MiB) of event bytes, whichever comes
//! first. `count` is O(1).

mod entry;
pub mod store;
#[cfg(test)]
mod tests;

pub use entry::{
    DeadLetter, DeadLetterEntry, DeadLetterSeq, DeadLetterSource, INGEST_EVENT_PREFIX_BYTES,
};
pub use store::{DeadLetterConfig, DeadLetterStore, PutOutcome, Selection};

/// Errors of the dead-letter store.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// Another process (a running sidecar) holds the database. The CLI
    /// asks the sidecar instead (`--addr`).
    #[error("dead-letter database at {path} is in use by another process")]
    InUse {
        /// The database directory.
        path: String,
    },
    /// sled failed (I/O, damage). The write is not acknowledged; the
    /// operator looks at the disk.
    #[error("dead-letter database error: {0}")]
    Sled(#[from] sled::Error),
    /// The database was written in a format this code does not read. The
    /// operator runs the telespool that wrote it, or moves the directory.
    #[error("dead-letter database at {path} has format {found}, this build reads {expected}")]
    UnsupportedFormat {
        /// The database directory.
        path: String,
        /// The format found.
        found: u64,
        /// The format this build reads and writes.
        expected: u64,
    },
    /// `cache_bytes` is below the minimum. The operator raises it.
    #[error("dead-letter cache of {cache_bytes} bytes is below the minimum of {min}")]
    CacheTooSmall {
        /// The configured size.
        cache_bytes: u64,
        /// The smallest accepted size.
        min: u64,
    },
    /// `max_entries` is zero. The operator sets at least 1.
    #[error("dead-letter max_entries must be at least 1")]
    ZeroMaxEntries,
    /// `quota_bytes` is below the minimum. The operator raises
    /// `--dead-letter-quota`.
    #[error(
        "dead-letter quota of {quota_bytes} bytes is below the minimum of {min} (--dead-letter-quota)"
    )]
    QuotaTooSmall {
        /// The configured quota.
        quota_bytes: u64,
        /// The smallest accepted quota.
        min: u64,
    },
    /// An entry of a batch could not be encoded. Nothing of the batch is
    /// stored; a bug to report.
    #[error("dead-letter entry {index} of the batch does not encode: {source}")]
    Encode {
        /// Position of the entry in the batch.
        index: usize,
        /// The encoder's error.
        source: serde_json::Error,
    },
    /// A stored value is damaged. The listing stops there; the operator
    /// runs `telespool verify`.
    #[error("dead letter {seq} is damaged: {problem}")]
    Corrupt {
        /// The entry's seq.
        seq: DeadLetterSeq,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A stored header does not decode. As for a damaged value.
    #[error("dead letter {seq} has an unreadable header: {source}")]
    Decode {
        /// The entry's seq.
        seq: DeadLetterSeq,
        /// The decoder's error.
        source: serde_json::Error,
    },
    /// A stored key or counter has the wrong shape. As for a damaged
    /// value.
    #[error("{tree} tree holds a malformed entry (key {key:?}, {len} bytes)")]
    BadEntry {
        /// The tree.
        tree: &'static str,
        /// The key.
        key: Vec<u8>,
        /// Length of the malformed key or value.
        len: usize,
    },
    /// A listing limit is zero or above the maximum. The caller asks for
    /// fewer, and pages.
    #[error("dead-letter limit {limit} is outside 1..={max}")]
    LimitOutOfRange {
        /// The requested limit.
        limit: usize,
        /// The largest accepted limit.
        max: usize,
    },
}

impl From<crate::sled_db::OpenError> for DeadLetterError {
    fn from(e: crate::sled_db::OpenError) -> Self {
        match e {
            crate::sled_db::OpenError::InUse { path } => DeadLetterError::InUse { path },
            crate::sled_db::OpenError::Sled(e) => DeadLetterError::Sled(e),
        }
    }
}
