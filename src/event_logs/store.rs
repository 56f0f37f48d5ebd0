//! The `event_logs` store: its settings, errors and public interface. The
//! layout and the guarantees are in the module documentation of
//! [`super`]; the parts live in `open.rs` (layout, locking, upgrade, load),
//! `write.rs` (inserts and dedup), `rewrite.rs` (compaction of a day),
//! `maintain.rs` (sealing, retention, quota, the background thread) and
//! `erase.rs` (erasure).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use super::block::{self, BlockError, BlockMeta, Head, Ids, ReadError, RowIn};
use super::codec::{self, CodecError};
use super::dayfile::DayFile;
use super::erase::Tombstones;
use super::idx::IdxFile;
use super::key::{self, EventTime};
use super::maintain::Background;
use super::write::Writer;
use crate::clock::{Clock, SystemClock, UnixNanos};
use crate::event_logs::EventLogRow;
use crate::timestamp;

/// Default [`EventLogConfig::cache_bytes`]: 2 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 2 * 1024 * 1024;
/// Smallest accepted [`EventLogConfig::cache_bytes`]: 1 MiB.
pub const MIN_CACHE_BYTES: u64 = 1024 * 1024;
/// Default [`EventLogConfig::retention`]: 93 days (Sourcegraph's
/// `event_logs` retention).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(93 * 24 * 3600);
/// Default [`EventLogConfig::quota_bytes`]: 2 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Smallest accepted [`EventLogConfig::quota_bytes`]: 1 MiB.
pub const MIN_QUOTA_BYTES: u64 = 1024 * 1024;
/// Most rows per block (an insert of more rows writes several blocks).
pub const BATCH_ROWS: usize = block::MAX_BLOCK_ROWS;
/// The format this code writes and reads (day files, `days/FORMAT`, and
/// the `mformat` key of the sled marker that older binaries read).
pub const FORMAT_VERSION: u64 = 3;
/// How often the background thread fdatasyncs the day files written since
/// its last pass (bounds what a power loss can take from the mirror).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// How often the index of each day written since is saved.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(30);
/// A day is sealed (compacted, its ids moved to the dedup filter) by the
/// first [`EventLogStore::expire`] this long after it ends.
pub const SEAL_AFTER: Duration = Duration::from_secs(3600);
/// The quota never evicts rows whose event time is within this of now.
pub const PROTECTED_NEWEST: Duration = Duration::from_secs(3600);
/// Largest encoded row accepted (events are at most 1 MiB by default).
pub const MAX_ROW_BYTES: usize = 16 * 1024 * 1024;

/// Settings of the `event_logs` store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLogConfig {
    /// Memory for decoded blocks kept between queries and dedup checks,
    /// in bytes. Default [`DEFAULT_CACHE_BYTES`] (2 MiB); at least
    /// [`MIN_CACHE_BYTES`].
    pub cache_bytes: u64,
    /// How long rows are kept, by event time. Default
    /// [`DEFAULT_RETENTION`] (93 days); must be positive.
    pub retention: Duration,
    /// Bytes of disk the store may use; past it the oldest rows are
    /// evicted (never those of the newest hour). Default
    /// [`DEFAULT_QUOTA_BYTES`] (2 GiB); at least [`MIN_QUOTA_BYTES`].
    pub quota_bytes: u64,
}

