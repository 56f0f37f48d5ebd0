//! The log's errors: why an append failed, what poisoned the log, and why a
//! new segment file could not be made.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Why an append failed. Cloneable: one failure may answer many batches.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AppendError {
    /// An earlier fsync (or a truncation after a failed write) failed; the
    /// log refuses every append until the queue is reopened, and recovery
    /// then decides from the files what survived. The caller should stop
    /// sending (the sidecar answers "unavailable") and restart the process.
    #[error("the queue's log is poisoned by an earlier failure ({cause}); restart to recover")]
    Poisoned {
        /// What failed first.
        #[source]
        cause: Arc<PoisonCause>,
    },
    /// The disk is full: nothing of the batch was kept and its ids are
    /// given again. The caller may retry once space is freed (the log is
    /// not poisoned).
    #[error("disk full writing {path}")]
    DiskFull {
        /// The file being written.
        path: PathBuf,
        /// The error the write returned.
        #[source]
        source: Arc<io::Error>,
    },
    /// A write failed for another reason: nothing of the batch was kept
    /// (the file was cut back). The caller may retry.
    #[error("write to {path} failed: {source}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The error.
        source: Arc<io::Error>,
    },
    /// The log is closing or closed: the batch was not accepted. Only a
    /// caller racing shutdown sees it; it should give up.
    #[error("the queue is closed")]
    Closed,
}

impl AppendError {
    /// A failed write or file creation: [`AppendError::DiskFull`] when the
    /// disk is full, [`AppendError::Write`] otherwise.
    pub(crate) fn from_io(path: PathBuf, e: io::Error) -> AppendError {
        if crate::storage::is_disk_full(&e) {
            AppendError::DiskFull {
                path,
                source: Arc::new(e),
            }
        } else {
            AppendError::Write {
                path,
                source: Arc::new(e),
            }
        }
    }
}

/// The failure that poisoned the log (see [`AppendError::Poisoned`]). The
/// first one is kept; later appends report it.
#[derive(Debug, thiserror::Error)]
pub enum PoisonCause {
    /// `fdatasync` of a segment failed: whether the data reached the disk is
    /// unknown, and retrying the fsync cannot tell (the kernel may have
    /// dropped the dirty pages).
    #[error("fdatasync of {path} failed: {source}")]
    Sync {
        /// The segment file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The fsync of a freshly rolled segment's header failed.
    #[error("fsync of new segment {path} failed: {source}")]
    SyncNewSegment {
        /// The new segment file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The directory fsync that makes a new segment's name durable failed.
    #[error("fsync of directory {dir} failed: {source}")]
    SyncDir {
        /// The queue directory.
        dir: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A write failed, and cutting the file back to its last good length
    /// failed too: the file may hold a partial group.
    #[error("write to {path} failed ({write}) and truncating it back failed ({source})")]
    CutBack {
        /// The segment file.
        path: PathBuf,
        /// Why the write failed.
        write: io::Error,
        /// Why the truncation failed.
        source: io::Error,
    },
}

/// Why a new segment file could not be made ([`super::segment::create`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CreateError {
    /// The file could not be created (it exists, a link is in the way, the
    /// disk is full); nothing was left behind.
    #[error("creating {path}: {source}")]
    Create {
        /// The new file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Writing the header failed; the file was removed again.
    #[error("writing {path}: {source}")]
    WriteHeader {
        /// The new file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `fdatasync` of the new file failed; the file stays (recovery removes
    /// a newest segment whose header is torn).
    #[error("syncing {path}: {source}")]
    Sync {
        /// The new file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The directory fsync that makes the new name durable failed.
    #[error("syncing directory {dir}: {source}")]
    SyncDir {
        /// The directory.
        dir: PathBuf,
        /// The error.
        source: io::Error,
    },
}
