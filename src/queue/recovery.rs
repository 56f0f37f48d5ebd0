//! [`Recovery`]: opening a queue, one method per phase (the phases and
//! their rules are listed in [`super::open`]). Each phase leaves its result
//! in the `Recovery` value for the next; [`open`](super::open::open) runs
//! them in order. (Model: raft-engine's `DualPipesBuilder`, whose `scan`,
//! `recover` and `finish` do the same for its log files.)

use super::open::{Lost, LostWhy, OpenReport, Truncation};
use super::{Inconsistency, Queue, QueueConfig, QueueError};
use crate::clock::{Clock, UnixNanos};
use crate::ids::{RecordId, SegmentId};
use crate::index::Index;
use crate::log::segment::{self, Cause, Damage, HEADER_LEN, Header, HeaderError, Scan, Tail};
use crate::log::{Active, Entry, Log, LogState, Settings, SyncPolicy, Table};
use crate::segment_meta::{Resolution, SegmentMeta};
use crate::storage::{LockGuard, Storage, StorageFile, read_exact_at};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Metric: records lost to damage or missing files, resolved as lost.
pub const LOST_RECORDS: &str = "telespool_queue_lost_records_total";
/// Metric: torn-tail bytes truncated on open.
pub const TRUNCATED_BYTES: &str = "telespool_queue_truncated_bytes_total";

/// Ids above this mean a damaged index or header: a queue never gets near.
const MAX_SANE_ID: u64 = u64::MAX - (1 << 40);

/// A segment file whose header was read.
struct Present {
    id: SegmentId,
    file: Arc<dyn StorageFile>,
    header: Header,
    len: u64,
}

/// An open in progress.
pub(super) struct Recovery {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    index: Box<dyn Index>,
    clock: Arc<dyn Clock>,
    config: QueueConfig,
    started: Instant,
    /// The time losses and seals are recorded at.
    now: UnixNanos,
    report: OpenReport,
    /// Index entries not yet matched with a file.
    metas: BTreeMap<SegmentId, SegmentMeta>,
    /// The highest record id the index or the files have seen.
    max_seen: RecordId,
    /// Segment files with a usable header, in id order.
    present: Vec<Present>,
    /// The reconciled segment table.
    table: Table,
    /// Bytes of the segment files in `table`.
    disk_bytes: u64,
}

impl Recovery {
    /// Checks the settings and starts an open of `dir`.
    pub fn new(
        storage: Arc<dyn Storage>,
        dir: &Path,
        index: Box<dyn Index>,
        clock: Arc<dyn Clock>,
        config: QueueConfig,
    ) -> Result<Recovery, QueueError> {
        config.validate()?;
        let now = clock.now();
        Ok(Recovery {
            storage,
            dir: dir.to_path_buf(),
            index,
            clock,
            config,
            started: Instant::now(),
            now,
            report: OpenReport::default(),
            metas: BTreeMap::new(),
            max_seen: RecordId(0),
            present: Vec::new(),
            table: Table::default(),
            disk_bytes: 0,
        })
    }

    fn path(&self, id: SegmentId) -> PathBuf {
        self.dir.join(segment::file_name(id))
    }

    /// Phase: load every index entry (clamped if damaged); ids will
    /// continue above everything it has seen.
    pub fn load_index(&mut self) -> Result<(), QueueError> {
        for mut m in self.index.load()? {
            if m.sanitize() {
                tracing::warn!(segment = %m.id, "index entry was inconsistent (watermark or resolved ids outside the segment); clamped");
            }
            let mut seen = m.last_id.unwrap_or(RecordId(0)).max(m.watermark);
            if let Some(&(_, b)) = m.resolved_above.ranges().last() {
                seen = seen.max(RecordId(b));
            }
            self.max_seen = self.max_seen.max(seen).max(m.first_id.prev());
            self.metas.insert(m.id, m);
        }
        Ok(())
    }

    /// Phase: read every segment file's header; remove the newest file if
    /// its header is torn; refuse the open on any other bad header.
    pub fn read_headers(&mut self) -> Result<(), QueueError> {
        let names = self
            .storage
            .list(&self.dir)
            .map_err(|e| QueueError::io("listing", &self.dir, e))?;
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
        for id in ids {
            if let Some(p) = self.read_header(id, Some(id) == newest)? {
                self.present.push(p);
            }
        }
        Ok(())
    }

