//! Segment files: naming, the header, and walking the records of a segment.
//!
//! ```text
//! file   = header | frame*
//! header = magic "TELSPOOL" (8) | format version u32 LE | flags u32 LE (0)
//!        | segment id u64 LE | first record id u64 LE
//!        | created (Unix nanos) i64 LE | header CRC u32 LE | zero u32
//!          (48 bytes; the CRC covers the 40 bytes before it)
//! name   = <segment id, 20 decimal digits>.seg
//! ```
//!
//! [`Walk`] iterates over the frames of a segment's bytes and is total over
//! arbitrary input: it yields each valid record, and where bytes do not
//! decode it searches forward for the next frame that is valid *and* carries
//! a higher record id (resynchronisation). Damage followed by a valid record
//! is reported as [`Step::Damage`] with the ids it cost; damage that nothing
//! valid follows is the [`Step::Tail`], a torn write when it is the end of the
//! active segment.

use super::error::CreateError;
use super::record::{self, Corruption, Decoded, RecordRef};
use crate::clock::UnixNanos;
use crate::ids::{RecordId, SegmentId};
use crate::storage::{Storage, StorageFile};
use std::path::Path;
use std::sync::Arc;

/// The magic bytes at the start of every segment.
pub const MAGIC: [u8; 8] = *b"TELSPOOL";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 48;
/// File name extension of segments.
pub const EXTENSION: &str = "seg";

/// The decoded header of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The segment's id (also in its file name).
    pub segment: SegmentId,
    /// The id of the first record the segment was created for.
    pub first_id: RecordId,
    /// When the segment was created.
    pub created: UnixNanos,
}

/// Why a header is unusable. Recovery refuses to open the queue on any of
/// them (naming the file, which it leaves untouched), except on the newest
/// segment, where a truncated or all-zero header is a roll torn by a crash
/// and the file is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer than [`HEADER_LEN`] bytes: the file was cut while being
    /// created.
    #[error("header is truncated ({len} of {HEADER_LEN} bytes)")]
    Truncated {
        /// Bytes present.
        len: usize,
    },
    /// The magic bytes are wrong: not a telespool segment (move the file
    /// out of the queue directory).
    #[error("bad magic: not a telespool segment")]
    BadMagic,
    /// Written by a newer (or unknown) format version: run the telespool
    /// that wrote it.
    #[error("unsupported format version {found} (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
    },
    /// The header's CRC does not match: the header is damaged (`telespool
    /// verify` shows what the file still holds).
    #[error("header CRC mismatch")]
    Crc,
}

impl Header {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[16..24].copy_from_slice(&self.segment.0.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_id.0.to_le_bytes());
        b[32..40].copy_from_slice(&self.created.0.to_le_bytes());
        let crc = crc32fast::hash(&b[0..40]);
        b[40..44].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a header from the start of `b`.
    pub fn decode(b: &[u8]) -> Result<Header, HeaderError> {
        let Some(h) = b.get(..HEADER_LEN) else {
            return Err(HeaderError::Truncated { len: b.len() });
        };
        let u32_at = |i: usize| {
            let mut a = [0u8; 4];
            a.copy_from_slice(&h[i..i + 4]);
            u32::from_le_bytes(a)
        };
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&h[i..i + 8]);
            u64::from_le_bytes(a)
        };
        if h[0..8] != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(HeaderError::UnsupportedVersion { found: version });
        }
        if crc32fast::hash(&h[0..40]) != u32_at(40) {
            return Err(HeaderError::Crc);
        }
        Ok(Header {
            segment: SegmentId(u64_at(16)),
            first_id: RecordId(u64_at(24)),
            created: UnixNanos(u64_at(32) as i64),
        })
    }
}

/// The file name of a segment.
pub fn file_name(id: SegmentId) -> String {
    format!("{:020}.{EXTENSION}", id.0)
}

/// The segment id a file name stands for, if it is a segment's name.
pub fn parse_file_name(name: &str) -> Option<SegmentId> {
    let stem = name.strip_suffix(".seg")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok().map(SegmentId)
}

