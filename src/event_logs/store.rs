//! The `event_logs` store: rows on sled 0.34, one per event id.
//!
//! # Layout
//!
//! One sled database (its own directory), three trees:
//!
//! ```text
//! rows   [seconds: i64 BE, sign flipped][nanos: u32 BE][event id bytes]  →  row JSON
//!        └──────────── event time (UTC), 12 bytes ───────┘
//!        time-ordered: a time range [from, to) is one contiguous key range
//!
//! ids    [event id bytes]  →  the row's key in `rows`
//!        dedup: an event id present here is never inserted again
//!
//! meta   "format" → u64 BE (1)      "rows" → u64 BE (row count)
//! ```
//!
//! A row value is the compact JSON of [`EventLogRow`] (`serde_json`; field
//! names are the `event_logs` column names). A later format would start
//! with a byte other than `{` and bump `format`.
//!
//! # Writes and crash safety
//!
//! [`EventLogStore::insert_batch`] runs one sled transaction over the three
//! trees: for each row it looks the event id up in `ids` (the transaction
//! sees its own writes, so an id repeated inside one batch counts as a
//! duplicate too), and for a new id writes `ids`, `rows` and the count.
//! sled recovers a transaction's writes atomically (all or none), so a
//! crash never leaves a row without its `ids` entry (which would let a
//! retry add a second row), an `ids` entry pointing at nothing, or a count
//! that disagrees with the rows. The first row stored for an id wins: a
//! retry carrying other field values (a new default timestamp, say) is a
//! duplicate and changes nothing.
//!
//! sled transactions take a process-wide lock in 0.34, so writers are
//! serialised; the record path writes from one thread anyway.
//!
//! # Durability
//!
//! A transaction is in memory until flushed. [`EventLogStore::flush`] writes
//! sled's buffers and waits for `sync_file_range`: the rows survive a
//! process crash, but that is **not** an fsync, so a power loss or kernel
//! crash may lose the newest rows (sled's background flusher fsyncs every
//! 500 ms). The mirror is best-effort, as Sourcegraph's `event_logs` is;
//! the export queue is the durable copy.
//!
//! # Retention
//!
//! [`EventLogStore::expire`] removes rows whose event time is before
//! `now - retention` (default 93 days), oldest first, in transactions of up
//! to 1,000 rows that remove the row, its `ids` entry and update the count
//! together. Once a row has expired its id is forgotten: a retry arriving
//! after that would be stored again (and expire again on the next pass).
//! Rows are kept by event time, not arrival time, so an event stamped far
//! in the past is stored and then removed by the next expiry.
//!
//! # Memory
//!
//! sled's page cache is bounded by [`EventLogConfig::cache_bytes`] (default
//! 16 MiB; the sidecar as a whole must stay under 150 MiB resident). sled
//! treats it as a target, not a hard cap. Queries stream the key range
//! instead of collecting it (see [`super::query`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use sled::{IVec, Tree};

use super::key::{self, EventTime};
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
/// Rows removed per transaction by [`EventLogStore::expire`].
pub const EXPIRE_CHUNK: usize = 1_000;
/// The value format this code writes and reads (`meta` key `format`).
pub const FORMAT_VERSION: u64 = 1;

