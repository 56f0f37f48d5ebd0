//! Rewriting a day file: sealing, retention at the day boundary, the
//! quota's partial eviction and erasure all produce a new file from the
//! old one's live blocks, each block either dropped, copied as it is (its
//! seq renumbered, nothing decompressed but its ids and head, for the
//! index), or decoded and re-encoded with some rows left out.
//!
//! The new file is written next to the old one (`YYYY-MM-DD.evl.tmp`),
//! fsynced, and then [`Inner::install`]ed: the day's index is removed, the
//! new file renamed over the old one, and a new index written. A crash
//! before the rename leaves the old file (the temporary one is removed at
//! open); after it, the new file without an index, which open recounts.
//! Readers holding the old file's handle keep reading the old contents.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::block::{self, BlockBuilder, BlockMeta, Compressor, Head, Interner};
use super::dayfile::{self, DayFile};
use super::hll::UserSet;
use super::idx::{self, IdxFile, IdxWrite};
use super::store::{DayView, EventLogError, Inner, View};
use super::write::{Decoded, IdMap, Loc, OpenDay, Writer, new_file_id};
use crate::log::record::{FRAME_HEADER_LEN, frame_crc};

/// What happens to one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Copied as it is.
    KeepRaw,
    /// Left out.
    Drop,
    /// Decoded; the rows `keep_row` accepts are re-encoded.
    Rows,
}

/// How to rewrite a day.
pub(crate) struct RewriteSpec<'a> {
    pub(crate) decide: &'a dyn Fn(&BlockMeta) -> Decision,
    pub(crate) keep_row: &'a dyn Fn(&BlockMeta, &Head, usize) -> bool,
    /// Gather re-encoded rows from consecutive blocks into full blocks
    /// (each sorted by event time), instead of one block per input block.
    pub(crate) merge: bool,
}

/// A rewritten day, not yet installed.
pub(crate) struct Rewritten {
    pub(crate) day: i64,
    pub(crate) base_version: u64,
    pub(crate) tmp: std::path::PathBuf,
    pub(crate) file: DayFile,
    pub(crate) len: u64,
    pub(crate) blocks: Vec<BlockMeta>,
    pub(crate) entries: Vec<(u64, Loc)>,
    pub(crate) users: UserSet,
    pub(crate) next_seq: u32,
    pub(crate) removed_rows: u64,
    /// Id hashes of the rows left out.
    pub(crate) removed_hashes: Vec<u64>,
}

struct Out<'a> {
    inner: &'a Inner,
    file: DayFile,
    len: u64,
    seq: u32,
    blocks: Vec<BlockMeta>,
    entries: Vec<(u64, Loc)>,
    users: UserSet,
    z: Compressor,
    interner: Interner,
    pending: Vec<(Arc<Decoded>, usize)>,
    pending_rows: usize,
}

