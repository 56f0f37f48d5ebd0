//! The write path: dedup by event id, one block per day per commit,
//! merging runs of small blocks, and the writer's state.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::block::{self, BlockBuilder, BlockMeta, Compressor, Head, Ids, Interner, Rest, RowIn};
use super::cuckoo::Cuckoo;
use super::dayfile::{self, DayFile};
use super::hll::{NoHash, UserSet};
use super::idx::IdxFile;
use super::store::{DayView, EncodedRow, EventLogError, Inner, InsertOutcome, View};
use crate::timestamp;

/// Merge the trailing run of small blocks of a day (each under this many
/// rows, together under half of [`block::MAX_BLOCK_RAW`]) into one block...
pub(crate) const MERGE_BELOW: u32 = 1024;
/// ...once the run has this many blocks.
pub(crate) const MERGE_RUN: usize = 16;

static NEXT_FILE_ID: AtomicU64 = AtomicU64::new(1);

/// A new identity for a day file's contents (see [`DayView::file_id`]).
pub(crate) fn new_file_id() -> u64 {
    NEXT_FILE_ID.fetch_add(1, Ordering::Relaxed)
}

/// Where an event id's row is: block seq and row within the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Loc {
    pub(crate) seq: u32,
    pub(crate) row: u16,
}

/// Event-id hash → row, for the ids of an open day. Two ids with the same
/// 64-bit hash (it can happen) both stay: the second goes to `extra`.
#[derive(Clone, Debug, Default)]
pub(crate) struct IdMap {
    main: HashMap<u64, Loc, NoHash>,
    extra: Vec<(u64, Loc)>,
}

impl IdMap {
    pub(crate) fn with_capacity(n: usize) -> IdMap {
        IdMap {
            main: HashMap::with_capacity_and_hasher(n, NoHash),
            extra: Vec::new(),
        }
    }

    pub(crate) fn from_entries(entries: &[(u64, Loc)]) -> IdMap {
        let mut m = IdMap::with_capacity(entries.len());
        for &(h, loc) in entries {
            m.insert(h, loc);
        }
        m
    }

    pub(crate) fn insert(&mut self, hash: u64, loc: Loc) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.main.entry(hash) {
            e.insert(loc);
        } else {
            self.extra.push((hash, loc));
        }
    }

    pub(crate) fn get(&self, hash: u64) -> impl Iterator<Item = Loc> + '_ {
        self.main
            .get(&hash)
            .copied()
            .into_iter()
            .chain(self.extra.iter().filter(move |e| e.0 == hash).map(|e| e.1))
    }

    /// Points the entry (`hash`, `old`) at `new`.
    pub(crate) fn replace(&mut self, hash: u64, old: Loc, new: Loc) {
        if let Some(l) = self.main.get_mut(&hash)
            && *l == old
        {
            *l = new;
            return;
        }
        if let Some(e) = self.extra.iter_mut().find(|e| e.0 == hash && e.1 == old) {
            e.1 = new;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.main.len() + self.extra.len()
    }

    /// Every entry, sorted.
    pub(crate) fn entries(&self) -> Vec<(u64, Loc)> {
        let mut v: Vec<(u64, Loc)> = self
            .main
            .iter()
            .map(|(&h, &l)| (h, l))
            .chain(self.extra.iter().copied())
            .collect();
        v.sort_unstable();
        v
    }
}

/// A stored row: its day, its block and its row in the block.
pub(crate) type Located = (Arc<DayView>, Arc<BlockMeta>, usize);

/// A day whose ids are in memory (not sealed).
#[derive(Debug, Default)]
pub(crate) struct OpenDay {
    pub(crate) ids: IdMap,
    pub(crate) users: UserSet,
    pub(crate) next_seq: u32,
    /// Bytes of the day file: where the next block goes.
    pub(crate) len: u64,
    /// Written since its index was last saved.
    pub(crate) changed: bool,
}

/// What only writers touch (under [`Inner::writer`]).
pub(crate) struct Writer {
    pub(crate) open: BTreeMap<i64, OpenDay>,
    /// Ids of sealed days.
    pub(crate) cuckoo: Cuckoo,
    /// The sealed days (and their ids generation) whose ids are in it.
    pub(crate) covered: BTreeMap<i64, u64>,
    pub(crate) cuckoo_dirty: bool,
    /// Indexes of dropped sealed days whose ids are still in the filter
    /// (removed by the background thread; harmless meanwhile: a stale
    /// entry only costs a lookup).
    pub(crate) stale: Vec<Arc<IdxFile>>,
    pub(crate) next_commit: u64,
    pub(crate) z: Compressor,
    pub(crate) interner: Interner,
    pub(crate) poisoned: Option<String>,
    /// Day files written since the background thread last synced them.
    pub(crate) dirty: BTreeMap<i64, Arc<DayFile>>,
    /// Whether the quota could not be met (warned once until it can).
    pub(crate) quota_warned: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("open", &self.open.len())
            .field("cuckoo", &self.cuckoo)
            .finish_non_exhaustive()
    }
}

