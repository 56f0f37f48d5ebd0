//! Resolving records, and what is waiting: [`Queue::resolve`],
//! [`Queue::backlog`], [`Queue::segments`].

use super::Queue;
use crate::clock::UnixNanos;
use crate::ids::RecordId;
use crate::log::segment;
use crate::segment_meta::{Resolution, SegmentMeta};

/// Metric: records resolved, by `how` (acked, dead_lettered, lost, dropped).
pub const RESOLVED: &str = "telespool_queue_resolved_total";

/// What [`Queue::resolve`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolveOutcome {
    /// Records newly resolved.
    pub resolved: u64,
    /// Records that were resolved already.
    pub already: u64,
    /// Ids the queue does not hold (purged, never durable, or unknown).
    pub unknown: u64,
}

/// What is waiting to be exported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Unresolved records.
    pub records: u64,
    /// Bytes of unresolved records (per segment, its data bytes times the
    /// unresolved fraction of its records: an estimate when sizes vary).
    pub bytes: u64,
    /// Append time of the oldest unresolved record.
    pub oldest_append: Option<UnixNanos>,
    /// Segment files.
    pub segments: u64,
    /// Bytes of segment files.
    pub disk_bytes: u64,
}

/// One segment, as [`Queue::segments`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The index entry.
    pub meta: SegmentMeta,
    /// Whether it is the active segment.
    pub active: bool,
    /// Unresolved records.
    pub unresolved: u64,
}

impl Queue {
    /// Resolves records as `how`.
    pub fn resolve(&self, ids: &[RecordId], how: Resolution) -> ResolveOutcome {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let now = self.state().now();
        let mut out = ResolveOutcome::default();
        let mut t = self.table();
        let mut i = 0;
        while i < ids.len() {
            let id = ids[i];
            let Some(e) = t.segment_of(id).and_then(|seg| t.get(seg)) else {
                out.unknown += 1;
                i += 1;
                continue;
            };
            // The run of consecutive ids inside this segment.
            let meta = e.meta();
            let mut j = i + 1;
            while j < ids.len() && ids[j].0 == ids[j - 1].0 + 1 && meta.holds(ids[j]) {
                j += 1;
            }
            let seg = meta.id;
            let run = (j - i) as u64;
            let new = t.resolve(seg, id, ids[j - 1], how, now);
            out.resolved += new;
            out.already += run - new;
            i = j;
        }
        drop(t);
        if out.resolved > 0 {
            metrics::counter!(RESOLVED, "how" => how.as_str()).increment(out.resolved);
        }
        out
    }

    /// What is waiting to be exported.
    pub fn backlog(&self) -> Backlog {
        let (mut b, oldest) = {
            let t = self.table();
            let mut b = Backlog {
                segments: t.len() as u64,
                disk_bytes: self.state().disk_bytes(),
                ..Backlog::default()
            };
            let mut oldest = None;
            for e in t.iter() {
                let m = e.meta();
                let un = m.unresolved();
                if un == 0 {
                    continue;
                }
                b.records += un;
                let data = m.bytes.saturating_sub(segment::HEADER_LEN as u64);
                let total = m.records().max(1);
                b.bytes += (u128::from(data) * u128::from(un) / u128::from(total)) as u64;
                if oldest.is_none() {
                    oldest = m.first_unresolved().map(|id| (m.id, id, e.oldest()));
                }
            }
            (b, oldest)
        };
        if let Some((seg, id, cached)) = oldest {
            b.oldest_append = match cached {
                Some((cid, t)) if cid == id => Some(t),
                _ => match self.get(id) {
                    Ok(Some(r)) => {
                        if let Some(e) = self.table().get_mut(seg) {
                            e.cache_oldest(id, r.append_time);
                        }
                        Some(r.append_time)
                    }
                    _ => None,
                },
            };
        }
        b
    }

    /// Every segment, in id order.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let t = self.table();
        t.iter()
            .map(|e| SegmentInfo {
                meta: e.meta().clone(),
                active: e.meta().id == t.active(),
                unresolved: e.meta().unresolved(),
            })
            .collect()
    }
}
