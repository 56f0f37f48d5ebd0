//! Erasure of one user's rows (privacy requests).
//!
//! [`EventLogStore::erase`] appends a **tombstone** to `days/tombstones`
//! (fsynced: a privacy request must not be forgotten) naming the user id
//! or anonymous user id and the last commit written before it. From then
//! on every query hides the rows it names that were written by that commit
//! or earlier: [`EventLogStore::get`] and `recent` skip them, and the
//! per-day counts and users of a day holding any are recounted from its
//! rows instead of read from its aggregates. Rows recorded *after* the
//! erasure are not erased.
//!
//! [`EventLogStore::compact_erasures`] (run by the background thread right
//! after, by the CLI before it returns, and again at open if a crash
//! interrupted it) rewrites every day with candidate blocks (those written
//! by the tombstone's commit or earlier whose user bloom may hold the user)
//! without those rows, recomputing the day's index, users and dedup
//! entries; the other blocks are copied as they are. Once every day is
//! rewritten the tombstone is removed. An erased row's event id is
//! forgotten like an expired one's.
//!
//! ```text
//! tombstones = frame*      frame = len u32 | crc32 u32 (over len and payload) | payload
//! payload    = kind u8 (1 user id, 2 anonymous id) | commit u64 | created unix nanos i64
//!            | user id i64, or the anonymous id's UTF-8 bytes
//! ```

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::block::{self, BlockMeta, Cursor};
use super::rewrite::{Decision, RewriteSpec};
use super::store::{EventLogError, EventLogStore, Inner};
use crate::clock::UnixNanos;
use crate::log::record::frame_crc;

/// The file of pending erasures.
pub(crate) const FILE_NAME: &str = "tombstones";

/// Whose rows to erase.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EraseTarget {
    /// Rows with this `user_id` (non-zero).
    UserId(i64),
    /// Rows with this `anonymous_user_id` (non-empty).
    AnonymousUserId(String),
}

impl std::fmt::Display for EraseTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EraseTarget::UserId(u) => write!(f, "user id {u}"),
            EraseTarget::AnonymousUserId(a) => write!(f, "anonymous user id {a:?}"),
        }
    }
}

impl EraseTarget {
    fn key_hash(&self) -> u64 {
        match self {
            EraseTarget::UserId(u) => block::user_id_hash(*u),
            EraseTarget::AnonymousUserId(a) => block::anonymous_hash(a),
        }
    }

    fn matches(&self, user_id: i64, anonymous_user_id: &str) -> bool {
        match self {
            EraseTarget::UserId(u) => *u == user_id,
            EraseTarget::AnonymousUserId(a) => a == anonymous_user_id,
        }
    }
}

/// A pending erasure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tombstone {
    /// Whose rows.
    pub target: EraseTarget,
    /// Rows written by this commit or earlier are erased.
    pub commit: u64,
    /// When it was requested.
    pub created: UnixNanos,
}

/// The pending erasures, as queries see them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tombstones {
    pub(crate) list: Vec<Tombstone>,
}

impl Tombstones {
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether a row of a block of `commit` is erased.
    pub(crate) fn hides(&self, commit: u64, user_id: i64, anonymous_user_id: &str) -> bool {
        !self.list.is_empty()
            && self
                .list
                .iter()
                .any(|t| commit <= t.commit && t.target.matches(user_id, anonymous_user_id))
    }

    /// Whether a block may hold erased rows.
    pub(crate) fn may_hide(&self, meta: &BlockMeta) -> bool {
        !self.list.is_empty()
            && self.list.iter().any(|t| {
                meta.summary.commit <= t.commit
                    && block::bloom_may_contain(&meta.summary.bloom, t.target.key_hash())
            })
    }

    pub(crate) fn may_hide_any(&self, blocks: &[Arc<BlockMeta>]) -> bool {
        !self.list.is_empty() && blocks.iter().any(|b| self.may_hide(b))
    }
}