/// Creates the file of a new, empty segment and writes its header; when
/// `durable`, the file is `fdatasync`ed and the directory fsynced, so the
/// segment's name and header survive a power loss before anything is
/// appended to it. The one way segments are made: by the writer's roll and
/// by recovery when it starts a new active segment.
pub(crate) fn create(
    storage: &dyn Storage,
    dir: &Path,
    header: &Header,
    durable: bool,
) -> Result<Arc<dyn StorageFile>, CreateError> {
    let path = dir.join(file_name(header.segment));
    let file = match storage.create(&path) {
        Ok(f) => f,
        Err(source) => return Err(CreateError::Create { path, source }),
    };
    if let Err(source) = file.write_at(&header.encode(), 0) {
        drop(file);
        if let Err(e) = storage.remove(&path) {
            tracing::warn!(path = %path.display(), error = %e, "removing a segment whose header could not be written failed");
        }
        return Err(CreateError::WriteHeader { path, source });
    }
    if durable {
        if let Err(source) = file.sync_data() {
            return Err(CreateError::Sync { path, source });
        }
        if let Err(source) = storage.sync_dir(dir) {
            return Err(CreateError::SyncDir {
                dir: dir.to_path_buf(),
                source,
            });
        }
    }
    Ok(file)
}

/// Bytes that did not decode, followed by a valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// File offset where the damage starts.
    pub offset: u64,
    /// Bytes skipped.
    pub len: u64,
    /// Why the first frame there did not decode.
    pub cause: Cause,
    /// The ids between the last good record and the next one: lost
    /// (inclusive range; `None` when the damaged bytes held no record id).
    pub lost: Option<(RecordId, RecordId)>,
}

/// Why a walk stopped decoding at some offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The bytes end inside a frame.
    Incomplete,
    /// The frame is corrupt.
    Corrupt(Corruption),
    /// The frame is valid but its id does not follow the previous record's.
    IdOutOfOrder(RecordId),
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Incomplete => write!(f, "bytes end inside a frame"),
            Cause::Corrupt(c) => write!(f, "{c}"),
            Cause::IdOutOfOrder(id) => write!(f, "record id {id} is not above the previous one"),
        }
    }
}

/// Bytes at the end that did not decode and that no valid record follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tail {
    /// File offset of the first bad byte: where a torn tail is truncated.
    pub offset: u64,
    /// Bytes from there to the end.
    pub len: u64,
    /// Why the first frame there did not decode.
    pub cause: Cause,
}

/// One step of a [`Walk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// A valid record at a file offset.
    Record {
        /// The record.
        record: RecordRef<'a>,
        /// File offset of its frame.
        offset: u64,
        /// Bytes of its frame.
        len: u64,
    },
    /// Damaged bytes, after which the walk resynchronised.
    Damage(Damage),
    /// Undecodable bytes up to the end; the walk is over.
    Tail(Tail),
}

/// Walks the frames of `data`, which starts at file offset `base`.
///
/// Resynchronisation accepts a candidate frame only if it is plausible
/// before its CRC is even computed: the payload starts as our writers start
/// it (the record-id field), and its id lies in the window the damaged bytes
/// could have held (each record takes at least [`record::encoded_len`]`(0)`
/// bytes) and at most the walk's upper bound. A frame forged inside an
/// event payload therefore cannot make the walk skip ahead, and damage
/// costs linear, not quadratic, time.
#[derive(Clone, Debug)]
pub struct Walk<'a> {
    data: &'a [u8],
    base: u64,
    pos: usize,
    last: RecordId,
    done: bool,
    cut: bool,
    max_id: RecordId,
}

