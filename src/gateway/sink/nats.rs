//! The NATS JetStream sink (async-nats).
//!
//! - Credentials, one way: a user and password or a token in the URL
//!   (`nats://USER:PASSWORD@HOST:PORT`, `nats://TOKEN@HOST:PORT`), the
//!   password of the URL's user from `nats_password_file`, a token from
//!   `nats_token_file`, or a JWT creds file (`nats_creds`). The userinfo is
//!   taken out of the URL before the client sees it, and never logged
//!   ([`crate::secret::redact_url`]). TLS: `nats_tls_ca` (trusted instead of
//!   the system roots) and `nats_tls_cert`/`nats_tls_key` (mutual TLS);
//!   either one makes TLS required. These are read at start: changing them
//!   needs a restart.
//! - On start: connect to `nats://HOST:PORT` and get the stream
//!   (`nats_stream`, default `telemetry-events`), creating it when missing
//!   with file storage, the subject `nats_subject` (default
//!   `telemetry.events`) and a duplicate window (`dedup_window`, alias
//!   `nats_duplicate_window`, default 2 min). An existing stream must capture the subject.
//! - Each message is published on the subject with the body as payload,
//!   each attribute as a header of the same name, and `Nats-Msg-Id` = the
//!   event's dedup key (a hash of instance and event id,
//!   [`super::dedup`]), so JetStream stores a redelivered event once
//!   inside its window, and one instance cannot suppress another's.
//! - A batch is published message by message without waiting, then the
//!   publish acks are awaited together; a message is confirmed only by its
//!   ack (a duplicate ack counts: the event is in the stream). No ack within
//!   `nats_ack_timeout`, a refused publish, or a disconnected client are
//!   retryable failures; a header that cannot be carried is permanent.
//! - Batches take turns over [`CONNECTIONS`] client connections.
//! - The client reconnects by itself (unbounded, backoff up to 4 s); while
//!   it is disconnected publishes fail at once instead of queueing.
//! - Health: connected, and the stream answers an info request.
//!
//! ## How acks find their publish
//!
//! Publishes go through the core client, not `jetstream::Context::publish`
//! (which costs a oneshot channel, a formatted inbox, a map entry and a
//! timer per message, and parses every ack with serde into an untagged
//! enum). Each connection has one wildcard subscription for its acks, and
//! each batch one entry in a map:
//!
//! ```text
//! publish  telemetry.events  reply _INBOX.<nuid>.<batch>.<index>   (one per message)
//!                                      │
//! SUB _INBOX.<nuid>.*.*  ── ack router task ── pending[batch].results[index] = ack
//!                                                 └─ last one: wake the batch
//! ```
//!
//! The batch's task registers its entry (with a guard that removes it,
//! whatever happens) before the first publish, then waits for its wake-up
//! or `nats_ack_timeout`, and takes the results: a slot still empty is an
//! ack that did not come (retryable). An ack is read minimally: a body
//! starting `{"stream":` is a PubAck (JetStream writes the error field
//! first when there is one); anything else is parsed to find the error's
//! description. A status instead of a body (503: no responders, the stream
//! is missing) is a failure. Late acks for a batch that gave up are
//! dropped.
//!
//! Acks in flight are bounded across connections by a semaphore
//! ([`MAX_ACKS_IN_FLIGHT`]): a batch takes one permit per message before
//! publishing and returns them when its results are taken. The ack
//! subscription's channel holds that many messages, so the router never
//! falls behind far enough for the client to drop an ack.
//!
//! The ack bookkeeping (pending map, router, ack parsers) is in
//! `nats/acks.rs`; the client options and the subject check in
//! `nats/connect.rs`; this file holds the sink: connecting, publishing a
//! batch, health.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::context::{Context, ContextBuilder};
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::{HeaderMap, HeaderName, HeaderValue, Subject};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{Semaphore, oneshot};

use super::{Message, PublishResult, Sink, SinkError};
use crate::gateway::config::{NatsConfig, NatsUrl};
use crate::gateway::render::{
    ATTR_ACTION, ATTR_FEATURE, ATTR_HAS_PRIVATE_METADATA, ATTR_PUBLISHER_SOURCE,
};

mod acks;
mod connect;
#[cfg(test)]
mod tests;

