//! Day files: `YYYY-MM-DD.evl`, a header and then block frames.
//!
//! ```text
//! file   = header | frame*
//! header = magic "TSEVLDAY" (8) | format version u32 LE (3) | flags u32 (0) | day i64 LE
//!        | crc32 u32 LE of the 24 bytes before it | zero u32          (32 bytes)
//! frame  = len u32 LE | crc32 u32 LE | payload          (see super::block)
//! ```
//!
//! [`scan`] walks a region of a day file and is total over arbitrary bytes:
//! it yields each intact block and, where bytes do not decode, searches
//! forward for the next frame that is intact *and* plausible (the block kind
//! byte, a sane length, and a `seq` above the last good block's that the
//! damaged span could have held), as the queue's segment walk does. Damage
//! followed by a good block is [`Damage`] (that block is lost, reported);
//! bad bytes that nothing good follows are the [`Tail`] (a torn write at the
//! end of the file, truncated when the day is opened for writing).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::block::{self, BlockError, BlockMeta, Interner, KIND_BLOCK, MAX_PAYLOAD};
use crate::log::record::FRAME_HEADER_LEN;
use crate::timestamp;

/// The format version of day files (and of the store).
pub const FORMAT_VERSION: u32 = 3;
/// Bytes of the day file header.
pub const HEADER_LEN: u64 = 32;
const MAGIC: &[u8; 8] = b"TSEVLDAY";
/// Smallest possible frame: header, kind, summary length, fixed summary,
/// three empty name/source/bloom counts.
const MIN_FRAME: usize = FRAME_HEADER_LEN + 1 + 4 + 83 + 3;
/// File name extension of day files.
pub const EXTENSION: &str = "evl";

/// The name of day `day`'s file.
pub(crate) fn file_name(day: i64) -> String {
    format!("{}.{EXTENSION}", timestamp::day_string(day))
}

/// The day a file name stands for, if it is a day file's name.
pub(crate) fn parse_file_name(name: &str) -> Option<i64> {
    timestamp::parse_day(name.strip_suffix(".evl")?)
}

/// Why a day file's header is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer than `HEADER_LEN` bytes.
    #[error("day file header is truncated")]
    Truncated,
    /// Not a day file.
    #[error("bad magic: not a telespool event_logs day file")]
    BadMagic,
    /// Another format version.
    #[error("day file has format {found}, this build reads format {FORMAT_VERSION}")]
    Version {
        /// The version found.
        found: u32,
    },
    /// The header's CRC does not match.
    #[error("day file header CRC mismatch")]
    Crc,
    /// The header names another day than the file name.
    #[error("day file header names day {found}, its name says {expected}")]
    WrongDay {
        /// Day in the header.
        found: i64,
        /// Day of the file name.
        expected: i64,
    },
}

fn encode_header(day: i64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&day.to_le_bytes());
    let crc = crc32fast::hash(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks the header of day `day`'s file.
pub(crate) fn check_header(b: &[u8], day: i64) -> Result<(), HeaderError> {
    let mut c = block::Cursor::new(b);
    let magic = c.take(8).ok_or(HeaderError::Truncated)?;
    if magic != MAGIC {
        return Err(HeaderError::BadMagic);
    }
    let version = c.u32().ok_or(HeaderError::Truncated)?;
    if version != FORMAT_VERSION {
        return Err(HeaderError::Version { found: version });
    }
    let _flags = c.u32().ok_or(HeaderError::Truncated)?;
    let found = c.i64().ok_or(HeaderError::Truncated)?;
    let crc = c.u32().ok_or(HeaderError::Truncated)?;
    if b.get(..24).map(crc32fast::hash) != Some(crc) {
        return Err(HeaderError::Crc);
    }
    if found != day {
        return Err(HeaderError::WrongDay {
            found,
            expected: day,
        });
    }
    Ok(())
}

/// An open day file. Readers share it through an `Arc`; a file replaced by
/// a rewrite (rename over it) or removed by retention stays readable
/// through the handles already taken.
#[derive(Debug)]
pub(crate) struct DayFile {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
}

impl DayFile {
    /// Creates day `day`'s file at `path` (which must not exist) with its
    /// header.
    pub(crate) fn create(path: &Path, day: i64) -> io::Result<DayFile> {
        let file = crate::storage::owner_only::file_options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        file.write_all_at(&encode_header(day), 0)?;
        Ok(DayFile {
            path: path.to_owned(),
            file,
        })
    }

    /// Opens an existing day file for reading and appending.
    pub(crate) fn open(path: &Path) -> io::Result<DayFile> {
        let file = crate::storage::owner_only::file_options()
            .read(true)
            .write(true)
            .open(path)?;
        Ok(DayFile {
            path: path.to_owned(),
            file,
        })
    }

    pub(crate) fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Reads `len` bytes at `offset` (fewer at the end of the file).
    pub(crate) fn read_region(&self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let len = usize::try_from(len).map_err(|_| io::Error::other("region too large"))?;
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(done);
        Ok(buf)
    }
}

/// Bytes that did not decode, followed by a good block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// File offset where the damage starts.
    pub offset: u64,
    /// Bytes skipped.
    pub len: u64,
    /// Why the frame there did not decode.
    pub cause: String,
}

/// Bytes at the end that did not decode and that no good block follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tail {
    /// File offset of the first bad byte: where a torn tail is truncated.
    pub offset: u64,
    /// Bytes from there to the end.
    pub len: u64,
    /// Why the frame there did not decode.
    pub cause: String,
}

