//! The development sink: logs each message at info level (body and
//! attributes, like Sourcegraph's gateway with Pub/Sub disabled) and
//! confirms it. **It logs event contents**, private metadata and license
//! keys included: never use it with real data.

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{Message, PublishResult, Sink, SinkError};

/// Logs messages; always succeeds.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogSink;

impl Sink for LogSink {
    fn name(&self) -> &'static str {
        "log"
    }

    fn publish(&self, batch: Vec<Message>) -> BoxFuture<'_, Vec<PublishResult>> {
        let results = batch
            .iter()
            .map(|message| {
                tracing::info!(
                    id = ?message.id,
                    attributes = ?message.attributes,
                    body = ?String::from_utf8_lossy(&message.body),
                    "publish"
                );
                Ok(())
            })
            .collect();
        async move { results }.boxed()
    }

    fn health(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        async { Ok(()) }.boxed()
    }

    fn close(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        async { Ok(()) }.boxed()
    }
}
