//! Where published events go. One trait, [`Sink`]: publish a batch of
//! [`Message`]s and answer, per message, whether the publish is confirmed
//! (durable in the file, acknowledged by JetStream) or failed. A confirmed
//! message is what lets the gateway put an event id in `succeeded_events`.
//!
//! | sink | spec | confirmed when |
//! |---|---|---|
//! | [`file::FileSink`] | `file:PATH` | written and `fdatasync`ed (group commit: one sync per group of batches) |
//! | [`nats::NatsSink`] | `nats://HOST:PORT` | JetStream's publish ack arrived |
//! | [`log::LogSink`] | `log` | logged (always) |
//!
//! Failures carry [`SinkError::is_retryable`]: retryable ones (I/O,
//! connection, timeouts) leave the id out of `succeeded_events` so the
//! sender retries; permanent ones (a message the sink can never take) are
//! treated like invalid events.

pub mod dedup;
pub mod file;
pub mod log;
pub mod nats;
pub mod spec;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

use super::config::{GatewayConfig, SinkSpec};

/// One message per event: its id, the JSON body and the attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The event id.
    pub id: String,
    /// A hash of (instance, event id): `Nats-Msg-Id`, and what the file
    /// sink dedups by ([`dedup`]).
    pub dedup_key: String,
    /// `{"event":…,"metadata":…}` (see [`super::render::message_body`]).
    pub body: Bytes,
    /// The attributes (see [`super::render::attributes`]).
    pub attributes: BTreeMap<String, String>,
}

/// The outcome of publishing one message.
pub type PublishResult = Result<(), SinkError>;

/// A destination for messages. Implementations must answer with exactly one
/// result per message, in the batch's order.
pub trait Sink: Send + Sync + 'static {
    /// Short name for logs and metric labels (`file`, `nats`, `log`).
    fn name(&self) -> &'static str;

    /// Publishes a batch; resolves once every message is confirmed or
    /// failed.
    fn publish(&self, batch: Vec<Message>) -> BoxFuture<'_, Vec<PublishResult>>;

    /// Whether the sink can take messages now (for `/readyz`).
    fn health(&self) -> BoxFuture<'_, Result<(), SinkError>>;

    /// Flushes and stops; publishes after this fail with
    /// [`SinkError::Closed`].
    fn close(&self) -> BoxFuture<'_, Result<(), SinkError>>;
}

/// Everything a sink can report.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SinkError {
    /// A file operation failed. The events of the group are not
    /// acknowledged (the sidecar retries them); the operator looks at the
    /// disk.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`open`, `write`, `fdatasync`, `rename`, …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error (shared: one failure answers a whole group).
        source: Arc<std::io::Error>,
    },
    /// An earlier `fdatasync` failed: the file's durable state is unknown,
    /// so the sink refuses writes until the gateway restarts. The operator
    /// fixes the disk and restarts the gateway; sidecars retry meanwhile.
    #[error("the file sink stopped after a failed fdatasync of {path}; restart the gateway")]
    Poisoned {
        /// The file.
        path: PathBuf,
    },
    /// The sink was closed (the gateway is stopping). Nothing is
    /// acknowledged; the sidecar retries against another gateway.
    #[error("the {sink} sink is closed")]
    Closed {
        /// Which sink.
        sink: &'static str,
    },
    /// The NATS client is not connected (it keeps reconnecting). Nothing
    /// is acknowledged; the sidecar retries.
    #[error("not connected to the NATS server at {url}")]
    NotConnected {
        /// The server.
        url: String,
    },
    /// A NATS or JetStream operation failed. Nothing is acknowledged; the
    /// sidecar retries, and `retryable` says whether that can help.
    #[error("NATS {op}: {reason}")]
    Nats {
        /// What was being done (`connect`, `publish`, `publish ack`, `stream`).
        op: &'static str,
        /// The client's error.
        reason: String,
        /// Whether retrying later may succeed.
        retryable: bool,
    },
    /// An attribute cannot be carried by the sink (e.g. a control character
    /// in a NATS header value). The event is refused; retrying it fails
    /// the same way.
    #[error("attribute {name} cannot be sent as a header: {reason}")]
    BadAttribute {
        /// The attribute.
        name: String,
        /// Why.
        reason: &'static str,
    },
}

impl SinkError {
    /// Whether the sender should retry the event later.
    pub fn is_retryable(&self) -> bool {
        match self {
            SinkError::Nats { retryable, .. } => *retryable,
            SinkError::BadAttribute { .. } => false,
            SinkError::Io { .. }
            | SinkError::Poisoned { .. }
            | SinkError::Closed { .. }
            | SinkError::NotConnected { .. } => true,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SinkError::Io {
            op,
            path: path.into(),
            source: Arc::new(source),
        }
    }
}

/// Opens the configured sink (creating the file's directory, or connecting
/// to NATS and creating the stream).
pub async fn open(config: &GatewayConfig) -> Result<Arc<dyn Sink>, SinkError> {
    Ok(match &config.sink {
        SinkSpec::File(path) => Arc::new(file::FileSink::open(path, &config.file)?),
        SinkSpec::Nats(url) => {
            Arc::new(nats::NatsSink::connect(url, &config.nats, config.publish_concurrency).await?)
        }
        SinkSpec::Log => Arc::new(log::LogSink),
    })
}
