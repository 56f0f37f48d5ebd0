//! The `event_logs` store: rows on sled 0.34, one per event id.
//!
//! # Layout (format 2)
//!
//! One sled database (its own directory) with one tree, `event_logs`,
//! holding three key spaces told apart by their first byte:
//!
//! ```text
//! 'r' [seconds: i64 BE, sign flipped][nanos: u32 BE][event id]  →  row (binary, see codec)
//!     └──────────── event time (UTC), 12 bytes ───────┘
//!     time-ordered: a time range [from, to) is one contiguous key range
//!
//! 'i' [event id]  →  [seconds][nanos]: the time part of the row's key (12 bytes)
//!     dedup: an event id present here is never inserted again
//!
//! 'm' "format"  →  u64 BE (2)
//! 'm' "rows"    →  u64 BE: the row count, written with the rows
//! ```
//!
//! A row value is the binary form of [`EventLogRow`] described in
//! [`super::codec`]: the fields queries filter on (name, user ids, source,
//! timestamp) first, decoded without allocating; the JSON columns as JSON
//! text; the event id only in the key. Format 1 (three trees `rows`, `ids`,
//! `meta` and `serde_json` rows) is refused with
//! [`EventLogError::UnsupportedFormat`].
//!
//! # Writes and crash safety
//!
//! All writes (inserts and expiry) go through one mutex, so the dedup
//! check cannot race another writer; queries do not take it.
//!
//! [`EventLogStore::insert_encoded`] looks each event id up (and drops ids
//! repeated earlier in the call), then writes the new rows in sled batches
//! of at most [`BATCH_ROWS`] rows: each batch holds the rows, their id
//! entries and the new row count, and sled applies and recovers a batch
//! atomically (all or none). So a crash never leaves a row without its id
//! entry (which would let a retry add a second row), an id entry pointing
//! at nothing, or a count that disagrees with the rows; a flushed batch
//! survives whole. Readers never see half a batch (sled's batches exclude
//! readers while they apply). The first row stored for an id wins: a retry
//! carrying other field values (a new default timestamp, say) is a
//! duplicate and changes nothing.
//!
//! Why batches of [`BATCH_ROWS`] and not one per call: per row, a sled
//! batch (or transaction) of 1,600 rows costs about 40% more than batches
//! of 100 to 200, which cost about what plain inserts do (docs/benchmarks.md,
//! "Mirror"). A call is therefore atomic per batch, not as a whole: a crash
//! in the middle of an unflushed call may keep some of its batches, each
//! whole, which is all the record path needs (nothing unflushed was
//! acknowledged).
//!
//! # Durability
//!
//! A write is in memory until flushed. [`EventLogStore::flush`] writes
//! sled's buffers and waits for `sync_file_range`: the rows survive a
//! process crash, but that is **not** an fsync, so a power loss or kernel
//! crash may lose the newest rows (sled's background flusher fsyncs every
//! 500 ms). The mirror is best-effort, as Sourcegraph's `event_logs` is;
//! the export queue is the durable copy.
//!
//! # Retention
//!
//! [`EventLogStore::expire`] removes rows whose event time is before
//! `now - retention` (default 93 days), oldest first, in batches of up to
//! [`EXPIRE_CHUNK`] rows that remove the row, its id entry and update the
//! count together. Once a row has expired its id is forgotten: a retry
//! arriving after that would be stored again (and expire again on the next
//! pass). Rows are kept by event time, not arrival time, so an event
//! stamped far in the past is stored and then removed by the next expiry.
//!
//! # Memory
//!
//! sled's page cache is bounded by [`EventLogConfig::cache_bytes`] (default
//! 16 MiB; the sidecar as a whole must stay under 150 MiB resident). sled
//! treats it as a target, not a hard cap. Queries stream the key range
//! instead of collecting it (see [`super::query`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use sled::{IVec, Tree};

use super::codec::{self, CodecError};
use super::key::{self, EventTime, IDS, META, ROWS, TIME_LEN};
use crate::clock::UnixNanos;
use crate::event_logs::EventLogRow;

