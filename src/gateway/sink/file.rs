//! The JSONL file sink (the default): one line per message,
//!
//! ```text
//! {"attributes":{"event.action":"…",…},"data":{"event":{…},"metadata":{…}},
//!  "dedup_key":"<32 hex>","published_at_ms":1764…}\n
//! ```
//!
//! where `data` is the message body exactly as published (protojson),
//! `attributes` the message attributes, keys sorted, and `dedup_key` and
//! `published_at_ms` the event's dedup key and when the line was formed.
//!
//! Effectively once: a line whose dedup key was written within
//! `dedup_window` is not written again, and is answered as confirmed (its
//! first copy is durable). The window survives a restart: it is rebuilt
//! from the tail of the files. See [`super::dedup`].
//!
//! Durability: callers format their lines and hand them to one writer
//! thread (`writer.rs`) through a bounded channel. The thread takes every
//! batch waiting (up to [`MAX_GROUP_BYTES`]), writes them, and calls
//! `fdatasync` **once for the whole group** before answering any of them,
//! so a batch is confirmed only once it is durable, and many batches share
//! one sync. A failed write is cut off the file again; a failed
//! `fdatasync` stops the sink (the file's durable state is unknown) until
//! the gateway restarts, and `/readyz` says so.
//!
//! Rotation: before the file would grow past `rotate_bytes`, it is synced
//! and renamed `PATH.1`, `PATH.2`, … (the next free number, so older files
//! keep their names) and a new `PATH` is started. A batch is never split
//! across files. On open, a partial last line (a write cut by a crash, never
//! confirmed) is cut off.
//!
//! Retention: rotated files are deleted oldest first (lowest number) past
//! `file_keep` (default 10), and those last modified more than
//! `file_max_age` ago (off by default), at start, after each rotation, and
//! (with `file_max_age`) at most once a minute while events are written.
//! Each deletion is logged and counted in
//! `telespool_gateway_file_rotated_deleted_total{reason="count"|"age"}`.
//! Anything that ships the rotated files elsewhere must keep up with that.
//!
//! Permissions: the file (and every rotated one) is `0600`, tightened at
//! start if it was looser; its directory is created `0700` when missing
//! (an existing one is left alone); a symbolic link at the file's path is
//! refused, never followed ([`crate::storage::owner_only`]).

mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::dedup::{parse_key, write_suffix};
use super::{Message, PublishResult, Sink, SinkError};
use crate::gateway::config::FileConfig;
use crate::gateway::render::event_json::write_json_str;
use writer::{Command, Writer};

/// Batches waiting for the writer thread, at most.
pub const QUEUE_DEPTH: usize = 64;
/// A group commit stops taking more batches at this many bytes.
pub const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// State shared with the writer thread.
#[derive(Debug, Default)]
struct Shared {
    /// Set when an `fdatasync` failed.
    poisoned: Mutex<Option<SinkError>>,
}

