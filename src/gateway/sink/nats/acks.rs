//! How a publish ack finds its batch (see "How acks find their publish"
//! in the module docs of [`super`]): the pending map, the guard that
//! registers a batch in it, the router task and the ack parsers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_nats::StatusCode;
use futures::StreamExt;
use tokio::sync::oneshot;

use super::nats_error;
use crate::gateway::sink::{PublishResult, SinkError};

/// Acks the router takes from its subscription per lock of the pending map.
pub(super) const ACK_CHUNK: usize = 512;

/// One batch waiting for its acks.
#[derive(Debug)]
pub(super) struct PendingBatch {
    /// One slot per message of the batch; `None` until answered.
    pub(super) results: Vec<Option<PublishResult>>,
    /// Slots still `None`.
    pub(super) remaining: usize,
    /// Woken when `remaining` reaches 0.
    pub(super) done: Option<oneshot::Sender<()>>,
}

impl PendingBatch {
    /// Fills a slot once (a second answer for it is ignored); wakes the
    /// batch on the last one.
    pub(super) fn answer(&mut self, index: usize, result: PublishResult) {
        let Some(slot @ None) = self.results.get_mut(index) else {
            return;
        };
        *slot = Some(result);
        self.remaining = self.remaining.saturating_sub(1);
        if self.remaining == 0
            && let Some(done) = self.done.take()
        {
            let _ = done.send(());
        }
    }
}

/// Batches of one connection waiting for acks, by batch number.
pub(super) type Pending = Arc<Mutex<HashMap<u64, PendingBatch>>>;

pub(super) fn lock(pending: &Pending) -> MutexGuard<'_, HashMap<u64, PendingBatch>> {
    // A panic while holding the lock leaves plain data behind: keep going.
    pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes a batch's entry from the pending map when dropped, so a batch
/// that gives up (or whose task is cancelled) leaves nothing behind.
pub(super) struct Registered<'a> {
    pub(super) pending: &'a Pending,
    pub(super) batch: u64,
}

impl Registered<'_> {
    /// Records a failure for a message that was not sent.
    pub(super) fn fail(&self, index: usize, error: SinkError) {
        if let Some(batch) = lock(self.pending).get_mut(&self.batch) {
            batch.answer(index, Err(error));
        }
    }

    /// Takes the results (empty when the entry is already gone).
    pub(super) fn take(self) -> Vec<Option<PublishResult>> {
        lock(self.pending)
            .remove(&self.batch)
            .map(|b| b.results)
            .unwrap_or_default()
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.batch);
    }
}

/// Reads one message of the ack subscription: `Ok` for a PubAck (a
/// duplicate included), the server's description otherwise.
pub(super) fn ack_result(message: &async_nats::Message) -> PublishResult {
    if let Some(status) = message.status {
        if status == StatusCode::NO_RESPONDERS {
            return Err(nats_error(
                "publish ack",
                true,
                "no responders (the stream is missing)",
            ));
        }
        if !status.is_success() {
            let description = message.description.as_deref().unwrap_or("");
            return Err(nats_error(
                "publish ack",
                true,
                format!("status {status}: {description}"),
            ));
        }
    }
    parse_pub_ack(&message.payload).map_err(|reason| nats_error("publish ack", true, reason))
}

/// A PubAck body: `Ok` when it acknowledges the publish, else the reason.
///
/// JetStream writes `{"stream":…,"seq":…}` (with `"duplicate":true` for a
/// repeated id) or, when refusing, `{"error":{"code":…,"description":…}}`
/// with the error first; the common case is recognised by its first bytes.
pub fn parse_pub_ack(payload: &[u8]) -> Result<(), String> {
    if payload.starts_with(br#"{"stream":"#) {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    struct ApiError {
        code: Option<u64>,
        description: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct PubAck {
        error: Option<ApiError>,
        stream: Option<String>,
    }
    match serde_json::from_slice::<PubAck>(payload) {
        Ok(PubAck {
            error: Some(error), ..
        }) => Err(format!(
            "JetStream refused the publish ({}): {}",
            error.code.unwrap_or_default(),
            error.description.as_deref().unwrap_or("no description")
        )),
        Ok(PubAck {
            stream: Some(_), ..
        }) => Ok(()),
        Ok(_) => Err("a publish ack without stream or error".to_owned()),
        Err(e) => Err(format!("an unreadable publish ack: {e}")),
    }
}

/// `(batch, index)` of an ack subject `<inbox><batch>.<index>`.
pub(super) fn parse_reply(inbox: &str, subject: &str) -> Option<(u64, usize)> {
    let (batch, index) = subject.strip_prefix(inbox)?.split_once('.')?;
    Some((batch.parse().ok()?, index.parse().ok()?))
}

/// Appends `n` in decimal.
pub(super) fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    for &d in digits.get(at..).unwrap_or_default() {
        out.push(char::from(d));
    }
}

/// Moves each ack of a connection's subscription into its batch's slot.
pub(super) async fn route_acks(
    inbox: String,
    subscriber: async_nats::Subscriber,
    pending: Pending,
) {
    let mut chunks = subscriber.ready_chunks(ACK_CHUNK);
    while let Some(acks) = chunks.next().await {
        let mut pending = lock(&pending);
        for ack in acks {
            let Some((batch, index)) = parse_reply(&inbox, ack.subject.as_str()) else {
                continue;
            };
            if let Some(batch) = pending.get_mut(&batch) {
                batch.answer(index, ack_result(&ack));
            }
        }
    }
}