impl Writer {
    pub(crate) fn new(cuckoo: Cuckoo, interner: Interner) -> Writer {
        Writer {
            open: BTreeMap::new(),
            cuckoo,
            covered: BTreeMap::new(),
            cuckoo_dirty: false,
            stale: Vec::new(),
            next_commit: 1,
            z: Compressor::new(),
            interner,
            poisoned: None,
            dirty: BTreeMap::new(),
            quota_warned: false,
        }
    }
}

/// A block's three sections, decoded.
pub(crate) struct Decoded {
    pub(crate) meta: Arc<BlockMeta>,
    pub(crate) ids: Ids,
    pub(crate) head: Head,
    pub(crate) rest: Rest,
    /// Row ids as text (the builder borrows them).
    pub(crate) id_text: Vec<String>,
}

impl Decoded {
    pub(crate) fn read(
        inner: &Inner,
        dv: &DayView,
        meta: &Arc<BlockMeta>,
    ) -> Result<Decoded, EventLogError> {
        let payload = inner.read_block(dv, meta)?;
        let bad = |e| super::store::block_err(dv, meta, e);
        let ids = Ids::decode(&payload, meta).map_err(bad)?;
        let head = Head::decode(&payload, meta).map_err(bad)?;
        let rest = Rest::decode(&payload, meta).map_err(bad)?;
        let id_text = (0..ids.len()).map(|r| ids.get(r)).collect();
        Ok(Decoded {
            meta: meta.clone(),
            ids,
            head,
            rest,
            id_text,
        })
    }

    pub(crate) fn row_in(&self, row: usize) -> RowIn<'_> {
        RowIn {
            id: self.id_text.get(row).map_or(&[], String::as_bytes),
            time: self.head.time(row),
            ts_text: self.head.ts_text(row).map(str::as_bytes),
            f: self.rest.fields(&self.head, row).to_bytes(),
        }
    }
}

impl Inner {
    /// See [`super::EventLogStore::insert_encoded_groups`].
    pub(crate) fn insert_groups(
        &self,
        groups: &[&[EncodedRow]],
    ) -> Result<Vec<InsertOutcome>, EventLogError> {
        let mut outcomes = vec![InsertOutcome::default(); groups.len()];
        if groups.iter().all(|g| g.is_empty()) {
            return Ok(outcomes);
        }
        let mut w = self.writer();
        if let Some(why) = &w.poisoned {
            return Err(EventLogError::Poisoned(why.clone()));
        }
        let base = self.view();
        let total: usize = groups.iter().map(|g| g.len()).sum();
        let mut seen: HashMap<u64, usize, NoHash> =
            HashMap::with_capacity_and_hasher(total, NoHash);
        let mut fresh: Vec<&EncodedRow> = Vec::with_capacity(total);
        for (out, rows) in outcomes.iter_mut().zip(groups) {
            for row in *rows {
                let dup_here = match seen.get(&row.hash) {
                    Some(&i) if fresh.get(i).is_some_and(|o| o.event_id() == row.event_id()) => {
                        true
                    }
                    // Two ids sharing a 64-bit hash: compare them all.
                    Some(_) => fresh.iter().any(|o| o.event_id() == row.event_id()),
                    None => false,
                };
                if dup_here || self.stored(&w, &base, row.hash, row.id())? {
                    out.duplicates += 1;
                    continue;
                }
                out.inserted += 1;
                seen.entry(row.hash).or_insert(fresh.len());
                fresh.push(row);
            }
        }
        if fresh.is_empty() {
            return Ok(outcomes);
        }
        let commit = w.next_commit;
        w.next_commit += 1;
        let mut by_day: BTreeMap<i64, Vec<&EncodedRow>> = BTreeMap::new();
        for row in fresh {
            by_day.entry(row.day()).or_default().push(row);
        }
        let mut view = (*base).clone();
        let mut result = Ok(());
        for (day, rows) in &by_day {
            if let Err(e) = self.append_day(&mut w, &mut view, *day, rows, commit) {
                result = Err(e);
                break;
            }
        }
        view.retotal();
        // What was written is published even when a later day failed: it
        // is in the files.
        self.publish(view.clone());
        result?;
        if view.bytes > self.config.quota_bytes {
            self.enforce_quota(&mut w)?;
        }
        Ok(outcomes)
    }

