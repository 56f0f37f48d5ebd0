//! The in-memory segment table, shared by the writer threads, readers and
//! the queue. One mutex guards it ([`super::LogState::table`]); nobody holds
//! it across I/O.
//!
//! Every change to a segment's [`SegmentMeta`] goes through a method here
//! that also marks the segment *dirty*, so the queue's next index flush
//! ([`Table::take_changes`]) writes it; removals are recorded the same way.
//! An [`Entry`]'s other fields are caches the readers fill (open handle,
//! memory map, sparse offsets, the oldest record's append time).

use super::segment::{HEADER_LEN, Header};
use crate::clock::UnixNanos;
use crate::ids::{RecordId, SegmentId};
use crate::segment_meta::{Resolution, SegmentMeta};
use crate::storage::{Mapped, StorageFile};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One segment as the process knows it.
pub(crate) struct Entry {
    /// What the index stores about it.
    meta: SegmentMeta,
    /// Open handle (always for the active segment; lazily for sealed ones).
    file: Option<Arc<dyn StorageFile>>,
    /// Read-only map (sealed segments, lazily).
    map: Option<Mapped>,
    /// (record id, file offset) every `SPARSE_EVERY` records, ascending.
    sparse: Vec<(RecordId, u64)>,
    /// Whether `sparse` covers the whole segment (else it must be built by a
    /// walk before seeking).
    sparse_complete: bool,
    /// Bytes of the file readers may read (durable records).
    visible_end: u64,
    /// Cached append time of the first unresolved record.
    oldest: Option<(RecordId, UnixNanos)>,
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
    /// A segment just created with `header`: empty, its sparse offsets
    /// complete (there are none yet).
    pub fn created(header: &Header, file: Arc<dyn StorageFile>) -> Entry {
        let hl = HEADER_LEN as u64;
        Entry {
            meta: SegmentMeta::new(header.segment, header.first_id, header.created, hl),
            file: Some(file),
            map: None,
            sparse: Vec::new(),
            sparse_complete: true,
            visible_end: hl,
            oldest: None,
        }
    }

    /// A sealed segment the index vouches for, not read: its sparse offsets
    /// are built by a walk on its first read.
    pub fn trusted(meta: SegmentMeta) -> Entry {
        Entry {
            visible_end: meta.bytes,
            meta,
            file: None,
            map: None,
            sparse: Vec::new(),
            sparse_complete: false,
            oldest: None,
        }
    }

    /// A segment recovery walked: `meta.bytes` is where its valid records
    /// end, and `sparse` covers all of them.
    pub fn walked(
        meta: SegmentMeta,
        file: Arc<dyn StorageFile>,
        sparse: Vec<(RecordId, u64)>,
    ) -> Entry {
        Entry {
            visible_end: meta.bytes,
            meta,
            file: Some(file),
            map: None,
            sparse,
            sparse_complete: true,
            oldest: None,
        }
    }

    /// What the index stores about the segment.
    pub fn meta(&self) -> &SegmentMeta {
        &self.meta
    }

    /// The open handle, if one was opened.
    pub fn file(&self) -> Option<&Arc<dyn StorageFile>> {
        self.file.as_ref()
    }

    /// The read-only map, if one was taken.
    pub fn map(&self) -> Option<&Mapped> {
        self.map.as_ref()
    }

    /// Bytes readers may read (durable records).
    pub fn visible_end(&self) -> u64 {
        self.visible_end
    }

    /// Whether the sparse offsets cover the whole segment.
    pub fn sparse_complete(&self) -> bool {
        self.sparse_complete
    }

    /// The cached append time of the first unresolved record, with its id.
    pub fn oldest(&self) -> Option<(RecordId, UnixNanos)> {
        self.oldest
    }

    /// The greatest sparse point at or before `id`.
    pub fn seek(&self, id: RecordId) -> Option<(RecordId, u64)> {
        let i = self.sparse.partition_point(|&(r, _)| r <= id);
        i.checked_sub(1).and_then(|i| self.sparse.get(i).copied())
    }

    /// Keeps an open handle for later reads.
    pub fn cache_file(&mut self, file: Arc<dyn StorageFile>) {
        self.file = Some(file);
    }

