//! Blocks: the rows of one commit (for one day), column by column.
//!
//! A block is one frame of a day file, framed as the queue frames records
//! (`[len u32 LE][crc32 u32 LE][payload]`, the CRC over the length bytes and
//! the payload: [`crate::log::record::frame_crc`]):
//!
//! ```text
//! payload  = kind u8 (1) | summary_len u32 | summary | ids | head | rest
//! summary  = seq u32 | rows u32 | commit u64 | min (secs i64, nanos u32) | max (same)
//!          | supersedes (from u64, to u64; 0, 0 = none)
//!          | 3 × section (codec u8: 0 raw, 1 zstd | raw_len u32 | stored_len u32)
//!          | names: varint n, n × (str name, varint rows)        sorted by name
//!          | sources: varint n, n × str                          sorted
//!          | user bloom: varint bytes, bytes                     (see below)
//! ids      = bitmap (a bit per row: canonical UUID) | 16 B per UUID row | str per other row
//! head     = times | ts exceptions | name col | user_id (zigzag varint per row) | anon col | source col
//! rest     = url, version, client, cohort_id, first_source_url, last_source_url, referrer,
//!            device_id, insert_id, billing_product_category, billing_event_id,
//!            feature_flags, argument, public_argument            (one col each)
//! times    = first (zigzag varint secs, varint nanos), then per row
//!            (zigzag varint Δsecs from the row before, varint nanos)
//! ts exc.  = varint n, n × (varint row, str)     timestamps not in the canonical rendering
//! col      = mode 0 (dictionary): varint values, values × str, width u8 (1|2|4),
//!                                 rows × index (width bytes LE; 0 = null, k = value k)
//!          | mode 1 (plain):      rows × (varint 0 = null, else len + 1; bytes)
//! str      = varint length | UTF-8 bytes;  varint = unsigned LEB128
//! ```
//!
//! Every section but the UUIDs is highly repetitive across rows (names,
//! clients, versions, the JSON of private metadata), so each of the three
//! sections is compressed on its own with zstd at [`ZSTD_LEVEL`] (stored
//! raw when that does not make it smaller). Three sections, so that a scan
//! that needs only the head (aggregates, filters) or only the ids (dedup
//! checks) decompresses only that.
//!
//! The summary stays uncompressed and is kept in memory for every block
//! ([`BlockMeta`]): queries skip blocks by time range, names, sources and
//! the user bloom without reading them. The bloom holds, for every distinct
//! user id (0 included) and anonymous id of the block, the hash
//! [`user_id_hash`] or [`anonymous_hash`]; 10 bits per key, 6 probes (about
//! 1% false positives).
//!
//! `seq` numbers the blocks of a day file (1, 2, ... in file order);
//! `commit` is the store-wide commit that wrote the rows (erasure
//! tombstones apply to commits up to theirs). `supersedes` is set on a
//! block that merges a run of small blocks written before it: the frames
//! in `[from, to)` are then dead (see [`super::store`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::codec::RowFields;
use super::hll::NoHash;
use super::key::{EventTime, render_timestamp};
use crate::log::record::{FRAME_HEADER_LEN, frame_crc};

/// Most rows per block.
pub const MAX_BLOCK_ROWS: usize = 4096;
/// A block is closed once its columns' encoded size (before compression;
/// a value already in a column's dictionary costs its index only) passes
/// this (1 MiB).
pub const MAX_BLOCK_RAW: usize = 1 << 20;
/// zstd level of the sections (1 is the fastest of the normal levels;
/// docs/benchmarks.md, "Mirror", has the measurements that chose it).
pub const ZSTD_LEVEL: i32 = 1;
/// The kind byte of a block frame.
pub(crate) const KIND_BLOCK: u8 = 1;
/// Largest frame payload accepted when reading (anything longer is damage).
pub(crate) const MAX_PAYLOAD: usize = 64 << 20;
/// Largest decompressed section accepted when reading.
const MAX_SECTION: usize = 256 << 20;
/// Bytes of the summary before its variable part.
const SUMMARY_FIXED: usize = 83;
/// Bloom bits per key and probes.
const BLOOM_BITS_PER_KEY: usize = 10;
const BLOOM_PROBES: u64 = 6;

/// Why a block does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The bytes end inside a field.
    #[error("block is truncated in {0}")]
    Truncated(&'static str),
    /// A length, count or number is out of range.
    #[error("block field {0} is out of range")]
    Range(&'static str),
    /// A string is not UTF-8.
    #[error("block field {0} is not UTF-8")]
    NotUtf8(&'static str),
    /// The frame's CRC does not match.
    #[error("block CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc {
        /// CRC in the frame.
        stored: u32,
        /// CRC of the bytes read.
        computed: u32,
    },
    /// Not a block frame (kind byte).
    #[error("frame kind {0} is not a block")]
    Kind(u8),
    /// A section's codec byte is unknown.
    #[error("section codec {0} is unknown")]
    Codec(u8),
    /// A section does not decompress to its recorded size.
    #[error("section {section} does not decompress: {message}")]
    Decompress {
        /// ids, head or rest.
        section: &'static str,
        /// zstd's message, or the size mismatch.
        message: String,
    },
    /// Bytes follow the last field of a section.
    #[error("{1} bytes follow the last field of {0}")]
    Trailing(&'static str, usize),
}

// ---- bytes --------------------------------------------------------------------

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s);
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Reads fields off the front of a byte slice; every read is checked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    start_len: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor {
            buf,
            start_len: buf.len(),
        }
    }

    /// Bytes read so far.
    pub(crate) fn position(&self) -> usize {
        self.start_len - self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.buf.split_at_checked(n)?;
        self.buf = rest;
        Some(head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    pub(crate) fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    pub(crate) fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return None;
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        self.take(n)
    }

    pub(crate) fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}

// ---- hashes -------------------------------------------------------------------

/// The hash of an event id (its text) used by dedup. xxh3: stable across
/// versions and platforms, since index files store it.
pub(crate) fn id_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// The hash of a user id, as distinct users and the bloom know it.
pub(crate) fn user_id_hash(user_id: i64) -> u64 {
    let mut b = [0u8; 9];
    b[0] = b'u';
    b[1..].copy_from_slice(&user_id.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&b)
}

/// The hash of an anonymous user id.
pub(crate) fn anonymous_hash(anonymous_user_id: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    h.update(b"a");
    h.update(anonymous_user_id.as_bytes());
    h.digest()
}

