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
//! 'm' "intent"  →  the last write's intent record (below); holds the row count
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
//! [`EventLogStore::insert_encoded`] first looks each event id up (and
//! drops ids repeated earlier in the call), then for the new rows:
//!
//! 1. writes the intent record: kind `insert`, the row count before, and
//!    the keys of the rows about to be written;
//! 2. writes each row, then its id entry (plain sled inserts);
//! 3. keeps the new count in memory: the next intent record carries it.
//!
//! Plain inserts, not a sled batch or transaction: on one thread they cost
//! about 30% less per row (docs/benchmarks.md, "Mirror"), and this order
//! gives the same guarantee. sled recovers a **prefix** of its log after a
//! crash (it stops at the first torn or missing piece; its own batches rely
//! on this), and all three steps are log writes in that order, so after a
//! crash the newest write that survived tells how far things got:
//!
//! - an id entry never survives without its row (the row is written
//!   first): no id entry points at a missing row;
//! - if any row of a call survived, so did the call's intent record;
//! - only the rows of the last intent record can be half-written (a row
//!   without its id entry), because the next record is written after them.
//!
//! [`EventLogStore::open`] reads the intent record and settles it: each
//! listed row with its id entry is kept, a row without one is removed (a
//! retry must not find its id missing and store a second row), and the row
//! count is the count before plus the rows kept. A flushed call survives
//! whole, since its rows were all written before the flush. The same
//! settling runs at once if a write fails half-way; if that fails too,
//! the store refuses writes ([`EventLogError::NeedsRepair`]) until
//! reopened. Concurrent readers may see a row whose id entry is not written
//! yet, never the reverse.
//!
//! The first row stored for an id wins: a retry carrying other field values
//! (a new default timestamp, say) is a duplicate and changes nothing.
//!
//! The intent record is `[kind: u8][rows before: u64 BE][n: varint]` then
//! `n × ([length: varint][row key])`, kind 0 idle, 1 insert, 2 expire. A
//! call writes one record per [`INTENT_KEY_BYTES`] of row keys (about
//! 1,300 rows), so a record stays well inside one sled log message.
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
//! `now - retention` (default 93 days), oldest first, [`EXPIRE_CHUNK`] rows
//! per intent record (kind `expire`): each row's id entry, then the row.
//! Settling an interrupted expiry keeps the rows that still have their id
//! entry (the next pass removes them) and finishes the others. Once a row
//! has expired its id is forgotten: a retry arriving after that would be
//! stored again (and expire again on the next pass). Rows are kept by event
//! time, not arrival time, so an event stamped far in the past is stored
//! and then removed by the next expiry.
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

use super::codec::{self, CodecError, Reader};
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
/// Rows removed per intent record by [`EventLogStore::expire`].
pub const EXPIRE_CHUNK: usize = 1_000;
/// Row-key bytes listed by one intent record; a longer insert writes
/// several records.
pub const INTENT_KEY_BYTES: usize = 64 * 1024;
/// The format this code writes and reads (`'m' "format"`).
pub const FORMAT_VERSION: u64 = 2;

/// The tree of format 2.
const TREE: &str = "event_logs";
/// Trees of format 1, whose `meta` tree held the format.
const V1_TREES: [&str; 3] = ["rows", "ids", "meta"];
const V1_META_TREE: &str = "meta";
const META_FORMAT: &[u8] = b"mformat";
pub(super) const META_INTENT: &[u8] = b"mintent";
const _: () = assert!(META_FORMAT[0] == META && META_INTENT[0] == META);

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
    /// A write failed half-way and could not be undone in place; the store
    /// refuses further writes until it is reopened, which repairs it.
    #[error("an earlier event_logs write failed half-way; reopen the store to repair it")]
    NeedsRepair,
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

    /// The keys and value as stored: `'r'` + row key, `'i'` + event id,
    /// the value.
    #[cfg(test)]
    pub(super) fn parts(&self) -> (&[u8], &[u8], &[u8]) {
        (&self.row_key, &self.id_key, &self.value)
    }

    /// The row key, without its key space byte.
    fn key(&self) -> &[u8] {
        self.row_key.get(1..).unwrap_or_default()
    }

    /// The time part of the row key: the id entry's value.
    fn time(&self) -> &[u8] {
        self.row_key.get(1..1 + TIME_LEN).unwrap_or_default()
    }
}

