//! The `event_logs` store: its settings, errors and public interface. The
//! layout and the guarantees are in the module documentation of
//! [`super`]; the parts live in `open.rs` (layout, locking, upgrade, load),
//! `write.rs` (inserts and dedup), `rewrite.rs` (compaction of a day),
//! `maintain.rs` (sealing, retention, quota, the background thread) and
//! `erase.rs` (erasure).
//!
//! This file holds [`EventLogStore`]'s public methods; beside it,
//! `store/config.rs` (settings, defaults, limits), `store/error.rs`
//! ([`EventLogError`]), `store/encoded.rs` ([`EncodedRow`]: a row parsed and
//! serialized for insertion) and `store/view.rs` (the readers' snapshot and
//! the shared state).

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::block::{self, Head, Ids};
use super::codec;
use super::maintain::Background;
use crate::clock::{Clock, SystemClock, UnixNanos};
use crate::event_logs::EventLogRow;
use crate::proto::telemetrygateway::v1::Event;

mod config;
mod encoded;
mod error;
mod view;

pub use config::{
    BATCH_ROWS, DEFAULT_CACHE_BYTES, DEFAULT_QUOTA_BYTES, DEFAULT_RETENTION, EventLogConfig,
    FORMAT_VERSION, MAX_ROW_BYTES, MIN_CACHE_BYTES, MIN_QUOTA_BYTES, PROTECTED_NEWEST, SEAL_AFTER,
    SNAPSHOT_INTERVAL, SYNC_INTERVAL,
};
pub use encoded::EncodedRow;
pub(crate) use encoded::encode_at;
pub use error::EventLogError;
pub(crate) use view::{DayView, Inner, View, block_err};

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

/// The `event_logs` mirror. See the module documentation of
/// [`crate::event_logs`] for the layout and the guarantees.
#[derive(Debug)]
pub struct EventLogStore {
    pub(super) inner: Arc<Inner>,
    background: Mutex<Option<Background>>,
    closed: std::sync::atomic::AtomicBool,
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

    /// The row of `event` ([`crate::event_logs::translate`] with these
    /// arguments) encoded as [`EventLogStore::encode_row`] would encode
    /// it, in one pass and without building the row: what the record path
    /// calls per event.
    pub fn encode_event(
        event: &Event,
        allowlisted_keys: Option<&[String]>,
        server_version: &str,
        now: UnixNanos,
    ) -> Result<EncodedRow, EventLogError> {
        encoded::encode_event(event, allowlisted_keys, server_version, now)
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
