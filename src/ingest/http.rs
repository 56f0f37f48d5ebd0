//! The sidecar's HTTP server: JSON ingest, the admin API, metrics and
//! health.
//!
//! | Route | What |
//! |---|---|
//! | `POST /v1/events` | record `{"events": [...]}` (protojson events) |
//! | `GET /v1/status` | queue segments, backlog, watermarks (admin) |
//! | `GET /v1/event-logs/recent` | recent rows, filters, paging (admin) |
//! | `GET /v1/event-logs/counts` | rows by name per UTC day (admin) |
//! | `GET /v1/event-logs/users` | distinct users per UTC day (admin) |
//! | `GET /v1/dead-letter` | dead letters (admin) |
//! | `POST /v1/dead-letter/requeue` | export dead letters again (admin) |
//! | `GET /metrics` | Prometheus text |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness (queue not poisoned) |
//!
//! # Ingest
//!
//! Ingest answers 200 for any well-formed request, even when some or all
//! events fail: `failed` lists each one with its index and reason, `ids`
//! gives every event's id by index (generated ones included, `null` where
//! an event could not be read). Body over `--max-body-size` (by its
//! `Content-Length` before reading, or while reading) or more events than
//! `--max-events`: 413; malformed JSON: 400 with the line and column; queue
//! full: 507 with `Retry-After`; store poisoned: 503.
//!
//! Memory is bounded before anything is decoded:
//!
//! - the body is read into one buffer of at most `--max-body-size`;
//! - it is walked without building a tree of it ([`super::body`]): at the
//!   first event past `--max-events` the walk stops (413), and an event
//!   whose JSON is longer than `--max-event-size` is never parsed (it
//!   fails alone, like an event over that limit once encoded); the others
//!   are parsed one at a time, and one over `--max-event-size` once encoded
//!   is dropped at once. Bodies over [`INLINE_DECODE_BYTES`] (512 KiB) are
//!   decoded on a blocking thread, not on the runtime, one per core at a
//!   time; smaller ones on the runtime, as many at once as it has workers
//!   (one per core): parsing an event costs up to ~130 times its JSON at
//!   the peak, see [`super::body`];
//! - requests share a budget of `--max-ingest-in-flight` bytes (default
//!   64 MiB): each holds its `Content-Length` (`--max-body-size` when the
//!   body is chunked; at most the whole budget, so one body larger than
//!   the budget runs alone) from before its body is read until it is
//!   answered. A request that finds the budget spent waits, in order, up
//!   to [`INGEST_WAIT`]; then it is answered 503 with `Retry-After: 1`
//!   (counted in `telespool_ingest_http_busy_total`). Waiting absorbs
//!   bursts; the bound keeps a flood of large bodies from taking the
//!   process's memory.
//!
//! Ingest refuses cross-site browser requests (403, see
//! [`super::guard`]): an `Origin` that is not this server's, or a
//! `Sec-Fetch-Site` other than `same-origin`/`none`. The content type is
//! not checked, so `curl -d` keeps working.
//!
//! # Admin
//!
//! The admin routes expose unredacted data: they answer loopback clients
//! that name this host in `Host`, and others only with
//! `Authorization: Bearer <--admin-token>` ([`super::admin`]).

use super::body::{self, BodyError, Decoded, Unreadable};
use super::grpc::record_prepared;
use super::guard;
use super::reply::error;
use super::status::{RETRY_AFTER_SECS, RecordError, http_status};
use crate::tee::store::{Ids, InvalidPolicy, Outcome, Prepared, Tee};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Metric: HTTP ingest requests answered 503 because the in-flight budget stayed full.
pub const HTTP_BUSY: &str = "telespool_ingest_http_busy_total";

