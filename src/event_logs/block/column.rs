//! String columns: the builder's dictionary-or-plain column ([`Col`]) and
//! its decoded view ([`ColDec`]).

use std::collections::HashMap;

use super::BlockError;
use super::bytes::{Cursor, put_str, put_varint};

/// A string (or bytes) column being built: a dictionary of the block's
/// distinct values and one index per row (0 = null).
#[derive(Default)]
pub(super) struct Col<'a> {
    pub(super) map: HashMap<&'a [u8], u32, foldhash::fast::RandomState>,
    pub(super) values: Vec<&'a [u8]>,
    pub(super) counts: Vec<u32>,
    pub(super) idx: Vec<u32>,
    pub(super) last: Option<(&'a [u8], u32)>,
    pub(super) raw: usize,
}

impl<'a> Col<'a> {
    /// An empty column with room for `rows` row indexes.
    pub(super) fn with_rows(rows: usize) -> Col<'a> {
        Col {
            idx: Vec::with_capacity(rows),
            ..Col::default()
        }
    }

    /// Adds a row's value; returns the bytes it adds to the encoded column
    /// (about: its index, and its text if the dictionary did not hold it).
    pub(super) fn push(&mut self, v: Option<&'a [u8]>) -> usize {
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

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
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
    pub(super) fn decode(
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
