//! Opening a queue: reconciling the segment files with the index.
//!
//! The files are the source of truth. In order:
//!
//! 1. Take the directory lock (`LOCK`, holder's pid inside): a second
//!    process gets [`QueueError::InUse`] naming the holder.
//! 2. Read every segment's header. A bad magic, a future format version, a
//!    bad header CRC or a header naming another segment refuses the open,
//!    naming the file, and never modifies it. Only the newest file may have
//!    a header cut short: that is a roll torn by a crash (nothing in it was
//!    ever acknowledged), and the file is removed.
//! 3. Index entries without a file: if every record was resolved, a purge
//!    completed after its file was deleted; otherwise the file is *missing*
//!    and its unresolved records are reported and counted as lost.
//! 4. Files without an index entry (*orphans*, e.g. a roll whose index
//!    flush a crash prevented) are walked and adopted.
//! 5. Segments the index does not vouch for (the newest one, orphans, ones
//!    not recorded as sealed, ones whose length disagrees with the index)
//!    are walked: a torn tail is truncated (and the truncation synced);
//!    damage followed by valid records costs only the damaged records, whose
//!    ids are reported and resolved as lost; records the index knew of but
//!    the file no longer holds (index ahead) are reported and resolved as
//!    lost. Sealed segments the index vouches for are not read at all, which
//!    keeps opening fast; they are CRC-checked whenever read.
//! 6. Record ids continue above everything the files *and* the index have
//!    seen, so an id is never reused for a different record.
//! 7. The reconciled table is written to the index and flushed; then the
//!    writer starts.

use super::{Queue, QueueConfig, QueueError};
use crate::clock::{Clock, UnixNanos};
use crate::ids::{RecordId, SegmentId};
use crate::index::Index;
use crate::log::SyncPolicy;
use crate::log::segment::{self, Cause, Damage, HEADER_LEN, Header, HeaderError};
use crate::log::table::{Entry, Table};
use crate::log::writer::{Active, Ctx, Writer};
use crate::segment_meta::{Resolution, SegmentMeta};
use crate::storage::{LockGuard, Storage, StorageFile, read_exact_at};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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

struct Present {
    id: SegmentId,
    file: Arc<dyn StorageFile>,
    header: Header,
    len: u64,
}

/// Resolves `[first, last]` as lost in `meta` (only the unresolved ones)
/// and reports the ranges that were newly lost.
fn lose(
    meta: &mut SegmentMeta,
    first: RecordId,
    last: RecordId,
    why: LostWhy,
    now: UnixNanos,
    report: &mut OpenReport,
) {
    if first > last {
        return;
    }
    // Report only ids that were not resolved already, as ranges.
    for r in meta.unresolved_ranges(first, last) {
        report.lost.push(Lost {
            segment: meta.id,
            first: r.0,
            last: r.1,
            why,
        });
        meta.resolve_range(r.0, r.1, Resolution::Lost, now);
    }
}

/// Where a walked segment must end earlier than its last valid record,
/// because what follows was never acknowledged:
///
/// - records with ids at or above the next segment's first id: stale frames
///   of a write that failed (its ids were given again) and that a power
///   loss left behind, since the next segment's header was made durable
///   after them;
/// - in the newest segment, a zero-filled hole followed by records the
///   index never saw: an unsynced group whose pages did not reach the disk
///   while a later page did. An acknowledged record after the hole would
///   have been covered by the same fdatasync as the hole.
fn early_end(
    bytes: &[u8],
    scan: &segment::Scan,
    next_first: Option<RecordId>,
    is_newest: bool,
    index_last: Option<RecordId>,
) -> Option<u64> {
    let mut cut: Option<u64> = None;
    if let Some(nf) = next_first
        && scan.last.is_some_and(|l| l >= nf)
    {
        let body = bytes.get(HEADER_LEN..).unwrap_or(&[]);
        let first_id = Header::decode(bytes).ok()?.first_id;
        cut = segment::Walk::new(body, HEADER_LEN as u64, first_id.prev()).find_map(|s| match s {
            segment::Step::Record { record, offset, .. } if record.id >= nf => Some(offset),
            _ => None,
        });
    }
    if is_newest {
        let known = index_last.unwrap_or(RecordId(0));
        for d in &scan.damage {
            let zeros = bytes
                .get(d.offset as usize..(d.offset.saturating_add(d.len)) as usize)
                .is_some_and(|b| b.iter().all(|&x| x == 0));
            let next_after = d.lost.map_or(RecordId(0), |(_, b)| b.next());
            if zeros && (d.lost.is_none() || next_after > known) {
                cut = Some(cut.map_or(d.offset, |c| c.min(d.offset)));
                break;
            }
        }
    }
    cut
}

