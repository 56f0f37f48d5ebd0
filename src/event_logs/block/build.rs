//! Building a block: rows in ([`RowIn`]), the column builder
//! ([`BlockBuilder`]), the zstd [`Compressor`] and the codec probe the
//! benchmarks use.

use std::collections::HashSet;
use std::sync::Arc;

use super::bytes::{put_str, put_varint, zigzag};
use super::column::Col;
use super::event_ids::parse_canonical_uuid;
use super::hash::{anonymous_hash, bloom_build, user_id_hash};
use super::summary::{BlockMeta, Interner, Section, Summary};
use super::{KIND_BLOCK, MAX_BLOCK_RAW, MAX_BLOCK_ROWS, SUMMARY_FIXED, ZSTD_LEVEL};
use crate::event_logs::codec::RowFields;
use crate::event_logs::hll::NoHash;
use crate::event_logs::key::EventTime;
use crate::log::record::FRAME_HEADER_LEN;
use crate::log::record::frame_crc;

/// One row as the block builder takes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowIn<'a> {
    pub(crate) id: &'a [u8],
    pub(crate) time: EventTime,
    /// The row's timestamp text when it is not the canonical rendering of
    /// `time` (kept so that every row reads back as it was written).
    pub(crate) ts_text: Option<&'a [u8]>,
    /// The fields as bytes (see [`crate::event_logs::codec::Text`]).
    pub(crate) f: RowFields<'a, [u8]>,
}

/// What a finished block adds to its day.
#[derive(Debug)]
pub(crate) struct Built {
    /// The whole frame.
    pub(crate) frame: Vec<u8>,
    pub(crate) meta: BlockMeta,
    /// Distinct user keys ([`super::hash::user_key_hash`]) of the rows.
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
    ts_exc: Vec<(u32, &'a [u8])>,
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
pub(super) const REST_COLS: [&str; 14] = [
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
    /// A builder with room for `rows` rows (at most a full block's), so
    /// that its columns do not grow by copying as rows arrive.
    pub(crate) fn with_rows(rows: usize) -> BlockBuilder<'a> {
        let n = rows.min(MAX_BLOCK_ROWS);
        let col = || Col::with_rows(n);
        BlockBuilder {
            uuid_bits: Vec::with_capacity(n / 8 + 1),
            uuids: Vec::with_capacity(n * 16),
            times: Vec::with_capacity(n * 6),
            user_ids: Vec::with_capacity(n),
            name: col(),
            anon: col(),
            source: col(),
            rest: std::array::from_fn(|_| col()),
            ..BlockBuilder::default()
        }
    }

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
            None => put_str(&mut self.text_ids, r.id),
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
        let mut raw = 32 + r.id.len().min(16) + r.ts_text.map_or(0, <[u8]>::len);
        raw += self.name.push(Some(f.name));
        self.user_ids.push(f.user_id);
        raw += self.anon.push(Some(f.anonymous_user_id));
        raw += self.source.push(Some(f.source));
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
        raw += url.push(Some(f.url));
        raw += version.push(Some(f.version));
        for (col, v) in [
            client, cohort, first, last, referrer, device, insert, billing, billing_id,
        ]
        .into_iter()
        .zip(f.opts)
        {
            raw += col.push(v);
        }
        raw += flags.push(Some(f.flags));
        raw += argument.push(Some(f.argument));
        raw += public.push(Some(f.public_argument));
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
            put_str(&mut head, text);
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

/// For the benchmarks: builds 1,600-row blocks of `rows` (encoded by
/// [`super::EventLogStore::encode_row`]) compressed at zstd `level` (`None`:
/// raw) and returns the bytes of the frames and the time it took.
#[doc(hidden)]
pub fn probe_codec(
    rows: &[crate::event_logs::EncodedRow],
    level: Option<i32>,
) -> (usize, std::time::Duration) {
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
