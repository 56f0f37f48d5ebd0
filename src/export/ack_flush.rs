//! Acknowledgements made durable promptly: a group commit of resolutions.
//!
//! The gateway's answers resolve records in the queue's in-memory table;
//! they reach the index (sled) on a flush. Flushing only after each round
//! and on the one-second maintenance tick meant a `kill -9` forgot up to a
//! second of answers (more during a long round), and the next start sent
//! those events again. Here every resolution wakes the flusher task, which
//! waits [`ACK_FLUSH_DELAY`] for more answers to share the flush, then
//! flushes the index from a blocking thread: an answer is durable within
//! about that delay plus one flush, and a busy exporter flushes at most
//! ~1/[`ACK_FLUSH_DELAY`] times a second whatever its rate.
//!
//! A flush that fails is logged; the changes stay dirty and go with the
//! next one (see [`Queue::flush_index`]).

use crate::queue::Queue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How long the flusher waits after a resolution for others to share its
/// flush.
pub const ACK_FLUSH_DELAY: Duration = Duration::from_millis(20);

/// Metric: index flushes made by the acknowledgement flusher.
pub const ACK_FLUSHES: &str = "telespool_export_ack_flushes_total";

/// Flushes `queue`'s index after each wake-up on `resolved` (after
/// `delay`), until `stop` turns true.
pub async fn run(
    queue: Arc<Queue>,
    resolved: Arc<Notify>,
    delay: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = resolved.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        tokio::time::sleep(delay).await;
        let q = queue.clone();
        match tokio::task::spawn_blocking(move || q.flush_index()).await {
            Ok(Ok(())) => metrics::counter!(ACK_FLUSHES).increment(1),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "flushing acknowledgements to the index failed; retried with the next");
            }
            Err(e) => tracing::warn!(error = %e, "flushing acknowledgements to the index failed"),
        }
    }
}