/// Who a row counts as for distinct users: the user id when non-zero,
/// else the anonymous id.
pub(crate) fn user_key_hash(user_id: i64, anonymous_user_id: &str) -> u64 {
    if user_id != 0 {
        user_id_hash(user_id)
    } else {
        anonymous_hash(anonymous_user_id)
    }
}

fn bloom_positions(hash: u64, bits: u64) -> impl Iterator<Item = u64> {
    let h1 = hash & 0xffff_ffff;
    let h2 = (hash >> 32) | 1;
    (0..BLOOM_PROBES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % bits)
}

fn bloom_build(keys: &HashSet<u64, NoHash>) -> Vec<u8> {
    let bytes = (keys.len() * BLOOM_BITS_PER_KEY).div_ceil(8).max(8);
    let mut bloom = vec![0u8; bytes];
    let bits = (bytes * 8) as u64;
    for &k in keys {
        for p in bloom_positions(k, bits) {
            if let Some(b) = bloom.get_mut((p / 8) as usize) {
                *b |= 1 << (p % 8);
            }
        }
    }
    bloom
}

/// Whether a block's bloom may hold `hash` (an empty bloom may hold anything).
pub(crate) fn bloom_may_contain(bloom: &[u8], hash: u64) -> bool {
    if bloom.is_empty() {
        return true;
    }
    let bits = (bloom.len() * 8) as u64;
    bloom_positions(hash, bits).all(|p| {
        bloom
            .get((p / 8) as usize)
            .is_some_and(|b| b & (1 << (p % 8)) != 0)
    })
}

// ---- ids ------------------------------------------------------------------------

/// The 16 bytes of a UUID in canonical form (36 characters, lower-case
/// hex, hyphens at 8, 13, 18, 23), which is exactly what renders back.
pub(crate) fn parse_canonical_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut nibbles = 0usize;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        let byte = out.get_mut(nibbles / 2)?;
        *byte = (*byte << 4) | v;
        nibbles += 1;
    }
    Some(out)
}

/// Renders 16 bytes as a canonical UUID.
pub(crate) fn render_uuid(u: &[u8; 16]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, &byte) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

// ---- columns --------------------------------------------------------------------

/// A string (or bytes) column being built: a dictionary of the block's
/// distinct values and one index per row (0 = null).
#[derive(Default)]
struct Col<'a> {
    map: HashMap<&'a [u8], u32, foldhash::fast::RandomState>,
    values: Vec<&'a [u8]>,
    counts: Vec<u32>,
    idx: Vec<u32>,
    last: Option<(&'a [u8], u32)>,
    raw: usize,
}

impl<'a> Col<'a> {
    /// Adds a row's value; returns the bytes it adds to the encoded column
    /// (about: its index, and its text if the dictionary did not hold it).
    fn push(&mut self, v: Option<&'a [u8]>) -> usize {
        let before = self.raw;
        let i = match v {
            None => 0,
            Some(s) => match self.last {
                Some((l, li)) if l == s => li,
                _ => {
                    let next = self.values.len() as u32 + 1;
                    let i = *self.map.entry(s).or_insert(next);
                    if i == next {
                        self.values.push(s);
                        self.counts.push(0);
                        self.raw += s.len() + 2;
                    }
                    self.last = Some((s, i));
                    i
                }
            },
        };
        if let Some(c) = (i as usize)
            .checked_sub(1)
            .and_then(|k| self.counts.get_mut(k))
        {
            *c += 1;
        }
        self.idx.push(i);
        self.raw - before + 2
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let rows = self.idx.len();
        if self.values.len() * 2 > rows {
            out.push(1);
            for &i in &self.idx {
                match (i as usize).checked_sub(1).and_then(|k| self.values.get(k)) {
                    None => out.push(0),
                    Some(v) => {
                        put_varint(out, v.len() as u64 + 1);
                        out.extend_from_slice(v);
                    }
                }
            }
            return;
        }
        out.push(0);
        put_varint(out, self.values.len() as u64);
        for v in &self.values {
            put_str(out, v);
        }
        let width: u8 = match self.values.len() {
            0..=0xfe => 1,
            0xff..=0xfffe => 2,
            _ => 4,
        };
        out.push(width);
        out.reserve(rows * usize::from(width));
        for &i in &self.idx {
            out.extend_from_slice(&i.to_le_bytes()[..usize::from(width)]);
        }
    }
}

/// A decoded column: value spans into its section's bytes, and an index
/// per row (0 = null).
#[derive(Clone, Debug, Default)]
pub(crate) struct ColDec {
    spans: Vec<(u32, u32)>,
    idx: Vec<u32>,
}

impl ColDec {
    fn decode(
        c: &mut Cursor<'_>,
        rows: usize,
        field: &'static str,
        text: bool,
    ) -> Result<ColDec, BlockError> {
        let truncated = || BlockError::Truncated(field);
        let span = |c: &mut Cursor<'_>, len: usize| -> Result<(u32, u32), BlockError> {
            let start = c.position();
            let bytes = c.take(len).ok_or_else(truncated)?;
            if text && std::str::from_utf8(bytes).is_err() {
                return Err(BlockError::NotUtf8(field));
            }
            Ok((start as u32, len as u32))
        };
        match c.u8().ok_or_else(truncated)? {
            0 => {
                let n = c.varint().ok_or_else(truncated)? as usize;
                if n > rows {
                    return Err(BlockError::Range(field));
                }
                let mut spans = Vec::with_capacity(n);
                for _ in 0..n {
                    let len = c.varint().ok_or_else(truncated)? as usize;
                    spans.push(span(c, len)?);
                }
                let width = usize::from(c.u8().ok_or_else(truncated)?);
                if !matches!(width, 1 | 2 | 4) {
                    return Err(BlockError::Range(field));
                }
                let raw = c
                    .take(rows.checked_mul(width).ok_or(BlockError::Range(field))?)
                    .ok_or_else(truncated)?;
                let mut idx = Vec::with_capacity(rows);
                for chunk in raw.chunks_exact(width) {
                    let mut b = [0u8; 4];
                    if let Some(dst) = b.get_mut(..width) {
                        dst.copy_from_slice(chunk);
                    }
                    let i = u32::from_le_bytes(b);
                    if i as usize > n {
                        return Err(BlockError::Range(field));
                    }
                    idx.push(i);
                }
                Ok(ColDec { spans, idx })
            }
            1 => {
                let mut spans = Vec::new();
                let mut idx = Vec::with_capacity(rows);
                for _ in 0..rows {
                    match c.varint().ok_or_else(truncated)? {
                        0 => idx.push(0),
                        n => {
                            let len =
                                usize::try_from(n - 1).map_err(|_| BlockError::Range(field))?;
                            spans.push(span(c, len)?);
                            idx.push(spans.len() as u32);
                        }
                    }
                }
                Ok(ColDec { spans, idx })
            }
            _ => Err(BlockError::Range(field)),
        }
    }

    /// The bytes of row `row`'s value (`None` for null or out of range).
    pub(crate) fn get<'b>(&self, bytes: &'b [u8], row: usize) -> Option<&'b [u8]> {
        let i = (*self.idx.get(row)? as usize).checked_sub(1)?;
        let &(start, len) = self.spans.get(i)?;
        bytes.get(start as usize..start as usize + len as usize)
    }

    /// Row `row`'s value as text (validated when decoded); "" for null.
    pub(crate) fn str<'b>(&self, bytes: &'b [u8], row: usize) -> &'b str {
        self.get(bytes, row)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// Row `row`'s optional value.
    pub(crate) fn opt<'b>(&self, bytes: &'b [u8], row: usize) -> Option<&'b str> {
        self.get(bytes, row)
            .and_then(|b| std::str::from_utf8(b).ok())
    }
}