impl<'a> Walk<'a> {
    /// Starts a walk over `data` (file offset `base`), after record `last`
    /// (the id before the first expected record).
    pub fn new(data: &'a [u8], base: u64, last: RecordId) -> Walk<'a> {
        Walk {
            data,
            base,
            pos: 0,
            last,
            done: false,
            cut: false,
            max_id: RecordId(u64::MAX),
        }
    }

    /// Marks `data` as a window cut short of the real end (a bounded read):
    /// a frame the window ends inside is not damage, so the walk ends there
    /// with a [`Step::Tail`] of cause [`Cause::Incomplete`] and does not
    /// resynchronise past it.
    pub fn cut_short(mut self) -> Walk<'a> {
        self.cut = true;
        self
    }

    /// No record id above `max` is accepted when resynchronising (a reader
    /// knows the segment's last durable id).
    pub fn max_id(mut self, max: RecordId) -> Walk<'a> {
        self.max_id = max;
        self
    }

    /// File offset the walk has reached.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// A plausible, valid frame at `at`, after damage that started at `start`.
    fn valid_after(&self, start: usize, at: usize) -> Option<(RecordRef<'a>, usize)> {
        let buf = self.data.get(at..)?;
        // Cheap checks first: our writers start every payload with the
        // record-id field, and the id must fit the damaged span.
        let payload = buf.get(record::FRAME_HEADER_LEN..record::FRAME_HEADER_LEN + 9)?;
        if payload.first() != Some(&0x09) {
            return None;
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(payload.get(1..9)?);
        let id = u64::from_le_bytes(id);
        let span = ((at - start) / record::encoded_len(0)) as u64;
        let max = self
            .last
            .0
            .saturating_add(1)
            .saturating_add(span)
            .min(self.max_id.0);
        if id <= self.last.0 || id > max {
            return None;
        }
        match record::decode(buf) {
            Decoded::Valid { record, len } if record.id > self.last => Some((record, len)),
            _ => None,
        }
    }
}

impl<'a> Iterator for Walk<'a> {
    type Item = Step<'a>;

    fn next(&mut self) -> Option<Step<'a>> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let rest = self.data.get(self.pos..)?;
        let cause = match record::decode(rest) {
            Decoded::Valid { record, len } if record.id > self.last => {
                let offset = self.offset();
                self.pos += len;
                self.last = record.id;
                return Some(Step::Record {
                    record,
                    offset,
                    len: len as u64,
                });
            }
            Decoded::Valid { record, .. } => Cause::IdOutOfOrder(record.id),
            Decoded::Incomplete => Cause::Incomplete,
            Decoded::Corrupt(c) => Cause::Corrupt(c),
        };
        let start = self.pos;
        if self.cut && cause == Cause::Incomplete {
            self.done = true;
            return Some(Step::Tail(Tail {
                offset: self.base + start as u64,
                len: (self.data.len() - start) as u64,
                cause,
            }));
        }
        for at in start + 1..self.data.len() {
            if let Some((record, _)) = self.valid_after(start, at) {
                let lost =
                    (record.id.0 > self.last.0 + 1).then(|| (self.last.next(), record.id.prev()));
                let damage = Damage {
                    offset: self.base + start as u64,
                    len: (at - start) as u64,
                    cause,
                    lost,
                };
                self.pos = at;
                return Some(Step::Damage(damage));
            }
        }
        self.done = true;
        Some(Step::Tail(Tail {
            offset: self.base + start as u64,
            len: (self.data.len() - start) as u64,
            cause,
        }))
    }
}

/// What a full walk of a segment found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Valid records.
    pub records: u64,
    /// The first and last valid record ids.
    pub first: Option<RecordId>,
    /// The last valid record id.
    pub last: Option<RecordId>,
    /// Append time of the last valid record.
    pub last_append: Option<UnixNanos>,
    /// File offset just after the last valid record (or the header).
    pub valid_end: u64,
    /// Damage the walk resynchronised past.
    pub damage: Vec<Damage>,
    /// Undecodable bytes at the end.
    pub tail: Option<Tail>,
    /// Whether the tail is all zero bytes: space the writer preallocated
    /// (or a torn write that left zeros), never a record.
    pub tail_zeroed: bool,
    /// Sparse offsets: (record id, file offset) every [`SPARSE_EVERY`] records.
    pub sparse: Vec<(RecordId, u64)>,
}

