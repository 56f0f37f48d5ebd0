//! The queue: the API the rest of telespool uses on top of the log and the
//! index ("tee" is the layer above it).
//!
//! - [`Queue::append`] / [`Queue::submit`]: a batch of event payloads in, a
//!   durable range of record ids out (group commit, see [`crate::log`]).
//! - [`Queue::read`]: unresolved records from a position, in id order.
//! - [`Queue::resolve`]: marks records resolved (acked, dead-lettered, lost
//!   or dropped); the per-segment watermark follows.
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
//! - The index is written behind: resolutions are kept in memory and
//!   flushed with one index flush per [`Queue::tick`] interval, on seal,
//!   before a purge and at close. A crash may lose the resolutions since the
//!   last flush (those records are exported again: at-least-once), never
//!   more: watermarks never fall below their last flushed value.
//! - Purge order: flush the index (the segment is durably fully resolved),
//!   delete the file, fsync the directory, then remove the index entry. On
//!   open, an index entry whose file is gone and whose records were all
//!   resolved is a purge that completed; one with unresolved records is a
//!   missing file, and its records are reported and resolved as lost.
//!
//! Reconciliation on open is described in [`open`].

pub mod open;
mod read;
pub mod verify;

use crate::clock::{Clock, SystemClock, UnixNanos};
use crate::ids::{RecordId, SegmentId};
use crate::index::{Index, IndexError, SledIndex};
use crate::log::Pending;
use crate::log::segment::{self, HeaderError};
use crate::log::table::Table;
use crate::log::writer::{Ctx, Writer};
use crate::log::{AppendAck, AppendError, Batch, SyncPolicy, record};
use crate::segment_meta::{Resolution, SegmentMeta};
use crate::storage::{FsStorage, LockGuard, Storage};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use open::OpenReport;

/// Default segment size limit.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Default segment age limit.
pub const DEFAULT_SEGMENT_AGE: Duration = Duration::from_secs(3600);
/// Default queue quota.
pub const DEFAULT_QUOTA_BYTES: u64 = 1024 * 1024 * 1024;
/// Default interval between index flushes done by [`Queue::tick`].
pub const DEFAULT_INDEX_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Below the quota by more than this, appends skip the quota lock.
const QUOTA_SLACK: u64 = 64 * 1024 * 1024;

/// Name of the lock file in the queue directory.
pub const LOCK_FILE: &str = "LOCK";

/// What to do when an append would exceed the quota.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FullPolicy {
    /// Refuse the append with [`QueueError::Full`].
    #[default]
    Refuse,
    /// Resolve the oldest unresolved records as dropped (counted, logged)
    /// and purge their segments until the append fits.
    DropOldest,
}

impl std::str::FromStr for FullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<FullPolicy, String> {
        match s {
            "refuse" => Ok(FullPolicy::Refuse),
            "drop-oldest" => Ok(FullPolicy::DropOldest),
            _ => Err(format!(
                "full policy {s:?} is not one of: refuse, drop-oldest"
            )),
        }
    }
}

/// Settings of the queue.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// When appends are durable. Default `always`.
    pub sync: SyncPolicy,
    /// Roll the active segment when the next batch would take it past this
    /// many bytes. Default 64 MiB.
    pub segment_bytes: u64,
    /// Roll the active segment when it is older than this and not empty.
    /// Default 1 h.
    pub segment_age: Duration,
    /// Bytes of segment files the queue may hold. Default 1 GiB.
    pub quota_bytes: u64,
    /// What to do when full. Default `refuse`.
    pub full_policy: FullPolicy,
    /// How often [`Queue::tick`] flushes the index. Default 1 s.
    pub index_flush_interval: Duration,
}

impl Default for QueueConfig {
    fn default() -> QueueConfig {
        QueueConfig {
            sync: SyncPolicy::Always,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_age: DEFAULT_SEGMENT_AGE,
            quota_bytes: DEFAULT_QUOTA_BYTES,
            full_policy: FullPolicy::Refuse,
            index_flush_interval: DEFAULT_INDEX_FLUSH_INTERVAL,
        }
    }
}