    /// Keeps a read-only map for later reads (sealed segments only).
    pub fn cache_map(&mut self, map: Mapped) {
        self.map = Some(map);
    }

    /// Installs sparse offsets built by a walk of the whole segment.
    pub fn set_sparse(&mut self, sparse: Vec<(RecordId, u64)>) {
        self.sparse = sparse;
        self.sparse_complete = true;
    }

    /// Remembers the append time of record `id`, the first unresolved one.
    pub fn cache_oldest(&mut self, id: RecordId, append_time: UnixNanos) {
        self.oldest = Some((id, append_time));
    }
}

/// The index updates a flush must write: changed entries and removed ids.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Entries whose meta changed, as they are now.
    pub metas: Vec<SegmentMeta>,
    /// Segments removed.
    pub removed: BTreeSet<SegmentId>,
}

impl Changes {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.metas.is_empty() && self.removed.is_empty()
    }
}

/// All segments, by id.
#[derive(Debug, Default)]
pub(crate) struct Table {
    segments: BTreeMap<SegmentId, Entry>,
    /// The segment appends go to.
    active: SegmentId,
    /// Segments whose meta changed since the last index flush.
    dirty: BTreeSet<SegmentId>,
    /// Segments removed since the last index flush.
    removed: BTreeSet<SegmentId>,
    /// Segments by first record id.
    by_first: BTreeMap<RecordId, SegmentId>,
}

impl Table {
    /// Adds a segment (dirty: the index learns of it at the next flush).
    pub fn insert(&mut self, e: Entry) {
        self.by_first.insert(e.meta.first_id, e.meta.id);
        self.dirty.insert(e.meta.id);
        self.removed.remove(&e.meta.id);
        self.segments.insert(e.meta.id, e);
    }

    /// Removes a segment and records the removal for the index.
    pub fn remove(&mut self, id: SegmentId) -> Option<Entry> {
        let e = self.take(id)?;
        self.removed.insert(id);
        Some(e)
    }

    /// Takes a segment out of the table without recording its removal for
    /// the index (the caller records it with [`Table::record_removed`] once
    /// the file's deletion is durable, or puts the entry back).
    pub fn take(&mut self, id: SegmentId) -> Option<Entry> {
        let e = self.segments.remove(&id)?;
        if self.by_first.get(&e.meta.first_id) == Some(&id) {
            self.by_first.remove(&e.meta.first_id);
        }
        self.dirty.remove(&id);
        Some(e)
    }

    /// Records the removal of a segment taken out with [`Table::take`].
    pub fn record_removed(&mut self, id: SegmentId) {
        self.removed.insert(id);
    }

    /// Ids of segments removed since the last flush.
    pub fn removed(&self) -> &BTreeSet<SegmentId> {
        &self.removed
    }

    /// The segment appends go to.
    pub fn active(&self) -> SegmentId {
        self.active
    }

    /// Makes `id` the segment appends go to.
    pub fn set_active(&mut self, id: SegmentId) {
        self.active = id;
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// A segment.
    pub fn get(&self, id: SegmentId) -> Option<&Entry> {
        self.segments.get(&id)
    }

    /// A segment, to fill its read caches.
    pub fn get_mut(&mut self, id: SegmentId) -> Option<&mut Entry> {
        self.segments.get_mut(&id)
    }

    /// Every segment, in id order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Entry> + '_ {
        self.segments.values()
    }