/// Default [`EventLogConfig::cache_bytes`]: 16 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// Smallest accepted [`EventLogConfig::cache_bytes`]: 1 MiB.
pub const MIN_CACHE_BYTES: u64 = 1024 * 1024;
/// Default [`EventLogConfig::retention`]: 93 days (Sourcegraph's
/// `event_logs` retention).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(93 * 24 * 3600);
/// How often sled's background thread fsyncs, in milliseconds.
pub const FLUSH_EVERY_MS: u64 = 500;
/// Rows removed per batch by [`EventLogStore::expire`].
pub const EXPIRE_CHUNK: usize = 1_000;
/// Most rows written per sled batch by [`EventLogStore::insert_encoded`].
pub const BATCH_ROWS: usize = 200;
/// The format this code writes and reads (`'m' "format"`).
pub const FORMAT_VERSION: u64 = 2;

/// The tree of format 2.
const TREE: &str = "event_logs";
/// Trees of format 1, whose `meta` tree held the format.
const V1_TREES: [&str; 3] = ["rows", "ids", "meta"];
const V1_META_TREE: &str = "meta";
const META_FORMAT: &[u8] = b"mformat";
const META_ROWS: &[u8] = b"mrows";
const _: () = assert!(META_FORMAT[0] == META && META_ROWS[0] == META);

/// Settings of the `event_logs` store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLogConfig {
    /// sled's page cache, in bytes. Default [`DEFAULT_CACHE_BYTES`]
    /// (16 MiB); at least [`MIN_CACHE_BYTES`].
    pub cache_bytes: u64,
    /// How long rows are kept, by event time. Default
    /// [`DEFAULT_RETENTION`] (93 days); must be positive.
    pub retention: Duration,
}

impl Default for EventLogConfig {
    fn default() -> EventLogConfig {
        EventLogConfig {
            cache_bytes: DEFAULT_CACHE_BYTES,
            retention: DEFAULT_RETENTION,
        }
    }
}

impl EventLogConfig {
    /// Checks the settings, naming the one that is wrong.
    pub fn validate(&self) -> Result<(), EventLogError> {
        if self.cache_bytes < MIN_CACHE_BYTES {
            return Err(EventLogError::CacheTooSmall {
                cache_bytes: self.cache_bytes,
                min: MIN_CACHE_BYTES,
            });
        }
        if self.retention.is_zero() {
            return Err(EventLogError::ZeroRetention);
        }
        Ok(())
    }
}

/// Errors of the `event_logs` store.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// Another process (a running sidecar) holds the database.
    #[error("event_logs database at {path} is in use by another process")]
    InUse {
        /// The database directory.
        path: String,
    },
    /// sled failed.
    #[error("event_logs database error: {0}")]
    Sled(#[from] sled::Error),
    /// The database was written in a format this code does not read.
    #[error(
        "event_logs database at {path} has format {found}, this build reads only format {expected}; \
         move the directory aside (or delete it) to start an empty one"
    )]
    UnsupportedFormat {
        /// The database directory.
        path: String,
        /// The format found.
        found: u64,
        /// The format this build reads and writes.
        expected: u64,
    },
    /// `cache_bytes` is below the minimum.
    #[error("event_logs cache of {cache_bytes} bytes is below the minimum of {min}")]
    CacheTooSmall {
        /// The configured size.
        cache_bytes: u64,
        /// The smallest accepted size.
        min: u64,
    },
    /// `retention` is zero.
    #[error("event_logs retention must be positive")]
    ZeroRetention,
    /// A row to insert has an empty event id (the dedup key).
    #[error("row {index} of the batch has an empty event id")]
    EmptyEventId {
        /// Position of the row in the batch.
        index: usize,
    },
    /// A row to insert has a timestamp that is not RFC 3339 UTC.
    #[error("row for event {event_id} has timestamp {timestamp:?}, not YYYY-MM-DDTHH:MM:SS[.f]Z")]
    BadTimestamp {
        /// The row's event id.
        event_id: String,
        /// The timestamp as given.
        timestamp: String,
    },
    /// A row could not be encoded.
    #[error("row for event {event_id} does not encode: {source}")]
    Encode {
        /// The row's event id.
        event_id: String,
        /// The encoder's error.
        source: serde_json::Error,
    },
    /// A stored row does not decode.
    #[error("stored row for event {event_id} is unreadable: {source}")]
    Decode {
        /// The event id from the row's key (lossy UTF-8).
        event_id: String,
        /// The decoder's error.
        source: CodecError,
    },
    /// A stored key or record has the wrong shape.
    #[error("{tree} key space holds a malformed entry (key {key_hex}, {len} bytes)")]
    BadEntry {
        /// The key space (`rows`, `ids` or `meta`).
        tree: &'static str,
        /// The key, hex.
        key_hex: String,
        /// Length of the malformed key or value.
        len: usize,
    },
    /// An `ids` entry names a row that does not exist: the store broke its
    /// own invariant.
    #[error("event {event_id} is indexed but its row is missing")]
    DanglingId {
        /// The event id.
        event_id: String,
    },
    /// A query range ends before it starts.
    #[error("query range is inverted: from {from} is after to {to}")]
    InvertedRange {
        /// Start of the range.
        from: UnixNanos,
        /// End of the range.
        to: UnixNanos,
    },
    /// A query limit is zero or above the maximum.
    #[error("query limit {limit} is outside 1..={max}")]
    LimitOutOfRange {
        /// The requested limit.
        limit: usize,
        /// The largest accepted limit.
        max: usize,
    },
}

