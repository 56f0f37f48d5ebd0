//! The queue: the API the rest of telespool uses on top of the log and the
//! index (the tee store is the layer above it).
//!
//! - [`Queue::append`] / [`Queue::submit`]: a batch of event payloads in, a
//!   durable range of record ids out (group commit, see [`crate::log`]).
//! - [`Queue::read`]: unresolved records from a position, in id order.
//! - [`Queue::resolve`]: marks records resolved (acked, dead-lettered, lost
//!   or dropped); the per-segment resolved watermark follows.
//! - [`Queue::backlog`], [`Queue::segments`]: what is waiting and where.
//! - [`Queue::purge`]: deletes sealed segments whose records are all
//!   resolved and that became so longer ago than a retention.
//! - A byte quota (default 1 GiB) with a full policy: refuse new batches
//!   ([`QueueError::Full`], the default) or drop the oldest unresolved
//!   records (resolved as dropped, counted, logged). Under quota pressure
//!   fully resolved segments are purged early, whatever their retention:
//!   retention is for auditing, the quota is a hard limit.
//!
//! # Crash safety
//!
//! - An append is acknowledged only once durable (policy `always`).
//! - The index is written behind: resolutions and seals are kept in memory
//!   and written with one index flush by [`Queue::tick`] once per flush
//!   interval (default 1 s), by [`Queue::flush_index`] (the exporter's
//!   acknowledgement flusher calls it ~20 ms after answers arrive, and
//!   after each round: `crate::export::ack_flush`), before a purge and at
//!   close. A crash may
//!   lose the resolutions since the last flush (those records are exported
//!   again: at-least-once), never more: watermarks never fall below their
//!   last flushed value.
//! - Purge order: flush the index (the segment is durably fully resolved),
//!   delete the file, fsync the directory, then remove the index entry. On
//!   open, an index entry whose file is gone and whose records were all
//!   resolved is a purge that completed; one with unresolved records is a
//!   missing file, and its records are reported and resolved as lost.
//!
//! Reconciliation on open is described in [`open`].
//!
//! # Files
//!
//! | File | Job |
//! |---|---|
//! | `mod.rs` | [`Queue`]: open, append/submit, tick, roll, sync, close |
//! | `config.rs` | [`QueueConfig`], [`FullPolicy`], the defaults, `validate` |
//! | `error.rs` | [`QueueError`] and its typed reasons |
//! | `open.rs` | the open's phases (doc), [`OpenReport`], the directory lock |
//! | `recovery.rs` | the `Recovery` value: one method per phase of the open |
//! | `quota.rs` | the quota check, early purge, the full policy |
//! | `resolve.rs` | [`Queue::resolve`], [`Queue::backlog`], [`Queue::segments`] |
//! | `read.rs` | [`Queue::read`], [`Queue::get`]: walks with CRC checks, lost records |
//! | `purge.rs` | [`Queue::purge`] in the crash-safe order, index flushes |
//! | `verify.rs` | a read-only CRC walk of a queue directory |

mod config;
mod error;
pub mod open;
mod purge;
mod quota;
mod read;
mod recovery;
mod resolve;
pub mod verify;

/// The names of the metrics the queue emits, each defined next to its
/// emitter and registered in [`crate::app::series::SIDECAR_SERIES`].
pub mod metric_names {
    pub use super::purge::{PURGED_RECORDS, PURGED_SEGMENTS};
    pub use super::quota::{DROPPED, REFUSED};
    pub use super::recovery::{LOST_RECORDS, TRUNCATED_BYTES};
    pub use super::resolve::RESOLVED;
}

use crate::clock::{Clock, SystemClock};
use crate::index::{Index, SledIndex};
use crate::log::{Log, LogState, Table, record};
use crate::storage::{FsStorage, LockGuard, Storage};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

pub use config::{
    DEFAULT_INDEX_FLUSH_INTERVAL, DEFAULT_QUOTA_BYTES, DEFAULT_SEGMENT_AGE, DEFAULT_SEGMENT_BYTES,
    FullPolicy, QueueConfig,
};
pub use error::{ConfigError, Inconsistency, QueueError};
pub use open::OpenReport;
pub use purge::PurgeReport;
pub use resolve::{Backlog, ResolveOutcome, SegmentInfo};
// The seam's types that the queue's callers hold: the layers above use
// them through the queue, not through `log` or `segment_meta`.
pub use crate::log::{AppendAck, AppendError, Batch, PendingAppend, Record, SyncPolicy};
pub use crate::segment_meta::Resolution;