impl Default for EventLogConfig {
    fn default() -> EventLogConfig {
        EventLogConfig {
            cache_bytes: DEFAULT_CACHE_BYTES,
            retention: DEFAULT_RETENTION,
            quota_bytes: DEFAULT_QUOTA_BYTES,
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
        if self.quota_bytes < MIN_QUOTA_BYTES {
            return Err(EventLogError::QuotaTooSmall {
                quota_bytes: self.quota_bytes,
                min: MIN_QUOTA_BYTES,
            });
        }
        Ok(())
    }
}

/// Errors of the `event_logs` store.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// Another process (a running sidecar) holds the store.
    #[error("event_logs store at {path} is in use by another process")]
    InUse {
        /// The store's directory.
        path: String,
    },
    /// sled failed (reading a format-2 store to convert it, or writing
    /// the marker that older binaries read).
    #[error("event_logs database error: {0}")]
    Sled(#[from] sled::Error),
    /// A file operation failed.
    #[error("event_logs: {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The store was written in a format this code does not read.
    #[error(
        "event_logs database at {path} has format {found}, this build reads format {expected} (and converts format 2); \
         move the directory aside (or delete it) to start an empty one"
    )]
    UnsupportedFormat {
        /// The store's directory.
        path: String,
        /// The format found.
        found: u64,
        /// The format this build reads and writes.
        expected: u64,
    },
    /// A day file's header is unusable.
    #[error("event_logs day file {path}: {source}")]
    BadDayFile {
        /// The file.
        path: String,
        /// What is wrong.
        #[source]
        source: super::dayfile::HeaderError,
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
    /// `quota_bytes` is below the minimum.
    #[error("event_logs quota of {quota_bytes} bytes is below the minimum of {min}")]
    QuotaTooSmall {
        /// The configured quota.
        quota_bytes: u64,
        /// The smallest accepted quota.
        min: u64,
    },
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
    /// An encoded row is larger than [`MAX_ROW_BYTES`].
    #[error("row for event {event_id} is {bytes} bytes encoded, above the limit of {max}")]
    RowTooLarge {
        /// The row's event id.
        event_id: String,
        /// Its encoded size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A stored row does not decode.
    #[error("stored row for event {event_id} is unreadable: {source}")]
    Decode {
        /// The event id (lossy UTF-8).
        event_id: String,
        /// The decoder's error.
        source: CodecError,
    },
    /// A block could not be read.
    #[error("event_logs day {day}, block at offset {offset}: {source}")]
    Block {
        /// The UTC day.
        day: String,
        /// File offset of the block.
        offset: u64,
        /// What went wrong.
        #[source]
        source: ReadError,
    },
    /// A stored key or record of a format-2 store has the wrong shape.
    #[error("{tree} key space holds a malformed entry (key {key_hex}, {len} bytes)")]
    BadEntry {
        /// The key space (`rows`, `ids` or `meta`).
        tree: &'static str,
        /// The key, hex.
        key_hex: String,
        /// Length of the malformed key or value.
        len: usize,
    },
    /// An earlier write failed in a way that left a day file in an
    /// unknown state; writes are refused until the store is reopened.
    #[error("event_logs store refuses writes after an earlier failure: {0}")]
    Poisoned(String),
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
    /// An erasure names no user (user id 0, or an empty anonymous id).
    #[error("an erasure needs a non-zero user id or a non-empty anonymous user id")]
    BadEraseTarget,
}

impl EventLogError {
    pub(crate) fn io(what: &'static str, path: &Path, source: std::io::Error) -> EventLogError {
        EventLogError::Io {
            what,
            path: path.display().to_string(),
            source,
        }
    }
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
/// [`EventLogStore::encode_row`]: the event id, its hash, the parsed event
/// time and the row's other fields in the row-wise form of
/// [`super::codec`], in one allocation. Encoding is the CPU-heavy part of
/// an insert (the JSON columns are rendered here); the record path does it
/// on the callers' threads, not on the mirror's.
#[derive(Clone, Debug)]
pub struct EncodedRow {
    pub(crate) hash: u64,
    pub(crate) time: EventTime,
    pub(crate) canonical_ts: bool,
    id_len: u32,
    buf: Vec<u8>,
}

impl EncodedRow {
    /// The event id.
    pub fn event_id(&self) -> &[u8] {
        self.buf.get(..self.id_len as usize).unwrap_or_default()
    }

    /// Bytes of the row's fields in row-wise form (the id not included).
    pub fn stored_len(&self) -> usize {
        self.buf.len() - self.id_len as usize
    }

    /// The row's fields in row-wise form (format 2's stored value; see
    /// [`super::codec`]).
    pub fn stored_bytes(&self) -> &[u8] {
        self.buf.get(self.id_len as usize..).unwrap_or_default()
    }

    pub(crate) fn id(&self) -> &str {
        std::str::from_utf8(self.event_id()).unwrap_or("")
    }

    pub(crate) fn day(&self) -> i64 {
        self.time.day()
    }

    /// A row of a format-2 store (its key's id and time, its value) as it
    /// is: the value is this type's payload already.
    pub(crate) fn from_format2(
        id: &str,
        time: EventTime,
        value: &[u8],
    ) -> Result<EncodedRow, EventLogError> {
        let head = codec::decode_head(value).map_err(|source| EventLogError::Decode {
            event_id: id.to_owned(),
            source,
        })?;
        let mut buf = Vec::with_capacity(id.len() + value.len());
        buf.extend_from_slice(id.as_bytes());
        buf.extend_from_slice(value);
        Ok(EncodedRow {
            hash: block::id_hash(id),
            time,
            canonical_ts: key::render_timestamp(time) == head.timestamp,
            id_len: id.len() as u32,
            buf,
        })
    }

    /// The row as the block builder takes it.
    pub(crate) fn row_in(&self) -> Result<RowIn<'_>, EventLogError> {
        let value = self.buf.get(self.id_len as usize..).unwrap_or_default();
        let (f, ts) = codec::decode_fields(value).map_err(|source| EventLogError::Decode {
            event_id: self.id().to_owned(),
            source,
        })?;
        Ok(RowIn {
            id: self.id(),
            time: self.time,
            ts_text: (!self.canonical_ts).then_some(ts),
            f,
        })
    }
}

/// The `event_logs` mirror. See the module documentation of
/// [`crate::event_logs`] for the layout and the guarantees.
#[derive(Debug)]
pub struct EventLogStore {
    pub(super) inner: Arc<Inner>,
    background: Mutex<Option<Background>>,
    closed: std::sync::atomic::AtomicBool,
}

/// A snapshot of one day for readers: replaced (not changed) by every
/// write, so a reader holding one sees a consistent day, and its file stays
/// readable even if the day is rewritten or dropped meanwhile.
#[derive(Debug)]
pub(crate) struct DayView {
    pub(crate) day: i64,
    pub(crate) file: Arc<DayFile>,
    /// Identifies the file's contents for caches (a rewrite gets a new id).
    pub(crate) file_id: u64,
    /// Bytes of the day file.
    pub(crate) len: u64,
    /// Bytes of its index file (0 when none).
    pub(crate) idx_len: u64,
    /// Live blocks in file order.
    pub(crate) blocks: Vec<Arc<BlockMeta>>,
    pub(crate) rows: u64,
    /// Rows per name (the sum of the blocks' summaries).
    pub(crate) names: BTreeMap<Arc<str>, u64>,
    /// Distinct users, and whether that is an estimate.
    pub(crate) users: u64,
    pub(crate) users_estimated: bool,
    /// The index, for a sealed day (whose ids are in the dedup filter).
    pub(crate) sealed: Option<Arc<IdxFile>>,
    /// Bumped by every change.
    pub(crate) version: u64,
    pub(crate) ids_generation: u64,
}

impl DayView {
    /// The block numbered `seq`.
    pub(crate) fn block_by_seq(&self, seq: u32) -> Option<&Arc<BlockMeta>> {
        let i = self
            .blocks
            .binary_search_by_key(&seq, |b| b.summary.seq)
            .ok()?;
        self.blocks.get(i)
    }

    pub(crate) fn min_time(&self) -> Option<EventTime> {
        self.blocks.iter().map(|b| b.summary.min).min()
    }

    pub(crate) fn max_time(&self) -> Option<EventTime> {
        self.blocks.iter().map(|b| b.summary.max).max()
    }

    pub(crate) fn max_commit(&self) -> u64 {
        self.blocks
            .iter()
            .map(|b| b.summary.commit)
            .max()
            .unwrap_or(0)
    }

    /// Recomputes `names` and `rows` from the blocks.
    pub(crate) fn recount_names(&mut self) {
        let mut names: BTreeMap<Arc<str>, u64> = BTreeMap::new();
        let mut rows = 0;
        for b in &self.blocks {
            rows += b.rows();
            for (n, c) in &b.summary.names {
                *names.entry(n.clone()).or_default() += u64::from(*c);
            }
        }
        self.names = names;
        self.rows = rows;
    }
}

/// What readers see: every day, the pending erasures, the totals.
#[derive(Clone, Debug, Default)]
pub(crate) struct View {
    pub(crate) days: BTreeMap<i64, Arc<DayView>>,
    pub(crate) tombstones: Arc<Tombstones>,
    pub(crate) rows: u64,
    /// Bytes of every file of the store (day files, indexes, filter,
    /// tombstones).
    pub(crate) bytes: u64,
    /// Bytes of the files besides day files and indexes.
    pub(crate) other_bytes: u64,
}

impl View {
    /// Recomputes the totals from the days.
    pub(crate) fn retotal(&mut self) {
        self.rows = self.days.values().map(|d| d.rows).sum();
        self.bytes = self.other_bytes + self.days.values().map(|d| d.len + d.idx_len).sum::<u64>();
    }
}

/// The store's shared state.
pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    pub(crate) days_dir: PathBuf,
    pub(crate) config: EventLogConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) _lock: Option<std::fs::File>,
    /// Serialises writers (inserts, and the installing half of
    /// maintenance).
    pub(crate) writer: Mutex<Writer>,
    /// Serialises maintenance passes (sealing, retention, erasure).
    pub(crate) maint: Mutex<()>,
    pub(crate) view: RwLock<Arc<View>>,
    pub(crate) cache: super::cache::BlockCache,
    pub(crate) signal: super::maintain::Signal,
    /// Whether the background thread runs pending erasure compactions
    /// (tests turn it off to look at the state before compaction).
    pub(crate) background_compaction: std::sync::atomic::AtomicBool,
    /// Blocks found damaged since open.
    pub(crate) damaged_blocks: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Inner {
    pub(crate) fn view(&self) -> Arc<View> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn publish(&self, view: View) {
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(view);
    }

    pub(crate) fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn maint(&self) -> MutexGuard<'_, ()> {
        self.maint.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn day_path(&self, day: i64) -> PathBuf {
        self.days_dir.join(super::dayfile::file_name(day))
    }

    pub(crate) fn idx_path(&self, day: i64) -> PathBuf {
        self.days_dir.join(super::idx::file_name(day))
    }

    /// Counts and logs a damaged block found while reading.
    pub(crate) fn report_damage(&self, day: i64, offset: u64, error: &dyn std::fmt::Display) {
        self.damaged_blocks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("telespool_event_logs_damaged_blocks_total").increment(1);
        tracing::warn!(day = %timestamp::day_string(day), offset, %error, "event_logs block is damaged; its rows are skipped");
    }

    /// Reads and checks a block's payload.
    pub(crate) fn read_block(
        &self,
        dv: &DayView,
        meta: &BlockMeta,
    ) -> Result<Vec<u8>, EventLogError> {
        block::read_payload(&dv.file.file, meta).map_err(|source| EventLogError::Block {
            day: timestamp::day_string(dv.day),
            offset: meta.offset,
            source,
        })
    }

    /// A block's ids, decoded (cached).
    pub(crate) fn block_ids(
        &self,
        dv: &DayView,
        meta: &BlockMeta,
    ) -> Result<Arc<Ids>, EventLogError> {
        if let Some(ids) = self.cache.ids(dv.file_id, meta.offset) {
            return Ok(ids);
        }
        let payload = self.read_block(dv, meta)?;
        let ids = Arc::new(Ids::decode(&payload, meta).map_err(|e| block_err(dv, meta, e))?);
        self.cache.put_ids(dv.file_id, meta.offset, ids.clone());
        Ok(ids)
    }

    /// A block's head, decoded (cached).
    pub(crate) fn block_head(
        &self,
        dv: &DayView,
        meta: &BlockMeta,
    ) -> Result<Arc<Head>, EventLogError> {
        if let Some(h) = self.cache.head(dv.file_id, meta.offset) {
            return Ok(h);
        }
        let payload = self.read_block(dv, meta)?;
        let head = Arc::new(Head::decode(&payload, meta).map_err(|e| block_err(dv, meta, e))?);
        self.cache.put_head(dv.file_id, meta.offset, head.clone());
        Ok(head)
    }
}