const ROWS_TREE: &str = "rows";
const IDS_TREE: &str = "ids";
const META_TREE: &str = "meta";
const META_FORMAT: &[u8] = b"format";
const META_ROWS: &[u8] = b"rows";

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
    #[error("event_logs database at {path} has format {found}, this build reads {expected}")]
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
        source: serde_json::Error,
    },
    /// A stored key or counter has the wrong shape.
    #[error("{tree} tree holds a malformed entry (key {key_hex}, {len} bytes)")]
    BadEntry {
        /// The tree.
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

/// The `event_logs` mirror on sled. See the module documentation for the
/// layout and the guarantees.
#[derive(Debug)]
pub struct EventLogStore {
    pub(super) db: sled::Db,
    pub(super) rows: Tree,
    pub(super) ids: Tree,
    pub(super) meta: Tree,
    config: EventLogConfig,
    path: PathBuf,
}

impl EventLogStore {
    /// Opens (or creates) the store in the directory `path`.
    ///
    /// Fails with [`EventLogError::InUse`] when another process (or another
    /// store in this one) has it open.
    pub fn open(path: &Path, config: EventLogConfig) -> Result<EventLogStore, EventLogError> {
        config.validate()?;
        let _span = tracing::info_span!("event_logs_open", path = %path.display()).entered();
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(config.cache_bytes)
            .flush_every_ms(Some(FLUSH_EVERY_MS))
            .open()
            .map_err(|e| match e {
                // sled reports a held lock as a plain I/O error with this text.
                sled::Error::Io(ref io) if io.to_string().contains("could not acquire lock") => {
                    EventLogError::InUse {
                        path: path.display().to_string(),
                    }
                }
                other => EventLogError::Sled(other),
            })?;
        let rows = db.open_tree(ROWS_TREE)?;
        let ids = db.open_tree(IDS_TREE)?;
        let meta = db.open_tree(META_TREE)?;
        match meta.get(META_FORMAT)? {
            None => {
                meta.insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes())?;
            }
            Some(v) => {
                let found = decode_u64(META_TREE, META_FORMAT, Some(v))?;
                if found != FORMAT_VERSION {
                    return Err(EventLogError::UnsupportedFormat {
                        path: path.display().to_string(),
                        found,
                        expected: FORMAT_VERSION,
                    });
                }
            }
        }
        if meta.get(META_ROWS)?.is_none() {
            // A database from before the counter: count once (O(rows)).
            let n = rows.len() as u64;
            meta.insert(META_ROWS, &n.to_be_bytes())?;
        }
        let store = EventLogStore {
            db,
            rows,
            ids,
            meta,
            config,
            path: path.to_owned(),
        };
        tracing::info!(rows = store.row_count()?, "event_logs store open");
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

    /// Stores the rows whose event id is not stored yet, all in one
    /// transaction; rows whose id is present (or repeated earlier in
    /// `rows`) are counted as duplicates and not written.
    ///
    /// Every row is checked before anything is written: an empty event id or
    /// a timestamp that is not RFC 3339 UTC fails the whole batch. Call
    /// [`EventLogStore::flush`] before acknowledging the rows.
    pub fn insert_batch(&self, rows: &[EventLogRow]) -> Result<InsertOutcome, EventLogError> {
        let mut prepared = Vec::with_capacity(rows.len());
        for (index, row) in rows.iter().enumerate() {
            if row.event_id.is_empty() {
                return Err(EventLogError::EmptyEventId { index });
            }
            let time = key::parse_timestamp(&row.timestamp).ok_or_else(|| {
                EventLogError::BadTimestamp {
                    event_id: row.event_id.clone(),
                    timestamp: row.timestamp.clone(),
                }
            })?;
            let value = serde_json::to_vec(row).map_err(|source| EventLogError::Encode {
                event_id: row.event_id.clone(),
                source,
            })?;
            prepared.push((
                row.event_id.as_bytes(),
                IVec::from(key::row_key(time, &row.event_id)),
                IVec::from(value),
            ));
        }
        if prepared.is_empty() {
            return Ok(InsertOutcome::default());
        }
        // The closure may run again after a conflict: it only reads
        // `prepared` and keeps its counts local.
        let inserted = (&self.rows, &self.ids, &self.meta)
            .transaction(|(rows, ids, meta)| {
                let mut inserted = 0u64;
                for (id, row_key, value) in &prepared {
                    if ids.get(id)?.is_some() {
                        continue;
                    }
                    ids.insert(*id, row_key.clone())?;
                    rows.insert(row_key.clone(), value.clone())?;
                    inserted += 1;
                }
                if inserted > 0 {
                    let count = decode_u64(META_TREE, META_ROWS, meta.get(META_ROWS)?)
                        .map_err(ConflictableTransactionError::Abort)?;
                    meta.insert(META_ROWS, &count.saturating_add(inserted).to_be_bytes())?;
                }
                Ok(inserted)
            })
            .map_err(from_tx)?;
        Ok(InsertOutcome {
            inserted,
            duplicates: prepared.len() as u64 - inserted,
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
        let Some(row_key) = self.ids.get(event_id.as_bytes())? else {
            return Ok(None);
        };
        let Some(value) = self.rows.get(&row_key)? else {
            return Err(EventLogError::DanglingId {
                event_id: event_id.to_owned(),
            });
        };
        decode_row(&row_key, &value).map(Some)
    }

    /// Removes the rows whose event time is before `now - retention`, with
    /// their `ids` entries; returns how many were removed. Work is
    /// proportional to the rows removed (transactions of [`EXPIRE_CHUNK`]);
    /// call [`EventLogStore::flush`] afterwards to make the removal survive
    /// a crash (if it does not, the next pass removes the rows again).
    pub fn expire(&self, now: UnixNanos) -> Result<u64, EventLogError> {
        let cutoff = now.minus(self.config.retention);
        let _span = tracing::info_span!("event_logs_expire", cutoff = %cutoff).entered();
        let upper = EventTime::from(cutoff).prefix();
        let mut removed = 0u64;
        loop {
            let keys = self
                .rows
                .range(..upper.as_slice())
                .keys()
                .take(EXPIRE_CHUNK)
                .collect::<Result<Vec<IVec>, sled::Error>>()?;
            if keys.is_empty() {
                break;
            }
            removed += self.remove_rows(&keys)?;
            if keys.len() < EXPIRE_CHUNK {
                break;
            }
        }
        if removed > 0 {
            tracing::info!(removed, "event_logs rows expired");
        }
        Ok(removed)
    }

    /// Removes the rows at `keys` and their `ids` entries in one
    /// transaction; returns how many rows were there.
    fn remove_rows(&self, keys: &[IVec]) -> Result<u64, EventLogError> {
        (&self.rows, &self.ids, &self.meta)
            .transaction(|(rows, ids, meta)| {
                let mut removed = 0u64;
                for row_key in keys {
                    if rows.remove(row_key.clone())?.is_none() {
                        continue;
                    }
                    removed += 1;
                    if let Some((_, id)) = key::split_row_key(row_key) {
                        // Only the entry that points at this row.
                        if ids.get(id)?.as_deref() == Some(row_key.as_ref()) {
                            ids.remove(id)?;
                        }
                    }
                }
                if removed > 0 {
                    let count = decode_u64(META_TREE, META_ROWS, meta.get(META_ROWS)?)
                        .map_err(ConflictableTransactionError::Abort)?;
                    meta.insert(META_ROWS, &count.saturating_sub(removed).to_be_bytes())?;
                }
                Ok(removed)
            })
            .map_err(from_tx)
    }

    /// Number of rows stored (a counter kept with the rows: O(1)).
    pub fn row_count(&self) -> Result<u64, EventLogError> {
        decode_u64(META_TREE, META_ROWS, self.meta.get(META_ROWS)?)
    }

    /// Row count and the oldest and newest timestamps. O(1): reads the
    /// counter and the first and last rows.
    pub fn stats(&self) -> Result<EventLogStats, EventLogError> {
        let timestamp = |kv: Option<(IVec, IVec)>| -> Result<Option<String>, EventLogError> {
            kv.map(|(k, v)| decode_as::<TimestampOnly>(&k, &v).map(|r| r.timestamp))
                .transpose()
        };
        Ok(EventLogStats {
            rows: self.row_count()?,
            oldest: timestamp(self.rows.first()?)?,
            newest: timestamp(self.rows.last()?)?,
        })
    }
}

/// Just the timestamp of a stored row.
#[derive(serde::Deserialize)]
struct TimestampOnly {
    timestamp: String,
}

/// Decodes a stored row (or part of one) at `row_key`.
pub(super) fn decode_as<T: serde::de::DeserializeOwned>(
    row_key: &[u8],
    value: &[u8],
) -> Result<T, EventLogError> {
    serde_json::from_slice(value).map_err(|source| EventLogError::Decode {
        event_id: key::split_row_key(row_key)
            .map(|(_, id)| String::from_utf8_lossy(id).into_owned())
            .unwrap_or_else(|| key::hex(row_key)),
        source,
    })
}

/// Decodes a whole stored row.
pub(super) fn decode_row(row_key: &[u8], value: &[u8]) -> Result<EventLogRow, EventLogError> {
    decode_as(row_key, value)
}

/// A counter in `meta`: absent is 0, anything but 8 bytes is malformed.
fn decode_u64(tree: &'static str, k: &[u8], v: Option<IVec>) -> Result<u64, EventLogError> {
    let Some(v) = v else { return Ok(0) };
    let bytes: [u8; 8] = v.as_ref().try_into().map_err(|_| EventLogError::BadEntry {
        tree,
        key_hex: key::hex(k),
        len: v.len(),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

fn from_tx(e: TransactionError<EventLogError>) -> EventLogError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => EventLogError::Sled(e),
    }
}