/// How long a request waits for room in the ingest budget
/// (`--max-ingest-in-flight`) before it is answered 503.
pub const INGEST_WAIT: Duration = Duration::from_secs(10);
/// Bodies up to this size are decoded and their events prepared on the
/// runtime, as a gRPC payload is; larger ones on a blocking thread, so that
/// one large body does not hold a runtime worker for long (512 KiB of
/// typical events is ~5 ms of parsing).
///
/// It was 64 KiB, which sent a body of 100 typical events (~80 KB) to a
/// blocking thread for parsing, and its events were then freed on the
/// runtime: a profile of `serve` under that load put a third of the parse
/// in mimalloc collecting frees from other threads
/// (`mi_page_thread_collect_to_local`) and allocating on the slow path.
/// Decoding on the runtime (and preparing on the same thread when a body
/// does go to a blocking thread) cut serve's CPU per event by ~25%
/// (docs/benchmarks.md).
pub const INLINE_DECODE_BYTES: usize = 512 * 1024;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    /// The tee.
    pub tee: Arc<Tee>,
    /// Woken after each durable record (the exporter waits on it).
    pub wake: Arc<tokio::sync::Notify>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Renders `/metrics`.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Bytes of ingest bodies in flight: one permit a byte
    /// (`--max-ingest-in-flight`).
    pub ingest_budget: Arc<Semaphore>,
    /// The budget's size.
    pub ingest_budget_bytes: usize,
    /// Large bodies decoded at once (one per core): parsing an event costs
    /// up to ~130 times its JSON at the peak (see [`super::body`]).
    pub decode_slots: Arc<Semaphore>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("ingest_budget_bytes", &self.ingest_budget_bytes)
            .finish_non_exhaustive()
    }
}

/// The router: ingest, health and metrics, with the `admin` routes
/// ([`super::admin::router`]) merged in. Every route answers within
/// `request_timeout` (else `408`, see [`crate::net::http::timed`]); a
/// streaming route, when there is one, is merged after the timed ones and
/// sends heartbeats.
pub fn router(state: HttpState, admin: Router, request_timeout: std::time::Duration) -> Router {
    let timed = Router::new()
        .route(
            "/v1/events",
            post(post_events).route_layer(middleware::from_fn(guard::refuse_cross_site)),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(state)
        .merge(admin);
    crate::net::http::timed(timed, request_timeout)
}

async fn readyz(State(s): State<HttpState>) -> Response {
    match s.tee.queue().poisoned() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn render_metrics(State(s): State<HttpState>) -> Response {
    match &s.metrics {
        Some(h) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            )],
            h.render(),
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this process",
        ),
    }
}

/// Why a body could not be read off the connection.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    /// The body passed `--max-body-size`: HTTP 413, the client splits it.
    #[error("request body exceeds the limit of {limit} bytes (--max-body-size)")]
    TooLarge { limit: usize },
    /// The body could not be read (the client went away): HTTP 400.
    #[error("request body could not be read (cut short?): {0}")]
    Cut(#[source] axum::Error),
}