pub(crate) fn block_err(dv: &DayView, meta: &BlockMeta, e: BlockError) -> EventLogError {
    EventLogError::Block {
        day: timestamp::day_string(dv.day),
        offset: meta.offset,
        source: ReadError::Block(e),
    }
}

impl EventLogStore {
    /// Opens (or creates) the store in the directory `path`, with the
    /// system clock.
    ///
    /// Fails with [`EventLogError::InUse`] when another process (or another
    /// store in this one) has it open, and with
    /// [`EventLogError::UnsupportedFormat`] for a store of another format;
    /// a format-2 store (sled) is converted (see the module documentation).
    pub fn open(path: &Path, config: EventLogConfig) -> Result<EventLogStore, EventLogError> {
        EventLogStore::open_with_clock(path, config, Arc::new(SystemClock))
    }

    /// [`EventLogStore::open`] with a clock (sealing, the quota's newest
    /// hour and erasure times read it).
    pub fn open_with_clock(
        path: &Path,
        config: EventLogConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<EventLogStore, EventLogError> {
        let inner = Arc::new(super::open::open(path, config, clock)?);
        let background = Background::start(inner.clone())
            .map_err(|e| EventLogError::io("starting the background thread of", path, e))?;
        Ok(EventLogStore::from_parts(inner, Some(background)))
    }

    pub(super) fn from_parts(inner: Arc<Inner>, background: Option<Background>) -> EventLogStore {
        EventLogStore {
            inner,
            background: Mutex::new(background),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &EventLogConfig {
        &self.inner.config
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Validates and encodes a row for [`EventLogStore::insert_encoded`].
    /// Pure CPU work, no I/O: callers run it on their own threads.
    ///
    /// Fails on an empty event id ([`EventLogError::EmptyEventId`], index
    /// 0), a timestamp that is not RFC 3339 UTC, or a row above
    /// [`MAX_ROW_BYTES`].
    pub fn encode_row(row: &EventLogRow) -> Result<EncodedRow, EventLogError> {
        encode_at(0, row)
    }

    /// Stores the rows whose event id is not stored yet; rows whose id is
    /// present (or repeated earlier in `rows`) are counted as duplicates
    /// and not written.
    ///
    /// Every row is checked and encoded before anything is written: an
    /// empty event id or a timestamp that is not RFC 3339 UTC fails the
    /// whole call. Rows written survive a process crash when this returns.
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
    /// any earlier) are duplicates. One block (or a few, past
    /// [`BATCH_ROWS`] rows or 1 MiB) per UTC day of the rows.
    pub fn insert_encoded(&self, rows: &[EncodedRow]) -> Result<InsertOutcome, EventLogError> {
        let out = self.insert_encoded_groups(&[rows])?;
        Ok(out.first().copied().unwrap_or_default())
    }

    /// Stores several callers' rows in one commit (one block per day for
    /// all of them), and tells each its own outcome: a row whose id an
    /// earlier group of the same call holds is that later group's
    /// duplicate.
    pub fn insert_encoded_groups(
        &self,
        groups: &[&[EncodedRow]],
    ) -> Result<Vec<InsertOutcome>, EventLogError> {
        self.inner.insert_groups(groups)
    }

    /// Kept for callers of the sled store: every write is in the files
    /// (the page cache) when the write returns, so there is nothing to
    /// flush; a background thread fdatasyncs the files every
    /// [`SYNC_INTERVAL`]. Fails if an earlier write poisoned the store.
    pub fn flush(&self) -> Result<(), EventLogError> {
        match &self.inner.writer().poisoned {
            Some(why) => Err(EventLogError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// The row of `event_id`, if stored (and not erased).
    pub fn get(&self, event_id: &str) -> Result<Option<EventLogRow>, EventLogError> {
        let view = self.inner.view();
        let Some((dv, meta, row)) = self.inner.locate(&view, event_id)? else {
            return Ok(None);
        };
        let payload = self.inner.read_block(&dv, &meta)?;
        let bad = |e| block_err(&dv, &meta, e);
        let ids = Ids::decode(&payload, &meta).map_err(bad)?;
        let head = Head::decode(&payload, &meta).map_err(bad)?;
        if view.tombstones.hides(
            meta.summary.commit,
            head.user_id(row),
            head.anonymous_user_id(row),
        ) {
            return Ok(None);
        }
        let rest = block::Rest::decode(&payload, &meta).map_err(bad)?;
        let fields = rest.fields(&head, row);
        codec::row_from_fields(&ids.get(row), &head.timestamp(row), &fields)
            .map(Some)
            .map_err(|source| EventLogError::Decode {
                event_id: event_id.to_owned(),
                source,
            })
    }

    /// Number of rows stored (O(1)). Rows hidden by a pending erasure are
    /// counted until the erasure's compaction removes them.
    pub fn row_count(&self) -> Result<u64, EventLogError> {
        Ok(self.inner.view().rows)
    }

    /// Bytes of the store's files (what the quota counts).
    pub fn disk_bytes(&self) -> u64 {
        self.inner.view().bytes
    }

    /// Row count and the oldest and newest timestamps. Reads at most two
    /// blocks.
    pub fn stats(&self) -> Result<EventLogStats, EventLogError> {
        let view = self.inner.view();
        let edge =
            |dv: Option<&Arc<DayView>>, oldest: bool| -> Result<Option<String>, EventLogError> {
                let Some(dv) = dv else { return Ok(None) };
                let block = if oldest {
                    dv.blocks.iter().min_by_key(|b| b.summary.min)
                } else {
                    dv.blocks.iter().max_by_key(|b| b.summary.max)
                };
                let Some(b) = block else { return Ok(None) };
                let head = self.inner.block_head(dv, b)?;
                let row = if oldest {
                    (0..head.len()).min_by_key(|&r| head.time(r))
                } else {
                    (0..head.len()).max_by_key(|&r| head.time(r))
                };
                Ok(row.map(|r| head.timestamp(r)))
            };
        Ok(EventLogStats {
            rows: view.rows,
            oldest: edge(view.days.values().next(), true)?,
            newest: edge(view.days.values().next_back(), false)?,
        })
    }

    /// Blocks found damaged (CRC or decoding) since the store was opened,
    /// by the open-time scan or by reads.
    pub fn damaged_blocks(&self) -> u64 {
        self.inner
            .damaged_blocks
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the background thread and saves what opening needs (the
    /// indexes of the days written since their last save, the dedup
    /// filter). Dropping the store does the same.
    pub fn close(&self) {
        let bg = self
            .background
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(bg) = bg {
            bg.stop();
        }
        if !self.closed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.inner.save_for_close();
        }
    }
}

#[cfg(test)]
impl EventLogStore {
    /// Leaves pending erasures to explicit compactions.
    pub(crate) fn pause_background_compaction(&self) {
        self.inner
            .background_compaction
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops the store as a killed process would: nothing saved (the
    /// background thread stopped first, so nothing races the test).
    pub(crate) fn crash(self) {
        let bg = self
            .background
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(bg) = bg {
            bg.stop_without_saving();
        }
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for EventLogStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// [`EventLogStore::encode_row`], naming the row's position in errors.
pub(crate) fn encode_at(index: usize, row: &EventLogRow) -> Result<EncodedRow, EventLogError> {
    if row.event_id.is_empty() {
        return Err(EventLogError::EmptyEventId { index });
    }
    let time = key::parse_timestamp(&row.timestamp).ok_or_else(|| EventLogError::BadTimestamp {
        event_id: row.event_id.clone(),
        timestamp: row.timestamp.clone(),
    })?;
    let id = row.event_id.as_bytes();
    let mut buf = Vec::with_capacity(id.len() + 768);
    buf.extend_from_slice(id);
    codec::encode(row, &mut buf).map_err(|source| EventLogError::Encode {
        event_id: row.event_id.clone(),
        source,
    })?;
    if buf.len() > MAX_ROW_BYTES {
        return Err(EventLogError::RowTooLarge {
            event_id: row.event_id.clone(),
            bytes: buf.len(),
            max: MAX_ROW_BYTES,
        });
    }
    Ok(EncodedRow {
        hash: block::id_hash(&row.event_id),
        time,
        canonical_ts: key::render_timestamp(time) == row.timestamp,
        id_len: id.len() as u32,
        buf,
    })
}