// ---- summary --------------------------------------------------------------------

/// One section's codec and sizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Section {
    pub(crate) codec: u8,
    pub(crate) raw: u32,
    pub(crate) stored: u32,
}

/// The uncompressed part of a block: what queries and recovery read
/// without decompressing anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) seq: u32,
    pub(crate) rows: u32,
    pub(crate) commit: u64,
    pub(crate) min: EventTime,
    pub(crate) max: EventTime,
    pub(crate) supersedes: Option<(u64, u64)>,
    pub(crate) sections: [Section; 3],
    /// Distinct names with their row counts, sorted by name.
    pub(crate) names: Vec<(Arc<str>, u32)>,
    /// Distinct sources, sorted.
    pub(crate) sources: Vec<Arc<str>>,
    pub(crate) bloom: Box<[u8]>,
}

/// Shares one allocation per distinct name or source across blocks.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    set: HashSet<Arc<str>>,
}

impl Interner {
    pub(crate) fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.set.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.set.insert(a.clone());
        a
    }

    /// Forgets values nothing else holds (after days are dropped).
    pub(crate) fn prune(&mut self) {
        self.set.retain(|a| Arc::strong_count(a) > 1);
    }
}

impl Summary {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.rows.to_le_bytes());
        out.extend_from_slice(&self.commit.to_le_bytes());
        for t in [self.min, self.max] {
            out.extend_from_slice(&t.seconds.to_le_bytes());
            out.extend_from_slice(&t.nanos.to_le_bytes());
        }
        let (from, to) = self.supersedes.unwrap_or((0, 0));
        out.extend_from_slice(&from.to_le_bytes());
        out.extend_from_slice(&to.to_le_bytes());
        for s in &self.sections {
            out.push(s.codec);
            out.extend_from_slice(&s.raw.to_le_bytes());
            out.extend_from_slice(&s.stored.to_le_bytes());
        }
        put_varint(out, self.names.len() as u64);
        for (name, rows) in &self.names {
            put_str(out, name.as_bytes());
            put_varint(out, u64::from(*rows));
        }
        put_varint(out, self.sources.len() as u64);
        for s in &self.sources {
            put_str(out, s.as_bytes());
        }
        put_str(out, &self.bloom);
    }

    pub(crate) fn decode(bytes: &[u8], interner: &mut Interner) -> Result<Summary, BlockError> {
        let t = |f| BlockError::Truncated(f);
        let mut c = Cursor::new(bytes);
        let seq = c.u32().ok_or(t("summary"))?;
        let rows = c.u32().ok_or(t("summary"))?;
        let commit = c.u64().ok_or(t("summary"))?;
        let mut time = || -> Result<EventTime, BlockError> {
            let seconds = c.i64().ok_or(t("summary"))?;
            let nanos = c.u32().ok_or(t("summary"))?;
            if nanos >= 1_000_000_000 {
                return Err(BlockError::Range("summary time"));
            }
            Ok(EventTime { seconds, nanos })
        };
        let min = time()?;
        let max = time()?;
        let from = c.u64().ok_or(t("summary"))?;
        let to = c.u64().ok_or(t("summary"))?;
        let mut sections = [Section::default(); 3];
        for s in &mut sections {
            s.codec = c.u8().ok_or(t("summary"))?;
            s.raw = c.u32().ok_or(t("summary"))?;
            s.stored = c.u32().ok_or(t("summary"))?;
            if s.codec > 1 {
                return Err(BlockError::Codec(s.codec));
            }
        }
        let n = c.varint().ok_or(t("names"))? as usize;
        if n > rows as usize || rows == 0 || rows as usize > MAX_BLOCK_ROWS * 4 || min > max {
            return Err(BlockError::Range("summary"));
        }
        let mut names = Vec::with_capacity(n);
        for _ in 0..n {
            let name = c.str().ok_or(t("names"))?;
            let count = c.varint().ok_or(t("names"))?;
            names.push((
                interner.get(name),
                u32::try_from(count).map_err(|_| BlockError::Range("names"))?,
            ));
        }
        let n = c.varint().ok_or(t("sources"))? as usize;
        if n > rows as usize {
            return Err(BlockError::Range("sources"));
        }
        let mut sources = Vec::with_capacity(n);
        for _ in 0..n {
            sources.push(interner.get(c.str().ok_or(t("sources"))?));
        }
        let bloom = c.bytes().ok_or(t("bloom"))?.into();
        if !c.is_empty() {
            return Err(BlockError::Trailing("summary", c.remaining()));
        }
        Ok(Summary {
            seq,
            rows,
            commit,
            min,
            max,
            supersedes: (from != 0 || to != 0).then_some((from, to)),
            sections,
            names,
            sources,
            bloom,
        })
    }

    /// Bytes of the sections after the summary.
    fn sections_len(&self) -> u64 {
        self.sections.iter().map(|s| u64::from(s.stored)).sum()
    }
}

/// A block as the day directory knows it: where its frame is, and its summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BlockMeta {
    /// File offset of the frame.
    pub(crate) offset: u64,
    /// Bytes of the whole frame (header included).
    pub(crate) frame_len: u32,
    /// Bytes of the summary inside the payload.
    pub(crate) summary_len: u32,
    pub(crate) summary: Summary,
}

