//! The export queue's log: segmented, CRC-checked record files with group
//! commit.
//!
//! # On disk
//!
//! ```text
//! <data dir>/queue/
//!   LOCK                           exclusive lock (holder's pid inside)
//!   00000000000000000001.seg       sealed segment
//!   00000000000000000002.seg       sealed segment
//!   00000000000000000003.seg       active segment (appends go here)
//!   index/                         sled: segment table and resolved watermarks
//!
//! segment = header(48 bytes) | frame | frame | ...
//! frame   = len:u32 LE | crc32:u32 LE | envelope[len]     crc over len bytes + envelope
//! envelope (protobuf telespool.v1.RecordEnvelope) =
//!           record_id:fixed64 | append_time_unix_nanos:sfixed64 | event:bytes
//! ```
//!
//! See [`record`] for the frame codec and [`segment`] for the header and
//! the resynchronising walk.
//!
//! # Writing
//!
//! Appends go to the one active segment through three threads:
//!
//! - the *writer* takes every batch submitted since its last turn, assigns
//!   record ids, encodes the frames into one buffer and writes it with one
//!   `pwrite`;
//! - the *syncer* `fdatasync`s and publishes every group the sync covered
//!   (readers see them from then on);
//! - the *completer* wakes the callers, so the syncer can start the next
//!   sync at once.
//!
//! While the syncer waits on the disk, the writer already writes the next
//! group, so a sync covers whatever arrived while the last one ran (group
//! commit). Under the default policy, `always`, a caller is acknowledged
//! only after the sync that covers its records; `interval` acknowledges
//! after the write and syncs on a timer; `never` (tests and benchmarks)
//! never syncs.
//!
//! The first failed fsync poisons the log: every later append fails with
//! [`AppendError::Poisoned`] until the queue is reopened (recovery then
//! decides from the files what survived; an fsync is never retried). A
//! failed or short write is different: the writer truncates the file back
//! to the end of the last good group, fails the batches of the failed group,
//! and carries on (a full disk is usually temporary); if the truncation
//! fails too, the log is poisoned.
//!
//! A segment is *sealed* and a new one *rolled* when the next batch would
//! take the active segment past its size limit (default 64 MiB), or when it
//! is older than its age limit (default 1 h) and not empty. A batch never
//! spans two segments. Readers see only records that are durable (under
//! `never`: written).
//!
//! # Recovery
//!
//! On open the files are reconciled with the index (see
//! [`crate::queue::open`]): sealed segments known to the index are trusted
//! (and CRC-checked whenever read); the active segment, and any segment the
//! index does not vouch for, is walked; a torn tail is truncated; damage in
//! the middle costs only the damaged records, whose ids are reported and
//! resolved as lost. Recovery makes segments with `segment::create`, as the
//! writer's roll does.
//!
//! # The seam with the queue
//!
//! The queue holds a `Log` (the running threads) and reaches the shared
//! `LogState` (settings, segment table, byte counters, poison) and the
//! segment `Table` only through their methods; their fields are private.
//!
//! # Files
//!
//! | File | Job |
//! |---|---|
//! | `record.rs` | frame and envelope codec (total over any bytes) |
//! | `segment.rs` | segment header, file names, `create`, the resynchronising walk and scan |
//! | `batch.rs` | [`Batch`]: the events of one append, stored contiguously |
//! | `error.rs` | [`AppendError`], [`PoisonCause`], and why a segment could not be created |
//! | `table.rs` | the in-memory segment table and its named operations |
//! | `state.rs` | `LogState`: what the threads share with the queue |
//! | `handle.rs` | `Log`: starts the threads; submit, roll, sync, close |
//! | `intake.rs` | callers → writer: requests, barriers, [`PendingAppend`], [`AppendAck`] |
//! | `writer.rs` | the writer thread: ids, frames, one `pwrite` per group, rolls |
//! | `active.rs` | the active segment's I/O: append, cut back, preallocate |
//! | `syncer.rs` | the syncer thread: one `fdatasync` per file per turn, publish, poison |
//! | `completer.rs` | the completer thread: wakes the callers |

mod active;
mod batch;
mod completer;
mod error;
mod handle;
mod intake;
pub mod record;
pub mod segment;
mod state;
mod syncer;
mod table;
mod writer;

/// The names of the metrics the log emits, each defined next to its
/// emitter and registered in [`crate::app::series::SIDECAR_SERIES`].
pub mod metric_names {
    pub use super::state::POISONED;
    pub use super::syncer::{APPENDED_RECORDS, FSYNC_SECONDS};
    pub use super::writer::WRITE_ERRORS;
}

use crate::ids::RecordId;
use std::time::Duration;

pub(crate) use active::Active;
pub use active::PREALLOC_CHUNK;
pub use batch::Batch;
pub(crate) use error::CreateError;
pub use error::{AppendError, PoisonCause};
pub(crate) use handle::Log;
pub use intake::{AppendAck, PendingAppend};
pub(crate) use state::LogState;
pub(crate) use table::{Entry, Table};

/// The log's settings (the part of the queue's configuration the writer
/// threads need).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    /// When appends are durable.
    pub policy: SyncPolicy,
    /// Roll when the next batch would take the active segment past this.
    pub segment_bytes: u64,
    /// Roll when the active segment is older than this and not empty.
    pub segment_age: Duration,
}

/// When appends are made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every append is acknowledged after the `fdatasync` that covers it
    /// (group commit). The default.
    Always,
    /// Appends are acknowledged once written; a sync runs at most this
    /// often. A power loss may cost the last interval's records.
    Interval(Duration),
    /// Never sync (tests and benchmarks only).
    Never,
}

impl std::str::FromStr for SyncPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<SyncPolicy, String> {
        match s {
            "always" => Ok(SyncPolicy::Always),
            "never" => Ok(SyncPolicy::Never),
            _ => {
                let ms = s
                    .strip_prefix("interval(")
                    .and_then(|r| r.strip_suffix(')'))
                    .map(|r| r.trim_end_matches("ms"))
                    .and_then(|r| r.parse::<u64>().ok())
                    .filter(|&ms| ms > 0)
                    .ok_or_else(|| {
                        format!("sync policy {s:?} is not one of: always, interval(MS), never")
                    })?;
                Ok(SyncPolicy::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

impl std::fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncPolicy::Always => write!(f, "always"),
            SyncPolicy::Interval(d) => write!(f, "interval({}ms)", d.as_millis()),
            SyncPolicy::Never => write!(f, "never"),
        }
    }
}

/// One record read from the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its id.
    pub id: RecordId,
    /// When it was appended.
    pub append_time: crate::clock::UnixNanos,
    /// The event bytes, exactly as they will be exported.
    pub event: bytes::Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_policies_parse_and_print() {
        for s in ["always", "never", "interval(250ms)"] {
            assert_eq!(s.parse::<SyncPolicy>().unwrap().to_string(), s);
        }
        assert_eq!(
            "interval(5)".parse::<SyncPolicy>(),
            Ok(SyncPolicy::Interval(Duration::from_millis(5)))
        );
        assert!(
            "sometimes"
                .parse::<SyncPolicy>()
                .unwrap_err()
                .contains("always")
        );
        assert!("interval(0)".parse::<SyncPolicy>().is_err());
    }
}