/// Reads a body into one buffer of at most `limit` bytes, sized from the
/// `Content-Length` when there is one.
async fn read_body(body: Body, limit: usize, length: Option<usize>) -> Result<Vec<u8>, ReadError> {
    let mut body = body;
    let mut buf = Vec::with_capacity(length.unwrap_or(0).min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(ReadError::Cut)?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit - buf.len() {
                return Err(ReadError::TooLarge { limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn body_error(e: &BodyError) -> Response {
    let status = match e {
        BodyError::TooManyEvents { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::InvalidUtf8 { .. }
        | BodyError::Malformed { .. }
        | BodyError::NotAnObject
        | BodyError::EventsNotArray
        | BodyError::EventsTwice => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

/// A request's body decoded and its events prepared for the tee.
struct Ready {
    /// How many events the request holds.
    total: usize,
    /// `index_of[i]`: the index in the request of the `i`th prepared event.
    index_of: Vec<usize>,
    /// The events that could not be read.
    unreadable: Vec<Unreadable>,
    prepared: Prepared,
    /// When decoding ended (for the record-latency histogram).
    started: Instant,
}

/// Why a body was refused before anything of it was submitted.
#[derive(Debug, thiserror::Error)]
enum Refused {
    /// The body cannot be read as a whole (400 or 413).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// Its events cannot be prepared as a whole (too many of them).
    #[error(transparent)]
    Record(#[from] RecordError),
}

impl Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Body(e) => body_error(&e),
            Refused::Record(e) => record_error(&e),
        }
    }
}

fn decode_and_prepare(tee: &Tee, bytes: &[u8]) -> Result<Ready, Refused> {
    let Decoded {
        total,
        events,
        index_of,
        unreadable,
    } = body::decode(bytes, &tee.config().limits)?;
    let started = Instant::now();
    let prepared = tee
        .prepare(events, Ids::Generate, InvalidPolicy::Report)
        .map_err(RecordError::from)?;
    Ok(Ready {
        total,
        index_of,
        unreadable,
        prepared,
        started,
    })
}

/// Decodes a body and prepares its events: on the runtime when the body is
/// at most [`INLINE_DECODE_BYTES`] (as many at once as there are runtime
/// workers), else on a blocking thread once a decode slot is free. Either
/// way on one thread: the events are freed by the thread that allocated
/// them (see [`INLINE_DECODE_BYTES`]).
async fn decode(s: &HttpState, bytes: Vec<u8>) -> Result<Ready, Response> {
    if bytes.len() <= INLINE_DECODE_BYTES {
        return decode_and_prepare(&s.tee, &bytes).map_err(Refused::into_response);
    }
    let _slot = s.decode_slots.acquire().await.map_err(|e| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("decoding the request failed: {e}"),
        )
    })?;
    let tee = s.tee.clone();
    tokio::task::spawn_blocking(move || decode_and_prepare(&tee, &bytes))
        .await
        .map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("decoding the request failed: {e}"),
            )
        })?
        .map_err(Refused::into_response)
}

/// The answer to a record call that failed as a whole.
fn record_error(e: &RecordError) -> Response {
    let (status, retry) = http_status(e);
    let mut r = error(status, e.to_string());
    if retry {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    r
}

async fn post_events(State(s): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let length = content_length(&headers);
    if length.is_some_and(|l| l > s.max_body_bytes) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            ReadError::TooLarge {
                limit: s.max_body_bytes,
            }
            .to_string(),
        );
    }
    // Held until the request is answered.
    let charge = length
        .unwrap_or(s.max_body_bytes)
        .min(s.ingest_budget_bytes);
    let charge = u32::try_from(charge).unwrap_or(u32::MAX);
    let _permit = match tokio::time::timeout(
        INGEST_WAIT,
        s.ingest_budget.clone().acquire_many_owned(charge),
    )
    .await
    {
        Ok(Ok(p)) => p,
        Ok(Err(_)) | Err(_) => {
            metrics::counter!(HTTP_BUSY).increment(1);
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "HTTP ingest is busy: {} bytes of request bodies are already being decoded or recorded (--max-ingest-in-flight) and none freed up within {}s; retry",
                    s.ingest_budget_bytes,
                    INGEST_WAIT.as_secs()
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
    };
    let bytes = match read_body(body, s.max_body_bytes, length).await {
        Ok(b) => b,
        Err(e @ ReadError::TooLarge { .. }) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string());
        }
        Err(e @ ReadError::Cut(_)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Ready {
        total,
        index_of,
        unreadable,
        prepared,
        started,
    } = match decode(&s, bytes).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let outcomes = match record_prepared(&s.tee, &s.wake, prepared, started).await {
        Ok(o) => o,
        Err(e) => return record_error(&e),
    };
    metrics::counter!(super::grpc::EVENTS, "transport" => "http").increment(total as u64);
    let mut answer = Answer {
        failed: Vec::new(),
        ids: vec![None; total],
        succeeded: Vec::with_capacity(outcomes.len()),
    };
    for (o, &i) in outcomes.iter().zip(&index_of) {
        match o {
            Outcome::Recorded { id, .. } => {
                if let Some(slot) = answer.ids.get_mut(i) {
                    *slot = Some(id);
                }
                answer.succeeded.push(id);
            }
            Outcome::Invalid { id, error } => {
                if let Some(slot) = answer.ids.get_mut(i) {
                    *slot = id.as_deref();
                }
                answer.failed.push(Failed {
                    error: error.to_string(),
                    id: id.as_deref(),
                    index: i,
                });
            }
        }
    }
    for u in &unreadable {
        if let (Some(slot), Some(id)) = (answer.ids.get_mut(u.index), &u.id) {
            *slot = Some(id);
        }
        answer.failed.push(Failed {
            error: format!("event {}: {}", u.index, u.error),
            id: u.id.as_deref(),
            index: u.index,
        });
    }
    answer.failed.sort_by_key(|f| f.index);
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// The answer to `POST /v1/events`, borrowed from the outcomes; keys in the
/// order a `serde_json::Map` writes them (sorted).
#[derive(serde::Serialize)]
struct Answer<'a> {
    failed: Vec<Failed<'a>>,
    ids: Vec<Option<&'a str>>,
    succeeded: Vec<&'a str>,
}

/// One event of [`Answer::failed`].
#[derive(serde::Serialize)]
struct Failed<'a> {
    error: String,
    id: Option<&'a str>,
    index: usize,
}
