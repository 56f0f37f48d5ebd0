//! The completer thread: delivers acknowledgements off the syncer thread,
//! so the syncer can start the next `fdatasync` instead of waking dozens of
//! callers one by one.

use super::error::AppendError;
use super::intake::{AppendAck, Done};
use futures::channel::oneshot;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Someone waiting for a job to be synced.
pub(super) enum Notify {
    /// An append, with the ids it was given.
    Append(Done, AppendAck),
    /// A barrier (a sync or a roll request).
    Barrier(oneshot::Sender<Result<(), AppendError>>),
}

impl Notify {
    /// Answers with success.
    pub fn ok(self) {
        let _ = match self {
            Notify::Append(tx, ack) => tx.send(Ok(ack)).is_ok(),
            Notify::Barrier(tx) => tx.send(Ok(())).is_ok(),
        };
    }

    /// Answers with `e`.
    pub fn err(self, e: &AppendError) {
        let _ = match self {
            Notify::Append(tx, _) => tx.send(Err(e.clone())).is_ok(),
            Notify::Barrier(tx) => tx.send(Err(e.clone())).is_ok(),
        };
    }

    /// Records this answer acknowledges as durable.
    pub fn records(&self) -> u64 {
        match self {
            Notify::Append(_, ack) => ack.count,
            Notify::Barrier(_) => 0,
        }
    }
}

#[derive(Default)]
struct Batches {
    waiting: bool,
    closed: bool,
    batches: Vec<(Vec<Notify>, Option<AppendError>)>,
}

/// Acknowledgements waiting to be delivered by the completer thread.
#[derive(Default)]
pub(super) struct Completions {
    batches: Mutex<Batches>,
    cv: Condvar,
}

impl Completions {
    fn lock(&self) -> MutexGuard<'_, Batches> {
        self.batches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands answers to the completer: success, or `err` for all of them.
    pub fn complete(&self, notify: Vec<Notify>, err: Option<AppendError>) {
        if notify.is_empty() {
            return;
        }
        let wake = {
            let mut d = self.lock();
            d.batches.push((notify, err));
            d.waiting
        };
        if wake {
            self.cv.notify_one();
        }
    }

    /// No more answers will come; the completer ends once it delivered the
    /// rest.
    pub fn close(&self) {
        self.lock().closed = true;
        self.cv.notify_all();
    }
}

/// The completer thread's loop.
pub(super) fn run(done: &Completions) {
    loop {
        let batches = {
            let mut d = done.lock();
            while d.batches.is_empty() && !d.closed {
                d.waiting = true;
                d = done.cv.wait(d).unwrap_or_else(|e| e.into_inner());
                d.waiting = false;
            }
            if d.batches.is_empty() {
                return;
            }
            std::mem::take(&mut d.batches)
        };
        for (notify, err) in batches {
            match err {
                None => notify.into_iter().for_each(Notify::ok),
                Some(e) => notify.into_iter().for_each(|n| n.err(&e)),
            }
        }
    }
}
