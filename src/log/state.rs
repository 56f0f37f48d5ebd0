//! What the log's threads share with the queue: the settings, the segment
//! table, the byte counters the quota reads, and the poison flag.
//!
//! The fields are private; the queue reaches them through the named
//! operations below (as vector's disk buffer reaches its ledger through
//! accessors), so what each side may change is written down here.

use super::error::{AppendError, PoisonCause};
use super::segment;
use super::table::Table;
use super::{Settings, SyncPolicy};
use crate::clock::{Clock, UnixNanos};
use crate::ids::SegmentId;
use crate::storage::Storage;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Metric: times the writer was poisoned by a failed fsync or write.
pub const POISONED: &str = "telespool_queue_poisoned_total";

/// State shared by the writer, syncer and completer threads and the queue.
#[derive(Debug)]
pub(crate) struct LogState {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    table: Mutex<Table>,
    settings: Settings,
    /// Bytes submitted and not yet on disk (for the quota).
    pending_bytes: AtomicU64,
    /// Bytes of segment files (data and headers), read without the table
    /// lock by the quota check.
    disk_bytes: AtomicU64,
    /// Set once, by the first failure that poisons the log.
    poison: Mutex<Option<Arc<PoisonCause>>>,
    /// Whether `poison` is set (read on every append without the lock).
    poisoned: AtomicBool,
}

impl LogState {
    /// The state of a log in `dir` whose segment files take `disk_bytes`.
    pub fn new(
        storage: Arc<dyn Storage>,
        dir: &Path,
        clock: Arc<dyn Clock>,
        table: Table,
        settings: Settings,
        disk_bytes: u64,
    ) -> LogState {
        LogState {
            storage,
            dir: dir.to_path_buf(),
            clock,
            table: Mutex::new(table),
            settings,
            pending_bytes: AtomicU64::new(0),
            disk_bytes: AtomicU64::new(disk_bytes),
            poison: Mutex::new(None),
            poisoned: AtomicBool::new(false),
        }
    }

    /// Locks the segment table. Never hold it across I/O.
    pub fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file system.
    pub fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// The queue directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current time by the log's clock.
    pub fn now(&self) -> UnixNanos {
        self.clock.now()
    }

    /// The path of a segment's file.
    pub fn segment_path(&self, id: SegmentId) -> PathBuf {
        self.dir.join(segment::file_name(id))
    }

    /// The sync policy.
    pub fn policy(&self) -> SyncPolicy {
        self.settings.policy
    }

    /// The size limit of a segment.
    pub fn segment_bytes(&self) -> u64 {
        self.settings.segment_bytes
    }

    /// The age limit of a non-empty active segment.
    pub fn segment_age(&self) -> Duration {
        self.settings.segment_age
    }

    /// Bytes of segment files.
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes.load(Ordering::SeqCst)
    }

    /// Bytes the quota counts: segment files plus appends submitted and not
    /// yet on disk.
    pub fn used_bytes(&self) -> u64 {
        self.disk_bytes.load(Ordering::SeqCst) + self.pending_bytes.load(Ordering::SeqCst)
    }

    /// Segment files of `bytes` were deleted (never below zero).
    pub fn release_disk_bytes(&self, bytes: u64) {
        let freed = bytes.min(self.disk_bytes.load(Ordering::SeqCst));
        self.disk_bytes.fetch_sub(freed, Ordering::SeqCst);
    }

    /// A new segment file of `bytes` (its header) exists.
    pub(super) fn add_disk_bytes(&self, bytes: u64) {
        self.disk_bytes.fetch_add(bytes, Ordering::SeqCst);
    }

    /// An append of `bytes` was accepted.
    pub(super) fn add_pending(&self, bytes: u64) {
        self.pending_bytes.fetch_add(bytes, Ordering::SeqCst);
    }

    /// Accepted bytes that will not reach the disk (the append failed).
    pub(super) fn drop_pending(&self, bytes: u64) {
        self.pending_bytes.fetch_sub(bytes, Ordering::SeqCst);
    }

    /// Accepted bytes are now durable segment data.
    pub(super) fn pending_made_durable(&self, bytes: u64) {
        self.disk_bytes.fetch_add(bytes, Ordering::SeqCst);
        self.pending_bytes.fetch_sub(bytes, Ordering::SeqCst);
    }

    /// Poisons the log (the first cause is kept) and returns the error
    /// every append gets from now on.
    pub(super) fn poison(&self, cause: PoisonCause) -> AppendError {
        let mut p = self.poison.lock().unwrap_or_else(|e| e.into_inner());
        let cause = p.get_or_insert_with(|| Arc::new(cause)).clone();
        if !self.poisoned.swap(true, Ordering::SeqCst) {
            tracing::error!(reason = %cause, "queue log poisoned: appends are refused until restart");
            metrics::counter!(POISONED).increment(1);
        }
        AppendError::Poisoned { cause }
    }

    /// The failure that poisoned the log, if any.
    pub fn poisoned(&self) -> Option<AppendError> {
        if !self.poisoned.load(Ordering::SeqCst) {
            return None;
        }
        let p = self.poison.lock().unwrap_or_else(|e| e.into_inner());
        p.clone().map(|cause| AppendError::Poisoned { cause })
    }
}