/// Appends messages to a JSONL file (see the module docs).
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl FileSink {
    /// Creates the directory if needed, opens (or continues) the file, cuts
    /// a partial last line, and starts the writer thread. Fails with the
    /// path when the directory or file cannot be written.
    pub fn open(path: &Path, config: &FileConfig) -> Result<FileSink, SinkError> {
        let shared = Arc::new(Shared::default());
        let writer = Writer::open(path, config, shared.clone())?;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("gateway-file-sink".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(|e| SinkError::io("starting the writer thread for", path, e))?;
        Ok(FileSink {
            path: path.to_owned(),
            tx,
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Appends one JSONL line for `message`, formed at `at_ms` (Unix ms), to
/// `out`.
pub fn write_line(message: &Message, at_ms: u64, out: &mut Vec<u8>) -> Result<(), SinkError> {
    // `{"k":"v",…}` as serde_json writes a BTreeMap<String, String>.
    let bad = |name: &String| SinkError::BadAttribute {
        name: name.clone(),
        reason: "not serializable as JSON",
    };
    out.extend_from_slice(br#"{"attributes":{"#);
    for (i, (name, value)) in message.attributes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(name, out).map_err(|_| bad(name))?;
        out.push(b':');
        write_json_str(value, out).map_err(|_| bad(name))?;
    }
    out.push(b'}');
    out.extend_from_slice(br#","data":"#);
    out.extend_from_slice(&message.body);
    write_suffix(&message.dedup_key, at_ms, out);
    Ok(())
}

impl Sink for FileSink {
    fn name(&self) -> &'static str {
        "file"
    }

    fn publish(&self, batch: Vec<Message>) -> BoxFuture<'_, Vec<PublishResult>> {
        async move {
            // Exact enough to never grow: wrapper, quoted names and values
            // (escapes aside), body.
            let size: usize = batch
                .iter()
                .map(|m| {
                    let attributes: usize = m
                        .attributes
                        .iter()
                        .map(|(k, v)| k.len() + v.len() + 6)
                        .sum();
                    m.body.len() + attributes + m.dedup_key.len() + 80
                })
                .sum();
            let at = writer::unix_ms();
            let mut lines = Vec::with_capacity(size);
            let mut keys = Vec::with_capacity(batch.len());
            let mut results: Vec<PublishResult> = Vec::with_capacity(batch.len());
            for message in &batch {
                let start = lines.len();
                let result = match parse_key(&message.dedup_key) {
                    Some(key) => write_line(message, at, &mut lines).map(|()| key),
                    None => Err(SinkError::BadAttribute {
                        name: "dedup_key".to_owned(),
                        reason: "not 32 hex digits",
                    }),
                };
                match result {
                    Ok(key) => {
                        keys.push((key, lines.len()));
                        results.push(Ok(()));
                    }
                    Err(e) => {
                        lines.truncate(start);
                        results.push(Err(e));
                    }
                }
            }
            if results.iter().all(Result::is_err) {
                return results;
            }
            let (done, confirmed) = oneshot::channel();
            let closed = SinkError::Closed { sink: "file" };
            let outcome = match self.tx.send(Command::Write { lines, keys, done }).await {
                Err(_) => Err(closed),
                Ok(()) => confirmed.await.unwrap_or(Err(closed)),
            };
            if let Err(e) = outcome {
                for result in results.iter_mut().filter(|r| r.is_ok()) {
                    *result = Err(e.clone());
                }
            }
            results
        }
        .boxed()
    }

    fn health(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        async move {
            if let Ok(poisoned) = self.shared.poisoned.lock()
                && let Some(e) = poisoned.as_ref()
            {
                return Err(e.clone());
            }
            if self.tx.is_closed() {
                return Err(SinkError::Closed { sink: "file" });
            }
            Ok(())
        }
        .boxed()
    }

    fn close(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        async move {
            let (done, closed) = oneshot::channel();
            if self.tx.send(Command::Close { done }).await.is_err() {
                return Ok(()); // already closed
            }
            let result = closed.await.unwrap_or(Ok(()));
            let thread = self.thread.lock().ok().and_then(|mut t| t.take());
            if let Some(thread) = thread {
                // The thread has answered and is returning; joining is quick
                // but still blocking, so it runs off the async workers.
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
            result
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_line_is_the_attributes_and_the_body_as_serde_json_would_write_them() {
        let attributes: BTreeMap<String, String> = [
            ("publisher.source", "svc \"x\"\n\u{1}"),
            ("event.feature", "cody.completion"),
            ("a", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let message = Message {
            id: "1".to_owned(),
            dedup_key: super::super::dedup::dedup_key("i", "1"),
            body: bytes::Bytes::from_static(br#"{"event":{"id":"1"},"metadata":{}}"#),
            attributes: attributes.clone(),
        };
        let mut line = Vec::new();
        write_line(&message, 1_764_000_000_000, &mut line).unwrap();
        let expected = format!(
            "{{\"attributes\":{},\"data\":{{\"event\":{{\"id\":\"1\"}},\"metadata\":{{}}}},\"dedup_key\":\"{}\",\"published_at_ms\":1764000000000}}\n",
            serde_json::to_string(&attributes).unwrap(),
            message.dedup_key
        );
        assert_eq!(String::from_utf8(line).unwrap(), expected);
    }
}