pub use acks::parse_pub_ack;
use acks::{ACK_CHUNK, Pending, PendingBatch, Registered, lock, push_decimal, route_acks};
use connect::connect_options;
pub use connect::subject_matches;

/// Publish acks outstanding across all streams at most (publishes wait for
/// room beyond that).
pub const MAX_ACKS_IN_FLIGHT: usize = 20_000;
/// Bodies up to this size can be published (Sourcegraph's 10 MB limit); a
/// server whose `max_payload` is lower is reported at start.
pub const WANTED_MAX_PAYLOAD: usize = 10_000_000;

/// Connections to the server; batches take turns. One connection's
/// handler task (writing publishes, reading acks) is a serial stage; two
/// let the two halves of the work run on two cores.
pub const CONNECTIONS: usize = 2;

/// Attribute names whose parsed header name is kept (attributes are a
/// small fixed set plus one per `recordsPrivateMetadata*` key).
const MAX_HEADER_NAMES: usize = 64;

/// One client connection, its ack inbox and its pending batches.
#[derive(Debug)]
struct Connection {
    client: async_nats::Client,
    /// `_INBOX.<nuid>.`: the acks of batch `b` come to `<inbox>b.<index>`.
    inbox: String,
    next_batch: AtomicU64,
    pending: Pending,
    /// Routes acks into `pending`; aborted when the sink is dropped (it
    /// holds the subscription, which keeps the client alive).
    router: tokio::task::JoinHandle<()>,
}