impl Out<'_> {
    fn write(&mut self, frame: &[u8]) -> Result<u64, EventLogError> {
        let at = self.len;
        self.file
            .file
            .write_all_at(frame, at)
            .map_err(|e| EventLogError::io("writing", &self.file.path, e))?;
        self.len += frame.len() as u64;
        Ok(at)
    }

    fn copy_raw(&mut self, dv: &DayView, meta: &Arc<BlockMeta>) -> Result<(), EventLogError> {
        self.flush(true)?;
        let mut payload = self.inner.read_block(dv, meta)?;
        let ids =
            block::Ids::decode(&payload, meta).map_err(|e| super::store::block_err(dv, meta, e))?;
        let head =
            Head::decode(&payload, meta).map_err(|e| super::store::block_err(dv, meta, e))?;
        let seq = self.seq;
        self.seq += 1;
        // The summary starts after kind (1) and its length (4): seq is its
        // first field; supersedes (offsets into the old file) is cleared.
        if let Some(s) = payload.get_mut(5..9) {
            s.copy_from_slice(&seq.to_le_bytes());
        }
        if let Some(s) = payload.get_mut(45..61) {
            s.fill(0);
        }
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&frame_crc(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        let at = self.write(&frame)?;
        for r in 0..ids.len() {
            self.entries.push((ids.hash(r), Loc { seq, row: r as u16 }));
        }
        for r in 0..head.len() {
            self.users.insert(head.user_key(r));
        }
        let mut m = (**meta).clone();
        m.offset = at;
        m.summary.seq = seq;
        m.summary.supersedes = None;
        self.blocks.push(m);
        Ok(())
    }

    fn add_rows(
        &mut self,
        d: Arc<Decoded>,
        rows: Vec<usize>,
        merge: bool,
    ) -> Result<(), EventLogError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.pending_rows += rows.len();
        self.pending
            .extend(rows.into_iter().map(|r| (d.clone(), r)));
        if !merge {
            self.flush(true)?;
        } else if self.pending_rows >= 2 * block::MAX_BLOCK_ROWS {
            self.flush(false)?;
        }
        Ok(())
    }

    /// Encodes the pending rows, sorted by event time, into full blocks;
    /// unless `all`, the rows that would make a last, partial block stay
    /// pending (merged blocks come out full, not full plus a remainder).
    fn flush(&mut self, all: bool) -> Result<(), EventLogError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut rows = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        rows.sort_by_key(|(d, r)| d.head.time(*r));
        let mut b = BlockBuilder::default();
        let mut in_block: Vec<(u64, u64)> = Vec::new();
        let mut start = 0;
        for i in 0..rows.len() {
            let Some((d, r)) = rows.get(i) else { break };
            in_block.push((d.ids.hash(*r), d.meta.summary.commit));
            b.push(&d.row_in(*r));
            let last = i + 1 == rows.len();
            if b.is_full() || (last && all) {
                let full = std::mem::take(&mut b);
                let seq = self.seq;
                self.seq += 1;
                let commit = in_block.iter().map(|x| x.1).max().unwrap_or(0);
                let built = full.finish(seq, commit, None, &mut self.z, &mut self.interner);
                let at = self.write(&built.frame)?;
                for (row, (h, _)) in in_block.drain(..).enumerate() {
                    self.entries.push((
                        h,
                        Loc {
                            seq,
                            row: row as u16,
                        },
                    ));
                }
                for u in built.users {
                    self.users.insert(u);
                }
                let mut m = built.meta;
                m.offset = at;
                self.blocks.push(m);
                start = i + 1;
            }
        }
        // The rows of an unfinished block go back to pending.
        if let Some(rest) = rows.get(start..)
            && !rest.is_empty()
        {
            self.pending_rows = rest.len();
            self.pending = rest.to_vec();
        }
        Ok(())
    }
}

