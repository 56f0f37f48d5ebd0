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

mod error;
pub mod open;
mod read;
mod recovery;
pub mod verify;

use crate::clock::{Clock, SystemClock, UnixNanos};
use crate::ids::{RecordId, SegmentId};
use crate::index::{Index, SledIndex};
use crate::log::segment;
use crate::log::{
    AppendAck, AppendError, Batch, Entry, Log, LogState, PendingAppend, SyncPolicy, Table, record,
};
use crate::segment_meta::{Resolution, SegmentMeta};
use crate::storage::{FsStorage, LockGuard, Storage};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use error::{ConfigError, Inconsistency, QueueError};
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
    pub fn validate(&self) -> Result<(), ConfigError> {
        let min = (segment::HEADER_LEN + record::encoded_len(0)) as u64;
        if self.segment_bytes < min {
            return Err(ConfigError::SegmentTooSmall {
                min,
                got: self.segment_bytes,
            });
        }
        if self.quota_bytes < self.segment_bytes.min(DEFAULT_SEGMENT_BYTES) {
            return Err(ConfigError::QuotaBelowSegment {
                quota: self.quota_bytes,
                segment: self.segment_bytes,
            });
        }
        if self.segment_age.is_zero() {
            return Err(ConfigError::ZeroSegmentAge);
        }
        Ok(())
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
        self.state().used_bytes()
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
        let now = self.state().now();
        let victim = {
            let mut t = self.table();
            let oldest = t.oldest_sealed().map(|e| {
                let m = e.meta();
                (m.id, m.first_id, m.last_id.unwrap_or(m.first_id))
            });
            match oldest {
                Some((id, first, last)) => {
                    let dropped = t.resolve(id, first, last, Resolution::Dropped, now);
                    Some((id, dropped))
                }
                None => {
                    let has_records = t.get(t.active()).is_some_and(|e| e.meta().records() > 0);
                    if !has_records {
                        return Ok(false);
                    }
                    None
                }
            }
        };
        let Some((id, dropped)) = victim else {
            // Only the active segment holds records: seal it, then retry.
            self.log.roll()?;
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
        let now = self.state().now();
        let mut out = ResolveOutcome::default();
        let mut t = self.table();
        let mut i = 0;
        while i < ids.len() {
            let id = ids[i];
            let Some(e) = t.segment_of(id).and_then(|seg| t.get(seg)) else {
                out.unknown += 1;
                i += 1;
                continue;
            };
            // The run of consecutive ids inside this segment.
            let meta = e.meta();
            let mut j = i + 1;
            while j < ids.len() && ids[j].0 == ids[j - 1].0 + 1 && meta.holds(ids[j]) {
                j += 1;
            }
            let seg = meta.id;
            let run = (j - i) as u64;
            let new = t.resolve(seg, id, ids[j - 1], how, now);
            out.resolved += new;
            out.already += run - new;
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
                segments: t.len() as u64,
                disk_bytes: self.state().disk_bytes(),
                ..Backlog::default()
            };
            let mut oldest = None;
            for e in t.iter() {
                let m = e.meta();
                let un = m.unresolved();
                if un == 0 {
                    continue;
                }
                b.records += un;
                let data = m.bytes.saturating_sub(segment::HEADER_LEN as u64);
                let total = m.records().max(1);
                b.bytes += (u128::from(data) * u128::from(un) / u128::from(total)) as u64;
                if oldest.is_none() {
                    oldest = m.first_unresolved().map(|id| (m.id, id, e.oldest()));
                }
            }
            (b, oldest)
        };
        if let Some((seg, id, cached)) = oldest {
            b.oldest_append = match cached {
                Some((cid, t)) if cid == id => Some(t),
                _ => match self.get(id) {
                    Ok(Some(r)) => {
                        if let Some(e) = self.table().get_mut(seg) {
                            e.cache_oldest(id, r.append_time);
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
        t.iter()
            .map(|e| SegmentInfo {
                meta: e.meta().clone(),
                active: e.meta().id == t.active(),
                unresolved: e.meta().unresolved(),
            })
            .collect()
    }

    /// Purges sealed segments whose records are all resolved and that
    /// became fully resolved at least `retention` ago.
    pub fn purge(&self, retention: Duration) -> Result<PurgeReport, QueueError> {
        let cutoff = self.state().now().minus(retention);
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
            t.iter()
                .map(Entry::meta)
                .filter(|m| m.id != t.active() && m.sealed && m.all_resolved())
                .filter(|m| pick(m, m.fully_resolved_at.is_some()))
                .map(|m| m.id)
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
        let state = self.state();
        let mut taken: Vec<Entry> = Vec::new();
        let mut failed = None;
        for id in &ids {
            let Some(entry) = self.table().take(*id) else {
                continue;
            };
            let path = state.segment_path(*id);
            // 2. Delete the file.
            match state.storage().remove(&path) {
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
        if let Err(e) = state.storage().sync_dir(state.dir()) {
            // Not durable: keep the entries (their files may come back after
            // a power loss) and retry on a later purge.
            let mut t = self.table();
            for entry in taken {
                t.insert(entry);
            }
            return Err(QueueError::io("syncing directory", state.dir(), e));
        }
        let mut report = PurgeReport::default();
        {
            let mut t = self.table();
            for entry in &taken {
                let m = entry.meta();
                t.record_removed(m.id);
                report.segments += 1;
                report.records += m.records();
                report.bytes += m.bytes;
            }
        }
        state.release_disk_bytes(report.bytes);
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
        let changes = self.table().take_changes();
        if changes.is_empty() {
            return Ok(());
        }
        let r = (|| {
            for m in &changes.metas {
                index.put(m)?;
            }
            for id in &changes.removed {
                index.remove(*id)?;
            }
            index.flush()
        })();
        if let Err(e) = r {
            // Keep them dirty for the next attempt.
            self.table().restore_changes(changes);
            return Err(e.into());
        }
        *self.last_flush.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        Ok(())
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