    /// Segments with ids `>= from`, in id order.
    pub fn iter_from(&self, from: SegmentId) -> impl Iterator<Item = &Entry> + '_ {
        self.segments.range(from..).map(|(_, e)| e)
    }

    /// The segment with the highest id.
    pub fn newest(&self) -> Option<&Entry> {
        self.segments.values().next_back()
    }

    /// The oldest sealed segment that is not the active one.
    pub fn oldest_sealed(&self) -> Option<&Entry> {
        self.segments
            .values()
            .find(|e| e.meta.id != self.active && e.meta.sealed)
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

    /// Resolves records `[a, b]` of segment `id` as `how` (see
    /// [`SegmentMeta::resolve_range`]); returns how many were newly
    /// resolved (0 for an unknown segment).
    pub fn resolve(
        &mut self,
        id: SegmentId,
        a: RecordId,
        b: RecordId,
        how: Resolution,
        now: UnixNanos,
    ) -> u64 {
        let Some(e) = self.segments.get_mut(&id) else {
            return 0;
        };
        let new = e.meta.resolve_range(a, b, how, now);
        if new > 0 {
            self.dirty.insert(id);
        }
        new
    }

    /// Seals a segment (no more appends); it counts as fully resolved from
    /// `now` if nothing in it is left unresolved.
    pub fn seal(&mut self, id: SegmentId, now: UnixNanos) {
        if let Some(e) = self.segments.get_mut(&id) {
            e.meta.sealed = true;
            e.meta.mark_if_fully_resolved(now);
            e.map = None;
            self.dirty.insert(id);
        }
    }

    /// Makes a synced group of segment `id` visible: readers may read up to
    /// `end`, its last record is at least `last`, and `sparse` extends its
    /// sparse offsets.
    pub fn made_durable(
        &mut self,
        id: SegmentId,
        end: u64,
        last: Option<RecordId>,
        sparse: &[(RecordId, u64)],
    ) {
        let Some(e) = self.segments.get_mut(&id) else {
            return;
        };
        e.visible_end = e.visible_end.max(end);
        e.meta.bytes = e.meta.bytes.max(end);
        if let Some(last) = last {
            e.meta.last_id = Some(e.meta.last_id.map_or(last, |l| l.max(last)));
        }
        e.sparse.extend_from_slice(sparse);
        self.dirty.insert(id);
    }

    /// Marks every segment changed, so the next flush writes the whole
    /// table (after recovery).
    pub fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.segments.keys().copied());
    }

    /// Takes what changed since the last flush, for the index. If writing
    /// it fails, [`Table::restore_changes`] keeps it for the next attempt.
    pub fn take_changes(&mut self) -> Changes {
        let dirty = std::mem::take(&mut self.dirty);
        let removed = std::mem::take(&mut self.removed);
        let metas = dirty
            .iter()
            .filter_map(|id| self.segments.get(id).map(|e| e.meta.clone()))
            .collect();
        Changes { metas, removed }
    }

    /// Puts back changes a failed flush could not write.
    pub fn restore_changes(&mut self, changes: Changes) {
        self.dirty.extend(changes.metas.iter().map(|m| m.id));
        self.removed.extend(changes.removed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, first: u64, last: Option<u64>) -> Entry {
        let mut meta = SegmentMeta::new(SegmentId(id), RecordId(first), UnixNanos(0), 48);
        meta.last_id = last.map(RecordId);
        meta.sealed = true;
        Entry::trusted(meta)
    }

    #[test]
    fn resolving_marks_the_segment_for_the_next_flush_and_a_failed_flush_keeps_it() {
        let mut t = Table::default();
        t.insert(entry(1, 1, Some(10)));
        t.insert(entry(2, 11, Some(20)));
        assert_eq!(t.take_changes().metas.len(), 2);
        assert!(t.take_changes().is_empty());
        assert_eq!(
            t.resolve(
                SegmentId(2),
                RecordId(11),
                RecordId(12),
                Resolution::Acked,
                UnixNanos(1)
            ),
            2
        );
        let changes = t.take_changes();
        assert_eq!(changes.metas.len(), 1);
        t.restore_changes(changes);
        assert_eq!(t.take_changes().metas[0].watermark, RecordId(12));
    }

    #[test]
    fn a_taken_segment_is_removed_from_the_index_only_once_recorded() {
        let mut t = Table::default();
        t.insert(entry(1, 1, Some(10)));
        t.take_changes();
        let e = t.take(SegmentId(1));
        assert!(e.is_some() && t.segment_of(RecordId(5)).is_none());
        assert!(t.take_changes().is_empty());
        t.record_removed(SegmentId(1));
        assert_eq!(
            t.take_changes().removed.into_iter().collect::<Vec<_>>(),
            vec![SegmentId(1)]
        );
    }
}
