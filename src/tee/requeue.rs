//! Putting refused events back in the export queue (`telespool dead-letter
//! requeue`), in the crash-safe order the dead-letter store prescribes:
//! read the entries, append their events to the queue durably, then remove
//! them. A crash between the two leaves an entry both requeued and still
//! dead-lettered (it may be requeued twice: at-least-once), never lost.
//!
//! Only entries the exporter gave up on are requeued; invalid events from
//! ingest would only be refused again.

use crate::dead_letter::{DeadLetterError, DeadLetterSeq, DeadLetterSource, DeadLetterStore};
use crate::queue::Batch;
use crate::queue::{Queue, QueueError};

/// Why a requeue failed.
#[derive(Debug, thiserror::Error)]
pub enum RequeueError {
    /// The dead-letter store failed. What was requeued before stays
    /// requeued (and may be exported twice); the operator retries once the
    /// cause is fixed.
    #[error("dead-letter store: {0}")]
    DeadLetter(#[from] DeadLetterError),
    /// The queue refused or failed (full, poisoned). Entries not appended
    /// stay in the dead-letter store; the operator retries later.
    #[error("export queue: {0}")]
    Queue(#[from] QueueError),
}

/// What a requeue did (also the admin API's answer to
/// `POST /v1/dead-letter/requeue`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Requeued {
    /// Events appended to the queue and removed from the dead-letter store.
    pub requeued: u64,
    /// Entries left in place because they came from ingest (invalid events).
    pub skipped: u64,
}

/// Requeues up to `limit` export dead letters, oldest first.
pub fn requeue(
    dead: &DeadLetterStore,
    queue: &Queue,
    limit: usize,
) -> Result<Requeued, RequeueError> {
    let mut out = Requeued::default();
    let mut after: Option<DeadLetterSeq> = None;
    while (out.requeued as usize) < limit {
        let page = dead.list(after, 1000.min(limit.max(1)))?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        let mut batch = Batch::new();
        let mut seqs = Vec::new();
        for d in &page {
            if (out.requeued as usize) + seqs.len() >= limit {
                break;
            }
            if d.entry.source == DeadLetterSource::Export && !d.entry.event.is_empty() {
                batch.push(&d.entry.event);
                seqs.push(d.seq);
            } else {
                out.skipped += 1;
            }
        }
        if seqs.is_empty() {
            continue;
        }
        queue.append(batch)?;
        dead.remove(&seqs)?;
        dead.flush()?;
        out.requeued += seqs.len() as u64;
    }
    if out.requeued > 0 {
        tracing::info!(requeued = out.requeued, "dead letters requeued for export");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::UnixNanos;
    use crate::dead_letter::{DeadLetterConfig, DeadLetterEntry};
    use crate::{QueueConfig, RecordId};

    fn entry(i: u8, source: DeadLetterSource) -> DeadLetterEntry {
        DeadLetterEntry {
            event_id: Some(format!("e{i}")),
            event: vec![i; 10],
            reason: "refused".into(),
            source,
            attempts: 10,
            recorded_at: UnixNanos(0),
            last_error: None,
            original_size: None,
        }
    }

    #[test]
    fn export_dead_letters_go_back_to_the_queue_and_ingest_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let dead =
            DeadLetterStore::open(&dir.path().join("dl"), DeadLetterConfig::default()).unwrap();
        let (queue, _) = Queue::open_dir(dir.path(), QueueConfig::default()).unwrap();
        dead.put_batch(&[
            entry(1, DeadLetterSource::Export),
            entry(2, DeadLetterSource::Ingest),
            entry(3, DeadLetterSource::Export),
        ])
        .unwrap();
        let r = requeue(&dead, &queue, 100).unwrap();
        assert_eq!(
            r,
            Requeued {
                requeued: 2,
                skipped: 1
            }
        );
        assert_eq!(dead.count().unwrap(), 1);
        let recs = queue.read(RecordId(1), 10, usize::MAX).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(&recs[0].event[..], &[1u8; 10]);
        assert_eq!(&recs[1].event[..], &[3u8; 10]);
    }
}