impl BlockMeta {
    pub(crate) fn end(&self) -> u64 {
        self.offset + u64::from(self.frame_len)
    }

    pub(crate) fn rows(&self) -> u64 {
        u64::from(self.summary.rows)
    }

    /// Offset, inside the payload, of section `i` (0 ids, 1 head, 2 rest).
    fn section_range(&self, i: usize) -> Option<std::ops::Range<usize>> {
        let mut start = 1 + 4 + self.summary_len as usize;
        for s in self.summary.sections.get(..i)? {
            start += s.stored as usize;
        }
        let len = self.summary.sections.get(i)?.stored as usize;
        Some(start..start + len)
    }
}

/// Parses a frame's payload (CRC already checked) into its block meta.
pub(crate) fn parse_payload(
    payload: &[u8],
    offset: u64,
    interner: &mut Interner,
) -> Result<BlockMeta, BlockError> {
    let mut c = Cursor::new(payload);
    let kind = c.u8().ok_or(BlockError::Truncated("kind"))?;
    if kind != KIND_BLOCK {
        return Err(BlockError::Kind(kind));
    }
    let summary_len = c.u32().ok_or(BlockError::Truncated("summary length"))?;
    let summary_bytes = c
        .take(summary_len as usize)
        .ok_or(BlockError::Truncated("summary"))?;
    let summary = Summary::decode(summary_bytes, interner)?;
    if summary.sections_len() != c.remaining() as u64 {
        return Err(BlockError::Range("section lengths"));
    }
    Ok(BlockMeta {
        offset,
        frame_len: (FRAME_HEADER_LEN + payload.len()) as u32,
        summary_len,
        summary,
    })
}

/// Checks a whole frame (header and payload): the payload, or why not.
pub(crate) fn check_frame(frame: &[u8]) -> Result<&[u8], BlockError> {
    let mut c = Cursor::new(frame);
    let len = c.u32().ok_or(BlockError::Truncated("frame header"))? as usize;
    let stored = c.u32().ok_or(BlockError::Truncated("frame header"))?;
    if len == 0 || len > MAX_PAYLOAD {
        return Err(BlockError::Range("frame length"));
    }
    let payload = c.take(len).ok_or(BlockError::Truncated("frame"))?;
    let computed = frame_crc(payload);
    if computed != stored {
        return Err(BlockError::Crc { stored, computed });
    }
    Ok(payload)
}

// ---- building ---------------------------------------------------------------------

/// One row as the block builder takes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowIn<'a> {
    pub(crate) id: &'a str,
    pub(crate) time: EventTime,
    /// The row's timestamp text when it is not the canonical rendering of
    /// `time` (kept so that every row reads back as it was written).
    pub(crate) ts_text: Option<&'a str>,
    pub(crate) f: RowFields<'a>,
}

/// What a finished block adds to its day.
#[derive(Debug)]
pub(crate) struct Built {
    /// The whole frame.
    pub(crate) frame: Vec<u8>,
    pub(crate) meta: BlockMeta,
    /// Distinct user keys ([`user_key_hash`]) of the rows.
    pub(crate) users: Vec<u64>,
}

