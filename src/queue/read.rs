//! Reading records: unresolved ones from a position (the exporter), or one
//! by id.
//!
//! Sealed segments are read through a memory map, taken on first read and
//! dropped when the segment is purged; the active segment through bounded
//! `pread`s of its visible (durable) part. The first read of a sealed
//! segment that the index vouched for (and so was not walked on open) walks
//! it once to build its sparse offsets; that walk, like every read, checks
//! every CRC. Damage found while reading is logged, counted, and its ids are
//! resolved as lost, so a bad record can never pin its segment.

use super::{Queue, QueueError};
use crate::ids::{RecordId, SegmentId};
use crate::log::Record;
use crate::log::segment::{self, HEADER_LEN, Step, Walk};
use crate::segment_meta::{RangeSet, Resolution};
use crate::storage::{Mapped, StorageFile, read_exact_at};
use std::sync::Arc;

/// Bytes read per `pread` from the active segment (grown when a single
/// record is larger).
const CHUNK: u64 = 1024 * 1024;

enum Source {
    Map(Mapped),
    File(Arc<dyn StorageFile>),
}

/// What a read needs to know about one segment, taken under the table lock.
struct View {
    id: SegmentId,
    source: Source,
    /// Walk from here (a sparse point at or before the first wanted id).
    start: (RecordId, u64),
    end: u64,
    last: Option<RecordId>,
    watermark: RecordId,
    resolved: RangeSet,
}

/// Limits of one read.
#[derive(Clone, Copy, Debug)]
struct Limits {
    records: usize,
    bytes: usize,
    include_resolved: bool,
}

impl Queue {
    /// Reads up to `max_records` unresolved records with ids `>= from`, in
    /// id order, stopping early once `max_bytes` of events are collected
    /// (at least one record is returned if any is available). Only durable
    /// records are visible.
    pub fn read(
        &self,
        from: RecordId,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, QueueError> {
        self.read_limited(
            from,
            Limits {
                records: max_records,
                bytes: max_bytes,
                include_resolved: false,
            },
        )
    }

    /// Reads one record by id, resolved or not.
    pub fn get(&self, id: RecordId) -> Result<Option<Record>, QueueError> {
        let recs = self.read_limited(
            id,
            Limits {
                records: 1,
                bytes: usize::MAX,
                include_resolved: true,
            },
        )?;
        Ok(recs.into_iter().next().filter(|r| r.id == id))
    }

    fn read_limited(&self, from: RecordId, limits: Limits) -> Result<Vec<Record>, QueueError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut cursor = from.max(RecordId(1));
        while out.len() < limits.records && (bytes < limits.bytes || out.is_empty()) {
            let Some(view) = self.view(cursor, limits.include_resolved)? else {
                break;
            };
            let next = view.last.map_or(cursor, RecordId::next);
            self.collect(&view, cursor, limits, &mut out, &mut bytes)?;
            if limits.include_resolved && !out.is_empty() {
                break;
            }
            if next <= cursor {
                break;
            }
            cursor = next;
        }
        Ok(out)
    }

    /// The first segment with something to read at or after `cursor`.
    fn view(&self, cursor: RecordId, include_resolved: bool) -> Result<Option<View>, QueueError> {
        loop {
            let (id, needs_sparse) = {
                let t = self.table();
                let from_seg = t.segment_at(cursor).unwrap_or(SegmentId(0));
                let found = t.iter_from(from_seg).find(|e| {
                    e.meta().last_id.is_some_and(|l| l >= cursor)
                        && (include_resolved || e.meta().unresolved() > 0)
                });
                let Some(e) = found else { return Ok(None) };
                (e.meta().id, e.meta().sealed && !e.sparse_complete())
            };
            if needs_sparse {
                self.build_sparse(id)?;
                continue;
            }
            let mut t = self.table();
            let active = t.active();
            let Some(e) = t.get_mut(id) else {
                continue;
            };
            let sealed = e.meta().sealed && id != active;
            let source = if sealed {
                match e.map() {
                    Some(m) => Source::Map(m.clone()),
                    None => {
                        let file = self.segment_file(id, e.file().cloned())?;
                        let m = file.map().map_err(|err| {
                            QueueError::io("mapping", &self.segment_path(id), err)
                        })?;
                        e.cache_map(m.clone());
                        e.cache_file(file);
                        Source::Map(m)
                    }
                }
            } else {
                let file = self.segment_file(id, e.file().cloned())?;
                e.cache_file(file.clone());
                Source::File(file)
            };
            let meta = e.meta();
            let want = if include_resolved {
                cursor.max(meta.first_id)
            } else {
                cursor.max(meta.watermark.next())
            };
            let start = e.seek(want).unwrap_or((meta.first_id, HEADER_LEN as u64));
            return Ok(Some(View {
                id,
                source,
                start,
                end: e.visible_end(),
                last: meta.last_id,
                watermark: if include_resolved {
                    RecordId(0)
                } else {
                    meta.watermark
                },
                resolved: if include_resolved {
                    RangeSet::default()
                } else {
                    meta.resolved_above.clone()
                },
            }));
        }
    }

    fn segment_path(&self, id: SegmentId) -> std::path::PathBuf {
        self.state().segment_path(id)
    }

    fn segment_file(
        &self,
        id: SegmentId,
        file: Option<Arc<dyn StorageFile>>,
    ) -> Result<Arc<dyn StorageFile>, QueueError> {
        match file {
            Some(f) => Ok(f),
            None => {
                let path = self.segment_path(id);
                self.state()
                    .storage()
                    .open(&path)
                    .map_err(|e| QueueError::io("opening", &path, e))
            }
        }
    }

