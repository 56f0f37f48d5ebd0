//! Group commit for the record path's sled writes: `event_logs` rows and
//! ingest dead letters.
//!
//! sled's flush costs about as much for one row as for a thousand, so the
//! work is grouped, and pipelined like the queue's writer and syncer:
//!
//! ```text
//!  submit ──▶ intake ──▶ inserter thread ──▶ flusher thread ──▶ answers
//!                        (sled inserts,      (one flush per store
//!                         one call per        for every group queued
//!                         submitter)          behind the last one)
//! ```
//!
//! The inserter takes everything submitted since its last turn and writes
//! it (one insert call per submitter, so each learns its own duplicates),
//! then hands the group to the flusher and goes back to the intake: the
//! next group is inserted while the last one flushes. A sled flush makes
//! durable everything written before it was called, so one flush covers
//! every group handed over before it started. The flusher answers every
//! submitter (a `futures` oneshot, like the queue's writer). A record call
//! waits for this and for the queue's group commit, which run side by
//! side. Under a paced 50,000 events/s the single thread that did both was
//! busy ~80% of the time, and payloads waited behind it
//! (docs/benchmarks.md, "Ingest").
//!
//! The rows arrive encoded ([`EventLogStore::encode_row`], run by
//! [`super::store::Tee::prepare`] on the callers' threads): this thread only
//! writes them, which is what keeps it from being the record path's
//! ceiling (docs/benchmarks.md, "Mirror").

use crate::deadletter::{DeadLetterEntry, DeadLetterStore};
use crate::event_logs::store::{EncodedRow, EventLogStore};
use futures::channel::oneshot;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

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

/// Why a mirror commit failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum MirrorError {
    /// The event_logs store failed.
    #[error("event_logs store: {0}")]
    EventLogs(String),
    /// The dead-letter store failed.
    #[error("dead-letter store: {0}")]
    DeadLetter(String),
    /// The mirror is closed.
    #[error("the event_logs mirror is closed")]
    Closed,
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

/// A group written by the inserter, waiting for the flusher.
struct Inserted {
    /// When the inserter took the group: its commit time runs from here
    /// to the end of the flush that covers it.
    started: Instant,
    answers: Vec<(oneshot::Sender<Result<MirrorAck, MirrorError>>, MirrorAck)>,
    rows: bool,
    dead: bool,
}

#[derive(Default)]
struct Flushes {
    groups: Vec<Inserted>,
    closed: bool,
}

struct Shared {
    intake: Mutex<Intake>,
    cv: Condvar,
    flushes: Mutex<Flushes>,
    flush_cv: Condvar,
}

impl Shared {
    fn intake(&self) -> MutexGuard<'_, Intake> {
        self.intake.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn flushes(&self) -> MutexGuard<'_, Flushes> {
        self.flushes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The mirror's inserter and flusher threads.
pub struct Mirror {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
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
            flushes: Mutex::new(Flushes::default()),
            flush_cv: Condvar::new(),
        });
        let (s, rows, letters) = (shared.clone(), event_logs.clone(), dead.clone());
        let flusher = std::thread::Builder::new()
            .name("telespool-mflush".into())
            .spawn(move || flusher(&s, &rows, &letters))?;
        let s = shared.clone();
        let inserter = std::thread::Builder::new()
            .name("telespool-mirror".into())
            .spawn(move || inserter(&s, &event_logs, &dead));
        let inserter = match inserter {
            Ok(t) => t,
            Err(e) => {
                shared.flushes().closed = true;
                shared.flush_cv.notify_all();
                let _ = flusher.join();
                return Err(e);
            }
        };
        Ok(Mirror {
            shared,
            threads: vec![inserter, flusher],
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
        // The inserter closes the flusher's queue once it has handed over
        // its last group; joined in that order.
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("an event_logs mirror thread panicked");
            }
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.close();
    }
}

fn inserter(shared: &Shared, event_logs: &EventLogStore, dead: &DeadLetterStore) {
    loop {
        let work = {
            let mut intake = shared.intake();
            while intake.work.is_empty() && !intake.closed {
                intake = shared.cv.wait(intake).unwrap_or_else(|e| e.into_inner());
            }
            if intake.work.is_empty() {
                break;
            }
            std::mem::take(&mut intake.work)
        };
        let started = Instant::now();
        match insert(&work, event_logs, dead) {
            Ok(acks) => {
                let rows = work.iter().any(|w| !w.rows.is_empty());
                let dead = work.iter().any(|w| !w.dead.is_empty());
                let answers = work.into_iter().map(|w| w.done).zip(acks).collect();
                shared.flushes().groups.push(Inserted {
                    started,
                    answers,
                    rows,
                    dead,
                });
                shared.flush_cv.notify_one();
            }
            Err(e) => {
                tracing::error!(error = %e, "event_logs mirror commit failed");
                for w in work {
                    let _ = w.done.send(Err(e.clone()));
                }
            }
        }
    }
    shared.flushes().closed = true;
    shared.flush_cv.notify_one();
}

fn flusher(shared: &Shared, event_logs: &EventLogStore, dead: &DeadLetterStore) {
    loop {
        let groups = {
            let mut f = shared.flushes();
            while f.groups.is_empty() && !f.closed {
                f = shared.flush_cv.wait(f).unwrap_or_else(|e| e.into_inner());
            }
            if f.groups.is_empty() {
                return;
            }
            std::mem::take(&mut f.groups)
        };
        let rows = groups.iter().any(|g| g.rows);
        let letters = groups.iter().any(|g| g.dead);
        let result = flush(rows, letters, event_logs, dead);
        if let Err(e) = &result {
            tracing::error!(error = %e, "event_logs mirror flush failed");
        }
        for g in groups {
            metrics::histogram!("telespool_mirror_commit_seconds")
                .record(g.started.elapsed().as_secs_f64());
            for (done, ack) in g.answers {
                let _ = done.send(result.clone().map(|()| ack));
            }
        }
    }
}

/// Writes each submitter's rows and dead letters (one insert call each,
/// so duplicates are attributed to the submitter whose rows they were).
fn insert(
    work: &[Work],
    event_logs: &EventLogStore,
    dead: &DeadLetterStore,
) -> Result<Vec<MirrorAck>, MirrorError> {
    let mut acks = Vec::with_capacity(work.len());
    for w in work {
        let mut ack = MirrorAck::default();
        if !w.rows.is_empty() {
            let out = event_logs
                .insert_encoded(&w.rows)
                .map_err(|e| MirrorError::EventLogs(e.to_string()))?;
            ack.inserted = out.inserted;
            ack.duplicates = out.duplicates;
        }
        if !w.dead.is_empty() {
            dead.put_batch(&w.dead)
                .map_err(|e| MirrorError::DeadLetter(e.to_string()))?;
            ack.dead_lettered = w.dead.len() as u64;
        }
        acks.push(ack);
    }
    Ok(acks)
}

/// One flush per store written to.
fn flush(
    rows: bool,
    letters: bool,
    event_logs: &EventLogStore,
    dead: &DeadLetterStore,
) -> Result<(), MirrorError> {
    if rows {
        event_logs
            .flush()
            .map_err(|e| MirrorError::EventLogs(e.to_string()))?;
    }
    if letters {
        dead.flush()
            .map_err(|e| MirrorError::DeadLetter(e.to_string()))?;
    }
    Ok(())
}
