//! Group commit for the record path's mirror writes: `event_logs` rows and
//! ingest dead letters.
//!
//! One thread takes everything submitted since its last turn, writes all
//! the rows in **one** `event_logs` commit (one compressed block per UTC
//! day for every submitter together, each submitter still told its own
//! duplicates: [`EventLogStore::insert_encoded_groups`]), the dead letters
//! in one sled batch and flush, and answers every submitter (a `futures`
//! oneshot, like the queue's writer). A record call waits for this and for
//! the queue's group commit, which run side by side. The rows are in the
//! day files (the page cache) when the commit returns: they survive a
//! process crash; the store fdatasyncs them in the background (the mirror
//! is best-effort against power loss: the export queue is the durable copy).
//!
//! The rows arrive encoded ([`EventLogStore::encode_row`], run by
//! [`super::store::Tee::prepare`] on the callers' threads): this thread
//! dedups, builds the columnar block and compresses it, which is what keeps
//! it from being the record path's ceiling (docs/benchmarks.md, "Mirror").

use crate::dead_letter::{DeadLetterEntry, DeadLetterError, DeadLetterStore};
use crate::event_logs::store::{EncodedRow, EventLogError, EventLogStore};
use futures::channel::oneshot;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

/// Metric: time of one mirror group commit.
pub const COMMIT_SECONDS: &str = "telespool_mirror_commit_seconds";

/// What one mirror commit wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MirrorAck {
    /// Rows newly inserted.
    pub inserted: u64,
    /// Rows whose event id was already present (a retry): not inserted again.
    pub duplicates: u64,
    /// Dead letters stored.
    pub dead_lettered: u64,
}

