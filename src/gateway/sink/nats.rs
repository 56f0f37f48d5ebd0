//! The NATS JetStream sink (async-nats).
//!
//! - On start: connect to `nats://HOST:PORT` and get the stream
//!   (`nats_stream`, default `telemetry-events`), creating it when missing
//!   with file storage, the subject `nats_subject` (default
//!   `telemetry.events`) and a duplicate window (`nats_duplicate_window`,
//!   default 2 min). An existing stream must capture the subject.
//! - Each message is published on the subject with the body as payload,
//!   each attribute as a header of the same name, and `Nats-Msg-Id` = the
//!   event id, so JetStream stores a redelivered id once inside its window.
//! - A batch is published message by message without waiting, then the
//!   publish acks are awaited together; a message is confirmed only by its
//!   ack (a duplicate ack counts: the event is in the stream). No ack within
//!   `nats_ack_timeout`, a refused publish, or a disconnected client are
//!   retryable failures; a header that cannot be carried is permanent.
//! - Batches take turns over [`CONNECTIONS`] client connections.
//! - The client reconnects by itself (unbounded, backoff up to 4 s); while
//!   it is disconnected publishes fail at once instead of queueing.
//! - Health: connected, and the stream answers an info request.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream::context::{Context, ContextBuilder};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::{HeaderMap, HeaderName, HeaderValue};
use futures::FutureExt;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;

use super::{Message, PublishResult, Sink, SinkError};
use crate::gateway::config::NatsConfig;
use crate::gateway::render::{
    ATTR_ACTION, ATTR_FEATURE, ATTR_HAS_PRIVATE_METADATA, ATTR_PUBLISHER_SOURCE,
};

/// Publish acks outstanding across all streams at most (publishes wait for
/// room beyond that).
pub const MAX_ACKS_IN_FLIGHT: usize = 20_000;
/// Bodies up to this size can be published (Sourcegraph's 10 MB limit); a
/// server whose `max_payload` is lower is reported at start.
pub const WANTED_MAX_PAYLOAD: usize = 10_000_000;

/// Connections to the server; batches take turns. One connection's
/// handler task (writing publishes, routing acks) is a serial stage; two
/// let the two halves of the work run on two cores.
pub const CONNECTIONS: usize = 2;

/// One client connection and its JetStream context.
#[derive(Clone, Debug)]
struct Connection {
    client: async_nats::Client,
    jetstream: Context,
}

/// Publishes to NATS JetStream (see the module docs).
#[derive(Debug)]
pub struct NatsSink {
    url: String,
    connections: Vec<Connection>,
    next: AtomicUsize,
    stream: String,
    subject: async_nats::Subject,
    /// Header names of the attributes every event has, parsed once.
    known_headers: Vec<(&'static str, HeaderName)>,
}

fn nats_error(op: &'static str, retryable: bool, e: impl std::fmt::Display) -> SinkError {
    SinkError::Nats {
        op,
        reason: e.to_string(),
        retryable,
    }
}

impl NatsSink {
    /// Connects and makes sure the stream exists.
    pub async fn connect(
        url: &str,
        config: &NatsConfig,
        publish_concurrency: usize,
    ) -> Result<NatsSink, SinkError> {
        let mut connections = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let client = async_nats::ConnectOptions::new()
                .name("telespool-gateway")
                .connection_timeout(Duration::from_secs(5))
                .connect(url)
                .await
                .map_err(|e| nats_error("connect", true, format!("{url}: {e}")))?;
            let jetstream = ContextBuilder::new()
                .timeout(config.ack_timeout)
                .max_ack_inflight(MAX_ACKS_IN_FLIGHT.max(publish_concurrency))
                .backpressure_on_inflight(true)
                .build(client.clone());
            connections.push(Connection { client, jetstream });
        }
        let Some(first) = connections.first().cloned() else {
            return Err(nats_error("connect", false, "no connections configured"));
        };
        let (client, jetstream) = (first.client, first.jetstream);
        let stream = jetstream
            .get_or_create_stream(StreamConfig {
                name: config.stream.clone(),
                subjects: vec![config.subject.clone()],
                storage: StorageType::File,
                duplicate_window: config.duplicate_window,
                ..StreamConfig::default()
            })
            .await
            .map_err(|e| nats_error("stream", false, format!("{}: {e}", config.stream)))?;
        let subjects = &stream.cached_info().config.subjects;
        if !subjects.iter().any(|s| subject_matches(s, &config.subject)) {
            return Err(SinkError::Nats {
                op: "stream",
                reason: format!(
                    "stream {} exists but does not capture subject {} (its subjects: {subjects:?})",
                    config.stream, config.subject
                ),
                retryable: false,
            });
        }
        let max_payload = client.server_info().max_payload;
        if max_payload < WANTED_MAX_PAYLOAD {
            tracing::warn!(
                max_payload,
                "the NATS server's max_payload is below 10 MB: larger events will fail (and be retried) until it is raised"
            );
        }
        let known_headers = [
            ATTR_PUBLISHER_SOURCE,
            ATTR_FEATURE,
            ATTR_ACTION,
            ATTR_HAS_PRIVATE_METADATA,
        ]
        .into_iter()
        .filter_map(|name| Some((name, HeaderName::from_str(name).ok()?)))
        .collect();
        Ok(NatsSink {
            url: url.to_owned(),
            known_headers,
            connections,
            next: AtomicUsize::new(0),
            stream: config.stream.clone(),
            subject: async_nats::Subject::from(config.subject.as_str()),
        })
    }

