//! The intake: where callers leave batches and barriers for the writer
//! thread, and what they get back ([`PendingAppend`], [`AppendAck`]).
//!
//! A submitter takes the intake lock only to push its request, and pays for
//! a futex wake only when the writer is blocked waiting for work: under
//! load the writer finds the next group already queued when it comes back.

use super::Batch;
use super::error::AppendError;
use super::state::LogState;
use crate::ids::RecordId;
use futures::channel::oneshot;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The ids an append was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendAck {
    /// The first record's id.
    pub first: RecordId,
    /// How many records (ids `first .. first + count`).
    pub count: u64,
}

impl AppendAck {
    /// The last record's id (`first - 1` when empty).
    pub fn last(&self) -> RecordId {
        RecordId((self.first.0 + self.count).saturating_sub(1))
    }

    /// Every id, in order.
    pub fn ids(&self) -> impl Iterator<Item = RecordId> + use<> {
        let first = self.first.0;
        (first..first + self.count).map(RecordId)
    }
}

/// Where an append's outcome is sent.
pub(super) type Done = oneshot::Sender<Result<AppendAck, AppendError>>;

/// A submitted append; resolves when the append is acknowledged.
#[derive(Debug)]
pub struct PendingAppend {
    rx: Option<oneshot::Receiver<Result<AppendAck, AppendError>>>,
    ready: Option<Result<AppendAck, AppendError>>,
}

impl PendingAppend {
    /// An append answered without reaching the writer.
    pub(super) fn ready(r: Result<AppendAck, AppendError>) -> PendingAppend {
        PendingAppend {
            rx: None,
            ready: Some(r),
        }
    }

    /// An append the writer will answer on `rx`.
    pub(super) fn waiting(rx: oneshot::Receiver<Result<AppendAck, AppendError>>) -> PendingAppend {
        PendingAppend {
            rx: Some(rx),
            ready: None,
        }
    }

    /// Blocks the thread until the append is acknowledged.
    pub fn wait(self) -> Result<AppendAck, AppendError> {
        futures::executor::block_on(self)
    }
}

impl std::future::Future for PendingAppend {
    type Output = Result<AppendAck, AppendError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if let Some(r) = self.ready.take() {
            return std::task::Poll::Ready(r);
        }
        match self.rx.as_mut() {
            None => std::task::Poll::Ready(Err(AppendError::Closed)),
            Some(rx) => std::pin::Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(AppendError::Closed))),
        }
    }
}

/// One submitted batch.
pub(super) struct Request {
    pub batch: Batch,
    /// Bytes it takes in a segment, frames included.
    pub bytes: u64,
    pub done: Done,
}

/// A caller waiting until everything submitted before it is durable,
/// optionally after a roll.
pub(super) struct BarrierRequest {
    pub roll: bool,
    pub done: oneshot::Sender<Result<(), AppendError>>,
}

/// What the writer takes from the intake in one turn.
pub(super) struct Taken {
    pub requests: Vec<Request>,
    pub barriers: Vec<BarrierRequest>,
    /// The active segment's age should be checked.
    pub check_age: bool,
    /// No more requests will come.
    pub closed: bool,
}

#[derive(Default)]
struct Inbox {
    /// The writer thread is blocked on the condvar: only then does a
    /// submitter pay for a futex wake.
    waiting: bool,
    requests: Vec<Request>,
    barriers: Vec<BarrierRequest>,
    check_age: bool,
    closed: bool,
}

impl Inbox {
    fn has_work(&self) -> bool {
        !self.requests.is_empty() || !self.barriers.is_empty() || self.check_age || self.closed
    }
}

/// The queue between submitters and the writer thread.
#[derive(Default)]
pub(super) struct Intake {
    inbox: Mutex<Inbox>,
    cv: Condvar,
}

impl Intake {
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a batch; its bytes count as pending for the quota from now
    /// on. Fails (and drops `req`) once the intake is closed.
    pub fn push(&self, state: &LogState, req: Request) -> Result<(), AppendError> {
        let wake = {
            let mut inbox = self.lock();
            if inbox.closed {
                return Err(AppendError::Closed);
            }
            state.add_pending(req.bytes);
            inbox.requests.push(req);
            inbox.waiting
        };
        if wake {
            self.cv.notify_one();
        }
        Ok(())
    }

    /// Queues a barrier. Fails once the intake is closed.
    pub fn push_barrier(&self, barrier: BarrierRequest) -> Result<(), AppendError> {
        {
            let mut inbox = self.lock();
            if inbox.closed {
                return Err(AppendError::Closed);
            }
            inbox.barriers.push(barrier);
        }
        self.cv.notify_one();
        Ok(())
    }

    /// Asks the writer to check the active segment's age.
    pub fn request_age_check(&self) {
        self.lock().check_age = true;
        self.cv.notify_one();
    }

    /// Refuses further requests; the writer drains what was accepted.
    pub fn close(&self) {
        self.lock().closed = true;
        self.cv.notify_all();
    }

    /// Whether requests are queued.
    pub fn has_requests(&self) -> bool {
        !self.lock().requests.is_empty()
    }

    /// Waits for work and takes all of it (writer side). While the writer
    /// waits, `age_timeout` says how long until the active segment's age
    /// limit (`None`: no limit to wait for); when it passes, the turn
    /// checks the age.
    pub fn take(&self, age_timeout: impl Fn() -> Option<Duration>) -> Taken {
        let mut inbox = self.lock();
        while !inbox.has_work() {
            inbox.waiting = true;
            inbox = match age_timeout() {
                Some(t) => {
                    let (mut g, res) = self
                        .cv
                        .wait_timeout(inbox, t)
                        .unwrap_or_else(|e| e.into_inner());
                    if res.timed_out() {
                        g.check_age = true;
                    }
                    g
                }
                None => self.cv.wait(inbox).unwrap_or_else(|e| e.into_inner()),
            };
            inbox.waiting = false;
        }
        Taken {
            requests: std::mem::take(&mut inbox.requests),
            barriers: std::mem::take(&mut inbox.barriers),
            check_age: std::mem::replace(&mut inbox.check_age, false),
            closed: inbox.closed,
        }
    }
}
