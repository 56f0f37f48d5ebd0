//! The quota: appends far from it take no lock; near it, fully resolved
//! segments are purged early and then the full policy applies (refuse, or
//! drop the oldest unresolved records).

use super::{FullPolicy, Queue, QueueError};
use crate::log::Batch;
use crate::segment_meta::Resolution;

/// Metric: oldest records dropped to make room (policy drop-oldest).
pub const DROPPED: &str = "telespool_queue_dropped_total";
/// Metric: appends refused because the queue was full (policy refuse).
pub const REFUSED: &str = "telespool_queue_refused_total";

/// Below the quota by more than this, appends skip the quota lock.
const QUOTA_SLACK: u64 = 64 * 1024 * 1024;

impl Queue {
    /// Whether [`Queue::submit`] of this batch returns at once: far from
    /// the quota it takes no lock but the intake's. Near it, submitting may
    /// purge segments or drop records first (file and index work), which
    /// async callers should move off their runtime.
    pub fn submit_is_quick(&self, batch: &Batch) -> bool {
        self.far_from_quota(batch.encoded_len())
    }

    /// Far from the quota, submitters skip its lock: concurrent ones can
    /// then overshoot it by at most their own batches, well inside the slack.
    pub(super) fn far_from_quota(&self, needed: u64) -> bool {
        self.used_bytes() + needed + QUOTA_SLACK <= self.config.quota_bytes
    }

    fn used_bytes(&self) -> u64 {
        self.state().used_bytes()
    }

    /// Frees space until `needed` more bytes fit under the quota, following
    /// the full policy. Called with the quota lock held.
    pub(super) fn make_room(&self, needed: u64) -> Result<(), QueueError> {
        let quota = self.config.quota_bytes;
        if needed > quota {
            return Err(QueueError::BatchTooLarge { needed, quota });
        }
        loop {
            let used = self.used_bytes();
            if used + needed <= quota {
                return Ok(());
            }
            // Retention is for auditing; the quota is a hard limit.
            let early = self.purge_where(|_, _| true)?;
            if early.segments > 0 {
                tracing::warn!(
                    segments = early.segments,
                    bytes = early.bytes,
                    "queue at its quota: purged fully exported segments before their retention"
                );
                continue;
            }
            match self.config.full_policy {
                FullPolicy::Refuse => {
                    metrics::counter!(REFUSED).increment(1);
                    return Err(QueueError::Full {
                        quota,
                        used,
                        needed,
                    });
                }
                FullPolicy::DropOldest => {
                    if !self.drop_oldest()? {
                        return Err(QueueError::Full {
                            quota,
                            used,
                            needed,
                        });
                    }
                }
            }
        }
    }

    /// Drops the oldest segment's unresolved records and purges it. Returns
    /// false when nothing can be dropped.
    fn drop_oldest(&self) -> Result<bool, QueueError> {
        let now = self.state().now();
        let victim = {
            let mut t = self.table();
            let oldest = t.oldest_sealed().map(|e| {
                let m = e.meta();
                (m.id, m.first_id, m.last_id.unwrap_or(m.first_id))
            });
            match oldest {
                Some((id, first, last)) => {
                    let dropped = t.resolve(id, first, last, Resolution::Dropped, now);
                    Some((id, dropped))
                }
                None => {
                    let has_records = t.get(t.active()).is_some_and(|e| e.meta().records() > 0);
                    if !has_records {
                        return Ok(false);
                    }
                    None
                }
            }
        };
        let Some((id, dropped)) = victim else {
            // Only the active segment holds records: seal it, then retry.
            self.log.roll()?;
            return Ok(true);
        };
        if dropped > 0 {
            tracing::warn!(segment = %id, records = dropped, "queue full: dropped the oldest unexported records (policy drop-oldest)");
            metrics::counter!(DROPPED).increment(dropped);
        }
        // Progress only if the segment could actually go (a damaged index
        // entry could leave it unpurgeable; looping would hang submitters).
        Ok(self.purge_where(|e, _| e.id == id)?.segments > 0)
    }
}