/// What [`EventLogStore::insert_batch`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Rows stored.
    pub inserted: u64,
    /// Rows whose event id was already stored (earlier, or earlier in the
    /// same batch): nothing was written for them.
    pub duplicates: u64,
}

/// Size and time span of the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventLogStats {
    /// Rows stored.
    pub rows: u64,
    /// Timestamp of the oldest row (RFC 3339 UTC, as in the row).
    pub oldest: Option<String>,
    /// Timestamp of the newest row.
    pub newest: Option<String>,
}

/// A row encoded for [`EventLogStore::insert_encoded`] by
/// [`EventLogStore::encode_row`]: its keys and stored value, ready to be
/// written. Encoding is the CPU-heavy part of an insert; the record path
/// does it on the callers' threads, not on the mirror's.
#[derive(Clone, Debug)]
pub struct EncodedRow {
    /// `'r'` + row key.
    row_key: IVec,
    /// `'i'` + event id.
    id_key: IVec,
    value: IVec,
}

impl EncodedRow {
    /// The event id.
    pub fn event_id(&self) -> &[u8] {
        self.id_key.get(1..).unwrap_or_default()
    }

    /// Bytes of the stored value (the keys not included).
    pub fn stored_len(&self) -> usize {
        self.value.len()
    }

    /// The time part of the row key: the id entry's value.
    fn time(&self) -> &[u8] {
        self.row_key.get(1..1 + TIME_LEN).unwrap_or_default()
    }
}

/// The `event_logs` mirror on sled. See the module documentation for the
/// layout and the guarantees.
#[derive(Debug)]
pub struct EventLogStore {
    pub(super) db: sled::Db,
    pub(super) tree: Tree,
    /// Serialises writers (the mirror and expiry): the dedup check and the
    /// count need one writer at a time.
    writer: Mutex<()>,
    /// Rows stored, as in `'m' "rows"`; changed only under `writer`.
    rows: AtomicU64,
    config: EventLogConfig,
    path: PathBuf,
}