/// What a walk over a region of a day file found.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scan {
    /// Good blocks, in file order (superseded ones included).
    pub(crate) blocks: Vec<BlockMeta>,
    pub(crate) damage: Vec<Damage>,
    pub(crate) tail: Option<Tail>,
    /// File offset after the last good block (or the region's start).
    pub(crate) valid_end: u64,
}

/// A good block at the start of `buf`, with `seq` above `last_seq`.
fn block_at(
    buf: &[u8],
    offset: u64,
    last_seq: u32,
    max_seq: u32,
    interner: &mut Interner,
) -> Result<BlockMeta, Option<BlockError>> {
    let mut c = block::Cursor::new(buf);
    let (Some(len), Some(_crc)) = (c.u32(), c.u32()) else {
        return Err(None);
    };
    let len = len as usize;
    if len == 0 || len > MAX_PAYLOAD {
        return Err(Some(BlockError::Range("frame length")));
    }
    if buf.len() < FRAME_HEADER_LEN + len {
        return Err(None);
    }
    let frame = buf.get(..FRAME_HEADER_LEN + len).ok_or(None)?;
    let payload = block::check_frame(frame).map_err(Some)?;
    let meta = block::parse_payload(payload, offset, interner).map_err(Some)?;
    if meta.summary.seq <= last_seq || meta.summary.seq > max_seq {
        return Err(Some(BlockError::Range("block seq")));
    }
    Ok(meta)
}

/// Walks `data`, the bytes of a day file from offset `base`, after the
/// block numbered `last_seq`.
pub(crate) fn scan(data: &[u8], base: u64, last_seq: u32, interner: &mut Interner) -> Scan {
    let mut s = Scan {
        valid_end: base,
        ..Scan::default()
    };
    let mut pos = 0usize;
    let mut last = last_seq;
    while pos < data.len() {
        // `pos < data.len()` (the loop's condition): always a non-empty tail.
        let Some(rest) = data.get(pos..) else { break };
        let cause = match block_at(rest, base + pos as u64, last, u32::MAX, interner) {
            Ok(meta) => {
                pos += meta.frame_len as usize;
                last = meta.summary.seq;
                s.valid_end = meta.end();
                s.blocks.push(meta);
                continue;
            }
            Err(None) => "bytes end inside a frame".to_owned(),
            Err(Some(e)) => e.to_string(),
        };
        let start = pos;
        let mut found = None;
        for at in start + 1..data.len().saturating_sub(MIN_FRAME - 1) {
            let Some(cand) = data.get(at..) else { break };
            // Cheap plausibility first: the kind byte and a seq the
            // damaged span could have held.
            if cand.get(FRAME_HEADER_LEN) != Some(&KIND_BLOCK) {
                continue;
            }
            let seq = cand
                .get(FRAME_HEADER_LEN + 5..FRAME_HEADER_LEN + 9)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .unwrap_or(0);
            let span = ((at - start) / MIN_FRAME) as u32;
            let max = last.saturating_add(1).saturating_add(span);
            if seq <= last || seq > max {
                continue;
            }
            if let Ok(meta) = block_at(cand, base + at as u64, last, max, interner) {
                found = Some((at, meta));
                break;
            }
        }
        match found {
            Some((at, meta)) => {
                s.damage.push(Damage {
                    offset: base + start as u64,
                    len: (at - start) as u64,
                    cause,
                });
                pos = at;
                let _ = meta;
            }
            None => {
                s.tail = Some(Tail {
                    offset: base + start as u64,
                    len: (data.len() - start) as u64,
                    cause,
                });
                break;
            }
        }
    }
    s
}

/// Drops, from blocks in file order, those a later merged block supersedes.
pub(crate) fn apply_supersedes(blocks: &mut Vec<BlockMeta>) {
    let ranges: Vec<(u64, u64, usize)> = blocks
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.summary.supersedes.map(|(from, to)| (from, to, i)))
        .collect();
    if ranges.is_empty() {
        return;
    }
    let mut i = 0;
    blocks.retain(|b| {
        let keep = !ranges
            .iter()
            .any(|&(from, to, by)| by > i && b.offset >= from && b.offset < to);
        i += 1;
        keep
    });
}

/// Day files found in a directory, by day.
pub(crate) fn list_days(dir: &Path) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(day) = name.to_str().and_then(parse_file_name) {
            out.push((day, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_bad_ones_are_refused() {
        let h = encode_header(19_800);
        assert_eq!(check_header(&h, 19_800), Ok(()));
        assert_eq!(
            check_header(&h, 19_801),
            Err(HeaderError::WrongDay {
                found: 19_800,
                expected: 19_801
            })
        );
        let mut bad = h;
        bad[0] = b'X';
        assert_eq!(check_header(&bad, 19_800), Err(HeaderError::BadMagic));
        let mut bad = h;
        bad[8] = 4;
        assert_eq!(
            check_header(&bad, 19_800),
            Err(HeaderError::Version { found: 4 })
        );
        let mut bad = h;
        bad[17] ^= 1;
        assert_eq!(check_header(&bad, 19_800), Err(HeaderError::Crc));
        assert_eq!(check_header(&h[..10], 19_800), Err(HeaderError::Truncated));
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(file_name(19_783), "2024-03-01.evl");
        assert_eq!(parse_file_name("2024-03-01.evl"), Some(19_783));
        assert_eq!(parse_file_name("2024-03-01.idx"), None);
        assert_eq!(parse_file_name("2024-3-1.evl"), None);
        assert_eq!(parse_file_name("2024-02-30.evl"), None);
    }
}
