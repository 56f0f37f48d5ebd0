//! Day index files: `YYYY-MM-DD.idx`, what a day file's blocks add up to,
//! so that opening the store does not read rows.
//!
//! ```text
//! file    = header | meta | users | entries
//! header  = magic "TSEVLIDX" | version u32 (1) | flags u32 (bit 0 sealed, bit 1 users sketched)
//!         | day i64 | covered_len u64 | ids_generation u64 | next_seq u32
//!         | meta_len u32 | users_len u32 | entries u64 | max_commit u64
//!         | meta_crc u32 | users_crc u32 | entries_crc u32 | header_crc u32   (84 bytes, LE)
//! meta    = varint blocks, blocks × (offset u64 | frame_len u32 | summary_len u32 | str summary)
//! users   = sorted u64 user-key hashes (exact), or the 16,384 sketch registers
//! entries = entries × (id hash u64 | block seq u32 | row u16), sorted   (14 bytes each)
//! ```
//!
//! An index describes the day file's first `covered_len` bytes: its live
//! blocks (summaries included: names, sources, bloom), its distinct users,
//! and which block holds each event id. It is written to a temporary file
//! and renamed over the old one: every 30 s for days that changed
//! (see [`super::store`]), when the store closes, and when a day is sealed
//! (then fsynced). Anything the index does not cover, or an index that does
//! not check out, is recomputed from the day file at open; an index that
//! claims more than the file holds (a power loss lost the file's tail) is
//! ignored and the whole day is recounted.
//!
//! For a sealed day only the header and meta are read at open; the users
//! are read when the day is reopened, and the entries are searched in place
//! ([`IdxFile::lookup`]) when the dedup filter says an id may be there.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::block::{self, BlockMeta, Cursor, Interner, Summary};
use super::hll::{Hll, NoHash, UserSet};
use super::write::Loc;
use crate::timestamp;

const MAGIC: &[u8; 8] = b"TSEVLIDX";
const VERSION: u32 = 1;
/// Bytes of the header.
pub(crate) const HEADER_LEN: u64 = 84;
/// Bytes of one entry.
const ENTRY_LEN: u64 = 14;
/// Entries read on each side of a lookup's guess (7 KB each side).
const LOOKUP_WINDOW: u64 = 512;
const FLAG_SEALED: u32 = 1;
const FLAG_SKETCH: u32 = 2;

/// The name of day `day`'s index.
pub(crate) fn file_name(day: i64) -> String {
    format!("{}.idx", timestamp::day_string(day))
}

/// An index's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IdxHeader {
    pub(crate) sealed: bool,
    pub(crate) sketch: bool,
    pub(crate) day: i64,
    pub(crate) covered_len: u64,
    pub(crate) ids_generation: u64,
    pub(crate) next_seq: u32,
    pub(crate) meta_len: u32,
    pub(crate) users_len: u32,
    pub(crate) entries: u64,
    pub(crate) max_commit: u64,
    pub(crate) meta_crc: u32,
    pub(crate) users_crc: u32,
    pub(crate) entries_crc: u32,
}

impl IdxHeader {
    fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        let mut v = Vec::with_capacity(HEADER_LEN as usize);
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&VERSION.to_le_bytes());
        let flags =
            if self.sealed { FLAG_SEALED } else { 0 } | if self.sketch { FLAG_SKETCH } else { 0 };
        v.extend_from_slice(&flags.to_le_bytes());
        v.extend_from_slice(&self.day.to_le_bytes());
        v.extend_from_slice(&self.covered_len.to_le_bytes());
        v.extend_from_slice(&self.ids_generation.to_le_bytes());
        v.extend_from_slice(&self.next_seq.to_le_bytes());
        v.extend_from_slice(&self.meta_len.to_le_bytes());
        v.extend_from_slice(&self.users_len.to_le_bytes());
        v.extend_from_slice(&self.entries.to_le_bytes());
        v.extend_from_slice(&self.max_commit.to_le_bytes());
        v.extend_from_slice(&self.meta_crc.to_le_bytes());
        v.extend_from_slice(&self.users_crc.to_le_bytes());
        v.extend_from_slice(&self.entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        b.copy_from_slice(&v);
        b
    }

    fn decode(b: &[u8]) -> Option<IdxHeader> {
        let body = b.get(..HEADER_LEN as usize - 4)?;
        let mut c = Cursor::new(b);
        if c.take(8)? != MAGIC || c.u32()? != VERSION {
            return None;
        }
        let flags = c.u32()?;
        let h = IdxHeader {
            sealed: flags & FLAG_SEALED != 0,
            sketch: flags & FLAG_SKETCH != 0,
            day: c.i64()?,
            covered_len: c.u64()?,
            ids_generation: c.u64()?,
            next_seq: c.u32()?,
            meta_len: c.u32()?,
            users_len: c.u32()?,
            entries: c.u64()?,
            max_commit: c.u64()?,
            meta_crc: c.u32()?,
            users_crc: c.u32()?,
            entries_crc: c.u32()?,
        };
        (crc32fast::hash(body) == c.u32()?).then_some(h)
    }

    fn users_offset(&self) -> u64 {
        HEADER_LEN + u64::from(self.meta_len)
    }

    fn entries_offset(&self) -> u64 {
        self.users_offset() + u64::from(self.users_len)
    }
}

