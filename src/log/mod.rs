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
//!   index/                         sled: segment table and watermarks
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
//! Appends go to the one active segment through two threads (`writer.rs`):
//! the *writer* takes every batch submitted since its last turn, assigns
//! record ids, encodes the frames into one buffer and writes it with one
//! `pwrite`; the *syncer* `fdatasync`s and then acknowledges every batch the
//! sync covered. While the syncer waits on the disk, the writer already
//! writes the next group, so a sync covers whatever arrived while the last
//! one ran (group commit). Under the default policy, `always`, a caller is
//! acknowledged only after the sync that covers its records; `interval`
//! acknowledges after the write and syncs on a timer; `never` (tests and
//! benchmarks) never syncs.
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
//! [`crate::queue`]): sealed segments known to the index are trusted (and
//! CRC-checked whenever read); the active segment, and any segment the
//! index does not vouch for, is walked; a torn tail is truncated; damage in
//! the middle costs only the damaged records, whose ids are reported and
//! resolved as lost.

pub mod record;
pub mod segment;
pub(crate) mod table;
pub(crate) mod writer;

use crate::ids::RecordId;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use writer::AppendAck;

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

/// A batch of events to append, stored contiguously.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// A batch holding copies of `events`.
    pub fn from_slices<T: AsRef<[u8]>>(events: &[T]) -> Batch {
        let mut b = Batch {
            data: Vec::with_capacity(events.iter().map(|e| e.as_ref().len()).sum()),
            ends: Vec::with_capacity(events.len()),
        };
        for e in events {
            b.push(e.as_ref());
        }
        b
    }

    /// Adds one event.
    pub fn push(&mut self, event: &[u8]) {
        self.data.extend_from_slice(event);
        self.ends.push(self.data.len());
    }

    /// Adds one event written by `f` into the batch's buffer (no copy).
    pub fn push_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        f(&mut self.data);
        self.ends.push(self.data.len());
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The events.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .filter_map(|(a, b)| self.data.get(a..b))
    }

    /// Bytes the batch takes in a segment, frames included.
    pub fn encoded_len(&self) -> u64 {
        self.iter()
            .map(|e| record::encoded_len(e.len()) as u64)
            .sum()
    }

    /// The largest event, in bytes.
    pub fn max_event_len(&self) -> usize {
        self.iter().map(<[u8]>::len).max().unwrap_or(0)
    }
}

/// Why an append failed. Cloneable: one failure may answer many batches.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AppendError {
    /// An earlier fsync (or a truncation after a failed write) failed; the
    /// log refuses appends until it is reopened.
    #[error("the queue's log is poisoned by an earlier failure ({reason}); restart to recover")]
    Poisoned {
        /// What failed first.
        reason: Arc<str>,
    },
    /// The disk is full.
    #[error("disk full writing {path}")]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// A write failed (nothing of the batch was kept).
    #[error("write to {path} failed: {source}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The error.
        source: Arc<io::Error>,
    },
    /// The log is closing or closed.
    #[error("the queue is closed")]
    Closed,
}

impl AppendError {
    pub(crate) fn from_io(path: PathBuf, e: io::Error) -> AppendError {
        if crate::storage::is_disk_full(&e) {
            AppendError::DiskFull { path }
        } else {
            AppendError::Write {
                path,
                source: Arc::new(e),
            }
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

    #[test]
    fn batch_iterates_its_events() {
        let mut b = Batch::from_slices(&[b"a".as_slice(), b"", b"ccc"]);
        b.push_with(|buf| buf.extend_from_slice(b"dd"));
        let all: Vec<&[u8]> = b.iter().collect();
        assert_eq!(all, vec![&b"a"[..], b"", b"ccc", b"dd"]);
        assert_eq!(b.max_event_len(), 3);
        assert_eq!(
            b.encoded_len(),
            [1, 0, 3, 2]
                .iter()
                .map(|&n| record::encoded_len(n) as u64)
                .sum::<u64>()
        );
    }
}
