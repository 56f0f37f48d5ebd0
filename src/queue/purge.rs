//! Purging fully resolved segments, in the crash-safe order, and flushing
//! the index.

use super::{Queue, QueueError};
use crate::ids::SegmentId;
use crate::index::Index;
use crate::log::Entry;
use crate::segment_meta::SegmentMeta;
use std::time::{Duration, Instant};

/// Metric: records in purged segments.
pub const PURGED_RECORDS: &str = "telespool_queue_purged_records_total";
/// Metric: segments purged after their retention.
pub const PURGED_SEGMENTS: &str = "telespool_queue_purged_segments_total";

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

impl Queue {
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
    pub(super) fn purge_where(
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
        metrics::counter!(PURGED_SEGMENTS).increment(report.segments);
        metrics::counter!(PURGED_RECORDS).increment(report.records);
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

    pub(super) fn flush_locked(&self, index: &mut Box<dyn Index>) -> Result<(), QueueError> {
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
}
