//! The syncer thread: makes written groups durable and visible.
//!
//! It takes every group ([`Job`]) that queued up behind its last sync,
//! covers them with one `fdatasync` per file, publishes them in the segment
//! table (lengths, last ids, sparse offsets, seals) and hands their
//! acknowledgements to the completer. The first failed fsync poisons the
//! log: the jobs it covered fail, and so does every later one.

use super::SyncPolicy;
use super::active::Active;
use super::completer::Notify;
use super::error::{AppendError, PoisonCause};
use super::handle::Shared;
use super::state::LogState;
use crate::ids::{RecordId, SegmentId};
use crate::storage::StorageFile;
use futures::channel::oneshot;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Metric: records made durable.
pub const APPENDED_RECORDS: &str = "telespool_queue_appended_records_total";
/// Metric: fdatasync time of one group commit.
pub const FSYNC_SECONDS: &str = "telespool_queue_fsync_seconds";

/// A written group (or a marker) for the syncer.
pub(super) struct Job {
    segment: SegmentId,
    file: Arc<dyn StorageFile>,
    /// File length after this group.
    end: u64,
    /// Bytes this group added.
    added: u64,
    /// The group's last record.
    last: Option<RecordId>,
    sparse: Vec<(RecordId, u64)>,
    done: Vec<Notify>,
    /// Seal the segment once synced.
    seal: bool,
    /// Cut the file to `end` (dropping preallocated space) before syncing:
    /// on seal and at close.
    trim: bool,
    /// Sync now, even under an interval policy.
    force: bool,
}

impl Job {
    /// A marker at the active segment's current end, adding nothing.
    fn at(active: &Active) -> Job {
        Job {
            segment: active.id(),
            file: active.file().clone(),
            end: active.len(),
            added: 0,
            last: None,
            sparse: Vec::new(),
            done: Vec::new(),
            seal: false,
            trim: false,
            force: false,
        }
    }

    /// A group just written to the active segment: `added` bytes, its last
    /// record, its sparse offsets, and the callers to acknowledge.
    pub fn group(
        active: &Active,
        added: u64,
        last: Option<RecordId>,
        sparse: Vec<(RecordId, u64)>,
        done: Vec<Notify>,
    ) -> Job {
        Job {
            added,
            last,
            sparse,
            done,
            ..Job::at(active)
        }
    }

    /// Seals the active segment (a roll replaces it), cutting off its
    /// preallocated space.
    pub fn seal(active: &Active) -> Job {
        Job {
            seal: true,
            trim: true,
            ..Job::at(active)
        }
    }

    /// Answers a barrier once everything queued before it is synced.
    pub fn barrier(active: &Active, done: oneshot::Sender<Result<(), AppendError>>) -> Job {
        Job {
            done: vec![Notify::Barrier(done)],
            force: true,
            ..Job::at(active)
        }
    }

    /// Cuts off the active segment's preallocated space at close.
    pub fn trim_at_close(active: &Active) -> Job {
        Job {
            trim: true,
            force: true,
            ..Job::at(active)
        }
    }
}

#[derive(Default)]
struct Jobs {
    /// The syncer is blocked on the condvar.
    waiting: bool,
    /// The writer waits for the syncer to take the queued groups.
    writer_waiting: bool,
    jobs: VecDeque<Job>,
    closed: bool,
}

/// The queue between the writer thread and the syncer.
#[derive(Default)]
pub(super) struct SyncQueue {
    jobs: Mutex<Jobs>,
    cv: Condvar,
    /// Signalled when the syncer takes the queued groups.
    taken_cv: Condvar,
}

impl SyncQueue {
    fn lock(&self) -> MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job (writer side).
    pub fn push(&self, job: Job) {
        let wake = {
            let mut q = self.lock();
            q.jobs.push_back(job);
            q.waiting
        };
        if wake {
            self.cv.notify_one();
        }
    }

