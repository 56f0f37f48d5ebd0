//! The writer thread: group commit's first half.
//!
//! ```text
//!  callers ──submit(batch)──▶ intake ──▶ writer thread ──pwrite──▶ active segment
//!     ▲                                   │ (ids, frames, roll)
//!     │                                   ▼ job
//!     │                             syncer thread ──fdatasync──▶ (durable; visible to readers)
//!     │                                   │ answers
//!     └──── ack (oneshot) ◀──── completer thread
//! ```
//!
//! The writer takes every batch that arrived since its last turn, gives the
//! records their ids, encodes them into one buffer and writes it with one
//! `pwrite` ([`Active::append`]), then hands the group to the syncer as a
//! [`Job`] and goes straight back to the intake: the next group is written
//! while the last one syncs. It also rolls the active segment (size, age,
//! or on request) and answers barriers through the sync queue. Completions
//! are `futures` oneshots, so blocking callers and async callers wait the
//! same way and nothing here depends on a runtime.

use super::SyncPolicy;
use super::active::Active;
use super::completer::Notify;
use super::error::{AppendError, CreateError, PoisonCause};
use super::handle::Shared;
use super::intake::{AppendAck, Request};
use super::record;
use super::segment::{self, HEADER_LEN, Header, SPARSE_EVERY};
use super::syncer::Job;
use super::table::Entry;
use crate::ids::{RecordId, SegmentId};
use futures::channel::oneshot;
use std::sync::Arc;
use std::time::Duration;

/// Metric: failed segment writes.
pub const WRITE_ERRORS: &str = "telespool_queue_write_errors_total";

/// The writer's buffer is given back to the allocator when a group made it
/// larger than this.
const MAX_KEPT_BUFFER: usize = 16 * 1024 * 1024;

/// The writer thread's state.
pub(super) struct WriterThread {
    shared: Arc<Shared>,
    active: Active,
    next_id: RecordId,
    /// The group being encoded.
    buf: Vec<u8>,
    /// Zero bytes for preallocation.
    zeros: Vec<u8>,
}

/// A group being encoded into the writer's buffer.
struct Group {
    first_id: RecordId,
    done: Vec<Notify>,
    sparse: Vec<(RecordId, u64)>,
    last: Option<RecordId>,
}

impl Group {
    fn new(first_id: RecordId) -> Group {
        Group {
            first_id,
            done: Vec::new(),
            sparse: Vec::new(),
            last: None,
        }
    }
}

impl WriterThread {
    /// A writer appending to `active` from record `next_id`.
    pub fn new(shared: Arc<Shared>, active: Active, next_id: RecordId) -> WriterThread {
        WriterThread {
            shared,
            active,
            next_id,
            buf: Vec::new(),
            zeros: Vec::new(),
        }
    }

    /// Runs until the intake is closed and drained, then cuts off the
    /// active segment's preallocated space and closes the sync queue.
    pub fn run(mut self) {
        loop {
            self.wait_for_syncer();
            let taken = self.shared.intake.take(|| self.age_timeout());
            if taken.check_age
                && self.age_due()
                && let Err(e) = self.roll()
            {
                tracing::warn!(error = %e, "age-based segment roll failed");
            }
            self.write_requests(taken.requests);
            for b in taken.barriers {
                let r = if b.roll && self.active.records() > 0 {
                    self.roll()
                } else {
                    Ok(())
                };
                // Answered through the sync queue: once the syncer reaches
                // the marker, everything before it is durable.
                self.answer_after_sync(b.done, r);
            }
            if taken.closed && !self.shared.intake.has_requests() {
                break;
            }
        }
        if self.active.has_slack() {
            self.shared.sync.push(Job::trim_at_close(&self.active));
        }
        self.shared.sync.close();
    }

    /// Under `always`, a group written while the syncer is busy cannot be
    /// synced before the sync in progress ends anyway: rather than write
    /// more small groups behind it, wait until the syncer takes the queued
    /// one, so that everything arriving meanwhile forms one large group
    /// (one write, one sync, many acknowledgements). At most one group
    /// waits behind the sync in progress.
    fn wait_for_syncer(&self) {
        if self.shared.state.policy() == SyncPolicy::Always {
            self.shared.sync.wait_until_taken();
        }
    }

    /// How long the writer may wait for work before the active segment
    /// reaches its age limit (`None` while it is empty: no limit applies).
    fn age_timeout(&self) -> Option<Duration> {
        if self.active.records() == 0 {
            return None;
        }
        let state = &self.shared.state;
        let age = self.active.age(state.now());
        Some(
            state
                .segment_age()
                .saturating_sub(age)
                .max(Duration::from_millis(10)),
        )
    }

    fn age_due(&self) -> bool {
        let state = &self.shared.state;
        self.active.records() > 0 && self.active.age(state.now()) >= state.segment_age()
    }

    /// Answers a barrier once everything written so far (the seal of the
    /// old segment included) is synced.
    fn answer_after_sync(
        &self,
        tx: oneshot::Sender<Result<(), AppendError>>,
        r: Result<(), AppendError>,
    ) {
        if let Err(e) = r {
            let _ = tx.send(Err(e));
            return;
        }
        self.shared.sync.push(Job::barrier(&self.active, tx));
    }