/// Publishes to NATS JetStream (see the module docs).
#[derive(Debug)]
pub struct NatsSink {
    url: String,
    connections: Vec<Connection>,
    next: AtomicUsize,
    /// For the stream (creation, health); not used to publish.
    jetstream: Context,
    stream: String,
    subject: Subject,
    ack_timeout: Duration,
    /// Bounds acks in flight across connections.
    permits: Arc<Semaphore>,
    max_permits: usize,
    /// Header names parsed once: the attributes every event has, then the
    /// others as they come, up to [`MAX_HEADER_NAMES`].
    header_names: RwLock<Vec<(String, HeaderName)>>,
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
        let max_permits = MAX_ACKS_IN_FLIGHT.max(publish_concurrency);
        let parsed = NatsUrl::parse(url).map_err(|e| nats_error("connect", false, e))?;
        let address = parsed.address.clone();
        let options = connect_options(&parsed, config)
            .await?
            // Every ack in flight fits: a full channel drops messages.
            .subscription_capacity(max_permits + ACK_CHUNK);
        let mut connections = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let client = options
                .clone()
                .connect(address.as_str())
                .await
                .map_err(|e| nats_error("connect", true, format!("{address}: {e}")))?;
            let inbox = format!("{}.", client.new_inbox());
            let subscriber = client
                .subscribe(format!("{inbox}*.*"))
                .await
                .map_err(|e| nats_error("subscribe", true, format!("{inbox}*.*: {e}")))?;
            let pending = Pending::default();
            let router = tokio::spawn(route_acks(inbox.clone(), subscriber, pending.clone()));
            connections.push(Connection {
                client,
                inbox,
                next_batch: AtomicU64::new(0),
                pending,
                router,
            });
        }
        let Some(first) = connections.first() else {
            return Err(nats_error("connect", false, "no connections configured"));
        };
        let client = first.client.clone();
        let jetstream = ContextBuilder::new()
            .timeout(config.ack_timeout)
            .build(client.clone());
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
        let header_names = [
            ATTR_PUBLISHER_SOURCE,
            ATTR_FEATURE,
            ATTR_ACTION,
            ATTR_HAS_PRIVATE_METADATA,
        ]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), HeaderName::from_str(name).ok()?)))
        .collect();
        Ok(NatsSink {
            url: address,
            header_names: RwLock::new(header_names),
            connections,
            next: AtomicUsize::new(0),
            jetstream,
            stream: config.stream.clone(),
            subject: Subject::from(config.subject.as_str()),
            ack_timeout: config.ack_timeout,
            permits: Arc::new(Semaphore::new(max_permits)),
            max_permits,
        })
    }

    /// The headers of a message (its attributes and `Nats-Msg-Id`), and its
    /// body; an attribute that cannot be a header fails the message.
    fn headers(&self, message: Message) -> Result<(HeaderMap, bytes::Bytes), SinkError> {
        let line_break = |s: &str| s.contains(['\r', '\n']);
        let mut headers = HeaderMap::new();
        let mut learned = Vec::new();
        {
            let names = self
                .header_names
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (name, value) in message.attributes {
                let header = match names.iter().find(|(k, _)| *k == name) {
                    Some((_, header)) => header.clone(),
                    None => match HeaderName::from_str(&name) {
                        Ok(header) => {
                            learned.push((name.clone(), header.clone()));
                            header
                        }
                        Err(_) => {
                            return Err(SinkError::BadAttribute {
                                name,
                                reason: "not a valid header name",
                            });
                        }
                    },
                };
                if line_break(&value) {
                    return Err(SinkError::BadAttribute {
                        name,
                        reason: "contains a line break",
                    });
                }
                // Checked above: the conversion does not copy, and cannot panic.
                headers.insert(header, HeaderValue::from(value));
            }
        }
        if !learned.is_empty() {
            let mut names = self
                .header_names
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (name, header) in learned {
                if names.len() < MAX_HEADER_NAMES && !names.iter().any(|(k, _)| *k == name) {
                    names.push((name, header));
                }
            }
        }
        // 32 hex digits: always a valid header value.
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            HeaderValue::from(message.dedup_key),
        );
        Ok((headers, message.body))
    }

    /// Publishes a batch on one connection and collects its acks (see the
    /// module docs).
    async fn publish_on(&self, connection: &Connection, batch: Vec<Message>) -> Vec<PublishResult> {
        let mut results: Vec<Option<PublishResult>> = Vec::with_capacity(batch.len());
        let mut outgoing = Vec::with_capacity(batch.len());
        for (index, message) in batch.into_iter().enumerate() {
            match self.headers(message) {
                Ok((headers, body)) => {
                    outgoing.push((index, headers, body));
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let results = if outgoing.is_empty() {
            results
        } else {
            let wanted = outgoing.len().min(self.max_permits);
            let permits = u32::try_from(wanted)
                .ok()
                .map(|n| self.permits.clone().acquire_many_owned(n));
            let _permits = match permits {
                Some(permits) => permits.await.ok(),
                None => None,
            };
            self.send_and_wait(connection, results, outgoing).await
        };
        let no_ack = || nats_error("publish ack", true, "no ack within the ack timeout");
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(no_ack())))
            .collect()
    }

    async fn send_and_wait(
        &self,
        connection: &Connection,
        results: Vec<Option<PublishResult>>,
        outgoing: Vec<(usize, HeaderMap, bytes::Bytes)>,
    ) -> Vec<Option<PublishResult>> {
        let batch = connection.next_batch.fetch_add(1, Ordering::Relaxed);
        let (done, answered) = oneshot::channel();
        let remaining = results.iter().filter(|r| r.is_none()).count();
        lock(&connection.pending).insert(
            batch,
            PendingBatch {
                results,
                remaining,
                done: Some(done),
            },
        );
        let registered = Registered {
            pending: &connection.pending,
            batch,
        };
        let mut prefix = connection.inbox.clone();
        push_decimal(&mut prefix, batch);
        prefix.push('.');
        let send_deadline = tokio::time::Instant::now() + self.ack_timeout;
        for (index, headers, body) in outgoing {
            let mut reply = String::with_capacity(prefix.len() + 6);
            reply.push_str(&prefix);
            push_decimal(&mut reply, index as u64);
            let sent = tokio::time::timeout_at(
                send_deadline,
                connection.client.publish_with_reply_and_headers(
                    self.subject.clone(),
                    Subject::from(reply),
                    headers,
                    body,
                ),
            )
            .await;
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(e)) => registered.fail(index, nats_error("publish", true, e)),
                Err(_) => registered.fail(
                    index,
                    nats_error(
                        "publish",
                        true,
                        "the client did not take the message in time",
                    ),
                ),
            }
        }
        let _ = tokio::time::timeout(self.ack_timeout, answered).await;
        registered.take()
    }
}

impl Drop for NatsSink {
    fn drop(&mut self) {
        for connection in &self.connections {
            connection.router.abort();
        }
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
            self.publish_on(connection, batch).await
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
            self.jetstream
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