    /// Reads one header; `None` when the file was a torn roll (removed).
    fn read_header(
        &mut self,
        id: SegmentId,
        is_newest: bool,
    ) -> Result<Option<Present>, QueueError> {
        let path = self.path(id);
        let file = self
            .storage
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
            Err(HeaderError::Truncated { .. }) if is_newest => {
                drop(file);
                self.remove_torn_roll(&path, len, id)?;
                return Ok(None);
            }
            // A header of zeros: its size reached the disk, its bytes did not.
            Err(HeaderError::BadMagic)
                if is_newest
                    && all_zero(file.as_ref())
                        .map_err(|e| QueueError::io("reading", &path, e))? =>
            {
                drop(file);
                self.remove_torn_roll(&path, len, id)?;
                return Ok(None);
            }
            Err(reason) => return Err(QueueError::BadSegment { path, reason }),
        };
        if header.segment != id {
            return Err(QueueError::Inconsistent {
                path,
                reason: Inconsistency::HeaderNamesOtherSegment {
                    found: header.segment,
                },
            });
        }
        Ok(Some(Present {
            id,
            file,
            header,
            len,
        }))
    }

    /// Removes the newest segment whose header never became durable (a roll
    /// torn by a crash: nothing in it was ever acknowledged).
    fn remove_torn_roll(&mut self, path: &Path, len: u64, id: SegmentId) -> Result<(), QueueError> {
        tracing::warn!(path = %path.display(), len, "removing the newest segment: its header is torn");
        self.storage
            .remove(path)
            .map_err(|e| QueueError::io("removing", path, e))?;
        self.storage
            .sync_dir(&self.dir)
            .map_err(|e| QueueError::io("syncing directory", &self.dir, e))?;
        self.report.removed_torn.push(id);
        Ok(())
    }

    /// Phase: settle the index entries that have no file: a purge that
    /// completed, or a missing file whose unresolved records are lost.
    pub fn settle_missing_files(&mut self) -> Result<(), QueueError> {
        let present: BTreeSet<SegmentId> = self.present.iter().map(|p| p.id).collect();
        for (id, mut m) in std::mem::take(&mut self.metas) {
            if present.contains(&id) {
                self.metas.insert(id, m);
                continue;
            }
            if m.all_resolved() {
                tracing::info!(segment = %id, "completing an interrupted purge");
                self.report.completed_purges.push(id);
            } else {
                let (first, last) = (m.watermark.next(), m.last_id.unwrap_or(m.first_id));
                tracing::error!(segment = %id, unresolved = m.unresolved(), "segment file is missing: its unresolved records are lost");
                self.lose(&mut m, first, last, LostWhy::MissingFile);
                self.report.missing.push(id);
            }
            self.index.remove(id)?;
        }
        Ok(())
    }

    /// Phase: trust the sealed segments the index vouches for, walk the
    /// others, and build the segment table.
    pub fn walk_segments(&mut self) -> Result<(), QueueError> {
        let mut prev_last: Option<(SegmentId, RecordId)> = None;
        let mut present = std::mem::take(&mut self.present).into_iter().peekable();
        while let Some(p) = present.next() {
            let next_first = present.peek().map(|n| n.header.first_id);
            let is_newest = next_first.is_none();
            let entry = match self.metas.remove(&p.id) {
                Some(meta)
                    if !is_newest
                        && meta.sealed
                        && meta.bytes == p.len
                        && meta.first_id == p.header.first_id =>
                {
                    Entry::trusted(meta)
                }
                known => self.walk(p, known, next_first)?,
            };
            let meta = entry.meta();
            if let Some((prev_id, prev_last_id)) = prev_last
                && meta.first_id <= prev_last_id
            {
                return Err(QueueError::Inconsistent {
                    path: self.path(meta.id),
                    reason: Inconsistency::FirstIdNotAbovePrevious {
                        first: meta.first_id,
                        previous: prev_id,
                        previous_last: prev_last_id,
                    },
                });
            }
            if let Some(l) = meta.last_id {
                prev_last = Some((meta.id, l));
                self.max_seen = self.max_seen.max(l);
            }
            self.max_seen = self.max_seen.max(meta.first_id.prev());
            self.disk_bytes += meta.bytes;
            self.table.insert(entry);
        }
        Ok(())
    }

    /// Walks one segment (`next_first`: the next segment's first id, `None`
    /// for the newest), truncates its torn tail, resolves its lost records,
    /// and returns its table entry.
    fn walk(
        &mut self,
        p: Present,
        known: Option<SegmentMeta>,
        next_first: Option<RecordId>,
    ) -> Result<Entry, QueueError> {
        let _span = tracing::info_span!("recover", segment = %p.id).entered();
        self.report.scanned.push(p.id);
        let path = self.path(p.id);
        let index_last = known.as_ref().and_then(|m| m.last_id);
        let scan = self.scan(&p, &path, next_first, index_last)?;
        let mut meta = self.reconcile(&p, known);
        if let Some(t) = scan.tail {
            self.cut_tail(&p, &path, t, scan.tail_zeroed)?;
        }
        meta.last_id = match (meta.last_id, scan.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        meta.bytes = scan.valid_end;
        for d in &scan.damage {
            tracing::error!(segment = %p.id, offset = d.offset, len = d.len, cause = %d.cause, lost = ?d.lost, "damaged records in a segment");
            self.report.damaged.push((p.id, *d));
            if let Some((a, b)) = d.lost {
                self.lose(&mut meta, a, b, LostWhy::Damaged);
            }
        }
        if let Some(il) = index_last {
            let file_last = scan.last.unwrap_or(p.header.first_id.prev());
            if il > file_last {
                tracing::error!(segment = %p.id, index_last = %il, file_last = %file_last, "index is ahead of the file: records are missing");
                self.lose(&mut meta, file_last.next(), il, LostWhy::IndexAhead);
            }
        }
        if next_first.is_some() {
            meta.sealed = true;
        }
        meta.mark_if_fully_resolved(self.now);
        Ok(Entry::walked(meta, p.file, scan.sparse))
    }

    /// Scans a segment's file, cut short where what follows was never
    /// acknowledged (see [`early_end`]).
    fn scan(
        &self,
        p: &Present,
        path: &Path,
        next_first: Option<RecordId>,
        index_last: Option<RecordId>,
    ) -> Result<Scan, QueueError> {
        let map = p
            .file
            .map()
            .map_err(|e| QueueError::io("mapping", path, e))?;
        let bytes: &[u8] = (*map).as_ref();
        let shrank = |expected: u64| QueueError::Shrank {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
            expected,
        };
        // The header was read from this file, so it is at least that long.
        let Some(body) = bytes.get(HEADER_LEN..) else {
            debug_assert!(false, "{} is shorter than its header", path.display());
            return Err(shrank(HEADER_LEN as u64));
        };
        let mut scan = segment::scan(bytes, &p.header);
        let is_newest = next_first.is_none();
        if let Some(cut) = early_end(body, &p.header, &scan, next_first, is_newest, index_last) {
            tracing::warn!(segment = %p.id, offset = cut, "cutting the segment short: what follows was never acknowledged");
            // `cut` is the offset of a frame or of damage found in `bytes`.
            let Some(kept) = bytes.get(..cut as usize) else {
                debug_assert!(false, "cut at {cut} past the end of {}", path.display());
                return Err(shrank(cut));
            };
            scan = segment::scan(kept, &p.header);
            scan.tail = Some(Tail {
                offset: cut,
                len: (bytes.len() as u64).saturating_sub(cut),
                cause: Cause::Incomplete,
            });
            scan.tail_zeroed = false;
        }
        Ok(scan)
    }

    /// The index entry of a walked segment: the index's, with the header's
    /// first id if they disagree, or a new one for a file the index did not
    /// know (adopted).
    fn reconcile(&mut self, p: &Present, known: Option<SegmentMeta>) -> SegmentMeta {
        match known {
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
                self.report.adopted.push(p.id);
                SegmentMeta::new(p.id, p.header.first_id, p.header.created, HEADER_LEN as u64)
            }
        }
    }

    /// Cuts off a torn tail (or zero-filled space) and syncs the cut.
    fn cut_tail(
        &mut self,
        p: &Present,
        path: &Path,
        t: Tail,
        zeroed: bool,
    ) -> Result<(), QueueError> {
        if zeroed {
            tracing::debug!(segment = %p.id, offset = t.offset, len = t.len, "trimming zero-filled space");
        } else {
            tracing::warn!(segment = %p.id, offset = t.offset, len = t.len, cause = %t.cause, "truncating a torn tail");
        }
        p.file
            .set_len(t.offset)
            .map_err(|e| QueueError::io("truncating", path, e))?;
        if self.config.sync != SyncPolicy::Never {
            p.file
                .sync_data()
                .map_err(|e| QueueError::io("syncing", path, e))?;
        }
        if zeroed {
            self.report.trimmed.push((p.id, t.offset, t.len));
        } else {
            self.report.truncated.push(Truncation {
                segment: p.id,
                offset: t.offset,
                len: t.len,
                cause: t.cause,
            });
            metrics::counter!(TRUNCATED_BYTES).increment(t.len);
        }
        Ok(())
    }

    /// Resolves `[first, last]` as lost in `meta` (only the unresolved ones)
    /// and reports the ranges that were newly lost.
    fn lose(&mut self, meta: &mut SegmentMeta, first: RecordId, last: RecordId, why: LostWhy) {
        if first > last {
            return;
        }
        // Report only ids that were not resolved already, as ranges.
        for (a, b) in meta.unresolved_ranges(first, last) {
            self.report.lost.push(Lost {
                segment: meta.id,
                first: a,
                last: b,
                why,
            });
            meta.resolve_range(a, b, Resolution::Lost, self.now);
        }
    }

    /// Phase: choose the segment appends go to (the newest, if it can go on
    /// taking them; else a new one) and the id the next record gets.
    pub fn choose_active(&mut self) -> Result<Active, QueueError> {
        if self.max_seen.0 > MAX_SANE_ID {
            return Err(QueueError::Inconsistent {
                path: self.dir.clone(),
                reason: Inconsistency::IdsExhausted {
                    highest: self.max_seen,
                },
            });
        }
        let next_id = self.max_seen.next();
        self.report.next_id = next_id;
        // The newest segment goes on if it is not sealed and its ids end
        // where the next one starts (else ids moved past it: index ahead).
        let resumable = self.table.newest().filter(|e| {
            let m = e.meta();
            !m.sealed && m.last_id.map_or(m.first_id, RecordId::next) == next_id
        });
        let active = match resumable {
            Some(e) => {
                let file = match e.file() {
                    Some(f) => f.clone(),
                    None => {
                        let path = self.path(e.meta().id);
                        self.storage
                            .open(&path)
                            .map_err(|err| QueueError::io("opening", &path, err))?
                    }
                };
                Active::resumed(e.meta(), file)
            }
            None => {
                self.retire_newest()?;
                self.create_segment(next_id)?
            }
        };
        self.table.set_active(active.id());
        Ok(active)
    }

    /// The newest segment cannot take appends: an empty one is removed, any
    /// other sealed.
    fn retire_newest(&mut self) -> Result<(), QueueError> {
        let Some((id, records)) = self
            .table
            .newest()
            .map(|e| (e.meta().id, e.meta().records()))
        else {
            return Ok(());
        };
        if records > 0 {
            self.table.seal(id, self.now);
            return Ok(());
        }
        // An empty segment whose ids were overtaken: remove it.
        if let Some(e) = self.table.remove(id) {
            self.disk_bytes = self.disk_bytes.saturating_sub(e.meta().bytes);
        }
        let path = self.path(id);
        self.storage
            .remove(&path)
            .map_err(|e| QueueError::io("removing", &path, e))
    }

    /// Creates a new, empty active segment starting at record `first_id`,
    /// with an id above every segment this directory has held.
    fn create_segment(&mut self, first_id: RecordId) -> Result<Active, QueueError> {
        let id = self
            .table
            .iter()
            .map(|e| e.meta().id)
            .chain(self.table.removed().iter().copied())
            .chain(self.report.completed_purges.iter().copied())
            .chain(self.report.missing.iter().copied())
            .chain(self.report.removed_torn.iter().copied())
            .map(|s| s.0 + 1)
            .max()
            .map_or(SegmentId(1), SegmentId);
        self.disk_bytes += HEADER_LEN as u64;
        let header = Header {
            segment: id,
            first_id,
            created: self.clock.now(),
        };
        let durable = self.config.sync != SyncPolicy::Never;
        let file = segment::create(self.storage.as_ref(), &self.dir, &header, durable)?;
        self.table.insert(Entry::created(&header, file.clone()));
        Ok(Active::created(&header, file))
    }

    /// Phase: write the reconciled table to the index and flush it.
    pub fn persist(&mut self) -> Result<(), QueueError> {
        self.table.mark_all_dirty();
        let changes = self.table.take_changes();
        for m in &changes.metas {
            self.index.put(m)?;
        }
        for id in &changes.removed {
            self.index.remove(*id)?;
        }
        self.index.flush()?;
        Ok(())
    }

    /// Phase: start the log's threads on `active`; the queue is open.
    pub fn start(
        mut self,
        active: Active,
        lock: Box<dyn LockGuard>,
    ) -> Result<(Queue, OpenReport), QueueError> {
        let lost = self.report.lost_records();
        if lost > 0 {
            metrics::counter!(LOST_RECORDS).increment(lost);
        }
        self.report.segments = self.table.len();
        let next_id = self.report.next_id;
        let settings = Settings {
            policy: self.config.sync,
            segment_bytes: self.config.segment_bytes,
            segment_age: self.config.segment_age,
        };
        let state = LogState::new(
            self.storage,
            &self.dir,
            self.clock,
            self.table,
            settings,
            self.disk_bytes,
        );
        let log = Log::start(state, active, next_id)
            .map_err(|e| QueueError::io("starting the writer for", &self.dir, e))?;
        tracing::info!(
            segments = self.report.segments,
            scanned = self.report.scanned.len(),
            truncated = self.report.truncated.len(),
            lost,
            next_record = %next_id,
            elapsed_ms = self.started.elapsed().as_millis() as u64,
            "queue opened"
        );
        let queue = Queue {
            log,
            index: Mutex::new(self.index),
            config: self.config,
            quota: Mutex::new(()),
            last_flush: Mutex::new(Instant::now()),
            _lock: lock,
        };
        Ok((queue, self.report))
    }
}