    fn write_requests(&mut self, requests: Vec<Request>) {
        if !requests.is_empty()
            && self.age_due()
            && let Err(e) = self.roll()
        {
            tracing::warn!(error = %e, "age-based segment roll failed");
        }
        let mut group = Group::new(self.next_id);
        let mut requests = requests.into_iter();
        while let Some(req) = requests.next() {
            if let Some(e) = self.shared.state.poisoned() {
                self.fail(req, &e);
                continue;
            }
            let fits = self.active.len() + self.buf.len() as u64 + req.bytes
                <= self.shared.state.segment_bytes();
            if !fits && (self.active.records() > 0 || !self.buf.is_empty()) {
                if let Err(e) = self.write_group(&mut group) {
                    self.fail(req, &e);
                    for r in requests.by_ref() {
                        self.fail(r, &e);
                    }
                    return;
                }
                if let Err(e) = self.roll() {
                    self.fail(req, &e);
                    continue;
                }
            }
            self.encode(req, &mut group);
        }
        if let Err(e) = self.write_group(&mut group) {
            tracing::warn!(error = %e, "append group failed");
        }
    }

    fn fail(&self, req: Request, e: &AppendError) {
        self.shared.state.drop_pending(req.bytes);
        let _ = req.done.send(Err(e.clone()));
    }

    /// Gives the request's records their ids and encodes their frames into
    /// the buffer.
    fn encode(&mut self, req: Request, group: &mut Group) {
        let now = self.shared.state.now();
        let first = self.next_id;
        for event in req.batch.iter() {
            let id = self.next_id;
            if (id.0 - self.active.first_id().0).is_multiple_of(SPARSE_EVERY) {
                group
                    .sparse
                    .push((id, self.active.len() + self.buf.len() as u64));
            }
            record::encode(&mut self.buf, id, now, event);
            self.next_id = id.next();
        }
        let count = req.batch.len() as u64;
        group.last = Some(self.next_id.prev());
        group
            .done
            .push(Notify::Append(req.done, AppendAck { first, count }));
    }

    /// Writes the buffered group and hands it to the syncer. On failure the
    /// file is cut back, the group's callers fail and its ids are reused.
    fn write_group(&mut self, group: &mut Group) -> Result<(), AppendError> {
        let g = std::mem::replace(group, Group::new(self.next_id));
        if self.buf.is_empty() {
            return Ok(());
        }
        let added = self.buf.len() as u64;
        let result = self.active.append(&self.buf, self.next_id.0 - g.first_id.0);
        self.buf.clear();
        if self.buf.capacity() > MAX_KEPT_BUFFER {
            self.buf = Vec::new();
        }
        let state = &self.shared.state;
        match result {
            Ok(()) => {
                self.active
                    .preallocate(state.policy(), state.segment_bytes(), &mut self.zeros);
                let mut done = g.done;
                if matches!(state.policy(), SyncPolicy::Interval(_)) {
                    // Acknowledged once written; the syncer makes it durable
                    // (and visible) on its timer.
                    done.drain(..).for_each(Notify::ok);
                }
                self.shared
                    .sync
                    .push(Job::group(&self.active, added, g.last, g.sparse, done));
                Ok(())
            }
            Err(write) => {
                let path = state.segment_path(self.active.id());
                tracing::warn!(path = %path.display(), error = %write, "segment write failed; cutting the file back");
                metrics::counter!(WRITE_ERRORS).increment(1);
                let err = match self.active.cut_back() {
                    Ok(()) => AppendError::from_io(path, write),
                    Err(source) => state.poison(PoisonCause::CutBack {
                        path,
                        write,
                        source,
                    }),
                };
                state.drop_pending(added);
                for n in g.done {
                    n.err(&err);
                }
                self.next_id = g.first_id;
                Err(err)
            }
        }
    }

    /// Seals the active segment and starts a new one.
    fn roll(&mut self) -> Result<(), AppendError> {
        let shared = &*self.shared;
        let state = &shared.state;
        if let Some(e) = state.poisoned() {
            return Err(e);
        }
        let header = Header {
            segment: SegmentId(self.active.id().0 + 1),
            first_id: self.next_id,
            created: state.now(),
        };
        let _span = tracing::info_span!("roll", sealed = %self.active.id(), new = %header.segment)
            .entered();
        let durable = state.policy() != SyncPolicy::Never;
        let file = segment::create(state.storage(), state.dir(), &header, durable).map_err(
            |e| match e {
                CreateError::Create { path, source }
                | CreateError::WriteHeader { path, source } => AppendError::from_io(path, source),
                CreateError::Sync { path, source } => {
                    state.poison(PoisonCause::SyncNewSegment { path, source })
                }
                CreateError::SyncDir { dir, source } => {
                    state.poison(PoisonCause::SyncDir { dir, source })
                }
            },
        )?;
        shared.sync.push(Job::seal(&self.active));
        {
            let mut t = state.table();
            t.insert(Entry::created(&header, file.clone()));
            t.set_active(header.segment);
            state.add_disk_bytes(HEADER_LEN as u64);
        }
        tracing::info!(segment = %header.segment, first_record = %self.next_id, "rolled a new segment");
        self.active = Active::created(&header, file);
        Ok(())
    }
}