/// Builds one block.
#[derive(Default)]
pub(crate) struct BlockBuilder<'a> {
    n: usize,
    uuid_bits: Vec<u8>,
    uuids: Vec<u8>,
    text_ids: Vec<u8>,
    times: Vec<u8>,
    prev_secs: i64,
    ts_exc: Vec<(u32, &'a str)>,
    user_ids: Vec<i64>,
    name: Col<'a>,
    anon: Col<'a>,
    source: Col<'a>,
    rest: [Col<'a>; 14],
    min: Option<EventTime>,
    max: Option<EventTime>,
    raw: usize,
}

/// Names of the rest columns, in order (for errors).
const REST_COLS: [&str; 14] = [
    "url",
    "version",
    "client",
    "cohort_id",
    "first_source_url",
    "last_source_url",
    "referrer",
    "device_id",
    "insert_id",
    "billing_product_category",
    "billing_event_id",
    "feature_flags",
    "argument",
    "public_argument",
];

impl<'a> BlockBuilder<'a> {
    pub(crate) fn rows(&self) -> usize {
        self.n
    }

    /// Whether the block is full (rows or bytes).
    pub(crate) fn is_full(&self) -> bool {
        self.n >= MAX_BLOCK_ROWS || self.raw >= MAX_BLOCK_RAW
    }

    pub(crate) fn push(&mut self, r: &RowIn<'a>) {
        let row = self.n;
        if row.is_multiple_of(8) {
            self.uuid_bits.push(0);
        }
        match parse_canonical_uuid(r.id) {
            Some(u) => {
                if let Some(b) = self.uuid_bits.last_mut() {
                    *b |= 1 << (row % 8);
                }
                self.uuids.extend_from_slice(&u);
            }
            None => put_str(&mut self.text_ids, r.id.as_bytes()),
        }
        let delta = if row == 0 {
            r.time.seconds
        } else {
            r.time.seconds.wrapping_sub(self.prev_secs)
        };
        put_varint(&mut self.times, zigzag(delta));
        put_varint(&mut self.times, u64::from(r.time.nanos));
        self.prev_secs = r.time.seconds;
        if let Some(text) = r.ts_text {
            self.ts_exc.push((row as u32, text));
        }
        self.min = Some(self.min.map_or(r.time, |m| m.min(r.time)));
        self.max = Some(self.max.map_or(r.time, |m| m.max(r.time)));
        let f = &r.f;
        let mut raw = 32 + r.id.len().min(16) + r.ts_text.map_or(0, str::len);
        raw += self.name.push(Some(f.name.as_bytes()));
        self.user_ids.push(f.user_id);
        raw += self.anon.push(Some(f.anonymous_user_id.as_bytes()));
        raw += self.source.push(Some(f.source.as_bytes()));
        let [
            url,
            version,
            client,
            cohort,
            first,
            last,
            referrer,
            device,
            insert,
            billing,
            billing_id,
            flags,
            argument,
            public,
        ] = &mut self.rest;
        raw += url.push(Some(f.url.as_bytes()));
        raw += version.push(Some(f.version.as_bytes()));
        for (col, v) in [
            client, cohort, first, last, referrer, device, insert, billing, billing_id,
        ]
        .into_iter()
        .zip(f.opts)
        {
            raw += col.push(v.map(str::as_bytes));
        }
        raw += flags.push(Some(f.flags));
        raw += argument.push(Some(f.argument.as_bytes()));
        raw += public.push(Some(f.public_argument.as_bytes()));
        self.raw += raw;
        self.n += 1;
    }

    /// Encodes, compresses and frames the block.
    pub(crate) fn finish(
        self,
        seq: u32,
        commit: u64,
        supersedes: Option<(u64, u64)>,
        z: &mut Compressor,
        interner: &mut Interner,
    ) -> Built {
        let n = self.n;
        let mut ids =
            Vec::with_capacity(self.uuid_bits.len() + self.uuids.len() + self.text_ids.len());
        ids.extend_from_slice(&self.uuid_bits);
        ids.extend_from_slice(&self.uuids);
        ids.extend_from_slice(&self.text_ids);

        let mut head = Vec::with_capacity(self.times.len() + n * 8 + 64);
        head.extend_from_slice(&self.times);
        put_varint(&mut head, self.ts_exc.len() as u64);
        for (row, text) in &self.ts_exc {
            put_varint(&mut head, u64::from(*row));
            put_str(&mut head, text.as_bytes());
        }
        self.name.encode(&mut head);
        for &u in &self.user_ids {
            put_varint(&mut head, zigzag(u));
        }
        self.anon.encode(&mut head);
        self.source.encode(&mut head);

        let mut rest = Vec::with_capacity(self.rest.iter().map(|c| c.raw + c.idx.len() * 2).sum());
        for col in &self.rest {
            col.encode(&mut rest);
        }

        // Distinct users (for the day's count) and bloom keys (user ids and
        // anonymous ids, each once).
        let anon_hashes: Vec<u64> = self
            .anon
            .values
            .iter()
            .map(|v| anonymous_hash(std::str::from_utf8(v).unwrap_or("")))
            .collect();
        let mut distinct_ids: HashSet<i64, foldhash::fast::RandomState> = HashSet::default();
        let mut users: HashSet<u64, NoHash> = HashSet::default();
        for (row, &u) in self.user_ids.iter().enumerate() {
            let a = self.anon.idx.get(row).copied().unwrap_or(0) as usize;
            if distinct_ids.insert(u) && u != 0 {
                users.insert(user_id_hash(u));
            }
            if u == 0
                && let Some(&h) = a.checked_sub(1).and_then(|k| anon_hashes.get(k))
            {
                users.insert(h);
            }
        }
        let mut keys: HashSet<u64, NoHash> = anon_hashes.iter().copied().collect();
        keys.extend(distinct_ids.iter().map(|&u| user_id_hash(u)));
        let bloom = bloom_build(&keys);

        let mut names: Vec<(Arc<str>, u32)> = self
            .name
            .values
            .iter()
            .zip(&self.name.counts)
            .map(|(v, &c)| (interner.get(std::str::from_utf8(v).unwrap_or("")), c))
            .collect();
        names.sort();
        let mut sources: Vec<Arc<str>> = self
            .source
            .values
            .iter()
            .map(|v| interner.get(std::str::from_utf8(v).unwrap_or("")))
            .collect();
        sources.sort();

        let (ids_s, ids_b) = z.section(&ids);
        let (head_s, head_b) = z.section(&head);
        let (rest_s, rest_b) = z.section(&rest);
        let summary = Summary {
            seq,
            rows: n as u32,
            commit,
            min: self.min.unwrap_or(EventTime {
                seconds: 0,
                nanos: 0,
            }),
            max: self.max.unwrap_or(EventTime {
                seconds: 0,
                nanos: 0,
            }),
            supersedes,
            sections: [ids_s, head_s, rest_s],
            names,
            sources,
            bloom: bloom.into(),
        };
        let mut payload = Vec::with_capacity(
            1 + 4 + SUMMARY_FIXED + 256 + ids_b.len() + head_b.len() + rest_b.len(),
        );
        payload.push(KIND_BLOCK);
        payload.extend_from_slice(&[0; 4]);
        summary.encode(&mut payload);
        let summary_len = (payload.len() - 5) as u32;
        payload[1..5].copy_from_slice(&summary_len.to_le_bytes());
        payload.extend_from_slice(&ids_b);
        payload.extend_from_slice(&head_b);
        payload.extend_from_slice(&rest_b);
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&frame_crc(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        let frame_len = frame.len() as u32;
        Built {
            frame,
            meta: BlockMeta {
                offset: 0,
                frame_len,
                summary_len,
                summary,
            },
            users: users.into_iter().collect(),
        }
    }
}

/// The zstd context of a writer, and its scratch buffer.
pub(crate) struct Compressor {
    z: Option<zstd::bulk::Compressor<'static>>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compressor")
    }
}

impl Compressor {
    /// A context at [`ZSTD_LEVEL`] (sections are stored raw if zstd cannot
    /// set one up).
    pub(crate) fn new() -> Compressor {
        Compressor::with_level(Some(ZSTD_LEVEL))
    }

    /// A context at `level`; `None` stores every section raw.
    pub(crate) fn with_level(level: Option<i32>) -> Compressor {
        let z = level
            .and_then(|level| zstd::bulk::Compressor::new(level).ok())
            .and_then(|mut z| {
                // The frame's CRC covers the bytes; zstd's own checksum would
                // only cost time.
                z.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(false))
                    .ok()?;
                z.set_parameter(zstd::zstd_safe::CParameter::ContentSizeFlag(true))
                    .ok()?;
                Some(z)
            });
        Compressor {
            z,
            scratch: Vec::new(),
        }
    }

    /// One section, compressed unless that does not make it smaller.
    fn section(&mut self, raw: &[u8]) -> (Section, Vec<u8>) {
        let raw_len = raw.len() as u32;
        if raw.len() >= 64
            && let Some(z) = &mut self.z
        {
            self.scratch.clear();
            self.scratch
                .reserve(zstd::zstd_safe::compress_bound(raw.len()));
            if let Ok(n) = z.compress_to_buffer(raw, &mut self.scratch)
                && n < raw.len()
            {
                return (
                    Section {
                        codec: 1,
                        raw: raw_len,
                        stored: n as u32,
                    },
                    self.scratch.get(..n).unwrap_or_default().to_vec(),
                );
            }
        }
        (
            Section {
                codec: 0,
                raw: raw_len,
                stored: raw_len,
            },
            raw.to_vec(),
        )
    }
}

