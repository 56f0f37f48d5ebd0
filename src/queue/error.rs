//! The queue's errors.

use crate::ids::{RecordId, SegmentId};
use crate::index::IndexError;
use crate::log::segment::HeaderError;
use crate::log::{AppendError, CreateError};
use std::path::{Path, PathBuf};

/// Errors of the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Opening: another process (a running sidecar) holds the directory's
    /// lock. Stop it, or reach the data through its admin API.
    #[error(
        "queue directory {dir} is in use by another process ({owner}); stop it, or ask it through its admin API (--addr)"
    )]
    InUse {
        /// The directory.
        dir: PathBuf,
        /// What the holder wrote in the lock file.
        owner: String,
    },
    /// A file operation failed (opening, reading, truncating, removing,
    /// syncing). Opening fails; a purge keeps what it could not delete and
    /// retries later; a read can be retried.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Opening (or a first read): a segment's header is unusable (bad magic,
    /// newer format, bad CRC). The file is left untouched; the operator
    /// must move it away (or run a newer telespool) before the queue opens.
    #[error(
        "segment file {path} is unusable: {reason}; refusing to open (the file was not modified)"
    )]
    BadSegment {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        reason: HeaderError,
    },
    /// Opening: a segment's header disagrees with its name or its
    /// neighbours. Nothing was modified; the operator must inspect the
    /// directory (`telespool verify`).
    #[error(
        "segment file {path} is inconsistent: {reason}; refusing to open (the file was not modified)"
    )]
    Inconsistent {
        /// The file (or the directory, when no one file is to blame).
        path: PathBuf,
        /// Why.
        #[source]
        reason: Inconsistency,
    },
    /// A segment file is shorter than bytes the queue already read from it:
    /// something outside telespool changed it. The operation fails; restart
    /// so that recovery walks the file again.
    #[error(
        "segment file {path} is {len} bytes, shorter than the {expected} bytes the queue already read from it; another process changed it: restart to recover"
    )]
    Shrank {
        /// The file.
        path: PathBuf,
        /// Its length now.
        len: u64,
        /// The length the queue relied on.
        expected: u64,
    },
    /// The index failed (see [`IndexError`]).
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The append failed (see [`AppendError`]).
    #[error(transparent)]
    Append(#[from] AppendError),
    /// Appending: the queue is at its quota (policy `refuse`). Retry once
    /// exports free space, or raise the quota.
    #[error(
        "queue is full: {used} of {quota} bytes used, {needed} more needed; retry later or raise the quota"
    )]
    Full {
        /// The quota.
        quota: u64,
        /// Bytes in use.
        used: u64,
        /// Bytes the append needed.
        needed: u64,
    },
    /// Appending: one batch is larger than the whole quota; it can never
    /// fit. Split it, or raise the quota.
    #[error("batch of {needed} bytes exceeds the queue quota of {quota} bytes")]
    BatchTooLarge {
        /// Bytes the batch needs.
        needed: u64,
        /// The quota.
        quota: u64,
    },
    /// Appending: one event is larger than a record may be; refuse it.
    #[error("event of {size} bytes exceeds the record limit of {limit} bytes")]
    RecordTooLarge {
        /// The event's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Opening: the settings are invalid; fix the one named.
    #[error("invalid queue setting: {0}")]
    Config(#[from] ConfigError),
}

/// A segment the queue creates itself (recovery's new active segment):
/// the step that failed, as [`QueueError::Io`].
impl From<CreateError> for QueueError {
    fn from(e: CreateError) -> QueueError {
        match e {
            CreateError::Create { path, source } => QueueError::Io {
                op: "creating",
                path,
                source,
            },
            CreateError::WriteHeader { path, source } => QueueError::Io {
                op: "writing",
                path,
                source,
            },
            CreateError::Sync { path, source } => QueueError::Io {
                op: "syncing",
                path,
                source,
            },
            CreateError::SyncDir { dir, source } => QueueError::Io {
                op: "syncing directory",
                path: dir,
                source,
            },
        }
    }
}

impl QueueError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> QueueError {
        QueueError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How the segment files disagree with each other, their names or the
/// index ([`QueueError::Inconsistent`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Inconsistency {
    /// The header names a segment other than the file name does.
    #[error("its header names segment {found}")]
    HeaderNamesOtherSegment {
        /// The segment the header names.
        found: SegmentId,
    },
    /// The segment's first record id is not above the previous segment's
    /// last one: ids would repeat.
    #[error(
        "its first record id {first} is not above segment {previous}'s last record id {previous_last}"
    )]
    FirstIdNotAbovePrevious {
        /// This segment's first record id.
        first: RecordId,
        /// The previous segment.
        previous: SegmentId,
        /// Its last record id.
        previous_last: RecordId,
    },
    /// Record ids seen in the index or the headers are so high that ids
    /// would run out: a damaged index or header.
    #[error(
        "record ids are exhausted (highest seen {highest}); the index or a segment header is damaged"
    )]
    IdsExhausted {
        /// The highest id seen.
        highest: RecordId,
    },
}

/// An invalid queue setting ([`QueueError::Config`]), naming it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The segment size cannot hold a header and one record.
    #[error("segment size must be at least {min} bytes, got {got}")]
    SegmentTooSmall {
        /// The smallest usable size.
        min: u64,
        /// The size given.
        got: u64,
    },
    /// The quota is below the segment size (or 64 MiB, whichever is less).
    #[error("queue quota ({quota} bytes) must be at least the segment size ({segment} bytes)")]
    QuotaBelowSegment {
        /// The quota given.
        quota: u64,
        /// The segment size given.
        segment: u64,
    },
    /// The segment age limit is zero.
    #[error("segment age limit must be positive")]
    ZeroSegmentAge,
}
