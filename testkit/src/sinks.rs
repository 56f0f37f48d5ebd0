//! Test sinks behind the `Sink` trait: one configurable in-memory sink that
//! records messages and can fail, delay or report itself unhealthy.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use telespool::gateway::sink::{Message, PublishResult, Sink, SinkError};
use tokio::sync::Notify;

/// How the test sink fails a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Retryable (like a NATS timeout).
    Retryable,
    /// Permanent (like a header NATS cannot carry).
    Permanent,
}

#[derive(Default)]
pub struct MemorySink {
    /// Confirmed messages, in order.
    pub messages: Mutex<Vec<Message>>,
    /// Ids to fail, and how.
    pub fail: Mutex<Vec<(String, Failure)>>,
    /// Fail everything (retryable).
    pub fail_all: AtomicBool,
    /// Delay before answering a batch.
    pub delay: Mutex<Option<Duration>>,
    /// Largest batch seen.
    pub max_batch: AtomicUsize,
    /// Batches seen.
    pub batches: AtomicUsize,
    /// Notified when a batch arrives.
    pub batch_arrived: Notify,
    /// Health answer.
    pub unhealthy: AtomicBool,
    /// Set by `close`.
    pub closed: AtomicBool,
}

impl MemorySink {
    pub fn new() -> Arc<MemorySink> {
        Arc::new(MemorySink::default())
    }

    pub fn failing(ids: &[(&str, Failure)]) -> Arc<MemorySink> {
        let sink = MemorySink::new();
        *sink.fail.lock().unwrap() = ids.iter().map(|(id, f)| ((*id).to_owned(), *f)).collect();
        sink
    }

    pub fn slow(delay: Duration) -> Arc<MemorySink> {
        let sink = MemorySink::new();
        *sink.delay.lock().unwrap() = Some(delay);
        sink
    }

    pub fn ids(&self) -> BTreeSet<String> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.id.clone())
            .collect()
    }

    pub fn message(&self, id: &str) -> Option<Message> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .find(|m| m.id == id)
            .cloned()
    }

    fn failure(&self, id: &str) -> Option<Failure> {
        if self.fail_all.load(Ordering::SeqCst) {
            return Some(Failure::Retryable);
        }
        self.fail
            .lock()
            .unwrap()
            .iter()
            .find(|(f, _)| f == id)
            .map(|(_, f)| *f)
    }
}

impl Sink for MemorySink {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn publish(&self, batch: Vec<Message>) -> BoxFuture<'_, Vec<PublishResult>> {
        async move {
            self.batches.fetch_add(1, Ordering::SeqCst);
            self.max_batch.fetch_max(batch.len(), Ordering::SeqCst);
            self.batch_arrived.notify_waiters();
            let delay = *self.delay.lock().unwrap();
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let mut results = Vec::new();
            for message in batch {
                match self.failure(&message.id) {
                    None => {
                        self.messages.lock().unwrap().push(message);
                        results.push(Ok(()));
                    }
                    Some(Failure::Retryable) => results.push(Err(SinkError::NotConnected {
                        url: "memory://test".to_owned(),
                    })),
                    Some(Failure::Permanent) => results.push(Err(SinkError::BadAttribute {
                        name: "test".to_owned(),
                        reason: "refused by the test sink",
                    })),
                }
            }
            results
        }
        .boxed()
    }

    fn health(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        async move {
            if self.unhealthy.load(Ordering::SeqCst) {
                Err(SinkError::NotConnected {
                    url: "memory://test".to_owned(),
                })
            } else {
                Ok(())
            }
        }
        .boxed()
    }

    fn close(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        async move {
            self.closed.store(true, Ordering::SeqCst);
            Ok(())
        }
        .boxed()
    }
}