    /// Whether an event id is stored in any retained day.
    pub(crate) fn stored(
        &self,
        w: &Writer,
        view: &View,
        hash: u64,
        id: &str,
    ) -> Result<bool, EventLogError> {
        for (day, od) in &w.open {
            for loc in od.ids.get(hash) {
                if let Some(dv) = view.days.get(day)
                    && self.confirm(dv, loc, id)
                {
                    return Ok(true);
                }
            }
        }
        if w.cuckoo.contains(hash) {
            for dv in view.days.values().rev() {
                let Some(idx) = &dv.sealed else { continue };
                let locs = idx.lookup(hash).map_err(|e| {
                    EventLogError::io("reading the index of", &self.idx_path(dv.day), e)
                })?;
                for loc in locs {
                    if self.confirm(dv, loc, id) {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// Whether row `loc` of day `dv` has id `id`. An unreadable block
    /// cannot confirm (the row is then stored again rather than lost).
    pub(crate) fn confirm(&self, dv: &DayView, loc: Loc, id: &str) -> bool {
        let Some(meta) = dv.block_by_seq(loc.seq) else {
            return false;
        };
        match self.block_ids(dv, meta) {
            Ok(ids) => ids.equals(usize::from(loc.row), id),
            Err(e) => {
                self.report_damage(dv.day, meta.offset, &e);
                false
            }
        }
    }

    /// Where the row of `event_id` is: its day, block and row.
    pub(crate) fn locate(
        &self,
        view: &View,
        event_id: &str,
    ) -> Result<Option<Located>, EventLogError> {
        let hash = block::id_hash(event_id);
        let mut candidates: Vec<(i64, Loc)> = Vec::new();
        let maybe_sealed = {
            let w = self.writer();
            for (day, od) in &w.open {
                candidates.extend(od.ids.get(hash).map(|l| (*day, l)));
            }
            w.cuckoo.contains(hash)
        };
        if maybe_sealed {
            for dv in view.days.values().rev() {
                if let Some(idx) = &dv.sealed {
                    let locs = idx.lookup(hash).map_err(|e| {
                        EventLogError::io("reading the index of", &self.idx_path(dv.day), e)
                    })?;
                    candidates.extend(locs.into_iter().map(|l| (dv.day, l)));
                }
            }
        }
        for (day, loc) in candidates {
            let Some(dv) = view.days.get(&day) else {
                continue;
            };
            if self.confirm(dv, loc, event_id)
                && let Some(meta) = dv.block_by_seq(loc.seq)
            {
                return Ok(Some((dv.clone(), meta.clone(), usize::from(loc.row))));
            }
        }
        Ok(None)
    }

    /// The open state of `day`, creating its file or reopening a sealed
    /// day (its ids leave the filter for a map) as needed.
    fn open_day<'w>(
        &self,
        w: &'w mut Writer,
        view: &mut View,
        day: i64,
    ) -> Result<&'w mut OpenDay, EventLogError> {
        if !w.open.contains_key(&day) {
            let od = match view.days.get(&day).cloned() {
                Some(dv) => self.unseal(w, view, &dv)?,
                None => {
                    let path = self.day_path(day);
                    let file = match DayFile::create(&path, day) {
                        Ok(f) => f,
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            // A file no view knows: left by a creation the
                            // process did not finish (open removes short
                            // ones). Start it again.
                            std::fs::remove_file(&path)
                                .map_err(|e| EventLogError::io("removing", &path, e))?;
                            DayFile::create(&path, day)
                                .map_err(|e| EventLogError::io("creating", &path, e))?
                        }
                        Err(e) => return Err(EventLogError::io("creating", &path, e)),
                    };
                    view.days.insert(
                        day,
                        Arc::new(DayView {
                            day,
                            file: Arc::new(file),
                            file_id: new_file_id(),
                            len: dayfile::HEADER_LEN,
                            idx_len: 0,
                            blocks: Vec::new(),
                            rows: 0,
                            names: BTreeMap::new(),
                            users: 0,
                            users_estimated: false,
                            sealed: None,
                            version: 0,
                            ids_generation: 0,
                        }),
                    );
                    OpenDay {
                        next_seq: 1,
                        len: dayfile::HEADER_LEN,
                        changed: true,
                        ..OpenDay::default()
                    }
                }
            };
            w.open.insert(day, od);
        }
        w.open
            .get_mut(&day)
            .ok_or(EventLogError::Poisoned("open day vanished".into()))
    }

    /// Reopens sealed day `dv` for writing: its ids and users come back
    /// from its index into memory, and leave the filter.
    fn unseal(
        &self,
        w: &mut Writer,
        view: &mut View,
        dv: &DayView,
    ) -> Result<OpenDay, EventLogError> {
        let (entries, users, next_seq) = match &dv.sealed {
            Some(idx) => match (idx.entries(), idx.users()) {
                (Ok(e), Ok(u)) => {
                    for (h, _) in &e {
                        w.cuckoo.delete(*h);
                    }
                    (e, u, idx.header.next_seq)
                }
                _ => {
                    tracing::warn!(day = %timestamp::day_string(dv.day), "event_logs index unreadable while reopening a sealed day; recounting it from its blocks");
                    let (e, u) = self.recount_ids_users(dv)?;
                    (e, u, dv.blocks.last().map_or(1, |b| b.summary.seq + 1))
                }
            },
            None => {
                let (e, u) = self.recount_ids_users(dv)?;
                (e, u, dv.blocks.last().map_or(1, |b| b.summary.seq + 1))
            }
        };
        w.covered.remove(&dv.day);
        w.cuckoo_dirty = true;
        let mut v = dv.clone_view();
        v.sealed = None;
        v.version += 1;
        view.days.insert(dv.day, Arc::new(v));
        tracing::debug!(day = %timestamp::day_string(dv.day), "event_logs sealed day reopened by a late write");
        Ok(OpenDay {
            ids: IdMap::from_entries(&entries),
            users,
            next_seq,
            len: dv.len,
            changed: true,
        })
    }

    /// The ids and users of a day, from its blocks.
    pub(crate) fn recount_ids_users(
        &self,
        dv: &DayView,
    ) -> Result<(Vec<(u64, Loc)>, UserSet), EventLogError> {
        let mut entries = Vec::with_capacity(dv.rows as usize);
        let mut users = UserSet::default();
        for meta in &dv.blocks {
            let ids = match self.block_ids(dv, meta) {
                Ok(i) => i,
                Err(e) => {
                    self.report_damage(dv.day, meta.offset, &e);
                    continue;
                }
            };
            for r in 0..ids.len() {
                entries.push((
                    ids.hash(r),
                    Loc {
                        seq: meta.summary.seq,
                        row: r as u16,
                    },
                ));
            }
            if let Ok(head) = self.block_head(dv, meta) {
                for r in 0..head.len() {
                    users.insert(head.user_key(r));
                }
            }
        }
        entries.sort_unstable();
        Ok((entries, users))
    }

    /// Appends `rows` (all of UTC day `day`) as blocks of commit `commit`.
    fn append_day(
        &self,
        w: &mut Writer,
        view: &mut View,
        day: i64,
        rows: &[&EncodedRow],
        commit: u64,
    ) -> Result<(), EventLogError> {
        let (mut next_seq, start) = {
            let od = self.open_day(w, view, day)?;
            (od.next_seq, od.len)
        };
        let mut frames = Vec::new();
        let mut metas = Vec::new();
        let mut users = Vec::new();
        let mut locs = Vec::with_capacity(rows.len());
        let mut b = BlockBuilder::with_rows(rows.len());
        for (i, r) in rows.iter().enumerate() {
            locs.push(Loc {
                seq: next_seq,
                row: b.rows() as u16,
            });
            b.push(&r.row_in()?);
            if b.is_full() || i + 1 == rows.len() {
                let left = rows.len() - i - 1;
                let full = std::mem::replace(&mut b, BlockBuilder::with_rows(left));
                let mut built = full.finish(next_seq, commit, None, &mut w.z, &mut w.interner);
                built.meta.offset = start + frames.len() as u64;
                frames.extend_from_slice(&built.frame);
                users.extend(built.users);
                metas.push(Arc::new(built.meta));
                next_seq += 1;
            }
        }
        let dv = view
            .days
            .get(&day)
            .cloned()
            .ok_or(EventLogError::Poisoned("day vanished".into()))?;
        self.write_frames(w, &dv, start, &frames)?;
        let od = w
            .open
            .get_mut(&day)
            .ok_or(EventLogError::Poisoned("open day vanished".into()))?;
        od.next_seq = next_seq;
        od.len = start + frames.len() as u64;
        od.changed = true;
        for (r, loc) in rows.iter().zip(&locs) {
            od.ids.insert(r.hash, *loc);
        }
        for u in users {
            od.users.insert(u);
        }
        let mut v = dv.clone_view();
        v.len = od.len;
        for m in &metas {
            v.rows += m.rows();
            for (n, c) in &m.summary.names {
                *v.names.entry(n.clone()).or_default() += u64::from(*c);
            }
        }
        v.blocks.extend(metas);
        v.users = od.users.count();
        v.users_estimated = od.users.is_estimate();
        v.version += 1;
        w.dirty.insert(day, v.file.clone());
        view.days.insert(day, Arc::new(v));
        self.maybe_merge(w, view, day)
    }

    /// Writes frames at `at` (the end of the day file); on failure cuts
    /// the file back to `at`, or poisons the store if even that fails.
    pub(crate) fn write_frames(
        &self,
        w: &mut Writer,
        dv: &DayView,
        at: u64,
        frames: &[u8],
    ) -> Result<(), EventLogError> {
        if let Err(e) = dv.file.file.write_all_at(frames, at) {
            if let Err(cut) = dv.file.file.set_len(at) {
                w.poisoned = Some(format!(
                    "writing {} failed ({e}) and cutting it back failed ({cut})",
                    dv.file.path.display()
                ));
            }
            return Err(EventLogError::io("writing", &dv.file.path, e));
        }
        Ok(())
    }

    /// Merges the day's trailing run of small blocks into one block once
    /// it is long enough (low load writes small blocks; merged, they
    /// compress as well as big ones and cost one directory entry). The
    /// merged block names the run it supersedes; the run's frames stay in
    /// the file, dead, until the day is sealed. Runs holding rows of a
    /// pending erasure are left alone.
    fn maybe_merge(&self, w: &mut Writer, view: &mut View, day: i64) -> Result<(), EventLogError> {
        let Some(dv) = view.days.get(&day).cloned() else {
            return Ok(());
        };
        let mut run: Vec<Arc<BlockMeta>> = Vec::new();
        let mut rows = 0u64;
        let mut raw = 0u64;
        for b in dv.blocks.iter().rev() {
            let b_raw: u64 = b.summary.sections.iter().map(|s| u64::from(s.raw)).sum();
            if b.summary.rows >= MERGE_BELOW
                || rows + b.rows() > block::MAX_BLOCK_ROWS as u64
                || raw + b_raw > (block::MAX_BLOCK_RAW / 2) as u64
            {
                break;
            }
            rows += b.rows();
            raw += b_raw;
            run.push(b.clone());
        }
        if run.len() < MERGE_RUN || view.tombstones.may_hide_any(&run) {
            return Ok(());
        }
        run.reverse();
        let decoded: Vec<Decoded> = run
            .iter()
            .map(|m| Decoded::read(self, &dv, m))
            .collect::<Result<_, _>>()?;
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return Ok(());
        };
        let supersedes = (first.offset, last.end());
        let commit = run.iter().map(|m| m.summary.commit).max().unwrap_or(0);
        let Some(od) = w.open.get(&day) else {
            return Ok(());
        };
        let (seq, at) = (od.next_seq, od.len);
        let mut b = BlockBuilder::default();
        let mut moves = Vec::with_capacity(rows as usize);
        for d in &decoded {
            for r in 0..d.head.len() {
                moves.push((
                    d.ids.hash(r),
                    Loc {
                        seq: d.meta.summary.seq,
                        row: r as u16,
                    },
                    Loc {
                        seq,
                        row: b.rows() as u16,
                    },
                ));
                b.push(&d.row_in(r));
            }
        }
        let mut built = b.finish(seq, commit, Some(supersedes), &mut w.z, &mut w.interner);
        built.meta.offset = at;
        self.write_frames(w, &dv, at, &built.frame)?;
        let Some(od) = w.open.get_mut(&day) else {
            return Ok(());
        };
        od.next_seq = seq + 1;
        od.len = at + built.frame.len() as u64;
        for (h, old, new) in moves {
            od.ids.replace(h, old, new);
        }
        let mut v = dv.clone_view();
        v.blocks.truncate(v.blocks.len() - run.len());
        v.blocks.push(Arc::new(built.meta));
        v.len = od.len;
        v.version += 1;
        view.days.insert(day, Arc::new(v));
        Ok(())
    }
}

impl DayView {
    /// A copy to change (the blocks are shared).
    pub(crate) fn clone_view(&self) -> DayView {
        DayView {
            day: self.day,
            file: self.file.clone(),
            file_id: self.file_id,
            len: self.len,
            idx_len: self.idx_len,
            blocks: self.blocks.clone(),
            rows: self.rows,
            names: self.names.clone(),
            users: self.users,
            users_estimated: self.users_estimated,
            sealed: self.sealed.clone(),
            version: self.version,
            ids_generation: self.ids_generation,
        }
    }
}