impl EventLogStore {
    /// Opens (or creates) the store in the directory `path`.
    ///
    /// Fails with [`EventLogError::InUse`] when another process (or another
    /// store in this one) has it open, and with
    /// [`EventLogError::UnsupportedFormat`] for a database of another format.
    pub fn open(path: &Path, config: EventLogConfig) -> Result<EventLogStore, EventLogError> {
        config.validate()?;
        let _span = tracing::info_span!("event_logs_open", path = %path.display()).entered();
        let db = crate::sled_db::open(path, config.cache_bytes, FLUSH_EVERY_MS)?;
        let unsupported = |found| EventLogError::UnsupportedFormat {
            path: path.display().to_string(),
            found,
            expected: FORMAT_VERSION,
        };
        // Format 1 kept its format in a `meta` tree (1 when absent, as
        // before the key existed). Look before opening anything: opening
        // a tree creates it.
        let names = db.tree_names();
        if names
            .iter()
            .any(|n| V1_TREES.iter().any(|t| n == t.as_bytes()))
        {
            let found = if names.iter().any(|n| n == V1_META_TREE.as_bytes()) {
                let meta = db.open_tree(V1_META_TREE)?;
                decode_u64("meta", b"format", meta.get(b"format")?)?.max(1)
            } else {
                1
            };
            return Err(unsupported(found));
        }
        let tree = db.open_tree(TREE)?;
        match tree.get(META_FORMAT)? {
            Some(v) => {
                let found = decode_u64("meta", META_FORMAT, Some(v))?;
                if found != FORMAT_VERSION {
                    return Err(unsupported(found));
                }
            }
            None if tree.is_empty() => {
                let mut init = sled::Batch::default();
                init.insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes());
                init.insert(META_ROWS, &0u64.to_be_bytes());
                tree.apply_batch(init)?;
                db.flush()?;
            }
            None => return Err(unsupported(0)),
        }
        let rows = decode_u64("meta", META_ROWS, tree.get(META_ROWS)?)?;
        let store = EventLogStore {
            db,
            tree,
            writer: Mutex::new(()),
            rows: AtomicU64::new(rows),
            config,
            path: path.to_owned(),
        };
        tracing::info!(rows, "event_logs store open");
        Ok(store)
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &EventLogConfig {
        &self.config
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Validates and encodes a row for [`EventLogStore::insert_encoded`].
    /// Pure CPU work, no I/O: callers run it on their own threads.
    ///
    /// Fails on an empty event id ([`EventLogError::EmptyEventId`], index
    /// 0) or a timestamp that is not RFC 3339 UTC.
    pub fn encode_row(row: &EventLogRow) -> Result<EncodedRow, EventLogError> {
        encode_at(0, row)
    }

    /// Stores the rows whose event id is not stored yet; rows whose id is
    /// present (or repeated earlier in `rows`) are counted as duplicates
    /// and not written.
    ///
    /// Every row is checked and encoded before anything is written: an
    /// empty event id or a timestamp that is not RFC 3339 UTC fails the
    /// whole call. Call [`EventLogStore::flush`] before acknowledging the
    /// rows.
    pub fn insert_batch(&self, rows: &[EventLogRow]) -> Result<InsertOutcome, EventLogError> {
        let encoded = rows
            .iter()
            .enumerate()
            .map(|(index, row)| encode_at(index, row))
            .collect::<Result<Vec<_>, _>>()?;
        self.insert_encoded(&encoded)
    }

    /// Stores pre-encoded rows, as [`EventLogStore::insert_batch`] does:
    /// the first row for an event id wins, later ones (in this call or
    /// any earlier) are duplicates. Call [`EventLogStore::flush`] before
    /// acknowledging the rows.
    pub fn insert_encoded(&self, rows: &[EncodedRow]) -> Result<InsertOutcome, EventLogError> {
        if rows.is_empty() {
            return Ok(InsertOutcome::default());
        }
        let _writer = self.writer();
        let mut seen: HashSet<&[u8]> = HashSet::with_capacity(rows.len());
        let mut fresh: Vec<&EncodedRow> = Vec::with_capacity(rows.len());
        for row in rows {
            if !seen.insert(row.id_key.as_ref()) || self.tree.get(&row.id_key)?.is_some() {
                continue;
            }
            fresh.push(row);
        }
        for chunk in fresh.chunks(BATCH_ROWS) {
            let rows = self.rows.load(Ordering::Relaxed) + chunk.len() as u64;
            let mut batch = sled::Batch::default();
            for row in chunk {
                batch.insert(row.row_key.clone(), row.value.clone());
                batch.insert(row.id_key.clone(), row.time());
            }
            batch.insert(META_ROWS, &rows.to_be_bytes());
            self.tree.apply_batch(batch)?;
            self.rows.store(rows, Ordering::Relaxed);
        }
        let inserted = fresh.len() as u64;
        Ok(InsertOutcome {
            inserted,
            duplicates: rows.len() as u64 - inserted,
        })
    }

    /// Writes every earlier insert and removal out of sled's buffers
    /// (`sync_file_range`): they survive a process crash. Not an fsync; see
    /// the module documentation.
    pub fn flush(&self) -> Result<(), EventLogError> {
        self.db.flush()?;
        Ok(())
    }

    /// The row of `event_id`, if stored.
    pub fn get(&self, event_id: &str) -> Result<Option<EventLogRow>, EventLogError> {
        let id_key = key::spaced(IDS, event_id.as_bytes());
        let Some(time) = self.tree.get(&id_key)? else {
            return Ok(None);
        };
        if time.len() != TIME_LEN {
            return Err(EventLogError::BadEntry {
                tree: "ids",
                key_hex: key::hex(event_id.as_bytes()),
                len: time.len(),
            });
        }
        let mut row_key = Vec::with_capacity(1 + TIME_LEN + event_id.len());
        row_key.push(ROWS);
        row_key.extend_from_slice(&time);
        row_key.extend_from_slice(event_id.as_bytes());
        match self.tree.get(&row_key)? {
            Some(value) => decode_row(&row_key[1..], &value).map(Some),
            // Expired between the two reads: its id entry is gone too.
            None if self.tree.get(&id_key)?.is_none() => Ok(None),
            None => Err(EventLogError::DanglingId {
                event_id: event_id.to_owned(),
            }),
        }
    }

    /// Removes the rows whose event time is before `now - retention`, with
    /// their id entries; returns how many were removed. Work is
    /// proportional to the rows removed (batches of [`EXPIRE_CHUNK`] rows,
    /// the write lock released between them); call
    /// [`EventLogStore::flush`] afterwards to make the removal survive a
    /// crash (if it does not, the next pass removes the rows again).
    pub fn expire(&self, now: UnixNanos) -> Result<u64, EventLogError> {
        let cutoff = now.minus(self.config.retention);
        let _span = tracing::info_span!("event_logs_expire", cutoff = %cutoff).entered();
        let lo = [ROWS];
        let hi = key::spaced(ROWS, &EventTime::from(cutoff).prefix());
        let mut removed = 0u64;
        loop {
            let _writer = self.writer();
            let keys = self
                .tree
                .range(lo.as_slice()..hi.as_slice())
                .keys()
                .take(EXPIRE_CHUNK)
                .collect::<Result<Vec<IVec>, sled::Error>>()?;
            if keys.is_empty() {
                break;
            }
            removed += self.remove_chunk(&keys)?;
            if keys.len() < EXPIRE_CHUNK {
                break;
            }
        }
        if removed > 0 {
            tracing::info!(removed, "event_logs rows expired");
        }
        Ok(removed)
    }

    /// Removes the rows at `keys` (`'r'` + row key, all present: read under
    /// the write lock) and their id entries in one batch.
    fn remove_chunk(&self, keys: &[IVec]) -> Result<u64, EventLogError> {
        let mut batch = sled::Batch::default();
        for row_key in keys {
            if let Some((time, id)) = key::split_row_key(row_key.get(1..).unwrap_or_default()) {
                let id_key = key::spaced(IDS, id);
                // Only the entry that points at this row.
                if self.tree.get(&id_key)?.as_deref() == Some(time.prefix().as_slice()) {
                    batch.remove(id_key);
                }
            }
            batch.remove(row_key.clone());
        }
        let n = keys.len() as u64;
        let rows = self.rows.load(Ordering::Relaxed).saturating_sub(n);
        batch.insert(META_ROWS, &rows.to_be_bytes());
        self.tree.apply_batch(batch)?;
        self.rows.store(rows, Ordering::Relaxed);
        Ok(n)
    }

    /// Number of rows stored (a counter kept with the rows: O(1)).
    pub fn row_count(&self) -> Result<u64, EventLogError> {
        Ok(self.rows.load(Ordering::Relaxed))
    }

    /// Row count and the oldest and newest timestamps. O(1): reads the
    /// counter and the first and last rows.
    pub fn stats(&self) -> Result<EventLogStats, EventLogError> {
        let timestamp = |kv: Option<(IVec, IVec)>| -> Result<Option<String>, EventLogError> {
            kv.map(|(k, v)| {
                decode_head(k.get(1..).unwrap_or_default(), &v).map(|h| h.timestamp.to_owned())
            })
            .transpose()
        };
        let (lo, hi) = ([ROWS], key::space_end(ROWS));
        Ok(EventLogStats {
            rows: self.row_count()?,
            oldest: timestamp(self.rows_range(&lo, &hi).next().transpose()?)?,
            newest: timestamp(self.rows_range(&lo, &hi).next_back().transpose()?)?,
        })
    }

    /// The rows between two `'r'` keys.
    pub(super) fn rows_range(&self, lo: &[u8], hi: &[u8]) -> sled::Iter {
        self.tree.range(lo..hi)
    }

    /// Takes the write lock (a panicked writer left nothing half-done:
    /// every write is one sled batch).
    fn writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// [`EventLogStore::encode_row`], naming the row's position in errors.
fn encode_at(index: usize, row: &EventLogRow) -> Result<EncodedRow, EventLogError> {
    if row.event_id.is_empty() {
        return Err(EventLogError::EmptyEventId { index });
    }
    let time = key::parse_timestamp(&row.timestamp).ok_or_else(|| EventLogError::BadTimestamp {
        event_id: row.event_id.clone(),
        timestamp: row.timestamp.clone(),
    })?;
    let mut value = Vec::with_capacity(768);
    codec::encode(row, &mut value).map_err(|source| EventLogError::Encode {
        event_id: row.event_id.clone(),
        source,
    })?;
    let id = row.event_id.as_bytes();
    let mut row_key = Vec::with_capacity(1 + TIME_LEN + id.len());
    row_key.push(ROWS);
    row_key.extend_from_slice(&time.prefix());
    row_key.extend_from_slice(id);
    Ok(EncodedRow {
        row_key: IVec::from(row_key),
        id_key: IVec::from(key::spaced(IDS, id)),
        value: IVec::from(value),
    })
}

/// The event id of a row key, for error messages.
fn id_of(row_key: &[u8]) -> String {
    key::split_row_key(row_key)
        .map(|(_, id)| String::from_utf8_lossy(id).into_owned())
        .unwrap_or_else(|| key::hex(row_key))
}

/// Decodes the head of the stored row at `row_key` (without the key space
/// byte).
pub(super) fn decode_head<'v>(
    row_key: &[u8],
    value: &'v [u8],
) -> Result<codec::RowHead<'v>, EventLogError> {
    codec::decode_head(value).map_err(|source| EventLogError::Decode {
        event_id: id_of(row_key),
        source,
    })
}

