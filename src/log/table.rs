//! The in-memory segment table, shared by the writer threads, readers and
//! the queue. One mutex guards it; nobody holds it across I/O.

use crate::clock::UnixNanos;
use crate::ids::{RecordId, SegmentId};
use crate::segment_meta::SegmentMeta;
use crate::storage::{Mapped, StorageFile};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One segment as the process knows it.
pub(crate) struct Entry {
    /// What the index stores about it.
    pub meta: SegmentMeta,
    /// Open handle (always for the active segment; lazily for sealed ones).
    pub file: Option<Arc<dyn StorageFile>>,
    /// Read-only map (sealed segments, lazily).
    pub map: Option<Mapped>,
    /// (record id, file offset) every `SPARSE_EVERY` records, ascending.
    pub sparse: Vec<(RecordId, u64)>,
    /// Whether `sparse` covers the whole segment (else it must be built by a
    /// walk before seeking).
    pub sparse_complete: bool,
    /// Bytes of the file readers may read (durable records).
    pub visible_end: u64,
    /// Cached append time of the first unresolved record.
    pub oldest: Option<(RecordId, UnixNanos)>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("meta", &self.meta)
            .field("mapped", &self.map.is_some())
            .field("sparse", &self.sparse.len())
            .field("visible_end", &self.visible_end)
            .finish_non_exhaustive()
    }
}

impl Entry {
    /// The greatest sparse point at or before `id`.
    pub fn seek(&self, id: RecordId) -> Option<(RecordId, u64)> {
        let i = self.sparse.partition_point(|&(r, _)| r <= id);
        i.checked_sub(1).and_then(|i| self.sparse.get(i).copied())
    }
}

/// All segments, by id.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub segments: BTreeMap<SegmentId, Entry>,
    /// The segment appends go to.
    pub active: SegmentId,
    /// Segments whose meta changed since the last index flush.
    pub dirty: BTreeSet<SegmentId>,
    /// Segments removed since the last index flush.
    pub removed: BTreeSet<SegmentId>,
    /// Segments by first record id.
    by_first: BTreeMap<RecordId, SegmentId>,
}

impl Table {
    /// Adds a segment.
    pub fn insert(&mut self, e: Entry) {
        self.by_first.insert(e.meta.first_id, e.meta.id);
        self.dirty.insert(e.meta.id);
        self.removed.remove(&e.meta.id);
        self.segments.insert(e.meta.id, e);
    }

    /// Removes a segment.
    pub fn remove(&mut self, id: SegmentId) -> Option<Entry> {
        let e = self.segments.remove(&id)?;
        if self.by_first.get(&e.meta.first_id) == Some(&id) {
            self.by_first.remove(&e.meta.first_id);
        }
        self.dirty.remove(&id);
        self.removed.insert(id);
        Some(e)
    }

    /// Takes a segment out of the table without recording its removal for
    /// the index (the caller records it once the file's deletion is
    /// durable).
    pub fn take(&mut self, id: SegmentId) -> Option<Entry> {
        let e = self.segments.remove(&id)?;
        if self.by_first.get(&e.meta.first_id) == Some(&id) {
            self.by_first.remove(&e.meta.first_id);
        }
        self.dirty.remove(&id);
        Some(e)
    }

    /// The segment whose range starts at or before `id` (the one that would
    /// hold it).
    pub fn segment_at(&self, id: RecordId) -> Option<SegmentId> {
        self.by_first.range(..=id).next_back().map(|(_, &s)| s)
    }

    /// The segment holding record `id`, if any.
    pub fn segment_of(&self, id: RecordId) -> Option<SegmentId> {
        let s = self.segment_at(id)?;
        self.segments
            .get(&s)
            .filter(|e| e.meta.holds(id))
            .map(|e| e.meta.id)
    }

    /// Marks a segment's meta as changed.
    pub fn touch(&mut self, id: SegmentId) {
        self.dirty.insert(id);
    }
}