    fn publish_message(&self, message: Message) -> Result<PublishMessage, SinkError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &message.attributes {
            let bad = |reason| SinkError::BadAttribute {
                name: name.clone(),
                reason,
            };
            let known = self.known_headers.iter().find(|(k, _)| k == name);
            let header = match known {
                Some((_, header)) => header.clone(),
                None => HeaderName::from_str(name).map_err(|_| bad("not a valid header name"))?,
            };
            let value = HeaderValue::from_str(value).map_err(|_| bad("contains a line break"))?;
            headers.insert(header, value);
        }
        Ok(PublishMessage::build()
            .payload(message.body)
            .headers(headers)
            .message_id(&message.id))
    }
}

impl Sink for NatsSink {
    fn name(&self) -> &'static str {
        "nats"
    }

    fn publish(&self, batch: Vec<Message>) -> BoxFuture<'_, Vec<PublishResult>> {
        async move {
            let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len().max(1);
            let Some(connection) = self.connections.get(turn) else {
                return vec![Err(SinkError::Closed { sink: "nats" }); batch.len()];
            };
            if connection.client.connection_state() != async_nats::connection::State::Connected {
                let e = SinkError::NotConnected {
                    url: self.url.clone(),
                };
                return vec![Err(e); batch.len()];
            }
            let mut results: Vec<PublishResult> = vec![Ok(()); batch.len()];
            let mut acks = FuturesUnordered::new();
            for (i, message) in batch.into_iter().enumerate() {
                let sent = match self.publish_message(message) {
                    Ok(publish) => connection
                        .jetstream
                        .send_publish(self.subject.clone(), publish)
                        .await
                        .map_err(|e| nats_error("publish", true, e)),
                    Err(e) => Err(e),
                };
                match sent {
                    Ok(ack) => acks.push(async move { (i, ack.await) }),
                    Err(e) => {
                        if let Some(r) = results.get_mut(i) {
                            *r = Err(e);
                        }
                    }
                }
            }
            while let Some((i, ack)) = acks.next().await {
                if let (Err(e), Some(r)) = (ack, results.get_mut(i)) {
                    *r = Err(nats_error("publish ack", true, e));
                }
            }
            results
        }
        .boxed()
    }

    fn health(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        async move {
            let connected = |c: &Connection| {
                c.client.connection_state() == async_nats::connection::State::Connected
            };
            if !self.connections.iter().all(connected) {
                return Err(SinkError::NotConnected {
                    url: self.url.clone(),
                });
            }
            let Some(connection) = self.connections.first() else {
                return Err(SinkError::Closed { sink: "nats" });
            };
            connection
                .jetstream
                .get_stream(&self.stream)
                .await
                .map_err(|e| nats_error("stream info", true, format!("{}: {e}", self.stream)))?;
            Ok(())
        }
        .boxed()
    }

    fn close(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        async move {
            for connection in &self.connections {
                connection
                    .client
                    .flush()
                    .await
                    .map_err(|e| nats_error("flush", true, e))?;
            }
            Ok(())
        }
        .boxed()
    }
}

/// Whether a stream subject (possibly with `*` and `>` wildcards) captures
/// a literal subject.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut pattern = pattern.split('.');
    let mut subject = subject.split('.');
    loop {
        match (pattern.next(), subject.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(s)) if p == s => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn stream_subjects_with_wildcards_capture_literal_subjects() {
        assert!(subject_matches("telemetry.events", "telemetry.events"));
        assert!(subject_matches("telemetry.*", "telemetry.events"));
        assert!(subject_matches("telemetry.>", "telemetry.events.x"));
        assert!(subject_matches(">", "a"));
        assert!(!subject_matches("telemetry.*", "telemetry.events.x"));
        assert!(!subject_matches("telemetry", "telemetry.events"));
        assert!(!subject_matches("telemetry.events.x", "telemetry.events"));
    }
}
