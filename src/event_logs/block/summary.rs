//! The uncompressed summary of a block ([`Summary`]), the in-memory
//! [`BlockMeta`] built from it, and the frame checks ([`check_frame`],
//! [`parse_payload`]).

use std::collections::HashSet;
use std::sync::Arc;

use super::bytes::{Cursor, put_str, put_varint};
use super::{BlockError, KIND_BLOCK, MAX_BLOCK_ROWS, MAX_PAYLOAD};
use crate::event_logs::key::EventTime;
use crate::log::record::FRAME_HEADER_LEN;
use crate::log::record::frame_crc;

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
    pub(super) fn section_range(&self, i: usize) -> Option<std::ops::Range<usize>> {
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