impl Inner {
    /// Writes the new file of day `dv` as `spec` says (not installed).
    pub(crate) fn rewrite(
        &self,
        dv: &DayView,
        spec: &RewriteSpec<'_>,
    ) -> Result<Rewritten, EventLogError> {
        let path = self.day_path(dv.day);
        let tmp = idx::tmp_path(&path);
        let _ = std::fs::remove_file(&tmp);
        let file =
            DayFile::create(&tmp, dv.day).map_err(|e| EventLogError::io("creating", &tmp, e))?;
        let mut out = Out {
            inner: self,
            file,
            len: dayfile::HEADER_LEN,
            seq: 1,
            blocks: Vec::new(),
            entries: Vec::with_capacity(dv.rows as usize),
            users: UserSet::default(),
            z: Compressor::new(),
            interner: Interner::default(),
            pending: Vec::new(),
            pending_rows: 0,
        };
        let mut removed_rows = 0u64;
        let mut removed_hashes = Vec::new();
        let result = (|| -> Result<(), EventLogError> {
            for meta in &dv.blocks {
                match (spec.decide)(meta) {
                    Decision::KeepRaw => out.copy_raw(dv, meta)?,
                    Decision::Drop => {
                        removed_rows += meta.rows();
                        match self.block_ids(dv, meta) {
                            Ok(ids) => removed_hashes.extend((0..ids.len()).map(|r| ids.hash(r))),
                            Err(e) => self.report_damage(dv.day, meta.offset, &e),
                        }
                    }
                    Decision::Rows => {
                        let d = match Decoded::read(self, dv, meta) {
                            Ok(d) => Arc::new(d),
                            Err(e) => {
                                // A damaged block cannot be rewritten: it is
                                // left out (it was unreadable already).
                                self.report_damage(dv.day, meta.offset, &e);
                                removed_rows += meta.rows();
                                continue;
                            }
                        };
                        let mut keep = Vec::with_capacity(d.head.len());
                        for r in 0..d.head.len() {
                            if (spec.keep_row)(meta, &d.head, r) {
                                keep.push(r);
                            } else {
                                removed_rows += 1;
                                removed_hashes.push(d.ids.hash(r));
                            }
                        }
                        out.add_rows(d, keep, spec.merge)?;
                    }
                }
            }
            out.flush(true)?;
            out.file
                .file
                .sync_data()
                .map_err(|e| EventLogError::io("syncing", &tmp, e))
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        out.entries.sort_unstable();
        Ok(Rewritten {
            day: dv.day,
            base_version: dv.version,
            tmp,
            file: out.file,
            len: out.len,
            blocks: out.blocks,
            entries: out.entries,
            users: out.users,
            next_seq: out.seq,
            removed_rows,
            removed_hashes,
        })
    }

    /// Installs a rewritten day (under the writer lock): the old index is
    /// removed, the new file renamed over the old, the index written (a
    /// sealed one fsynced), the ids moved between filter and map as the
    /// day's state says. `seal` seals an open day. Returns false (and
    /// removes the new file) when the day changed since the rewrite began.
    pub(crate) fn install(
        &self,
        w: &mut Writer,
        view: &mut View,
        rw: Rewritten,
        seal: bool,
    ) -> Result<bool, EventLogError> {
        let Some(old) = view.days.get(&rw.day).cloned() else {
            let _ = std::fs::remove_file(&rw.tmp);
            return Ok(false);
        };
        if old.version != rw.base_version {
            let _ = std::fs::remove_file(&rw.tmp);
            return Ok(false);
        }
        let path = self.day_path(rw.day);
        let idx_path = self.idx_path(rw.day);
        match std::fs::remove_file(&idx_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(EventLogError::io("removing", &idx_path, e)),
        }
        std::fs::rename(&rw.tmp, &path).map_err(|e| EventLogError::io("renaming", &rw.tmp, e))?;
        let file = Arc::new(DayFile {
            path: path.clone(),
            file: rw.file.file,
        });
        let was_sealed = old.sealed.is_some();
        let sealed = seal || was_sealed;
        let blocks: Vec<Arc<BlockMeta>> = rw.blocks.into_iter().map(Arc::new).collect();
        let mut v = DayView {
            day: rw.day,
            file,
            file_id: new_file_id(),
            len: rw.len,
            idx_len: 0,
            blocks,
            rows: 0,
            names: BTreeMap::new(),
            users: rw.users.count(),
            users_estimated: rw.users.is_estimate(),
            sealed: None,
            version: old.version + 1,
            ids_generation: old.ids_generation,
        };
        v.recount_names();
        if sealed {
            v.ids_generation += 1;
            let refs: Vec<&BlockMeta> = v.blocks.iter().map(|b| &**b).collect();
            v.idx_len = idx::write(
                &idx_path,
                &IdxWrite {
                    sealed: true,
                    day: rw.day,
                    covered_len: rw.len,
                    ids_generation: v.ids_generation,
                    next_seq: rw.next_seq,
                    max_commit: v.max_commit(),
                    blocks: &refs,
                    users: &rw.users,
                    entries: &rw.entries,
                },
                true,
            )
            .map_err(|e| EventLogError::io("writing", &idx_path, e))?;
            let (idx, _) =
                IdxFile::open(&idx_path, &mut w.interner).map_err(|e| EventLogError::Io {
                    what: "reopening",
                    path: idx_path.display().to_string(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            v.sealed = Some(Arc::new(idx));
            if was_sealed {
                for h in &rw.removed_hashes {
                    w.cuckoo.delete(*h);
                }
            } else {
                w.open.remove(&rw.day);
                if !w.cuckoo.has_room_for(rw.entries.len() as u64) {
                    self.grow_cuckoo(w, view, rw.entries.len() as u64)?;
                }
                for (h, _) in &rw.entries {
                    w.cuckoo.insert(*h);
                }
            }
            w.covered.insert(rw.day, v.ids_generation);
            w.cuckoo_dirty = true;
        } else {
            let od = OpenDay {
                ids: IdMap::from_entries(&rw.entries),
                users: rw.users,
                next_seq: rw.next_seq,
                len: rw.len,
                changed: true,
            };
            w.open.insert(rw.day, od);
        }
        w.dirty.remove(&rw.day);
        view.days.insert(rw.day, Arc::new(v));
        view.retotal();
        Ok(true)
    }
}