/// One sparse offset is kept per this many records.
pub const SPARSE_EVERY: u64 = 64;

/// Walks a whole segment file's bytes (header included). Total over any
/// bytes: `file` shorter than a header holds no records (the scan is empty,
/// with `valid_end` at [`HEADER_LEN`]); callers that decoded the header from
/// `file` never pass one.
pub fn scan(file: &[u8], header: &Header) -> Scan {
    // Not a broken invariant: `scan` is total (the fuzz target feeds it
    // files cut anywhere), and a file without a whole header has no body.
    let body = file.get(HEADER_LEN..).unwrap_or(&[]);
    let mut s = Scan {
        valid_end: HEADER_LEN as u64,
        ..Scan::default()
    };
    for step in Walk::new(body, HEADER_LEN as u64, header.first_id.prev()) {
        match step {
            Step::Record {
                record,
                offset,
                len,
            } => {
                if s.records.is_multiple_of(SPARSE_EVERY) {
                    s.sparse.push((record.id, offset));
                }
                s.records += 1;
                s.first.get_or_insert(record.id);
                s.last = Some(record.id);
                s.last_append = Some(record.append_time);
                s.valid_end = offset + len;
            }
            Step::Damage(d) => s.damage.push(d),
            Step::Tail(t) => {
                s.tail_zeroed = file
                    .get(t.offset as usize..)
                    .is_some_and(|b| b.iter().all(|&x| x == 0));
                s.tail = Some(t);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> Header {
        Header {
            segment: SegmentId(3),
            first_id: RecordId(10),
            created: UnixNanos(99),
        }
    }

    fn segment(ids: std::ops::Range<u64>) -> (Vec<u8>, Vec<u64>) {
        let mut b = header().encode().to_vec();
        let mut offsets = Vec::new();
        for id in ids {
            offsets.push(b.len() as u64);
            record::encode(&mut b, RecordId(id), UnixNanos(id as i64), &[id as u8; 40]);
        }
        (b, offsets)
    }

    #[test]
    fn header_round_trips() {
        assert_eq!(Header::decode(&header().encode()), Ok(header()));
    }

    #[test]
    fn header_with_bad_magic_or_future_version_is_refused() {
        let mut b = header().encode();
        b[0] = b'X';
        assert_eq!(Header::decode(&b), Err(HeaderError::BadMagic));
        let mut b = header().encode();
        b[8] = 2;
        assert_eq!(
            Header::decode(&b),
            Err(HeaderError::UnsupportedVersion { found: 2 })
        );
        let mut b = header().encode();
        b[20] ^= 1;
        assert_eq!(Header::decode(&b), Err(HeaderError::Crc));
        assert_eq!(
            Header::decode(&b[..10]),
            Err(HeaderError::Truncated { len: 10 })
        );
    }

    #[test]
    fn file_names_round_trip_and_others_are_ignored() {
        assert_eq!(
            parse_file_name(&file_name(SegmentId(42))),
            Some(SegmentId(42))
        );
        assert_eq!(parse_file_name("00000000000000000042.seg.tmp"), None);
        assert_eq!(parse_file_name("42.seg"), None);
        assert_eq!(parse_file_name("LOCK"), None);
    }

    #[test]
    fn scan_of_a_clean_segment_finds_every_record() {
        let (b, _) = segment(10..20);
        let s = scan(&b, &header());
        assert_eq!(
            (s.records, s.first, s.last),
            (10, Some(RecordId(10)), Some(RecordId(19)))
        );
        assert_eq!(s.valid_end, b.len() as u64);
        assert!(s.damage.is_empty() && s.tail.is_none());
    }

    #[test]
    fn scan_reports_a_torn_tail_at_the_first_bad_byte() {
        let (mut b, _) = segment(10..13);
        let end = b.len() as u64;
        b.extend_from_slice(&[7, 0, 0]);
        let s = scan(&b, &header());
        assert_eq!(s.last, Some(RecordId(12)));
        assert_eq!(s.tail.map(|t| (t.offset, t.len)), Some((end, 3)));
    }

    #[test]
    fn scan_resynchronises_past_two_adjacent_damaged_records() {
        let (mut b, offsets) = segment(10..16);
        b[offsets[2] as usize + 12] ^= 0xff;
        b[offsets[3] as usize + 3] ^= 0x01;
        let s = scan(&b, &header());
        assert_eq!(s.records, 4);
        assert_eq!(s.damage.len(), 1);
        let d = s.damage[0];
        assert_eq!(d.offset, offsets[2]);
        assert_eq!(d.len, offsets[4] - offsets[2]);
        assert_eq!(d.lost, Some((RecordId(12), RecordId(13))));
        assert_eq!(s.last, Some(RecordId(15)));
        assert!(s.tail.is_none());
    }

    #[test]
    fn a_window_cut_inside_a_record_ends_the_walk_without_resynchronising() {
        // A record whose event holds a complete, valid frame with a high id.
        let mut forged = Vec::new();
        record::encode(&mut forged, RecordId(12), UnixNanos(0), b"forged");
        let (mut b, offsets) = segment(10..12);
        let mut event = vec![b'x'; 30];
        event.extend_from_slice(&forged);
        event.extend_from_slice(&[b'y'; 200]);
        let big_at = b.len();
        record::encode(&mut b, RecordId(12), UnixNanos(0), &event);
        let _ = offsets;
        // Read a window that ends inside the big record.
        let window = &b[HEADER_LEN..big_at + 120];
        let steps: Vec<Step> = Walk::new(window, HEADER_LEN as u64, RecordId(9))
            .cut_short()
            .collect();
        assert_eq!(steps.len(), 3, "{steps:?}");
        assert!(matches!(
            steps[2],
            Step::Tail(Tail {
                cause: Cause::Incomplete,
                ..
            })
        ));
    }

    #[test]
    fn resynchronisation_ignores_frames_whose_id_the_damage_could_not_have_held() {
        // Damage of one record, then a valid frame claiming id 1000: too far.
        let mut forged = Vec::new();
        record::encode(&mut forged, RecordId(1000), UnixNanos(0), b"forged");
        let (mut b, offsets) = segment(10..14);
        b[offsets[1] as usize + 10] ^= 0xff;
        let mut tail = forged.clone();
        tail.extend_from_slice(&b[offsets[2] as usize..]);
        let mut file = b[..offsets[2] as usize].to_vec();
        file.extend_from_slice(&tail);
        let s = scan(&file, &header());
        // The forged 1000 is skipped; resync lands on the real record 12.
        assert_eq!(s.last, Some(RecordId(13)));
        assert_eq!(s.damage.len(), 1);
        assert_eq!(s.damage[0].lost, Some((RecordId(11), RecordId(11))));
    }

    proptest! {
        #[test]
        fn walk_is_total_and_ordered(body in proptest::collection::vec(any::<u8>(), 0..600), seed_records in 0u64..5) {
            let (mut b, _) = segment(10..10 + seed_records);
            b.extend_from_slice(&body);
            let s = scan(&b, &header());
            prop_assert!(s.valid_end as usize <= b.len());
            let mut covered = 0u64;
            let mut last = RecordId(9);
            for step in Walk::new(&b[HEADER_LEN..], HEADER_LEN as u64, RecordId(9)) {
                match step {
                    Step::Record { record, offset, len } => {
                        prop_assert!(record.id > last);
                        last = record.id;
                        prop_assert_eq!(offset, HEADER_LEN as u64 + covered);
                        covered += len;
                    }
                    Step::Damage(d) => { prop_assert_eq!(d.offset, HEADER_LEN as u64 + covered); covered += d.len; }
                    Step::Tail(t) => { prop_assert_eq!(t.offset, HEADER_LEN as u64 + covered); covered += t.len; }
                }
            }
            prop_assert_eq!(covered as usize, b.len() - HEADER_LEN);
        }
    }
}