/// Why a mirror commit failed. One commit serves every submitter of its
/// group, so the cause is shared (`Arc`).
#[derive(Clone, Debug, thiserror::Error)]
pub enum MirrorError {
    /// The event_logs store failed to encode, insert or flush rows. Nothing
    /// of the group is acknowledged; the client retries (the queue's copy
    /// may already hold the events: ingest is idempotent by event id). The
    /// operator looks at the cause (disk full, damage) in the log.
    #[error("event_logs store: {0}")]
    EventLogs(#[source] Arc<EventLogError>),
    /// The dead-letter store failed to store or flush invalid events.
    /// Nothing of the group is acknowledged; the client retries.
    #[error("dead-letter store: {0}")]
    DeadLetter(#[source] Arc<DeadLetterError>),
    /// The mirror is closed (the sidecar is stopping). The client retries
    /// against the next sidecar start.
    #[error("the event_logs mirror is closed")]
    Closed,
}

impl MirrorError {
    /// Whether the disk is full (ENOSPC somewhere in the cause chain): the
    /// client retries later, as for a full queue (HTTP 507, gRPC
    /// `RESOURCE_EXHAUSTED`).
    pub fn is_disk_full(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && (io.kind() == std::io::ErrorKind::StorageFull
                    || io.raw_os_error() == Some(ENOSPC))
            {
                return true;
            }
            cause = e.source();
        }
        false
    }
}

/// `ENOSPC` on Linux.
const ENOSPC: i32 = 28;

impl From<EventLogError> for MirrorError {
    fn from(e: EventLogError) -> MirrorError {
        MirrorError::EventLogs(Arc::new(e))
    }
}

impl From<DeadLetterError> for MirrorError {
    fn from(e: DeadLetterError) -> MirrorError {
        MirrorError::DeadLetter(Arc::new(e))
    }
}

struct Work {
    rows: Vec<EncodedRow>,
    dead: Vec<DeadLetterEntry>,
    done: oneshot::Sender<Result<MirrorAck, MirrorError>>,
}

#[derive(Default)]
struct Intake {
    work: Vec<Work>,
    closed: bool,
}

struct Shared {
    intake: Mutex<Intake>,
    cv: Condvar,
}

impl Shared {
    fn intake(&self) -> MutexGuard<'_, Intake> {
        self.intake.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The mirror's committer thread.
pub struct Mirror {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror").finish_non_exhaustive()
    }
}

/// A submitted mirror write; resolves once flushed.
pub type MirrorPending = futures::future::BoxFuture<'static, Result<MirrorAck, MirrorError>>;

impl Mirror {
    /// Starts the committer.
    pub fn start(
        event_logs: Arc<EventLogStore>,
        dead: Arc<DeadLetterStore>,
    ) -> std::io::Result<Mirror> {
        let shared = Arc::new(Shared {
            intake: Mutex::new(Intake::default()),
            cv: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("telespool-mirror".into())
            .spawn(move || run(&s, &event_logs, &dead))?;
        Ok(Mirror {
            shared,
            thread: Some(thread),
        })
    }

    /// Submits rows (encoded by the caller, see
    /// [`EventLogStore::encode_row`]) and dead letters; the future resolves
    /// once both stores are flushed.
    pub fn submit(&self, rows: Vec<EncodedRow>, dead: Vec<DeadLetterEntry>) -> MirrorPending {
        use futures::FutureExt;
        if rows.is_empty() && dead.is_empty() {
            return futures::future::ready(Ok(MirrorAck::default())).boxed();
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut intake = self.shared.intake();
            if intake.closed {
                return futures::future::ready(Err(MirrorError::Closed)).boxed();
            }
            intake.work.push(Work {
                rows,
                dead,
                done: tx,
            });
        }
        self.shared.cv.notify_one();
        rx.map(|r| r.unwrap_or(Err(MirrorError::Closed))).boxed()
    }

    /// Writes what was submitted, then stops the thread.
    pub fn close(&mut self) {
        self.shared.intake().closed = true;
        self.shared.cv.notify_all();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the event_logs mirror thread panicked");
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(shared: &Shared, event_logs: &EventLogStore, dead: &DeadLetterStore) {
    loop {
        let work = {
            let mut intake = shared.intake();
            while intake.work.is_empty() && !intake.closed {
                intake = shared.cv.wait(intake).unwrap_or_else(|e| e.into_inner());
            }
            if intake.work.is_empty() {
                return;
            }
            std::mem::take(&mut intake.work)
        };
        let started = Instant::now();
        let result = commit(&work, event_logs, dead);
        metrics::histogram!(COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        match result {
            Ok(per_work) => {
                for (w, ack) in work.into_iter().zip(per_work) {
                    let _ = w.done.send(Ok(ack));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "event_logs mirror commit failed");
                for w in work {
                    let _ = w.done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One `event_logs` commit for every submitter's rows, one sled batch per
/// submitter's dead letters and one flush. Duplicates are attributed to the
/// submitter whose rows they were.
fn commit(
    work: &[Work],
    event_logs: &EventLogStore,
    dead: &DeadLetterStore,
) -> Result<Vec<MirrorAck>, MirrorError> {
    let mut acks = vec![MirrorAck::default(); work.len()];
    let groups: Vec<&[EncodedRow]> = work.iter().map(|w| w.rows.as_slice()).collect();
    let rows_written = groups.iter().any(|g| !g.is_empty());
    if rows_written {
        let outs = event_logs.insert_encoded_groups(&groups)?;
        for (ack, out) in acks.iter_mut().zip(outs) {
            ack.inserted = out.inserted;
            ack.duplicates = out.duplicates;
        }
    }
    let mut dead_written = false;
    for (w, ack) in work.iter().zip(acks.iter_mut()) {
        if !w.dead.is_empty() {
            dead.put_batch(&w.dead)?;
            ack.dead_lettered = w.dead.len() as u64;
            dead_written = true;
        }
    }
    if rows_written {
        event_logs.flush()?;
    }
    if dead_written {
        dead.flush()?;
    }
    Ok(acks)
}
