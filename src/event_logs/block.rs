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
//!
//! # Files
//! This file holds the format, its limits and [`BlockError`]; one job per
//! file below it:
//!
//! | File | Job |
//! |---|---|
//! | `bytes.rs` | varints, strings, zigzag, the checked [`Cursor`] |
//! | `hash.rs` | event-id and user hashes, the user bloom |
//! | `event_ids.rs` | canonical UUIDs as 16 bytes |
//! | `column.rs` | string columns: dictionary or plain, built and decoded |
//! | `summary.rs` | the summary, [`BlockMeta`], frame checks |
//! | `build.rs` | [`BlockBuilder`] and the zstd [`Compressor`] |
//! | `decode.rs` | the ids, head and rest sections, decoded on demand |

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

mod build;
mod bytes;
mod column;
mod decode;
mod event_ids;
mod hash;
mod summary;
#[cfg(test)]
mod tests;

pub use build::probe_codec;
pub(crate) use build::{BlockBuilder, Compressor, RowIn};
pub(crate) use bytes::{Cursor, put_str, put_varint};
pub use decode::ReadError;
pub(crate) use decode::{Head, Ids, Rest, read_payload};
#[cfg(test)]
pub(crate) use hash::user_key_hash;
pub(crate) use hash::{anonymous_hash, bloom_may_contain, id_hash, user_id_hash};
pub(crate) use summary::{BlockMeta, Interner, Summary, check_frame, parse_payload};