fn encode(t: &Tombstone) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    match &t.target {
        EraseTarget::UserId(_) => p.push(1),
        EraseTarget::AnonymousUserId(_) => p.push(2),
    }
    p.extend_from_slice(&t.commit.to_le_bytes());
    p.extend_from_slice(&t.created.0.to_le_bytes());
    match &t.target {
        EraseTarget::UserId(u) => p.extend_from_slice(&u.to_le_bytes()),
        EraseTarget::AnonymousUserId(a) => p.extend_from_slice(a.as_bytes()),
    }
    let mut f = Vec::with_capacity(8 + p.len());
    f.extend_from_slice(&(p.len() as u32).to_le_bytes());
    f.extend_from_slice(&frame_crc(&p).to_le_bytes());
    f.extend_from_slice(&p);
    f
}

fn decode(payload: &[u8]) -> Option<Tombstone> {
    let mut c = Cursor::new(payload);
    let kind = c.u8()?;
    let commit = c.u64()?;
    let created = UnixNanos(c.i64()?);
    let target = match kind {
        1 => EraseTarget::UserId(c.i64()?),
        2 => EraseTarget::AnonymousUserId(
            std::str::from_utf8(c.take(c.remaining())?).ok()?.to_owned(),
        ),
        _ => return None,
    };
    c.is_empty().then_some(Tombstone {
        target,
        commit,
        created,
    })
}

/// Reads the pending erasures. A torn last frame (a crash while appending,
/// before the fsync that acknowledged it) is ignored; a damaged frame
/// elsewhere is reported and skipped.
pub(crate) fn load(path: &Path) -> Result<Tombstones, EventLogError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Tombstones::default()),
        Err(e) => return Err(EventLogError::io("reading", path, e)),
    };
    let mut list = Vec::new();
    let mut c = Cursor::new(&bytes);
    while !c.is_empty() {
        let (Some(len), Some(crc)) = (c.u32(), c.u32()) else {
            break;
        };
        let Some(payload) = c.take(len as usize) else {
            break;
        };
        match (frame_crc(payload) == crc)
            .then(|| decode(payload))
            .flatten()
        {
            Some(t) => list.push(t),
            None => {
                tracing::error!(path = %path.display(), "a damaged erasure request was skipped; repeat recent erasures");
            }
        }
    }
    Ok(Tombstones { list })
}

/// Writes the whole list (temporary file, fsync, rename).
fn store(path: &Path, list: &[Tombstone]) -> Result<(), EventLogError> {
    if list.is_empty() {
        return match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EventLogError::io("removing", path, e)),
        };
    }
    let tmp = super::idx::tmp_path(path);
    let mut bytes = Vec::new();
    for t in list {
        bytes.extend_from_slice(&encode(t));
    }
    let write = || -> std::io::Result<()> {
        let mut f = crate::storage::owner_only::create_file(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| EventLogError::io("writing", path, e))
}

/// What an erasure hid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EraseOutcome {
    /// Rows of the user found (hidden now; removed from disk by the
    /// compaction).
    pub rows: u64,
    /// Days holding them.
    pub days: u64,
}

impl EventLogStore {
    /// Erases every row of `target` stored so far: hidden from every query
    /// at once, removed from disk by [`EventLogStore::compact_erasures`]
    /// (which the background thread starts right away). See the module
    /// documentation of [`super::erase`].
    pub fn erase(&self, target: EraseTarget) -> Result<EraseOutcome, EventLogError> {
        match &target {
            EraseTarget::UserId(0) => return Err(EventLogError::BadEraseTarget),
            EraseTarget::AnonymousUserId(a) if a.is_empty() => {
                return Err(EventLogError::BadEraseTarget);
            }
            _ => {}
        }
        let inner = &self.inner;
        let _m = inner.maint();
        let t = {
            let w = inner.writer();
            let t = Tombstone {
                target,
                commit: w.next_commit.saturating_sub(1),
                created: inner.clock.now(),
            };
            let view = inner.view();
            let mut list = view.tombstones.list.clone();
            list.push(t.clone());
            let path = inner.days_dir.join(FILE_NAME);
            store(&path, &list)?;
            let mut v = (*view).clone();
            v.tombstones = Arc::new(Tombstones { list });
            inner.publish(v);
            t
        };
        inner.cache.clear();
        tracing::info!(target = %t.target, commit = t.commit, "event_logs erasure recorded; rows hidden until compaction removes them");
        let one = Tombstones { list: vec![t] };
        let view = inner.view();
        let mut out = EraseOutcome::default();
        for dv in view.days.values() {
            let mut rows = 0;
            for meta in dv.blocks.iter().filter(|b| one.may_hide(b)) {
                let head = inner.block_head(dv, meta)?;
                rows += (0..head.len())
                    .filter(|&r| {
                        one.hides(
                            meta.summary.commit,
                            head.user_id(r),
                            head.anonymous_user_id(r),
                        )
                    })
                    .count() as u64;
            }
            if rows > 0 {
                out.rows += rows;
                out.days += 1;
            }
        }
        inner.wake_background();
        Ok(out)
    }

