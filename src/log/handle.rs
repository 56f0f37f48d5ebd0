//! [`Log`]: the log as the queue sees it. It starts the three threads
//! (writer, syncer, completer), takes appends and barriers, and gives the
//! queue the shared [`LogState`].

use super::Batch;
use super::active::Active;
use super::completer::{self, Completions};
use super::error::AppendError;
use super::intake::{AppendAck, BarrierRequest, Intake, PendingAppend, Request};
use super::state::LogState;
use super::syncer::{self, SyncQueue};
use super::writer::WriterThread;
use crate::ids::RecordId;
use futures::channel::oneshot;
use std::sync::Arc;
use std::thread::JoinHandle;

/// What the threads share: the log's state and the three queues between
/// callers, writer, syncer and completer.
pub(super) struct Shared {
    pub state: LogState,
    /// Callers → writer.
    pub intake: Intake,
    /// Writer → syncer.
    pub sync: SyncQueue,
    /// Syncer → completer.
    pub done: Completions,
}

/// The running log: its state and its threads.
pub(crate) struct Log {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.shared.state.dir())
            .finish_non_exhaustive()
    }
}

impl Log {
    /// Starts the threads, appending to `active` from record `next_id`. If
    /// a thread cannot be started, those already running are stopped.
    pub fn start(state: LogState, active: Active, next_id: RecordId) -> std::io::Result<Log> {
        let shared = Arc::new(Shared {
            state,
            intake: Intake::default(),
            sync: SyncQueue::default(),
            done: Completions::default(),
        });
        let mut log = Log {
            shared,
            threads: Vec::with_capacity(3),
        };
        let s = log.shared.clone();
        log.threads.push(
            std::thread::Builder::new()
                .name("telespool-writer".into())
                .spawn(move || WriterThread::new(s, active, next_id).run())?,
        );
        let s = log.shared.clone();
        log.threads.push(
            std::thread::Builder::new()
                .name("telespool-syncer".into())
                .spawn(move || {
                    syncer::run(&s);
                    s.done.close();
                })?,
        );
        let s = log.shared.clone();
        log.threads.push(
            std::thread::Builder::new()
                .name("telespool-acks".into())
                .spawn(move || completer::run(&s.done))?,
        );
        Ok(log)
    }

    /// The state shared with the threads.
    pub fn state(&self) -> &LogState {
        &self.shared.state
    }

    /// Submits a batch; the returned [`PendingAppend`] resolves once it is
    /// acknowledged under the sync policy.
    pub fn submit(&self, batch: Batch) -> PendingAppend {
        if let Some(e) = self.shared.state.poisoned() {
            return PendingAppend::ready(Err(e));
        }
        if batch.is_empty() {
            return PendingAppend::ready(Ok(AppendAck {
                first: RecordId(0),
                count: 0,
            }));
        }
        let bytes = batch.encoded_len();
        let (tx, rx) = oneshot::channel();
        let req = Request {
            batch,
            bytes,
            done: tx,
        };
        match self.shared.intake.push(&self.shared.state, req) {
            Ok(()) => PendingAppend::waiting(rx),
            Err(e) => PendingAppend::ready(Err(e)),
        }
    }

    /// Seals the active segment now (if it holds records) and waits until
    /// the seal is durable.
    pub fn roll(&self) -> Result<(), AppendError> {
        self.barrier(true)
    }

    /// Waits until everything submitted before the call is durable (and
    /// visible), whatever the sync policy's timer says.
    pub fn sync(&self) -> Result<(), AppendError> {
        self.barrier(false)
    }

    fn barrier(&self, roll: bool) -> Result<(), AppendError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .intake
            .push_barrier(BarrierRequest { roll, done: tx })?;
        futures::executor::block_on(rx).unwrap_or(Err(AppendError::Closed))
    }

    /// Asks the writer to roll the active segment if it is past its age.
    pub fn check_age(&self) {
        self.shared.intake.request_age_check();
    }

    /// Stops intake, writes and syncs what was accepted, joins the threads.
    pub fn close(&mut self) {
        self.shared.intake.close();
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a queue writer thread panicked");
            }
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.close();
    }
}