    /// Blocks the writer until the syncer has taken the queued jobs (or
    /// the queue is closed).
    pub fn wait_until_taken(&self) {
        let mut q = self.lock();
        while !q.jobs.is_empty() && !q.closed {
            q.writer_waiting = true;
            q = self.taken_cv.wait(q).unwrap_or_else(|e| e.into_inner());
            q.writer_waiting = false;
        }
    }

    /// No more jobs will come; the syncer ends once it has synced the rest.
    pub fn close(&self) {
        self.lock().closed = true;
        self.cv.notify_all();
    }

    /// Waits for jobs and takes all of them; under an interval policy,
    /// waits until the interval since `last_sync` has passed unless a job
    /// forces a sync. `None` once closed and empty.
    fn take(&self, policy: SyncPolicy, last_sync: Instant) -> Option<Vec<Job>> {
        let mut q = self.lock();
        while q.jobs.is_empty() && !q.closed {
            q.waiting = true;
            q = self.cv.wait(q).unwrap_or_else(|e| e.into_inner());
            q.waiting = false;
        }
        if q.jobs.is_empty() {
            return None;
        }
        if let SyncPolicy::Interval(d) = policy {
            let due = last_sync + d;
            while !q.closed && Instant::now() < due && !q.jobs.iter().any(|j| j.force) {
                let left = due.saturating_duration_since(Instant::now());
                q.waiting = true;
                q = self
                    .cv
                    .wait_timeout(q, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                q.waiting = false;
            }
        }
        if q.writer_waiting {
            self.taken_cv.notify_one();
        }
        Some(q.jobs.drain(..).collect())
    }
}

/// The syncer thread's loop.
pub(super) fn run(shared: &Shared) {
    let state = &shared.state;
    let mut last_sync = Instant::now();
    while let Some(jobs) = shared.sync.take(state.policy(), last_sync) {
        let failed = if state.policy() == SyncPolicy::Never {
            None
        } else {
            sync_files(state, &jobs)
        };
        last_sync = Instant::now();
        match failed {
            Some(err) => {
                let mut notify = Vec::new();
                for job in jobs {
                    state.drop_pending(job.added);
                    notify.extend(job.done);
                }
                shared.done.complete(notify, Some(err));
            }
            None => {
                apply(state, &jobs);
                let notify: Vec<Notify> = jobs.into_iter().flat_map(|j| j.done).collect();
                let durable: u64 = notify.iter().map(Notify::records).sum();
                metrics::counter!(APPENDED_RECORDS).increment(durable);
                shared.done.complete(notify, None);
            }
        }
    }
}

/// One `fdatasync` per distinct file, in order. Returns the poison error if
/// one fails.
fn sync_files(state: &LogState, jobs: &[Job]) -> Option<AppendError> {
    if let Some(e) = state.poisoned() {
        return Some(e);
    }
    for job in jobs.iter().filter(|j| j.trim) {
        if let Err(e) = job.file.set_len(job.end) {
            // Harmless for correctness (recovery trims zeros) but the
            // segment keeps its preallocated space.
            tracing::warn!(segment = %job.segment, error = %e, "trimming preallocated space failed");
        }
    }
    for (i, job) in jobs.iter().enumerate() {
        // Sync each file once, at its last group.
        if jobs
            .get(i + 1..)
            .is_some_and(|later| later.iter().any(|j| j.segment == job.segment))
        {
            continue;
        }
        let started = Instant::now();
        let r = job.file.sync_data();
        metrics::histogram!(FSYNC_SECONDS).record(started.elapsed().as_secs_f64());
        if let Err(source) = r {
            return Some(state.poison(PoisonCause::Sync {
                path: state.segment_path(job.segment),
                source,
            }));
        }
    }
    None
}

/// Makes synced groups visible: lengths, last ids, sparse offsets, seals.
fn apply(state: &LogState, jobs: &[Job]) {
    let now = state.now();
    let mut t = state.table();
    let mut added_total = 0;
    for job in jobs {
        added_total += job.added;
        t.made_durable(job.segment, job.end, job.last, &job.sparse);
        if job.seal {
            t.seal(job.segment, now);
        }
    }
    drop(t);
    state.pending_made_durable(added_total);
}