/// Name of the lock file in the queue directory.
pub const LOCK_FILE: &str = "LOCK";

/// The export queue. All methods take `&self`; share it with an `Arc`.
pub struct Queue {
    log: Log,
    index: Mutex<Box<dyn Index>>,
    config: QueueConfig,
    quota: Mutex<()>,
    last_flush: Mutex<Instant>,
    _lock: Box<dyn LockGuard>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("dir", &self.state().dir())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The directory of the queue inside a data directory.
pub fn queue_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("queue")
}

impl Queue {
    /// Opens the queue in `<data_dir>/queue` on real files, with the sled
    /// index in `<data_dir>/queue/index` and the system clock.
    pub fn open_dir(
        data_dir: &Path,
        config: QueueConfig,
    ) -> Result<(Queue, OpenReport), QueueError> {
        let dir = queue_dir(data_dir);
        let storage: Arc<dyn Storage> = Arc::new(FsStorage);
        storage
            .create_dir_all(&dir)
            .map_err(|e| QueueError::io("creating", &dir, e))?;
        let lock = open::take_lock(storage.as_ref(), &dir)?;
        let index = SledIndex::open(&dir.join("index"))?;
        open::open(
            storage,
            &dir,
            Box::new(index),
            Arc::new(SystemClock),
            config,
            lock,
        )
    }

    /// Opens the queue in `dir` on the given storage, index and clock.
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        index: Box<dyn Index>,
        clock: Arc<dyn Clock>,
        config: QueueConfig,
    ) -> Result<(Queue, OpenReport), QueueError> {
        storage
            .create_dir_all(dir)
            .map_err(|e| QueueError::io("creating", dir, e))?;
        let lock = open::take_lock(storage.as_ref(), dir)?;
        open::open(storage, dir, index, clock, config, lock)
    }

    fn state(&self) -> &LogState {
        self.log.state()
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.state().table()
    }

    /// The settings.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// The queue directory.
    pub fn dir(&self) -> &Path {
        self.state().dir()
    }

    /// Appends a batch and waits until it is acknowledged.
    pub fn append(&self, batch: Batch) -> Result<AppendAck, QueueError> {
        Ok(self.submit(batch)?.wait()?)
    }

    /// Appends a batch; the returned future (also [`PendingAppend::wait`]) resolves
    /// when it is acknowledged. Quota and size checks happen here.
    pub fn submit(&self, batch: Batch) -> Result<PendingAppend, QueueError> {
        let limit = record::MAX_PAYLOAD_LEN - record::envelope_len(0) - 8;
        let largest = batch.max_event_len();
        if largest > limit {
            return Err(QueueError::RecordTooLarge {
                size: largest,
                limit,
            });
        }
        if let Some(e) = self.state().poisoned() {
            return Err(e.into());
        }
        let needed = batch.encoded_len();
        if self.far_from_quota(needed) {
            return Ok(self.log.submit(batch));
        }
        let _quota = self.quota.lock().unwrap_or_else(|e| e.into_inner());
        self.make_room(needed)?;
        Ok(self.log.submit(batch))
    }

    /// Periodic maintenance: rolls the active segment if it is past its
    /// age, and flushes the index if the flush interval has passed.
    pub fn tick(&self) -> Result<(), QueueError> {
        self.log.check_age();
        let due = self
            .last_flush
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            >= self.config.index_flush_interval;
        if due {
            self.flush_index()?;
        }
        Ok(())
    }

    /// Seals the active segment now (if it holds records).
    pub fn roll(&self) -> Result<(), QueueError> {
        Ok(self.log.roll()?)
    }

    /// Waits until every append submitted before the call is durable and
    /// readable, whatever the sync policy's timer says (under `never`:
    /// readable only).
    pub fn sync(&self) -> Result<(), QueueError> {
        Ok(self.log.sync()?)
    }

    /// The failure that poisoned the log, if any.
    pub fn poisoned(&self) -> Option<AppendError> {
        self.state().poisoned()
    }

    /// Stops intake, writes and syncs what was accepted, flushes the index.
    pub fn close(mut self) -> Result<(), QueueError> {
        self.log.close();
        self.flush_index()
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.log.close();
        if let Err(e) = self.flush_index() {
            tracing::warn!(error = %e, "flushing the queue index at close failed");
        }
    }
}