/// What an intent record says the last write was doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IntentKind {
    /// Nothing to settle.
    Idle = 0,
    /// Inserting the listed rows, which were absent before.
    Insert = 1,
    /// Removing the listed rows, which were present before.
    Expire = 2,
}

/// The intent record (see the module documentation).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Intent {
    kind: IntentKind,
    rows_before: u64,
    /// Row keys, without the key space byte.
    keys: Vec<Vec<u8>>,
}

impl Intent {
    fn idle(rows: u64) -> Intent {
        Intent {
            kind: IntentKind::Idle,
            rows_before: rows,
            keys: Vec::new(),
        }
    }

    pub(super) fn encode<'k>(
        kind: IntentKind,
        rows_before: u64,
        keys: impl Iterator<Item = &'k [u8]>,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        out.push(kind as u8);
        out.extend_from_slice(&rows_before.to_be_bytes());
        let mut body = Vec::with_capacity(1024);
        let mut n = 0u64;
        for k in keys {
            codec::put_varint(&mut body, k.len() as u64);
            body.extend_from_slice(k);
            n += 1;
        }
        codec::put_varint(&mut out, n);
        out.extend_from_slice(&body);
        out
    }

    fn decode(v: &[u8]) -> Result<Intent, EventLogError> {
        let bad = || EventLogError::BadEntry {
            tree: "meta",
            key_hex: key::hex(META_INTENT),
            len: v.len(),
        };
        let mut r = Reader { buf: v };
        let kind = match r.byte("kind").map_err(|_| bad())? {
            0 => IntentKind::Idle,
            1 => IntentKind::Insert,
            2 => IntentKind::Expire,
            _ => return Err(bad()),
        };
        let before: [u8; 8] = r
            .bytes("rows", 8)
            .map_err(|_| bad())?
            .try_into()
            .map_err(|_| bad())?;
        let n = r.varint("n").map_err(|_| bad())?;
        let mut keys = Vec::new();
        for _ in 0..n {
            let len = r.varint("key").map_err(|_| bad())?;
            let k = r.bytes("key", len).map_err(|_| bad())?;
            if k.len() < TIME_LEN {
                return Err(bad());
            }
            keys.push(k.to_vec());
        }
        if !r.buf.is_empty() {
            return Err(bad());
        }
        Ok(Intent {
            kind,
            rows_before: u64::from_be_bytes(before),
            keys,
        })
    }
}

/// The writers' state, behind the store's mutex.
#[derive(Debug, Default)]
struct Writer {
    /// A write failed half-way and settling it failed too.
    broken: bool,
}

/// The `event_logs` mirror on sled. See the module documentation for the
/// layout and the guarantees.
#[derive(Debug)]
pub struct EventLogStore {
    pub(super) db: sled::Db,
    pub(super) tree: Tree,
    writer: Mutex<Writer>,
    /// Rows stored; changed only under `writer`.
    rows: AtomicU64,
    /// Half-written rows or id entries removed when opening (tests read it).
    pub(super) repaired_at_open: u64,
    config: EventLogConfig,
    path: PathBuf,
}