impl QueueConfig {
    /// Checks the settings, naming the one that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let min = (segment::HEADER_LEN + record::encoded_len(0)) as u64;
        if self.segment_bytes < min {
            return Err(format!(
                "segment size must be at least {min} bytes, got {}",
                self.segment_bytes
            ));
        }
        if self.quota_bytes < self.segment_bytes.min(DEFAULT_SEGMENT_BYTES) {
            return Err(format!(
                "queue quota ({} bytes) must be at least the segment size ({} bytes)",
                self.quota_bytes, self.segment_bytes
            ));
        }
        if self.segment_age.is_zero() {
            return Err("segment age limit must be positive".into());
        }
        Ok(())
    }
}

/// Errors of the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Another process (a running sidecar) holds the directory.
    #[error(
        "queue directory {dir} is in use by another process ({owner}); stop it, or ask it through its admin API (--addr)"
    )]
    InUse {
        /// The directory.
        dir: PathBuf,
        /// What the holder wrote in the lock file.
        owner: String,
    },
    /// An I/O operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A segment file cannot be used; it is left untouched.
    #[error(
        "segment file {path} is unusable: {reason}; refusing to open (the file was not modified)"
    )]
    BadSegment {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: HeaderError,
    },
    /// A segment's header disagrees with its name or its neighbours.
    #[error(
        "segment file {path} is inconsistent: {reason}; refusing to open (the file was not modified)"
    )]
    Inconsistent {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The append failed.
    #[error(transparent)]
    Append(#[from] AppendError),
    /// The queue is at its quota (policy `refuse`).
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
    /// A single batch is larger than the quota.
    #[error("batch of {needed} bytes exceeds the queue quota of {quota} bytes")]
    BatchTooLarge {
        /// Bytes the batch needs.
        needed: u64,
        /// The quota.
        quota: u64,
    },
    /// A single event is larger than a record may be.
    #[error("event of {size} bytes exceeds the record limit of {limit} bytes")]
    RecordTooLarge {
        /// The event's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Invalid settings.
    #[error("invalid queue setting: {0}")]
    Config(String),
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

/// What [`Queue::resolve`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolveOutcome {
    /// Records newly resolved.
    pub resolved: u64,
    /// Records that were resolved already.
    pub already: u64,
    /// Ids the queue does not hold (purged, never durable, or unknown).
    pub unknown: u64,
}

/// What is waiting to be exported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Unresolved records.
    pub records: u64,
    /// Bytes of unresolved records (per segment, its data bytes times the
    /// unresolved fraction of its records: an estimate when sizes vary).
    pub bytes: u64,
    /// Append time of the oldest unresolved record.
    pub oldest_append: Option<UnixNanos>,
    /// Segment files.
    pub segments: u64,
    /// Bytes of segment files.
    pub disk_bytes: u64,
}

/// One segment, as [`Queue::segments`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The index entry.
    pub meta: SegmentMeta,
    /// Whether it is the active segment.
    pub active: bool,
    /// Unresolved records.
    pub unresolved: u64,
}

/// What [`Queue::purge`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Segments deleted.
    pub segments: u64,
    /// Records they held.
    pub records: u64,
    /// Bytes freed.
    pub bytes: u64,
}

impl std::ops::AddAssign for PurgeReport {
    fn add_assign(&mut self, o: PurgeReport) {
        self.segments += o.segments;
        self.records += o.records;
        self.bytes += o.bytes;
    }
}

/// The export queue. All methods take `&self`; share it with an `Arc`.
pub struct Queue {
    ctx: Arc<Ctx>,
    writer: Writer,
    index: Mutex<Box<dyn Index>>,
    config: QueueConfig,
    quota: Mutex<()>,
    last_flush: Mutex<Instant>,
    _lock: Box<dyn LockGuard>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("dir", &self.ctx.dir)
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