/// What an index says about its day, besides users and entries.
#[derive(Clone, Debug)]
pub(crate) struct IdxMeta {
    pub(crate) header: IdxHeader,
    pub(crate) blocks: Vec<BlockMeta>,
}

/// Everything written into an index.
pub(crate) struct IdxWrite<'a> {
    pub(crate) sealed: bool,
    pub(crate) day: i64,
    pub(crate) covered_len: u64,
    pub(crate) ids_generation: u64,
    pub(crate) next_seq: u32,
    pub(crate) max_commit: u64,
    pub(crate) blocks: &'a [&'a BlockMeta],
    pub(crate) users: &'a UserSet,
    /// Sorted by hash.
    pub(crate) entries: &'a [(u64, Loc)],
}

/// Writes an index to `path` through a temporary file and a rename;
/// fsyncs it first when `sync`. Returns the index's size.
pub(crate) fn write(path: &Path, w: &IdxWrite<'_>, sync: bool) -> io::Result<u64> {
    let len = write_tmp(path, w, sync)?;
    let tmp = tmp_path(path);
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(len)
}

/// Writes an index to `path`'s temporary file (see [`tmp_path`]), to be
/// renamed over `path` by the caller. Returns the index's size.
pub(crate) fn write_tmp(path: &Path, w: &IdxWrite<'_>, sync: bool) -> io::Result<u64> {
    let mut meta = Vec::with_capacity(64 + w.blocks.len() * 512);
    block::put_varint(&mut meta, w.blocks.len() as u64);
    let mut summary = Vec::with_capacity(512);
    for b in w.blocks {
        meta.extend_from_slice(&b.offset.to_le_bytes());
        meta.extend_from_slice(&b.frame_len.to_le_bytes());
        meta.extend_from_slice(&b.summary_len.to_le_bytes());
        summary.clear();
        b.summary.encode(&mut summary);
        block::put_str(&mut meta, &summary);
    }
    let (users, sketch) = match w.users {
        UserSet::Exact(set) => {
            let mut v: Vec<u64> = set.iter().copied().collect();
            v.sort_unstable();
            let mut b = Vec::with_capacity(v.len() * 8);
            for h in v {
                b.extend_from_slice(&h.to_le_bytes());
            }
            (b, false)
        }
        UserSet::Sketch(hll) => (hll.registers().to_vec(), true),
    };
    let mut entries = Vec::with_capacity(w.entries.len() * ENTRY_LEN as usize);
    for (h, loc) in w.entries {
        entries.extend_from_slice(&h.to_le_bytes());
        entries.extend_from_slice(&loc.seq.to_le_bytes());
        entries.extend_from_slice(&loc.row.to_le_bytes());
    }
    let header = IdxHeader {
        sealed: w.sealed,
        sketch,
        day: w.day,
        covered_len: w.covered_len,
        ids_generation: w.ids_generation,
        next_seq: w.next_seq,
        meta_len: u32::try_from(meta.len())
            .map_err(|_| io::Error::other("index meta too large"))?,
        users_len: u32::try_from(users.len())
            .map_err(|_| io::Error::other("index users too large"))?,
        entries: w.entries.len() as u64,
        max_commit: w.max_commit,
        meta_crc: crc32fast::hash(&meta),
        users_crc: crc32fast::hash(&users),
        entries_crc: crc32fast::hash(&entries),
    };
    let tmp = tmp_path(path);
    let result = (|| -> io::Result<()> {
        let mut f = crate::storage::owner_only::create_file(&tmp)?;
        f.write_all(&header.encode())?;
        f.write_all(&meta)?;
        f.write_all(&users)?;
        f.write_all(&entries)?;
        if sync {
            f.sync_data()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    Ok(HEADER_LEN + meta.len() as u64 + users.len() as u64 + entries.len() as u64)
}

/// `path` with `.tmp` appended.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// An open index file.
#[derive(Debug)]
pub(crate) struct IdxFile {
    pub(crate) file: File,
    pub(crate) header: IdxHeader,
}

/// Why an index was not used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdxError {
    #[error("reading the index: {0}")]
    Io(#[from] io::Error),
    #[error("the index is damaged or of another version")]
    Damaged,
}

impl IdxFile {
    /// Opens an index and reads its header and meta.
    pub(crate) fn open(
        path: &Path,
        interner: &mut Interner,
    ) -> Result<(IdxFile, IdxMeta), IdxError> {
        let file = File::open(path)?;
        let mut head = [0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut head, 0)
            .map_err(|_| IdxError::Damaged)?;
        let header = IdxHeader::decode(&head).ok_or(IdxError::Damaged)?;
        let mut meta = vec![0u8; header.meta_len as usize];
        file.read_exact_at(&mut meta, HEADER_LEN)
            .map_err(|_| IdxError::Damaged)?;
        if crc32fast::hash(&meta) != header.meta_crc {
            return Err(IdxError::Damaged);
        }
        let mut c = Cursor::new(&meta);
        let n = c.varint().ok_or(IdxError::Damaged)? as usize;
        if n > meta.len() {
            return Err(IdxError::Damaged);
        }
        let mut blocks = Vec::with_capacity(n);
        for _ in 0..n {
            let offset = c.u64().ok_or(IdxError::Damaged)?;
            let frame_len = c.u32().ok_or(IdxError::Damaged)?;
            let summary_len = c.u32().ok_or(IdxError::Damaged)?;
            let summary = Summary::decode(c.bytes().ok_or(IdxError::Damaged)?, interner)
                .map_err(|_| IdxError::Damaged)?;
            blocks.push(BlockMeta {
                offset,
                frame_len,
                summary_len,
                summary,
            });
        }
        if !c.is_empty() {
            return Err(IdxError::Damaged);
        }
        Ok((IdxFile { file, header }, IdxMeta { header, blocks }))
    }

    /// Bytes of the file.
    pub(crate) fn len(&self) -> u64 {
        self.header.entries_offset() + self.header.entries * ENTRY_LEN
    }

    /// The distinct users.
    pub(crate) fn users(&self) -> Result<UserSet, IdxError> {
        let mut b = vec![0u8; self.header.users_len as usize];
        self.file
            .read_exact_at(&mut b, self.header.users_offset())
            .map_err(|_| IdxError::Damaged)?;
        if crc32fast::hash(&b) != self.header.users_crc {
            return Err(IdxError::Damaged);
        }
        if self.header.sketch {
            return Hll::from_registers(&b)
                .map(UserSet::Sketch)
                .ok_or(IdxError::Damaged);
        }
        if !b.len().is_multiple_of(8) {
            return Err(IdxError::Damaged);
        }
        let mut set: std::collections::HashSet<u64, NoHash> =
            std::collections::HashSet::with_capacity_and_hasher(b.len() / 8, NoHash);
        for chunk in b.chunks_exact(8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(chunk);
            set.insert(u64::from_le_bytes(a));
        }
        Ok(UserSet::Exact(set))
    }

    /// Every entry, checked against the header's CRC.
    pub(crate) fn entries(&self) -> Result<Vec<(u64, Loc)>, IdxError> {
        let len =
            usize::try_from(self.header.entries * ENTRY_LEN).map_err(|_| IdxError::Damaged)?;
        let mut b = vec![0u8; len];
        self.file
            .read_exact_at(&mut b, self.header.entries_offset())
            .map_err(|_| IdxError::Damaged)?;
        if crc32fast::hash(&b) != self.header.entries_crc {
            return Err(IdxError::Damaged);
        }
        Ok(b.chunks_exact(ENTRY_LEN as usize)
            .map(decode_entry)
            .collect())
    }

    fn entry_at(&self, i: u64) -> io::Result<(u64, Loc)> {
        let mut b = [0u8; ENTRY_LEN as usize];
        self.file
            .read_exact_at(&mut b, self.header.entries_offset() + i * ENTRY_LEN)?;
        Ok(decode_entry(&b))
    }

    /// The rows of the entries with hash `hash` (binary search with
    /// positioned reads; the file is not checked as a whole here: a damaged
    /// entry can only make a lookup miss, and every hit is confirmed
    /// against the block's ids).
    pub(crate) fn lookup(&self, hash: u64) -> io::Result<Vec<Loc>> {
        // Hashes are uniform: the entry is near hash / 2^64 × n (within a
        // few √n), so one read of a window around that guess nearly always
        // holds every entry with this hash.
        let n = self.header.entries;
        if n == 0 {
            return Ok(Vec::new());
        }
        let guess = ((u128::from(hash) * u128::from(n)) >> 64) as u64;
        let (lo, hi) = (
            guess.saturating_sub(LOOKUP_WINDOW),
            (guess + LOOKUP_WINDOW).min(n),
        );
        let mut window = vec![0u8; ((hi - lo) * ENTRY_LEN) as usize];
        self.file
            .read_exact_at(&mut window, self.header.entries_offset() + lo * ENTRY_LEN)?;
        let entries: Vec<(u64, Loc)> = window
            .chunks_exact(ENTRY_LEN as usize)
            .map(decode_entry)
            .collect();
        let bounded_below = lo == 0 || entries.first().is_some_and(|e| e.0 < hash);
        let bounded_above = hi == n || entries.last().is_some_and(|e| e.0 > hash);
        if bounded_below && bounded_above {
            return Ok(entries
                .iter()
                .filter(|e| e.0 == hash)
                .map(|e| e.1)
                .collect());
        }
        self.lookup_by_bisection(hash)
    }

    fn lookup_by_bisection(&self, hash: u64) -> io::Result<Vec<Loc>> {
        let n = self.header.entries;
        let (mut lo, mut hi) = (0u64, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry_at(mid)?.0 < hash {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out = Vec::new();
        let mut i = lo;
        while i < n {
            let (h, loc) = self.entry_at(i)?;
            if h != hash {
                break;
            }
            out.push(loc);
            i += 1;
        }
        Ok(out)
    }
}

fn decode_entry(b: &[u8]) -> (u64, Loc) {
    let mut h = [0u8; 8];
    let mut s = [0u8; 4];
    let mut r = [0u8; 2];
    if let (Some(hb), Some(sb), Some(rb)) = (b.get(..8), b.get(8..12), b.get(12..14)) {
        h.copy_from_slice(hb);
        s.copy_from_slice(sb);
        r.copy_from_slice(rb);
    }
    (
        u64::from_le_bytes(h),
        Loc {
            seq: u32::from_le_bytes(s),
            row: u16::from_le_bytes(r),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_round_trips_and_finds_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(19_783));
        let mut users = UserSet::default();
        users.insert(5);
        users.insert(7);
        let loc = |seq: u32| Loc {
            seq,
            row: (seq * 3) as u16,
        };
        let mut entries: Vec<(u64, Loc)> = (0..1000u64)
            .map(|i| (i * 7919 % 1000 * 3, loc((i % 5) as u32 + 1)))
            .collect();
        entries.push((42, loc(9)));
        entries.sort_unstable();
        let len = write(
            &path,
            &IdxWrite {
                sealed: true,
                day: 19_783,
                covered_len: 1234,
                ids_generation: 3,
                next_seq: 6,
                max_commit: 77,
                blocks: &[],
                users: &users,
                entries: &entries,
            },
            true,
        )
        .unwrap();
        let (f, meta) = IdxFile::open(&path, &mut Interner::default()).unwrap();
        assert_eq!(f.len(), len);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        assert!(meta.header.sealed);
        assert_eq!(meta.header.covered_len, 1234);
        assert_eq!(meta.header.max_commit, 77);
        assert_eq!(f.users().unwrap(), users);
        assert_eq!(f.entries().unwrap(), entries);
        let mut want: Vec<Loc> = entries.iter().filter(|e| e.0 == 42).map(|e| e.1).collect();
        want.sort_unstable();
        let mut got = f.lookup(42).unwrap();
        got.sort_unstable();
        assert_eq!(got, want);
        assert!(f.lookup(1).unwrap().is_empty());
        assert!(f.lookup(u64::MAX).unwrap().is_empty());
    }

    #[test]
    fn lookups_of_uniform_hashes_find_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(2));
        let mut entries: Vec<(u64, Loc)> = (0..50_000u64)
            .map(|i| {
                (
                    xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()),
                    Loc {
                        seq: (i % 7) as u32,
                        row: (i % 4096) as u16,
                    },
                )
            })
            .collect();
        entries.sort_unstable();
        write(
            &path,
            &IdxWrite {
                sealed: true,
                day: 2,
                covered_len: 32,
                ids_generation: 1,
                next_seq: 8,
                max_commit: 1,
                blocks: &[],
                users: &UserSet::default(),
                entries: &entries,
            },
            false,
        )
        .unwrap();
        let (f, _) = IdxFile::open(&path, &mut Interner::default()).unwrap();
        for &(h, loc) in entries.iter().step_by(97) {
            assert_eq!(f.lookup(h).unwrap(), [loc]);
        }
        assert!(f.lookup(12345).unwrap().is_empty());
    }

    #[test]
    fn a_damaged_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(1));
        write(
            &path,
            &IdxWrite {
                sealed: false,
                day: 1,
                covered_len: 32,
                ids_generation: 0,
                next_seq: 1,
                max_commit: 0,
                blocks: &[],
                users: &UserSet::default(),
                entries: &[],
            },
            false,
        )
        .unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            IdxFile::open(&path, &mut Interner::default()),
            Err(IdxError::Damaged)
        ));
    }
}