/// Whether every byte of the file is zero.
fn all_zero(file: &dyn StorageFile) -> std::io::Result<bool> {
    let map = file.map()?;
    let bytes: &[u8] = (*map).as_ref();
    Ok(bytes.iter().all(|&b| b == 0))
}

/// Removes the newest segment whose header never became durable (a roll
/// torn by a crash: nothing in it was ever acknowledged).
fn torn_roll(
    storage: &dyn Storage,
    dir: &Path,
    path: &Path,
    len: u64,
    report: &mut OpenReport,
    id: SegmentId,
) -> Result<(), QueueError> {
    tracing::warn!(path = %path.display(), len, "removing the newest segment: its header is torn");
    storage
        .remove(path)
        .map_err(|e| QueueError::io("removing", path, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| QueueError::io("syncing directory", dir, e))?;
    report.removed_torn.push(id);
    Ok(())
}

/// Opens the queue (the lock is already held).
pub(crate) fn open(
    storage: Arc<dyn Storage>,
    dir: &Path,
    mut index: Box<dyn Index>,
    clock: Arc<dyn Clock>,
    config: QueueConfig,
    lock: Box<dyn LockGuard>,
) -> Result<(Queue, OpenReport), QueueError> {
    config.validate().map_err(QueueError::Config)?;
    let started = Instant::now();
    let _span = tracing::info_span!("open", dir = %dir.display()).entered();
    let now = clock.now();
    let mut report = OpenReport::default();
    let mut metas: BTreeMap<SegmentId, SegmentMeta> = BTreeMap::new();
    for mut m in index.load()? {
        if m.sanitize() {
            tracing::warn!(segment = %m.id, "index entry was inconsistent (watermark or resolved ids outside the segment); clamped");
        }
        metas.insert(m.id, m);
    }

    // Ids never go below anything the index has seen.
    let mut max_seen = RecordId(0);
    for m in metas.values() {
        max_seen = max_seen
            .max(m.last_id.unwrap_or(RecordId(0)))
            .max(m.watermark);
        if let Some(&(_, b)) = m.resolved_above.ranges().last() {
            max_seen = max_seen.max(RecordId(b));
        }
        max_seen = max_seen.max(m.first_id.prev());
    }

    // 2. Headers.
    let names = storage
        .list(dir)
        .map_err(|e| QueueError::io("listing", dir, e))?;
    let mut ids: Vec<SegmentId> = Vec::new();
    for name in &names {
        match segment::parse_file_name(name) {
            Some(id) => ids.push(id),
            None if name == super::LOCK_FILE => {}
            None => tracing::warn!(file = %name, "ignoring a file that is not a segment"),
        }
    }
    ids.sort();
    let newest = ids.last().copied();
    let mut present: Vec<Present> = Vec::new();
    for id in ids {
        let path = dir.join(segment::file_name(id));
        let file = storage
            .open(&path)
            .map_err(|e| QueueError::io("opening", &path, e))?;
        let len = file
            .len()
            .map_err(|e| QueueError::io("reading", &path, e))?;
        let mut hb = vec![0u8; (len as usize).min(HEADER_LEN)];
        read_exact_at(file.as_ref(), &mut hb, 0)
            .map_err(|e| QueueError::io("reading", &path, e))?;
        let header = match Header::decode(&hb) {
            Ok(h) => h,
            Err(HeaderError::Truncated { .. }) if Some(id) == newest => {
                drop(file);
                torn_roll(storage.as_ref(), dir, &path, len, &mut report, id)?;
                continue;
            }
            // A header of zeros: its size reached the disk, its bytes did not.
            Err(HeaderError::BadMagic)
                if Some(id) == newest
                    && all_zero(file.as_ref())
                        .map_err(|e| QueueError::io("reading", &path, e))? =>
            {
                drop(file);
                torn_roll(storage.as_ref(), dir, &path, len, &mut report, id)?;
                continue;
            }
            Err(reason) => return Err(QueueError::BadSegment { path, reason }),
        };
        if header.segment != id {
            return Err(QueueError::Inconsistent {
                path,
                reason: format!("its header names segment {}", header.segment),
            });
        }
        present.push(Present {
            id,
            file,
            header,
            len,
        });
    }

    // 3. Index entries without a file.
    let present_ids: std::collections::BTreeSet<SegmentId> = present.iter().map(|p| p.id).collect();
    let gone: Vec<SegmentId> = metas
        .keys()
        .filter(|id| !present_ids.contains(id))
        .copied()
        .collect();
    for id in gone {
        let Some(mut m) = metas.remove(&id) else {
            continue;
        };
        if m.all_resolved() {
            tracing::info!(segment = %id, "completing an interrupted purge");
            report.completed_purges.push(id);
        } else {
            let (first, last) = (m.watermark.next(), m.last_id.unwrap_or(m.first_id));
            tracing::error!(segment = %id, unresolved = m.unresolved(), "segment file is missing: its unresolved records are lost");
            lose(&mut m, first, last, LostWhy::MissingFile, now, &mut report);
            report.missing.push(id);
        }
        index.remove(id)?;
    }

    // 4-5. Walk what the index does not vouch for.
    let newest_present = present.last().map(|p| p.id);
    let mut table = Table::default();
    let mut disk_bytes = 0u64;
    let mut prev_last: Option<(SegmentId, RecordId)> = None;
    let firsts: Vec<RecordId> = present.iter().map(|p| p.header.first_id).collect();
    for (i, p) in present.into_iter().enumerate() {
        let next_first = firsts.get(i + 1).copied();
        let path = dir.join(segment::file_name(p.id));
        let is_newest = Some(p.id) == newest_present;
        let known = metas.remove(&p.id);
        let trusted = !is_newest
            && known
                .as_ref()
                .is_some_and(|m| m.sealed && m.bytes == p.len && m.first_id == p.header.first_id);
        let mut entry = if trusted {
            let Some(meta) = known else { continue };
            Entry {
                visible_end: meta.bytes,
                meta,
                file: None,
                map: None,
                sparse: Vec::new(),
                sparse_complete: false,
                oldest: None,
            }
        } else {
            let _span = tracing::info_span!("recover", segment = %p.id).entered();
            report.scanned.push(p.id);
            let map = p
                .file
                .map()
                .map_err(|e| QueueError::io("mapping", &path, e))?;
            let bytes: &[u8] = (*map).as_ref();
            let mut scan = segment::scan(bytes, &p.header);
            let index_last = known.as_ref().and_then(|m| m.last_id);
            if let Some(cut) = early_end(bytes, &scan, next_first, is_newest, index_last) {
                tracing::warn!(segment = %p.id, offset = cut, "cutting the segment short: what follows was never acknowledged");
                scan = segment::scan(bytes.get(..cut as usize).unwrap_or(bytes), &p.header);
                scan.tail = Some(segment::Tail {
                    offset: cut,
                    len: (bytes.len() as u64).saturating_sub(cut),
                    cause: Cause::Incomplete,
                });
                scan.tail_zeroed = false;
            }
            drop(map);
            let mut meta = match known {
                Some(mut m) => {
                    if m.first_id != p.header.first_id {
                        tracing::warn!(segment = %p.id, "index entry disagrees with the header's first record id; trusting the file");
                        m.first_id = p.header.first_id;
                        m.sanitize();
                    }
                    m
                }
                None => {
                    tracing::warn!(segment = %p.id, "adopting a segment the index did not know");
                    report.adopted.push(p.id);
                    SegmentMeta::new(p.id, p.header.first_id, p.header.created, HEADER_LEN as u64)
                }
            };
            if let Some(t) = scan.tail {
                if scan.tail_zeroed {
                    tracing::debug!(segment = %p.id, offset = t.offset, len = t.len, "trimming zero-filled space");
                } else {
                    tracing::warn!(segment = %p.id, offset = t.offset, len = t.len, cause = %t.cause, "truncating a torn tail");
                }
                p.file
                    .set_len(t.offset)
                    .map_err(|e| QueueError::io("truncating", &path, e))?;
                if config.sync != SyncPolicy::Never {
                    p.file
                        .sync_data()
                        .map_err(|e| QueueError::io("syncing", &path, e))?;
                }
                if scan.tail_zeroed {
                    report.trimmed.push((p.id, t.offset, t.len));
                } else {
                    report.truncated.push(Truncation {
                        segment: p.id,
                        offset: t.offset,
                        len: t.len,
                        cause: t.cause,
                    });
                    metrics::counter!("telespool_queue_truncated_bytes_total").increment(t.len);
                }
            }
            meta.last_id = match (meta.last_id, scan.last) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            meta.bytes = scan.valid_end;
            for d in &scan.damage {
                tracing::error!(segment = %p.id, offset = d.offset, len = d.len, cause = %d.cause, lost = ?d.lost, "damaged records in a segment");
                report.damaged.push((p.id, *d));
                if let Some((a, b)) = d.lost {
                    lose(&mut meta, a, b, LostWhy::Damaged, now, &mut report);
                }
            }
            if let Some(il) = index_last {
                let file_last = scan.last.unwrap_or(p.header.first_id.prev());
                if il > file_last {
                    tracing::error!(segment = %p.id, index_last = %il, file_last = %file_last, "index is ahead of the file: records are missing");
                    lose(
                        &mut meta,
                        file_last.next(),
                        il,
                        LostWhy::IndexAhead,
                        now,
                        &mut report,
                    );
                }
            }
            if !is_newest {
                meta.sealed = true;
            }
            meta.mark_if_fully_resolved(now);
            Entry {
                visible_end: meta.bytes,
                meta,
                file: Some(p.file.clone()),
                map: None,
                sparse: scan.sparse,
                sparse_complete: true,
                oldest: None,
            }
        };
        if let Some((prev_id, prev_last_id)) = prev_last
            && entry.meta.first_id <= prev_last_id
        {
            return Err(QueueError::Inconsistent {
                path,
                reason: format!(
                    "its first record id {} is not above segment {prev_id}'s last record id {prev_last_id}",
                    entry.meta.first_id
                ),
            });
        }
        if let Some(l) = entry.meta.last_id {
            prev_last = Some((entry.meta.id, l));
            max_seen = max_seen.max(l);
        }
        max_seen = max_seen.max(entry.meta.first_id.prev());
        if entry.file.is_none() && is_newest {
            entry.file = Some(p.file.clone());
        }
        disk_bytes += entry.meta.bytes;
        table.insert(entry);
    }
    // Entries the files did not match are gone already; anything left in
    // `metas` was consumed above.
    if max_seen.0 > u64::MAX - (1 << 40) {
        return Err(QueueError::Inconsistent {
            path: dir.to_path_buf(),
            reason: format!(
                "record ids are exhausted (highest seen {max_seen}); the index or a segment header is damaged"
            ),
        });
    }
    let next_id = max_seen.next();
    report.next_id = next_id;

    // The active segment: the newest, unless it is sealed, or ids moved on
    // past it (index ahead), in which case a new one starts.
    let newest = table.segments.values().next_back().map(|e| {
        (
            e.meta.id,
            e.meta.sealed,
            e.meta.records(),
            e.meta.last_id,
            e.meta.first_id,
        )
    });
    let reuse = match newest {
        Some((_, sealed, _, last, first)) => {
            !sealed && last.map_or(first, RecordId::next) == next_id
        }
        None => false,
    };
    let active = if reuse {
        let Some(e) = table.segments.values().next_back() else {
            return Err(QueueError::Config("no segment to reuse".into()));
        };
        let file = match &e.file {
            Some(f) => f.clone(),
            None => storage
                .open(&dir.join(segment::file_name(e.meta.id)))
                .map_err(|err| QueueError::io("opening", dir, err))?,
        };
        Active {
            id: e.meta.id,
            file,
            len: e.meta.bytes,
            allocated: e.meta.bytes,
            first_id: e.meta.first_id,
            created: e.meta.created,
            records: e.meta.records(),
        }
    } else {
        if let Some((id, _, records, _, _)) = newest {
            if records == 0 {
                // An empty segment whose ids were overtaken: remove it.
                if let Some(e) = table.remove(id) {
                    disk_bytes = disk_bytes.saturating_sub(e.meta.bytes);
                }
                let path = dir.join(segment::file_name(id));
                storage
                    .remove(&path)
                    .map_err(|e| QueueError::io("removing", &path, e))?;
            } else if let Some(e) = table.segments.get_mut(&id) {
                e.meta.sealed = true;
                e.meta.mark_if_fully_resolved(now);
                table.touch(id);
            }
        }
        let id = table
            .segments
            .keys()
            .chain(table.removed.iter())
            .chain(&report.completed_purges)
            .chain(&report.missing)
            .chain(&report.removed_torn)
            .map(|s| s.0 + 1)
            .max()
            .map_or(SegmentId(1), SegmentId);
        disk_bytes += HEADER_LEN as u64;
        create_segment(
            storage.as_ref(),
            dir,
            &config,
            &mut table,
            id,
            next_id,
            clock.now(),
        )?
    };
    table.active = active.id;

    // 7. Persist the reconciled table.
    for id in table.segments.keys() {
        table.dirty.insert(*id);
    }
    for e in table.segments.values() {
        index.put(&e.meta)?;
    }
    for id in &table.removed {
        index.remove(*id)?;
    }
    index.flush()?;
    table.dirty.clear();
    table.removed.clear();

    let lost = report.lost_records();
    if lost > 0 {
        metrics::counter!("telespool_queue_lost_records_total").increment(lost);
    }
    report.segments = table.segments.len();
    let ctx = Arc::new(Ctx {
        storage,
        dir: dir.to_path_buf(),
        clock,
        table: Arc::new(Mutex::new(table)),
        policy: config.sync,
        segment_bytes: config.segment_bytes,
        segment_age: config.segment_age,
        pending_bytes: AtomicU64::new(0),
        disk_bytes: AtomicU64::new(disk_bytes),
        poison: Mutex::new(None),
        poisoned: AtomicBool::new(false),
    });
    let writer = Writer::start(ctx.clone(), active, next_id)
        .map_err(|e| QueueError::io("starting the writer for", dir, e))?;
    tracing::info!(
        segments = report.segments,
        scanned = report.scanned.len(),
        truncated = report.truncated.len(),
        lost,
        next_record = %next_id,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "queue opened"
    );
    Ok((
        Queue {
            ctx,
            writer,
            index: Mutex::new(index),
            config,
            quota: Mutex::new(()),
            last_flush: Mutex::new(Instant::now()),
            _lock: lock,
        },
        report,
    ))
}

/// Creates a new, empty active segment.
fn create_segment(
    storage: &dyn Storage,
    dir: &Path,
    config: &QueueConfig,
    table: &mut Table,
    id: SegmentId,
    first_id: RecordId,
    created: UnixNanos,
) -> Result<Active, QueueError> {
    let path = dir.join(segment::file_name(id));
    let header = Header {
        segment: id,
        first_id,
        created,
    };
    let file = storage
        .create(&path)
        .map_err(|e| QueueError::io("creating", &path, e))?;
    file.write_at(&header.encode(), 0)
        .map_err(|e| QueueError::io("writing", &path, e))?;
    if config.sync != SyncPolicy::Never {
        file.sync_data()
            .map_err(|e| QueueError::io("syncing", &path, e))?;
        storage
            .sync_dir(dir)
            .map_err(|e| QueueError::io("syncing directory", dir, e))?;
    }
    let hl = HEADER_LEN as u64;
    table.insert(Entry {
        meta: SegmentMeta::new(id, first_id, created, hl),
        file: Some(file.clone()),
        map: None,
        sparse: Vec::new(),
        sparse_complete: true,
        visible_end: hl,
        oldest: None,
    });
    Ok(Active {
        id,
        file,
        len: hl,
        allocated: hl,
        first_id,
        created,
        records: 0,
    })
}