    fn table(&self) -> MutexGuard<'_, Table> {
        self.ctx.table()
    }

    /// The settings.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// The queue directory.
    pub fn dir(&self) -> &Path {
        &self.ctx.dir
    }

    /// Appends a batch and waits until it is acknowledged.
    pub fn append(&self, batch: Batch) -> Result<AppendAck, QueueError> {
        Ok(self.submit(batch)?.wait()?)
    }

    /// Appends a batch; the returned future (also `Pending::wait`) resolves
    /// when it is acknowledged. Quota and size checks happen here.
    pub fn submit(&self, batch: Batch) -> Result<Pending, QueueError> {
        let limit = record::MAX_PAYLOAD_LEN - record::envelope_len(0) - 8;
        let largest = batch.max_event_len();
        if largest > limit {
            return Err(QueueError::RecordTooLarge {
                size: largest,
                limit,
            });
        }
        if let Some(e) = self.ctx.poisoned() {
            return Err(e.into());
        }
        let needed = batch.encoded_len();
        if self.far_from_quota(needed) {
            return Ok(self.writer.submit(batch));
        }
        let _quota = self.quota.lock().unwrap_or_else(|e| e.into_inner());
        self.make_room(needed)?;
        Ok(self.writer.submit(batch))
    }

    /// Whether [`Queue::submit`] of this batch returns at once: far from
    /// the quota it takes no lock but the intake's. Near it, submitting may
    /// purge segments or drop records first (file and index work), which
    /// async callers should move off their runtime.
    pub fn submit_is_quick(&self, batch: &Batch) -> bool {
        self.far_from_quota(batch.encoded_len())
    }

    /// Far from the quota, submitters skip its lock: concurrent ones can
    /// then overshoot it by at most their own batches, well inside the slack.
    fn far_from_quota(&self, needed: u64) -> bool {
        self.used_bytes() + needed + QUOTA_SLACK <= self.config.quota_bytes
    }

    fn used_bytes(&self) -> u64 {
        self.ctx.disk_bytes.load(Ordering::SeqCst) + self.ctx.pending_bytes.load(Ordering::SeqCst)
    }

    /// Frees space until `needed` more bytes fit under the quota, following
    /// the full policy. Called with the quota lock held.
    fn make_room(&self, needed: u64) -> Result<(), QueueError> {
        let quota = self.config.quota_bytes;
        if needed > quota {
            return Err(QueueError::BatchTooLarge { needed, quota });
        }
        loop {
            let used = self.used_bytes();
            if used + needed <= quota {
                return Ok(());
            }
            // Retention is for auditing; the quota is a hard limit.
            let early = self.purge_where(|_, _| true)?;
            if early.segments > 0 {
                tracing::warn!(
                    segments = early.segments,
                    bytes = early.bytes,
                    "queue at its quota: purged fully exported segments before their retention"
                );
                continue;
            }
            match self.config.full_policy {
                FullPolicy::Refuse => {
                    metrics::counter!("telespool_queue_refused_total").increment(1);
                    return Err(QueueError::Full {
                        quota,
                        used,
                        needed,
                    });
                }
                FullPolicy::DropOldest => {
                    if !self.drop_oldest()? {
                        return Err(QueueError::Full {
                            quota,
                            used,
                            needed,
                        });
                    }
                }
            }
        }
    }

    /// Drops the oldest segment's unresolved records and purges it. Returns
    /// false when nothing can be dropped.
    fn drop_oldest(&self) -> Result<bool, QueueError> {
        let now = self.ctx.clock.now();
        let victim = {
            let mut t = self.table();
            let active = t.active;
            let id = t
                .segments
                .values()
                .find(|e| e.meta.id != active && e.meta.sealed)
                .map(|e| e.meta.id);
            match id {
                Some(id) => {
                    let dropped = t.segments.get_mut(&id).map_or(0, |e| {
                        let (first, last) =
                            (e.meta.first_id, e.meta.last_id.unwrap_or(e.meta.first_id));
                        e.meta.resolve_range(first, last, Resolution::Dropped, now)
                    });
                    t.touch(id);
                    Some((id, dropped))
                }
                None => {
                    let has_records = t
                        .segments
                        .get(&active)
                        .is_some_and(|e| e.meta.records() > 0);
                    if !has_records {
                        return Ok(false);
                    }
                    None
                }
            }
        };
        let Some((id, dropped)) = victim else {
            // Only the active segment holds records: seal it, then retry.
            self.writer.roll()?;
            return Ok(true);
        };
        if dropped > 0 {
            tracing::warn!(segment = %id, records = dropped, "queue full: dropped the oldest unexported records (policy drop-oldest)");
            metrics::counter!("telespool_queue_dropped_total").increment(dropped);
        }
        // Progress only if the segment could actually go (a damaged index
        // entry could leave it unpurgeable; looping would hang submitters).
        Ok(self.purge_where(|e, _| e.id == id)?.segments > 0)
    }

    /// Resolves records as `how`.
    pub fn resolve(&self, ids: &[RecordId], how: Resolution) -> ResolveOutcome {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let now = self.ctx.clock.now();
        let mut out = ResolveOutcome::default();
        let mut t = self.table();
        let mut i = 0;
        while i < ids.len() {
            let id = ids[i];
            let Some(seg) = t.segment_of(id) else {
                out.unknown += 1;
                i += 1;
                continue;
            };
            // The run of consecutive ids inside this segment.
            let Some(e) = t.segments.get_mut(&seg) else {
                out.unknown += 1;
                i += 1;
                continue;
            };
            let mut j = i + 1;
            while j < ids.len() && ids[j].0 == ids[j - 1].0 + 1 && e.meta.holds(ids[j]) {
                j += 1;
            }
            let run = (j - i) as u64;
            let new = e.meta.resolve_range(id, ids[j - 1], how, now);
            out.resolved += new;
            out.already += run - new;
            if new > 0 {
                t.touch(seg);
            }
            i = j;
        }
        drop(t);
        if out.resolved > 0 {
            metrics::counter!("telespool_queue_resolved_total", "how" => how.as_str())
                .increment(out.resolved);
        }
        out
    }

    /// What is waiting to be exported.
    pub fn backlog(&self) -> Backlog {
        let (mut b, oldest) = {
            let t = self.table();
            let mut b = Backlog {
                segments: t.segments.len() as u64,
                disk_bytes: self.ctx.disk_bytes.load(Ordering::SeqCst),
                ..Backlog::default()
            };
            let mut oldest = None;
            for e in t.segments.values() {
                let un = e.meta.unresolved();
                if un == 0 {
                    continue;
                }
                b.records += un;
                let data = e.meta.bytes.saturating_sub(segment::HEADER_LEN as u64);
                let total = e.meta.records().max(1);
                b.bytes += (u128::from(data) * u128::from(un) / u128::from(total)) as u64;
                if oldest.is_none() {
                    oldest = e
                        .meta
                        .first_unresolved()
                        .map(|id| (e.meta.id, id, e.oldest));
                }
            }
            (b, oldest)
        };
        if let Some((seg, id, cached)) = oldest {
            b.oldest_append = match cached {
                Some((cid, t)) if cid == id => Some(t),
                _ => match self.get(id) {
                    Ok(Some(r)) => {
                        if let Some(e) = self.table().segments.get_mut(&seg) {
                            e.oldest = Some((id, r.append_time));
                        }
                        Some(r.append_time)
                    }
                    _ => None,
                },
            };
        }
        b
    }

    /// Every segment, in id order.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let t = self.table();
        t.segments
            .values()
            .map(|e| SegmentInfo {
                meta: e.meta.clone(),
                active: e.meta.id == t.active,
                unresolved: e.meta.unresolved(),
            })
            .collect()
    }

    /// Purges sealed segments whose records are all resolved and that
    /// became fully resolved at least `retention` ago.
    pub fn purge(&self, retention: Duration) -> Result<PurgeReport, QueueError> {
        let cutoff = self.ctx.clock.now().minus(retention);
        let r = self.purge_where(|m, _| m.fully_resolved_at.is_some_and(|t| t <= cutoff))?;
        if r.segments > 0 {
            tracing::info!(
                segments = r.segments,
                records = r.records,
                bytes = r.bytes,
                "purged fully exported segments"
            );
        }
        Ok(r)
    }

    /// Purges sealed, fully resolved segments matching `pick`, in the
    /// crash-safe order.
    fn purge_where(
        &self,
        pick: impl Fn(&SegmentMeta, bool) -> bool,
    ) -> Result<PurgeReport, QueueError> {
        let ids: Vec<SegmentId> = {
            let t = self.table();
            t.segments
                .values()
                .filter(|e| e.meta.id != t.active && e.meta.sealed && e.meta.all_resolved())
                .filter(|e| pick(&e.meta, e.meta.fully_resolved_at.is_some()))
                .map(|e| e.meta.id)
                .collect()
        };
        if ids.is_empty() {
            return Ok(PurgeReport::default());
        }
        let _span = tracing::info_span!("purge", segments = ids.len()).entered();
        // The index lock is held throughout, so no other flush can record a
        // removal before the deletions are durable.
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        // 1. The index must say "fully resolved" durably before a file goes.
        self.flush_locked(&mut index)?;
        let mut taken: Vec<crate::log::table::Entry> = Vec::new();
        let mut failed = None;
        for id in &ids {
            let Some(entry) = self.table().take(*id) else {
                continue;
            };
            let path = self.ctx.dir.join(segment::file_name(*id));
            // 2. Delete the file.
            match self.ctx.storage.remove(&path) {
                Ok(()) => taken.push(entry),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => taken.push(entry),
                Err(e) => {
                    self.table().insert(entry);
                    failed = Some(QueueError::io("removing", &path, e));
                    break;
                }
            }
        }
        // 3. Make the deletions durable.
        if let Err(e) = self.ctx.storage.sync_dir(&self.ctx.dir) {
            // Not durable: keep the entries (their files may come back after
            // a power loss) and retry on a later purge.
            let mut t = self.table();
            for entry in taken {
                t.insert(entry);
            }
            return Err(QueueError::io("syncing directory", &self.ctx.dir, e));
        }
        let mut report = PurgeReport::default();
        {
            let mut t = self.table();
            for entry in &taken {
                t.removed.insert(entry.meta.id);
                report.segments += 1;
                report.records += entry.meta.records();
                report.bytes += entry.meta.bytes;
            }
        }
        let freed = report.bytes.min(self.ctx.disk_bytes.load(Ordering::SeqCst));
        self.ctx.disk_bytes.fetch_sub(freed, Ordering::SeqCst);
        // 4. Then drop the index entries.
        self.flush_locked(&mut index)?;
        metrics::counter!("telespool_queue_purged_segments_total").increment(report.segments);
        metrics::counter!("telespool_queue_purged_records_total").increment(report.records);
        match failed {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Writes every changed segment entry to the index and flushes it.
    pub fn flush_index(&self) -> Result<(), QueueError> {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        self.flush_locked(&mut index)
    }

    fn flush_locked(&self, index: &mut Box<dyn Index>) -> Result<(), QueueError> {
        let (metas, removed) = {
            let mut t = self.table();
            let dirty = std::mem::take(&mut t.dirty);
            let removed = std::mem::take(&mut t.removed);
            let metas: Vec<_> = dirty
                .iter()
                .filter_map(|id| t.segments.get(id).map(|e| e.meta.clone()))
                .collect();
            (metas, removed)
        };
        if metas.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let r = (|| {
            for m in &metas {
                index.put(m)?;
            }
            for id in &removed {
                index.remove(*id)?;
            }
            index.flush()
        })();
        if let Err(e) = r {
            // Keep them dirty for the next attempt.
            let mut t = self.table();
            t.dirty.extend(metas.iter().map(|m| m.id));
            t.removed.extend(removed);
            return Err(e.into());
        }
        *self.last_flush.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        Ok(())
    }

    /// Periodic maintenance: rolls the active segment if it is past its
    /// age, and flushes the index if the flush interval has passed.
    pub fn tick(&self) -> Result<(), QueueError> {
        self.writer.check_age();
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
        Ok(self.writer.roll()?)
    }

    /// Waits until every append submitted before the call is durable and
    /// readable, whatever the sync policy's timer says (under `never`:
    /// readable only).
    pub fn sync(&self) -> Result<(), QueueError> {
        Ok(self.writer.sync()?)
    }

    /// The failure that poisoned the log, if any.
    pub fn poisoned(&self) -> Option<AppendError> {
        self.ctx.poisoned()
    }

    /// Stops intake, writes and syncs what was accepted, flushes the index.
    pub fn close(mut self) -> Result<(), QueueError> {
        self.writer.close();
        self.flush_index()
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.writer.close();
        if let Err(e) = self.flush_index() {
            tracing::warn!(error = %e, "flushing the queue index at close failed");
        }
    }
}