    /// The erasures whose compaction has not finished.
    pub fn pending_erasures(&self) -> Vec<Tombstone> {
        self.inner.view().tombstones.list.clone()
    }

    /// Rewrites every day holding erased rows without them, then drops the
    /// tombstones. Returns the rows removed.
    pub fn compact_erasures(&self) -> Result<u64, EventLogError> {
        self.inner.compact_erasures()
    }
}

impl Inner {
    pub(crate) fn compact_erasures(&self) -> Result<u64, EventLogError> {
        let _m = self.maint();
        let view = self.view();
        let tombs = view.tombstones.clone();
        if tombs.is_empty() {
            return Ok(0);
        }
        let days: Vec<i64> = view
            .days
            .values()
            .filter(|dv| tombs.may_hide_any(&dv.blocks))
            .map(|dv| dv.day)
            .collect();
        let mut removed = 0;
        for day in days {
            let decide = |m: &BlockMeta| {
                if tombs.may_hide(m) {
                    Decision::Rows
                } else {
                    Decision::KeepRaw
                }
            };
            let keep = |m: &BlockMeta, head: &block::Head, r: usize| {
                !tombs.hides(m.summary.commit, head.user_id(r), head.anonymous_user_id(r))
            };
            let spec = RewriteSpec {
                decide: &decide,
                keep_row: &keep,
                merge: false,
            };
            // Under the writer lock: the day may be the one being written.
            let mut w = self.writer();
            let Some(dv) = self.view().days.get(&day).cloned() else {
                continue;
            };
            let rw = self.rewrite(&dv, &spec)?;
            removed += rw.removed_rows;
            let mut v = (*self.view()).clone();
            self.install(&mut w, &mut v, rw, false)?;
            v.retotal();
            self.publish(v);
        }
        let w = self.writer();
        let mut v = (*self.view()).clone();
        let done: HashSet<&Tombstone> = tombs.list.iter().collect();
        let rest: Vec<Tombstone> = v
            .tombstones
            .list
            .iter()
            .filter(|t| !done.contains(t))
            .cloned()
            .collect();
        store(&self.days_dir.join(FILE_NAME), &rest)?;
        v.tombstones = Arc::new(Tombstones { list: rest });
        v.other_bytes = self.other_bytes();
        v.retotal();
        self.publish(v);
        drop(w);
        self.cache.clear();
        tracing::info!(
            rows = removed,
            erasures = tombs.list.len(),
            "event_logs erasure compaction done"
        );
        Ok(removed)
    }
}

impl std::hash::Hash for Tombstone {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        std::hash::Hash::hash(&self.target, h);
        self.commit.hash(h);
        self.created.0.hash(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_round_trip_through_their_file_and_a_torn_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let list = vec![
            Tombstone {
                target: EraseTarget::UserId(42),
                commit: 7,
                created: UnixNanos(1),
            },
            Tombstone {
                target: EraseTarget::AnonymousUserId("anon ✓".into()),
                commit: 9,
                created: UnixNanos(2),
            },
        ];
        store(&path, &list).unwrap();
        assert_eq!(load(&path).unwrap().list, list);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[9, 0, 0]);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(load(&path).unwrap().list, list);
        store(&path, &[]).unwrap();
        assert!(!path.exists());
        assert!(load(&path).unwrap().is_empty());
    }

    #[test]
    fn a_tombstone_hides_only_its_user_up_to_its_commit() {
        let t = Tombstones {
            list: vec![Tombstone {
                target: EraseTarget::UserId(5),
                commit: 10,
                created: UnixNanos(0),
            }],
        };
        assert!(t.hides(10, 5, "x"));
        assert!(!t.hides(11, 5, "x"));
        assert!(!t.hides(3, 6, "x"));
    }
}
