//! Opening a queue: reconciling the segment files with the index.
//!
//! The files are the source of truth. `open` takes the directory lock
//! and runs a `Recovery` (`queue::recovery`), one method per phase,
//! in order:
//!
//! 1. **Lock** (`take_lock`): the directory lock (`LOCK`, holder's pid
//!    inside); a second process gets [`QueueError::InUse`] naming the holder.
//! 2. **Load the index**: every entry, clamped to its segment if damaged
//!    ([`SegmentMeta::sanitize`](crate::segment_meta::SegmentMeta::sanitize)).
//! 3. **Read headers**: every segment's header. A bad magic, a future format
//!    version, a bad header CRC or a header naming another segment refuses
//!    the open, naming the file, and never modifies it. Only the newest file
//!    may have a header cut short (or all zeros): that is a roll torn by a
//!    crash (nothing in it was ever acknowledged), and the file is removed.
//! 4. **Settle missing files**: index entries without a file. If every
//!    record was resolved, a purge completed after its file was deleted;
//!    otherwise the file is *missing* and its unresolved records are
//!    reported and counted as lost.
//! 5. **Walk segments**: files without an index entry (*orphans*, e.g. a
//!    roll whose index flush a crash prevented) are walked and adopted.
//!    Segments the index does not vouch for (the newest one, orphans, ones
//!    not recorded as sealed, ones whose length disagrees with the index)
//!    are walked: a torn tail is truncated (and the truncation synced);
//!    damage followed by valid records costs only the damaged records, whose
//!    ids are reported and resolved as lost; records the index knew of but
//!    the file no longer holds (index ahead) are reported and resolved as
//!    lost. Sealed segments the index vouches for are not read at all, which
//!    keeps opening fast; they are CRC-checked whenever read.
//! 6. **Choose the active segment**: record ids continue above everything
//!    the files *and* the index have seen, so an id is never reused for a
//!    different record. The newest segment takes the appends if it is not
//!    sealed and its ids end where the next id starts; otherwise it is
//!    sealed (or removed, if empty) and a new segment is created.
//! 7. **Persist**: the reconciled table is written to the index and
//!    flushed.
//! 8. **Start**: the log's threads start and the queue is ready.

use super::recovery::Recovery;
use super::{Queue, QueueConfig, QueueError};
use crate::clock::Clock;
use crate::ids::{RecordId, SegmentId};
use crate::index::Index;
use crate::log::segment::{Cause, Damage};
use crate::storage::{LockGuard, Storage};
use std::path::Path;
use std::sync::Arc;

/// A torn tail that was cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// The segment.
    pub segment: SegmentId,
    /// Offset the file was cut at.
    pub offset: u64,
    /// Bytes removed.
    pub len: u64,
    /// Why the first removed frame did not decode.
    pub cause: Cause,
}

/// Records lost and resolved as lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lost {
    /// The segment they were in.
    pub segment: SegmentId,
    /// First lost id.
    pub first: RecordId,
    /// Last lost id (inclusive).
    pub last: RecordId,
    /// Why.
    pub why: LostWhy,
}

/// Why records were lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostWhy {
    /// Damaged bytes in the middle of a segment.
    Damaged,
    /// The index knew of records the file no longer holds.
    IndexAhead,
    /// The segment file is missing.
    MissingFile,
}

impl Lost {
    /// How many records.
    pub fn count(&self) -> u64 {
        self.last.0.saturating_sub(self.first.0) + 1
    }
}

/// What opening the queue found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Segment files in use after open.
    pub segments: usize,
    /// Segments that were walked.
    pub scanned: Vec<SegmentId>,
    /// Torn tails cut off.
    pub truncated: Vec<Truncation>,
    /// Zero-filled tails cut off (preallocated space, or a torn write that
    /// left zeros): (segment, offset, bytes).
    pub trimmed: Vec<(SegmentId, u64, u64)>,
    /// Damage resynchronised past.
    pub damaged: Vec<(SegmentId, Damage)>,
    /// Records lost (already resolved as lost).
    pub lost: Vec<Lost>,
    /// Files the index did not know, adopted.
    pub adopted: Vec<SegmentId>,
    /// Index entries whose file is missing (their unresolved records are in `lost`).
    pub missing: Vec<SegmentId>,
    /// Index entries of purges that had deleted the file already.
    pub completed_purges: Vec<SegmentId>,
    /// Newest files with a torn header, removed.
    pub removed_torn: Vec<SegmentId>,
    /// The id the next record will get.
    pub next_id: RecordId,
}

impl OpenReport {
    /// Total records lost.
    pub fn lost_records(&self) -> u64 {
        self.lost.iter().map(Lost::count).sum()
    }
}

/// Takes the directory lock.
pub(crate) fn take_lock(
    storage: &dyn Storage,
    dir: &Path,
) -> Result<Box<dyn LockGuard>, QueueError> {
    let path = dir.join(super::LOCK_FILE);
    let owner = format!("pid {}", std::process::id());
    match storage.lock(&path, &owner) {
        Ok(g) => Ok(g),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(QueueError::InUse {
            dir: dir.to_path_buf(),
            owner: storage
                .lock_owner(&path)
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown holder".into()),
        }),
        Err(e) => Err(QueueError::io("locking", &path, e)),
    }
}

/// Opens the queue (the lock is already held), phase by phase.
pub(crate) fn open(
    storage: Arc<dyn Storage>,
    dir: &Path,
    index: Box<dyn Index>,
    clock: Arc<dyn Clock>,
    config: QueueConfig,
    lock: Box<dyn LockGuard>,
) -> Result<(Queue, OpenReport), QueueError> {
    let mut recovery = Recovery::new(storage, dir, index, clock, config)?;
    let _span = tracing::info_span!("open", dir = %dir.display()).entered();
    recovery.load_index()?;
    recovery.read_headers()?;
    recovery.settle_missing_files()?;
    recovery.walk_segments()?;
    let active = recovery.choose_active()?;
    recovery.persist()?;
    recovery.start(active, lock)
}
