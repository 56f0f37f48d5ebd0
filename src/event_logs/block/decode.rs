//! Decoding a block's sections on demand: the ids ([`Ids`]), the head
//! (times, names, users, sources: [`Head`]) and the rest ([`Rest`]), each
//! decompressed only when asked for; [`read_payload`] reads a frame from a
//! day file.

use super::build::REST_COLS;
use super::bytes::{Cursor, unzigzag};
use super::column::ColDec;
use super::event_ids::{parse_canonical_uuid, render_uuid};
use super::hash::{id_hash, user_key_hash};
use super::summary::{BlockMeta, check_frame};
use super::{BlockError, KIND_BLOCK, MAX_SECTION};
use crate::event_logs::codec::RowFields;
use crate::event_logs::key::EventTime;
use crate::event_logs::key::render_timestamp;
use crate::log::record::FRAME_HEADER_LEN;

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
            Some(&(true, s, _)) => match parse_canonical_uuid(id.as_bytes()) {
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