// ---- decoding -------------------------------------------------------------------

thread_local! {
    /// One zstd decompression context per thread that reads blocks.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn decompress(
    payload: &[u8],
    meta: &BlockMeta,
    i: usize,
    name: &'static str,
) -> Result<Vec<u8>, BlockError> {
    let s = meta
        .summary
        .sections
        .get(i)
        .ok_or(BlockError::Truncated(name))?;
    let stored = meta
        .section_range(i)
        .and_then(|r| payload.get(r))
        .ok_or(BlockError::Truncated(name))?;
    let raw = s.raw as usize;
    if raw > MAX_SECTION {
        return Err(BlockError::Range(name));
    }
    match s.codec {
        0 if stored.len() == raw => Ok(stored.to_vec()),
        0 => Err(BlockError::Range(name)),
        1 => {
            let mut out = Vec::with_capacity(raw);
            let result = DECOMPRESSOR.with(|d| {
                let mut d = d.borrow_mut();
                if d.is_none() {
                    *d = Some(zstd::bulk::Decompressor::new()?);
                }
                match d.as_mut() {
                    Some(d) => d.decompress_to_buffer(stored, &mut out),
                    None => Err(std::io::Error::other("no zstd context")),
                }
            });
            match result {
                Ok(n) if n == raw => Ok(out),
                Ok(n) => Err(BlockError::Decompress {
                    section: name,
                    message: format!("{n} bytes, expected {raw}"),
                }),
                Err(e) => Err(BlockError::Decompress {
                    section: name,
                    message: e.to_string(),
                }),
            }
        }
        c => Err(BlockError::Codec(c)),
    }
}

/// The event ids of a block.
#[derive(Clone, Debug)]
pub(crate) struct Ids {
    bytes: Vec<u8>,
    /// Per row: (is uuid, start, len) into `bytes`.
    rows: Vec<(bool, u32, u32)>,
}

impl Ids {
    pub(crate) fn decode(payload: &[u8], meta: &BlockMeta) -> Result<Ids, BlockError> {
        let bytes = decompress(payload, meta, 0, "ids")?;
        let n = meta.summary.rows as usize;
        let bits = n.div_ceil(8);
        let bitmap = bytes.get(..bits).ok_or(BlockError::Truncated("ids"))?;
        let is_uuid = |row: usize| {
            bitmap
                .get(row / 8)
                .is_some_and(|b| b & (1 << (row % 8)) != 0)
        };
        let uuids = (0..n).filter(|&r| is_uuid(r)).count();
        let texts_start = bits + uuids * 16;
        let mut c = Cursor::new(
            bytes
                .get(texts_start..)
                .ok_or(BlockError::Truncated("ids"))?,
        );
        let mut rows = Vec::with_capacity(n);
        let mut next_uuid = bits;
        for row in 0..n {
            if is_uuid(row) {
                rows.push((true, next_uuid as u32, 16));
                next_uuid += 16;
            } else {
                let len = c.varint().ok_or(BlockError::Truncated("ids"))? as usize;
                let start = texts_start + c.position();
                let b = c.take(len).ok_or(BlockError::Truncated("ids"))?;
                if std::str::from_utf8(b).is_err() {
                    return Err(BlockError::NotUtf8("ids"));
                }
                rows.push((false, start as u32, len as u32));
            }
        }
        if !c.is_empty() {
            return Err(BlockError::Trailing("ids", c.remaining()));
        }
        Ok(Ids { bytes, rows })
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Row `row`'s id as text.
    pub(crate) fn get(&self, row: usize) -> String {
        match self.rows.get(row) {
            Some(&(true, s, _)) => self
                .bytes
                .get(s as usize..s as usize + 16)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map(|u| render_uuid(&u))
                .unwrap_or_default(),
            Some(&(false, s, l)) => self
                .bytes
                .get(s as usize..(s + l) as usize)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or("")
                .to_owned(),
            None => String::new(),
        }
    }

    /// Whether row `row`'s id is `id` (without rendering it).
    pub(crate) fn equals(&self, row: usize, id: &str) -> bool {
        match self.rows.get(row) {
            Some(&(true, s, _)) => match parse_canonical_uuid(id) {
                Some(u) => self.bytes.get(s as usize..s as usize + 16) == Some(&u[..]),
                None => false,
            },
            Some(&(false, s, l)) => {
                self.bytes.get(s as usize..(s + l) as usize) == Some(id.as_bytes())
            }
            None => false,
        }
    }

    /// Hash of row `row`'s id ([`id_hash`]).
    pub(crate) fn hash(&self, row: usize) -> u64 {
        match self.rows.get(row) {
            Some(&(false, s, l)) => xxhash_rust::xxh3::xxh3_64(
                self.bytes
                    .get(s as usize..(s + l) as usize)
                    .unwrap_or_default(),
            ),
            _ => id_hash(&self.get(row)),
        }
    }
}

/// The head section of a block: what filters and aggregates read.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    pub(crate) bytes: Vec<u8>,
    pub(crate) times: Vec<EventTime>,
    /// Rows whose timestamp text is not canonical, and that text.
    pub(crate) ts_exc: Vec<(u32, (u32, u32))>,
    pub(crate) name: ColDec,
    pub(crate) user_ids: Vec<i64>,
    pub(crate) anon: ColDec,
    pub(crate) source: ColDec,
}