    /// Walks a sealed segment once to build its sparse offsets, resolving
    /// damaged records as lost.
    fn build_sparse(&self, id: SegmentId) -> Result<(), QueueError> {
        let (file, map) = {
            let t = self.table();
            let Some(e) = t.get(id) else {
                return Ok(());
            };
            (e.file().cloned(), e.map().cloned())
        };
        let map = match map {
            Some(m) => m,
            None => {
                let file = self.segment_file(id, file)?;
                file.map()
                    .map_err(|e| QueueError::io("mapping", &self.segment_path(id), e))?
            }
        };
        let data: &[u8] = (*map).as_ref();
        let header = segment::Header::decode(data).map_err(|reason| QueueError::BadSegment {
            path: self.segment_path(id),
            reason,
        })?;
        let scan = segment::scan(data, &header);
        let mut lost: Vec<(RecordId, RecordId)> =
            scan.damage.iter().filter_map(|d| d.lost).collect();
        for d in &scan.damage {
            tracing::error!(segment = %id, offset = d.offset, len = d.len, cause = %d.cause, lost = ?d.lost, "damaged records in a sealed segment");
        }
        let mut t = self.table();
        if let Some(e) = t.get_mut(id) {
            if let (Some(tail), Some(last)) = (scan.tail, e.meta().last_id) {
                let file_last = scan.last.unwrap_or(e.meta().first_id.prev());
                tracing::error!(segment = %id, offset = tail.offset, cause = %tail.cause, "sealed segment ends in undecodable bytes");
                if last > file_last {
                    lost.push((file_last.next(), last));
                }
            }
            e.set_sparse(scan.sparse);
            e.cache_map(map.clone());
        }
        drop(t);
        self.lose(id, &lost);
        Ok(())
    }

    /// Resolves damaged records as lost and reports them.
    fn lose(&self, id: SegmentId, ranges: &[(RecordId, RecordId)]) {
        if ranges.is_empty() {
            return;
        }
        let now = self.state().now();
        let mut resolved = 0;
        {
            let mut t = self.table();
            for &(a, b) in ranges {
                resolved += t.resolve(id, a, b, Resolution::Lost, now);
            }
        }
        if resolved > 0 {
            tracing::error!(segment = %id, records = resolved, ranges = ?ranges, "records lost to corruption");
            metrics::counter!(super::recovery::LOST_RECORDS).increment(resolved);
        }
    }

    fn collect(
        &self,
        v: &View,
        cursor: RecordId,
        limits: Limits,
        out: &mut Vec<Record>,
        bytes: &mut usize,
    ) -> Result<(), QueueError> {
        let mut lost = Vec::new();
        let mut walk_from = v.start;
        let mut chunk = CHUNK;
        'chunks: while walk_from.1 < v.end {
            let owned;
            let data: &[u8] = match &v.source {
                Source::Map(m) => {
                    let all: &[u8] = (**m).as_ref();
                    // A sealed segment's file holds at least its visible
                    // part: checked or walked at open, cut at its seal.
                    let Some(data) = all.get(walk_from.1 as usize..v.end as usize) else {
                        debug_assert!(false, "segment {} mapped shorter than visible", v.id);
                        return Err(QueueError::Shrank {
                            path: self.segment_path(v.id),
                            len: all.len() as u64,
                            expected: v.end,
                        });
                    };
                    data
                }
                Source::File(f) => {
                    let len = (v.end - walk_from.1).min(chunk);
                    let mut buf = vec![0u8; len as usize];
                    read_exact_at(f.as_ref(), &mut buf, walk_from.1)
                        .map_err(|e| QueueError::io("reading", &self.segment_path(v.id), e))?;
                    owned = buf;
                    &owned
                }
            };
            // Only a bounded read of the active segment can end inside a
            // record that is really there.
            let cut =
                matches!(v.source, Source::File(_)) && walk_from.1 + (data.len() as u64) < v.end;
            let mut progressed = false;
            let mut walk = Walk::new(data, walk_from.1, walk_from.0.prev());
            if let Some(last) = v.last {
                walk = walk.max_id(last);
            }
            if cut {
                walk = walk.cut_short();
            }
            for step in walk {
                match step {
                    Step::Record {
                        record,
                        offset,
                        len,
                    } => {
                        progressed = true;
                        walk_from = (record.id.next(), offset + len);
                        if record.id < cursor
                            || (!limits.include_resolved
                                && (record.id <= v.watermark || v.resolved.contains(record.id.0)))
                        {
                            continue;
                        }
                        *bytes += record.event.len();
                        out.push(Record {
                            id: record.id,
                            append_time: record.append_time,
                            event: bytes::Bytes::copy_from_slice(record.event),
                        });
                        if out.len() >= limits.records || *bytes >= limits.bytes {
                            break 'chunks;
                        }
                    }
                    Step::Damage(d) => {
                        progressed = true;
                        if let Some(l) = d.lost {
                            lost.push(l);
                        }
                        walk_from = (walk_from.0, d.offset + d.len);
                    }
                    Step::Tail(t) => {
                        if cut {
                            // The chunk ended inside a record: read on.
                            if !progressed {
                                chunk = chunk.saturating_mul(2);
                            }
                            walk_from.1 = t.offset;
                            continue 'chunks;
                        }
                        let last_visible = v.last.unwrap_or(walk_from.0.prev());
                        tracing::error!(segment = %v.id, offset = t.offset, cause = %t.cause, "undecodable bytes in the readable part of a segment");
                        if last_visible >= walk_from.0 {
                            lost.push((walk_from.0, last_visible));
                        }
                        break 'chunks;
                    }
                }
            }
            if !cut {
                break;
            }
        }
        self.lose(v.id, &lost);
        Ok(())
    }
}
