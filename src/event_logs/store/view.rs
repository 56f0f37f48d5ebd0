//! What readers see ([`View`], one [`DayView`] per day) and the store's
//! shared state ([`Inner`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::config::EventLogConfig;
use super::error::EventLogError;
use crate::clock::Clock;
use crate::event_logs::block::{self, BlockError, BlockMeta, Head, Ids, ReadError};
use crate::event_logs::dayfile::DayFile;
use crate::event_logs::erase::Tombstones;
use crate::event_logs::idx::IdxFile;
use crate::event_logs::key::EventTime;
use crate::event_logs::write::Writer;
use crate::timestamp;

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
    pub(crate) cache: crate::event_logs::cache::BlockCache,
    pub(crate) signal: crate::event_logs::maintain::Signal,
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
        self.days_dir
            .join(crate::event_logs::dayfile::file_name(day))
    }

    pub(crate) fn idx_path(&self, day: i64) -> PathBuf {
        self.days_dir.join(crate::event_logs::idx::file_name(day))
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