impl Head {
    pub(crate) fn decode(payload: &[u8], meta: &BlockMeta) -> Result<Head, BlockError> {
        let bytes = decompress(payload, meta, 1, "head")?;
        let n = meta.summary.rows as usize;
        let t = BlockError::Truncated("times");
        let mut c = Cursor::new(&bytes);
        let mut times = Vec::with_capacity(n);
        let mut prev = 0i64;
        for row in 0..n {
            let d = unzigzag(c.varint().ok_or(t.clone())?);
            let secs = if row == 0 { d } else { prev.wrapping_add(d) };
            let nanos = c.varint().ok_or(t.clone())?;
            if nanos >= 1_000_000_000 {
                return Err(BlockError::Range("times"));
            }
            times.push(EventTime {
                seconds: secs,
                nanos: nanos as u32,
            });
            prev = secs;
        }
        let exc = c.varint().ok_or(BlockError::Truncated("ts exceptions"))? as usize;
        if exc > n {
            return Err(BlockError::Range("ts exceptions"));
        }
        let mut ts_exc = Vec::with_capacity(exc);
        for _ in 0..exc {
            let row = c.varint().ok_or(BlockError::Truncated("ts exceptions"))?;
            let len = c.varint().ok_or(BlockError::Truncated("ts exceptions"))? as usize;
            let start = c.position();
            let text = c.take(len).ok_or(BlockError::Truncated("ts exceptions"))?;
            if row >= n as u64 || std::str::from_utf8(text).is_err() {
                return Err(BlockError::Range("ts exceptions"));
            }
            ts_exc.push((row as u32, (start as u32, len as u32)));
        }
        let name = ColDec::decode(&mut c, n, "name", true)?;
        let mut user_ids = Vec::with_capacity(n);
        for _ in 0..n {
            user_ids.push(unzigzag(
                c.varint().ok_or(BlockError::Truncated("user_id"))?,
            ));
        }
        let anon = ColDec::decode(&mut c, n, "anonymous_user_id", true)?;
        let source = ColDec::decode(&mut c, n, "source", true)?;
        if !c.is_empty() {
            return Err(BlockError::Trailing("head", c.remaining()));
        }
        Ok(Head {
            bytes,
            times,
            ts_exc,
            name,
            user_ids,
            anon,
            source,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.times.len()
    }

    pub(crate) fn name(&self, row: usize) -> &str {
        self.name.str(&self.bytes, row)
    }

    pub(crate) fn anonymous_user_id(&self, row: usize) -> &str {
        self.anon.str(&self.bytes, row)
    }

    pub(crate) fn source(&self, row: usize) -> &str {
        self.source.str(&self.bytes, row)
    }

    pub(crate) fn user_id(&self, row: usize) -> i64 {
        self.user_ids.get(row).copied().unwrap_or(0)
    }

    pub(crate) fn time(&self, row: usize) -> EventTime {
        self.times.get(row).copied().unwrap_or(EventTime {
            seconds: 0,
            nanos: 0,
        })
    }

    /// The row's timestamp text when it is not canonical.
    pub(crate) fn ts_text(&self, row: usize) -> Option<&str> {
        self.ts_exc
            .iter()
            .find(|(r, _)| *r as usize == row)
            .and_then(|&(_, (s, l))| self.bytes.get(s as usize..(s + l) as usize))
            .and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The row's timestamp as stored in the row.
    pub(crate) fn timestamp(&self, row: usize) -> String {
        match self.ts_text(row) {
            Some(t) => t.to_owned(),
            None => render_timestamp(self.time(row)),
        }
    }

    /// The row's distinct-user key ([`user_key_hash`]).
    pub(crate) fn user_key(&self, row: usize) -> u64 {
        user_key_hash(self.user_id(row), self.anonymous_user_id(row))
    }
}

/// The rest section of a block.
#[derive(Clone, Debug)]
pub(crate) struct Rest {
    bytes: Vec<u8>,
    cols: Vec<ColDec>,
}

impl Rest {
    pub(crate) fn decode(payload: &[u8], meta: &BlockMeta) -> Result<Rest, BlockError> {
        let bytes = decompress(payload, meta, 2, "rest")?;
        let n = meta.summary.rows as usize;
        let mut c = Cursor::new(&bytes);
        let mut cols = Vec::with_capacity(REST_COLS.len());
        for (i, name) in REST_COLS.iter().enumerate() {
            // feature_flags (11) are bytes in the codec's form, not text.
            cols.push(ColDec::decode(&mut c, n, name, i != 11)?);
        }
        if !c.is_empty() {
            return Err(BlockError::Trailing("rest", c.remaining()));
        }
        Ok(Rest { bytes, cols })
    }

    /// Row `row`'s fields (the head's included), borrowed.
    pub(crate) fn fields<'a>(&'a self, head: &'a Head, row: usize) -> RowFields<'a> {
        let b = &self.bytes;
        let col = |i: usize| self.cols.get(i);
        let text = |i: usize| col(i).map_or("", |c| c.str(b, row));
        let opt = |i: usize| col(i).and_then(|c| c.opt(b, row));
        RowFields {
            name: head.name(row),
            user_id: head.user_id(row),
            anonymous_user_id: head.anonymous_user_id(row),
            source: head.source(row),
            url: text(0),
            version: text(1),
            opts: [
                opt(2),
                opt(3),
                opt(4),
                opt(5),
                opt(6),
                opt(7),
                opt(8),
                opt(9),
                opt(10),
            ],
            flags: col(11).and_then(|c| c.get(b, row)).unwrap_or(&[0]),
            argument: text(12),
            public_argument: text(13),
        }
    }
}

/// For the benchmarks: builds 1,600-row blocks of `rows` (encoded by
/// [`super::EventLogStore::encode_row`]) compressed at zstd `level` (`None`:
/// raw) and returns the bytes of the frames and the time it took.
#[doc(hidden)]
pub fn probe_codec(rows: &[super::EncodedRow], level: Option<i32>) -> (usize, std::time::Duration) {
    let mut z = Compressor::with_level(level);
    let mut interner = Interner::default();
    let started = std::time::Instant::now();
    let mut bytes = 0;
    for chunk in rows.chunks(1600) {
        let mut b = BlockBuilder::default();
        let ins: Vec<RowIn<'_>> = chunk.iter().filter_map(|r| r.row_in().ok()).collect();
        for r in &ins {
            b.push(r);
        }
        bytes += b.finish(1, 1, None, &mut z, &mut interner).frame.len();
    }
    (bytes, started.elapsed())
}

/// Reads a block's frame from `file` at `meta.offset` and checks it.
pub(crate) fn read_payload(file: &std::fs::File, meta: &BlockMeta) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::FileExt;
    let mut frame = vec![0u8; meta.frame_len as usize];
    file.read_exact_at(&mut frame, meta.offset)
        .map_err(ReadError::Io)?;
    let payload = check_frame(&frame).map_err(ReadError::Block)?;
    if payload.first() != Some(&KIND_BLOCK) {
        return Err(ReadError::Block(BlockError::Kind(
            payload.first().copied().unwrap_or(0),
        )));
    }
    let start = FRAME_HEADER_LEN;
    frame.drain(..start);
    Ok(frame)
}

/// Why a block could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("reading a block: {0}")]
    Io(#[source] std::io::Error),
    /// The bytes are not an intact block.
    #[error("damaged block: {0}")]
    Block(#[source] BlockError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_logs::EventLogRow;
    use crate::event_logs::codec;
    use proptest::prelude::*;

    /// Encodes rows into one block and decodes every row back.
    pub(crate) fn round_trip(rows: &[EventLogRow]) -> Vec<EventLogRow> {
        let values: Vec<Vec<u8>> = rows
            .iter()
            .map(|r| {
                let mut v = Vec::new();
                codec::encode(r, &mut v).unwrap();
                v
            })
            .collect();
        let ins: Vec<RowIn<'_>> = rows
            .iter()
            .zip(&values)
            .map(|(r, v)| {
                let time = crate::event_logs::key::parse_timestamp(&r.timestamp).unwrap();
                RowIn {
                    id: &r.event_id,
                    time,
                    ts_text: (render_timestamp(time) != r.timestamp)
                        .then_some(r.timestamp.as_str()),
                    f: codec::decode_fields(v).unwrap().0,
                }
            })
            .collect();
        let mut b = BlockBuilder::default();
        for r in &ins {
            b.push(r);
        }
        let mut interner = Interner::default();
        let built = b.finish(7, 9, None, &mut Compressor::new(), &mut interner);
        let payload = check_frame(&built.frame).unwrap();
        let meta = parse_payload(payload, 0, &mut interner).unwrap();
        assert_eq!(meta.summary, built.meta.summary);
        let ids = Ids::decode(payload, &meta).unwrap();
        let head = Head::decode(payload, &meta).unwrap();
        let rest = Rest::decode(payload, &meta).unwrap();
        (0..head.len())
            .map(|i| {
                codec::row_from_fields(&ids.get(i), &head.timestamp(i), &rest.fields(&head, i))
                    .unwrap()
            })
            .collect()
    }

    fn arb_str() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-z.]{1,12}",
            "\\PC{0,20}",
            Just("VSCODE".to_owned()),
        ]
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(serde_json::Value::from),
            (-1e300f64..1e300).prop_map(serde_json::Value::from),
            "\\PC{0,12}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map("[a-zA-Z.]{0,8}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    prop_compose! {
        fn arb_row()(
            uuid in any::<[u8; 16]>(),
            use_uuid in any::<bool>(),
            text_id in "[A-Za-z0-9-]{1,40}",
            name in arb_str(),
            url in arb_str(),
            user_id in prop_oneof![Just(0i64), any::<i64>(), 1i64..5],
            anonymous_user_id in arb_str(),
            source in arb_str(),
            argument in arb_json(),
            public_argument in arb_json(),
            version in arb_str(),
            secs in -62_135_596_800i64..253_402_300_799,
            nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
            padded in any::<bool>(),
            flags in proptest::collection::btree_map("[a-z-]{0,6}", any::<bool>(), 0..3),
            opts in proptest::collection::vec(proptest::option::of(arb_str()), 9),
        ) -> EventLogRow {
            let time = EventTime { seconds: secs, nanos };
            let mut timestamp = render_timestamp(time);
            if padded && nanos != 0 && nanos % 10 == 0 {
                // A non-canonical (zero-padded) fraction: kept as written.
                timestamp = timestamp.replace('Z', "0Z");
            }
            EventLogRow {
                event_id: if use_uuid { render_uuid(&uuid) } else { text_id },
                name, url, user_id, anonymous_user_id, source, argument, public_argument, version,
                timestamp,
                feature_flags: flags,
                cohort_id: opts[0].clone(),
                first_source_url: opts[1].clone(),
                last_source_url: opts[2].clone(),
                referrer: opts[3].clone(),
                device_id: opts[4].clone(),
                insert_id: opts[5].clone(),
                billing_product_category: opts[6].clone(),
                billing_event_id: opts[7].clone(),
                client: opts[8].clone(),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn the_columnar_block_codec_round_trips_arbitrary_rows(rows in proptest::collection::vec(arb_row(), 1..40)) {
            let back = round_trip(&rows);
            prop_assert_eq!(back, rows);
        }

        #[test]
        fn any_flipped_byte_of_a_frame_is_caught_by_its_crc(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let rows = [EventLogRow {
                event_id: "e1".into(),
                name: "search.view".into(),
                url: String::new(),
                user_id: 5,
                anonymous_user_id: "a".into(),
                source: "BACKEND".into(),
                argument: serde_json::json!({"private": "x"}),
                public_argument: serde_json::json!({"n": 1}),
                version: "6.0.0".into(),
                timestamp: "2024-03-01T10:00:00Z".into(),
                feature_flags: Default::default(),
                cohort_id: None,
                first_source_url: None,
                last_source_url: None,
                referrer: None,
                device_id: None,
                insert_id: None,
                billing_product_category: None,
                billing_event_id: None,
                client: None,
            }];
            let values = {
                let mut v = Vec::new();
                codec::encode(&rows[0], &mut v).unwrap();
                v
            };
            let mut b = BlockBuilder::default();
            b.push(&RowIn {
                id: "e1",
                time: crate::event_logs::key::parse_timestamp(&rows[0].timestamp).unwrap(),
                ts_text: None,
                f: codec::decode_fields(&values).unwrap().0,
            });
            let mut built = b.finish(1, 1, None, &mut Compressor::new(), &mut Interner::default());
            let i = pos.index(built.frame.len());
            built.frame[i] ^= 1 << bit;
            prop_assert!(check_frame(&built.frame).is_err());
        }
    }

    #[test]
    fn canonical_uuids_round_trip_and_others_are_text() {
        let u = uuid::Uuid::new_v4();
        let s = u.to_string();
        assert_eq!(parse_canonical_uuid(&s), Some(*u.as_bytes()));
        assert_eq!(render_uuid(u.as_bytes()), s);
        assert_eq!(parse_canonical_uuid(&s.to_uppercase()), None);
        assert_eq!(parse_canonical_uuid(&u.simple().to_string()), None);
        assert_eq!(parse_canonical_uuid("e1"), None);
    }

    #[test]
    fn the_bloom_finds_every_key_it_holds() {
        let keys: HashSet<u64, NoHash> = (0..500u64).map(|i| user_id_hash(i as i64)).collect();
        let bloom = bloom_build(&keys);
        for &k in &keys {
            assert!(bloom_may_contain(&bloom, k));
        }
        let fp = (10_000..20_000)
            .filter(|&i| bloom_may_contain(&bloom, user_id_hash(i)))
            .count();
        assert!(fp < 500, "{fp} false positives of 10,000");
    }
}