/// Whether every byte of the file is zero.
fn all_zero(file: &dyn StorageFile) -> std::io::Result<bool> {
    let map = file.map()?;
    let bytes: &[u8] = (*map).as_ref();
    Ok(bytes.iter().all(|&b| b == 0))
}

/// Where a walked segment must end earlier than its last valid record,
/// because what follows was never acknowledged (`body`: the bytes after the
/// header):
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
    body: &[u8],
    header: &Header,
    scan: &Scan,
    next_first: Option<RecordId>,
    is_newest: bool,
    index_last: Option<RecordId>,
) -> Option<u64> {
    let mut cut: Option<u64> = None;
    if let Some(nf) = next_first
        && scan.last.is_some_and(|l| l >= nf)
    {
        cut =
            segment::Walk::new(body, HEADER_LEN as u64, header.first_id.prev()).find_map(
                |s| match s {
                    segment::Step::Record { record, offset, .. } if record.id >= nf => Some(offset),
                    _ => None,
                },
            );
    }
    if is_newest {
        let known = index_last.unwrap_or(RecordId(0));
        for d in &scan.damage {
            let next_after = d.lost.map_or(RecordId(0), |(_, b)| b.next());
            if is_zero_hole(body, d) && (d.lost.is_none() || next_after > known) {
                cut = Some(cut.map_or(d.offset, |c| c.min(d.offset)));
                break;
            }
        }
    }
    cut
}

/// Whether the damaged bytes `d` (file offsets) are all zeros.
fn is_zero_hole(body: &[u8], d: &Damage) -> bool {
    let start = d.offset.saturating_sub(HEADER_LEN as u64) as usize;
    let end = start.saturating_add(d.len as usize);
    body.get(start..end)
        .is_some_and(|b| b.iter().all(|&x| x == 0))
}