/// Decodes the whole stored row at `row_key` (without the key space byte).
pub(super) fn decode_row(row_key: &[u8], value: &[u8]) -> Result<EventLogRow, EventLogError> {
    let bad = |source| EventLogError::Decode {
        event_id: id_of(row_key),
        source,
    };
    let (_, id) = key::split_row_key(row_key).ok_or_else(|| EventLogError::BadEntry {
        tree: "rows",
        key_hex: key::hex(row_key),
        len: row_key.len(),
    })?;
    let id = std::str::from_utf8(id).map_err(|_| bad(CodecError::NotUtf8("event_id")))?;
    codec::decode(id, value).map_err(bad)
}

/// A counter or format: absent is 0, anything but 8 bytes is malformed.
fn decode_u64(tree: &'static str, k: &[u8], v: Option<IVec>) -> Result<u64, EventLogError> {
    let Some(v) = v else { return Ok(0) };
    let bytes: [u8; 8] = v.as_ref().try_into().map_err(|_| EventLogError::BadEntry {
        tree,
        key_hex: key::hex(k),
        len: v.len(),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

impl From<crate::sled_db::OpenError> for EventLogError {
    fn from(e: crate::sled_db::OpenError) -> Self {
        match e {
            crate::sled_db::OpenError::InUse { path } => EventLogError::InUse { path },
            crate::sled_db::OpenError::Sled(e) => EventLogError::Sled(e),
        }
    }
}
