//! The index: the segment table and, per segment, the resolved watermark
//! (the highest id up to which every record is resolved: acked,
//! dead-lettered, lost or dropped; see [`crate::segment_meta`]), persisted
//! behind the small [`Index`] trait.
//!
//! The log is the source of truth; the index is what the log cannot say
//! cheaply: which records were resolved (and how), when a segment became
//! fully resolved, and each sealed segment's range and size without reading
//! it. On open the queue reconciles the index with the files and rewrites
//! what disagrees; the index can always be rebuilt from the files (losing
//! only resolutions, which means re-export: at-least-once).
//!
//! Implementations:
//! - [`SledIndex`]: sled 0.34, tree `segments`, key = segment id (u64
//!   big-endian), value = `telespool.v1.SegmentMeta` (protobuf). `flush`
//!   is sled's flush (`sync_file_range`, which survives a process crash)
//!   followed by an fsync of sled's database file, so a flushed index also
//!   survives a power loss. Entries are checked on load
//!   ([`SegmentMeta::sanitize`]): a damaged entry cannot claim records
//!   resolved outside its segment.
//! - [`MemIndex`]: an in-memory double for tests with a *live* and a
//!   *flushed* map; [`MemIndex::crash`] forgets unflushed updates, so the
//!   crash model covers index state too.
//!
//! Writes are batched by the queue: it keeps the table in memory, marks
//! changed segments dirty, and writes them with one `flush` (on a timer,
//! after a round of acks, before a purge and at close).

mod codec;
mod mem;
mod sled_index;

pub use crate::segment_meta::{RangeSet, Resolution, ResolvedCounts, SegmentMeta};
pub use mem::MemIndex;
pub use sled_index::SledIndex;

use crate::ids::SegmentId;
use std::path::PathBuf;

/// Errors of the index layer. Each fails the queue operation that wrote
/// or read the index; the queue keeps unwritten changes for the next flush.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// sled failed (I/O, or its own files are damaged). Opening fails;
    /// a failed flush is retried at the next one. If it persists, move the
    /// index directory away: the queue rebuilds it from the segment files
    /// (re-exporting what was resolved: at-least-once).
    #[error("index database error: {0}")]
    Sled(#[from] sled::Error),
    /// Flushing: the fsync of sled's database file failed, so the index
    /// may not survive a power loss; the flush fails and is retried.
    #[error("syncing {path}: {source}")]
    Sync {
        /// The database file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Loading: a stored value does not decode. Opening fails; move the
    /// index directory away to rebuild it from the files.
    #[error("index entry for segment {segment} is unreadable: {source}")]
    Decode {
        /// The segment whose entry is bad.
        segment: SegmentId,
        /// The decoding error.
        source: prost::DecodeError,
    },
    /// Loading: a stored key is not a segment id (a damaged or foreign
    /// database). Opening fails, as for [`IndexError::Decode`].
    #[error("index key of {len} bytes is not a segment id")]
    BadKey {
        /// Length of the key.
        len: usize,
    },
    /// Opening: another process (or another handle in this one) holds the
    /// index database. Stop it, or reach it through its admin API.
    #[error("index at {path} is in use by another process")]
    InUse {
        /// The index path.
        path: PathBuf,
    },
}

/// Persistence of the segment table.
pub trait Index: Send + std::fmt::Debug {
    /// Every stored segment, in id order.
    fn load(&mut self) -> Result<Vec<SegmentMeta>, IndexError>;
    /// Stores (inserts or replaces) a segment's entry.
    fn put(&mut self, meta: &SegmentMeta) -> Result<(), IndexError>;
    /// Removes a segment's entry.
    fn remove(&mut self, id: SegmentId) -> Result<(), IndexError>;
    /// Makes every earlier `put` and `remove` survive a crash.
    fn flush(&mut self) -> Result<(), IndexError>;
}

impl From<crate::sled_db::OpenError> for IndexError {
    fn from(e: crate::sled_db::OpenError) -> Self {
        match e {
            crate::sled_db::OpenError::InUse { path } => IndexError::InUse { path: path.into() },
            crate::sled_db::OpenError::Sled(e) => IndexError::Sled(e),
        }
    }
}