impl EventLogStore {
    /// Opens (or creates) the store in the directory `path`, and settles
    /// the last write if the process stopped in the middle of it.
    ///
    /// Fails with [`EventLogError::InUse`] when another process (or another
    /// store in this one) has it open, and with
    /// [`EventLogError::UnsupportedFormat`] for a database of another format.
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
                tree.insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes())?;
                tree.insert(
                    META_INTENT,
                    Intent::encode(IntentKind::Idle, 0, std::iter::empty()),
                )?;
                db.flush()?;
            }
            None => return Err(unsupported(0)),
        }
        let mut store = EventLogStore {
            db,
            tree,
            writer: Mutex::new(Writer::default()),
            rows: AtomicU64::new(0),
            repaired_at_open: 0,
            config,
            path: path.to_owned(),
        };
        let intent = store.read_intent()?;
        let (rows, repaired) = store.settle(&intent)?;
        if intent.kind != IntentKind::Idle {
            store.db.flush()?;
            store.repaired_at_open = repaired;
            tracing::info!(
                listed = intent.keys.len(),
                repaired,
                rows,
                "event_logs: settled the last write before the last stop"
            );
        }
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
        let mut writer = self.writer()?;
        let mut seen: HashSet<&[u8]> = HashSet::with_capacity(rows.len());
        let mut fresh: Vec<&EncodedRow> = Vec::with_capacity(rows.len());
        for row in rows {
            if !seen.insert(row.id_key.as_ref()) || self.tree.get(&row.id_key)?.is_some() {
                continue;
            }
            fresh.push(row);
        }
        let mut at = 0;
        while at < fresh.len() {
            let mut end = at;
            let mut bytes = 0;
            while end < fresh.len()
                && (end == at || bytes + fresh[end].row_key.len() <= INTENT_KEY_BYTES)
            {
                bytes += fresh[end].row_key.len();
                end += 1;
            }
            self.insert_chunk(&mut writer, &fresh[at..end])?;
            at = end;
        }
        let inserted = fresh.len() as u64;
        Ok(InsertOutcome {
            inserted,
            duplicates: rows.len() as u64 - inserted,
        })
    }

    /// Writes new rows (ids checked absent) under one intent record.
    fn insert_chunk(&self, writer: &mut Writer, rows: &[&EncodedRow]) -> Result<(), EventLogError> {
        let before = self.rows.load(Ordering::Relaxed);
        let record = Intent::encode(IntentKind::Insert, before, rows.iter().map(|r| r.key()));
        self.tree.insert(META_INTENT, record)?;
        let written = rows.iter().try_for_each(|row| -> Result<(), sled::Error> {
            self.tree.insert(&row.row_key, row.value.clone())?;
            self.tree.insert(&row.id_key, row.time())?;
            Ok(())
        });
        match written {
            Ok(()) => {
                self.rows
                    .store(before + rows.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(self.after_failure(writer, e)),
        }
    }

    /// A write failed after its intent record: settle it now, or refuse
    /// writes until reopened.
    fn after_failure(&self, writer: &mut Writer, e: sled::Error) -> EventLogError {
        tracing::error!(error = %e, "event_logs write failed half-way; settling it");
        if let Err(again) = self.read_intent().and_then(|i| self.settle(&i)) {
            tracing::error!(error = %again, "event_logs could not settle the failed write; writes refused until reopened");
            writer.broken = true;
        }
        EventLogError::Sled(e)
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
            // Expiry removes the id entry before the row, so an id entry
            // that is gone now was expired in between.
            None if self.tree.get(&id_key)?.is_none() => Ok(None),
            None => Err(EventLogError::DanglingId {
                event_id: event_id.to_owned(),
            }),
        }
    }

    /// Removes the rows whose event time is before `now - retention`, with
    /// their id entries; returns how many were removed. Work is
    /// proportional to the rows removed (intent records of
    /// [`EXPIRE_CHUNK`] rows, the write lock released between them); call
    /// [`EventLogStore::flush`] afterwards to make the removal survive a
    /// crash (if it does not, the next pass removes the rows again).
    pub fn expire(&self, now: UnixNanos) -> Result<u64, EventLogError> {
        let cutoff = now.minus(self.config.retention);
        let _span = tracing::info_span!("event_logs_expire", cutoff = %cutoff).entered();
        let lo = [ROWS];
        let hi = key::spaced(ROWS, &EventTime::from(cutoff).prefix());
        let mut removed = 0u64;
        loop {
            let mut writer = self.writer()?;
            let keys = self
                .tree
                .range(lo.as_slice()..hi.as_slice())
                .keys()
                .take(EXPIRE_CHUNK)
                .collect::<Result<Vec<IVec>, sled::Error>>()?;
            if keys.is_empty() {
                break;
            }
            removed += self.remove_chunk(&mut writer, &keys)?;
            if keys.len() < EXPIRE_CHUNK {
                break;
            }
        }
        if removed > 0 {
            tracing::info!(removed, "event_logs rows expired");
        }
        Ok(removed)
    }

    /// Removes the rows at `keys` (`'r'` + row key, all present) and
    /// their id entries under one intent record.
    fn remove_chunk(&self, writer: &mut Writer, keys: &[IVec]) -> Result<u64, EventLogError> {
        let before = self.rows.load(Ordering::Relaxed);
        let record = Intent::encode(
            IntentKind::Expire,
            before,
            keys.iter().map(|k| k.get(1..).unwrap_or_default()),
        );
        self.tree.insert(META_INTENT, record)?;
        let removed = keys
            .iter()
            .try_for_each(|row_key| -> Result<(), sled::Error> {
                if let Some((time, id)) = key::split_row_key(row_key.get(1..).unwrap_or_default()) {
                    let id_key = key::spaced(IDS, id);
                    // Only the entry that points at this row.
                    if self.tree.get(&id_key)?.as_deref() == Some(time.prefix().as_slice()) {
                        self.tree.remove(&id_key)?;
                    }
                }
                self.tree.remove(row_key)?;
                Ok(())
            });
        match removed {
            Ok(()) => {
                let n = keys.len() as u64;
                self.rows.store(before.saturating_sub(n), Ordering::Relaxed);
                Ok(n)
            }
            Err(e) => Err(self.after_failure(writer, e)),
        }
    }

    /// Number of rows stored (kept in memory and in each intent record:
    /// O(1)).
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

    /// Takes the write lock; fails when an earlier write left the store
    /// unsettled.
    fn writer(&self) -> Result<MutexGuard<'_, Writer>, EventLogError> {
        let w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if w.broken {
            return Err(EventLogError::NeedsRepair);
        }
        Ok(w)
    }

    fn read_intent(&self) -> Result<Intent, EventLogError> {
        match self.tree.get(META_INTENT)? {
            Some(v) => Intent::decode(&v),
            None => Err(EventLogError::BadEntry {
                tree: "meta",
                key_hex: key::hex(META_INTENT),
                len: 0,
            }),
        }
    }

    /// Makes every row listed by `intent` either whole (row and the id
    /// entry pointing at it) or absent, records the resulting count in an
    /// idle intent record and keeps it in memory; returns it and how many
    /// entries were removed. Idempotent.
    fn settle(&self, intent: &Intent) -> Result<(u64, u64), EventLogError> {
        let mut whole = 0u64;
        let mut repaired = 0u64;
        for k in &intent.keys {
            let (time, id) = key::split_row_key(k).ok_or_else(|| EventLogError::BadEntry {
                tree: "meta",
                key_hex: key::hex(k),
                len: k.len(),
            })?;
            let row_key = key::spaced(ROWS, k);
            let id_key = key::spaced(IDS, id);
            let row = self.tree.get(&row_key)?.is_some();
            let indexed = self.tree.get(&id_key)?.as_deref() == Some(time.prefix().as_slice());
            match (row, indexed) {
                (true, true) => whole += 1,
                (true, false) => {
                    self.tree.remove(&row_key)?;
                    repaired += 1;
                }
                (false, true) => {
                    self.tree.remove(&id_key)?;
                    repaired += 1;
                }
                (false, false) => {}
            }
        }
        let listed = intent.keys.len() as u64;
        let rows = match intent.kind {
            IntentKind::Idle => intent.rows_before,
            IntentKind::Insert => intent.rows_before + whole,
            IntentKind::Expire => intent.rows_before.saturating_sub(listed - whole),
        };
        if *intent != Intent::idle(rows) {
            self.tree.insert(
                META_INTENT,
                Intent::encode(IntentKind::Idle, rows, std::iter::empty()),
            )?;
        }
        self.rows.store(rows, Ordering::Relaxed);
        Ok((rows, repaired))
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
