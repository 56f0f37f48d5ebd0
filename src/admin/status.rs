//! The queue's state: `GET /v1/status` and `telespool status`.

use serde::{Deserialize, Serialize};

use crate::clock::UnixNanos;
use crate::queue::open::OpenReport;
use crate::queue::{Queue, SegmentInfo};

/// The export queue as the sidecar sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStatus {
    /// The queue directory.
    pub dir: String,
    /// Every segment, oldest first.
    pub segments: Vec<SegmentStatus>,
    /// Records in the segments on disk, resolved or not.
    pub records: u64,
    /// What is left to export.
    pub backlog: BacklogStatus,
    /// Bytes of segment files.
    pub disk_bytes: u64,
    /// The queue's disk quota, in bytes.
    pub quota_bytes: u64,
    /// The id the next appended record gets.
    pub next_record_id: u64,
    /// Why the queue refuses appends (a failed fsync), if it does.
    pub poisoned: Option<String>,
    /// What recovery did, when this process opened the queue itself (the
    /// offline `telespool status`); absent from a running sidecar's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryStatus>,
}

/// The unresolved records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BacklogStatus {
    /// Unresolved records.
    pub records: u64,
    /// Their bytes (an estimate when sizes vary).
    pub bytes: u64,
    /// Append time of the oldest, RFC 3339.
    pub oldest_append: Option<String>,
    /// Its age, in whole seconds.
    pub oldest_age_seconds: Option<u64>,
}

/// What opening the queue repaired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryStatus {
    /// Torn tails cut off.
    pub truncated: u64,
    /// Records lost to damage (resolved as lost).
    pub lost_records: u64,
}

/// One segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentStatus {
    /// The segment id.
    pub segment: u64,
    /// Its first record id.
    pub first_record: u64,
    /// Its last record id; `None` while empty.
    pub last_record: Option<u64>,
    /// Records it holds.
    pub records: u64,
    /// Records not resolved yet.
    pub unresolved: u64,
    /// The resolved watermark: every record up to it is resolved (acked,
    /// dead-lettered, lost or dropped).
    pub watermark: u64,
    /// Resolved records above the watermark.
    pub resolved_above: u64,
    /// Bytes of its file.
    pub bytes: u64,
    /// When it was created, RFC 3339.
    pub created: String,
    /// Whether it is sealed (no more appends).
    pub sealed: bool,
    /// Whether it is the active segment.
    pub active: bool,
    /// When its last record was resolved, RFC 3339 (the purge retention
    /// runs from then).
    pub fully_exported_at: Option<String>,
    /// Records acknowledged by the gateway.
    pub acked: u64,
    /// Records moved to the dead-letter store.
    pub dead_lettered: u64,
    /// Records lost to damage.
    pub lost: u64,
    /// Records dropped by the quota policy.
    pub dropped: u64,
}

/// The state of `queue` at `now`, with what recovery did when `report` is
/// given (the offline CLI opened the queue itself).
pub fn queue_status(queue: &Queue, report: Option<&OpenReport>, now: UnixNanos) -> QueueStatus {
    let segments = queue.segments();
    let backlog = queue.backlog();
    let next_record_id = segments
        .last()
        .map_or(0, |s| s.meta.last_id.map_or(s.meta.first_id.0, |l| l.0 + 1));
    QueueStatus {
        dir: queue.dir().display().to_string(),
        records: segments.iter().map(|s| s.meta.records()).sum(),
        segments: segments.iter().map(segment_status).collect(),
        backlog: BacklogStatus {
            records: backlog.records,
            bytes: backlog.bytes,
            oldest_append: backlog.oldest_append.map(|t| t.to_string()),
            oldest_age_seconds: backlog.oldest_append.map(|t| now.since(t).as_secs()),
        },
        disk_bytes: backlog.disk_bytes,
        quota_bytes: queue.config().quota_bytes,
        next_record_id,
        poisoned: queue.poisoned().map(|e| e.to_string()),
        recovery: report.map(|r| RecoveryStatus {
            truncated: r.truncated.len() as u64,
            lost_records: r.lost_records(),
        }),
    }
}

fn segment_status(s: &SegmentInfo) -> SegmentStatus {
    let m = &s.meta;
    SegmentStatus {
        segment: m.id.0,
        first_record: m.first_id.0,
        last_record: m.last_id.map(|l| l.0),
        records: m.records(),
        unresolved: s.unresolved,
        watermark: m.watermark.0,
        resolved_above: m.resolved_above.len(),
        bytes: m.bytes,
        created: m.created.to_string(),
        sealed: m.sealed,
        active: s.active,
        fully_exported_at: m.fully_resolved_at.map(|t| t.to_string()),
        acked: m.counts.acked,
        dead_lettered: m.counts.dead_lettered,
        lost: m.counts.lost,
        dropped: m.counts.dropped,
    }
}
