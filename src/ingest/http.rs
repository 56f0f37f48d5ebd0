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
//! | `GET /metrics` | Prometheus text |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness (queue not poisoned) |
//!
//! Ingest answers 200 for any well-formed request, even when some or all
//! events fail: `failed` lists each one with its index and reason, `ids`
//! gives every event's id by index (generated ones included, `null` where
//! an event could not be read). Body over the limit or too many events:
//! 413; malformed JSON: 400 with the line and column; queue full: 507 with
//! `Retry-After`; store poisoned: 503.
//!
//! The admin routes expose unredacted data: they answer loopback clients,
//! and others only with `Authorization: Bearer <--admin-token>`.

use super::admin;
use super::grpc::record;
use super::status::{RETRY_AFTER_SECS, http_status};
use crate::protojson;
use crate::tee::store::{Ids, InvalidPolicy, Outcome, Tee};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    /// The tee.
    pub tee: Arc<Tee>,
    /// Woken after each durable record (the exporter waits on it).
    pub wake: Arc<tokio::sync::Notify>,
    /// The admin API's stores.
    pub admin: Arc<admin::Admin>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Renders `/metrics`.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// The router. Every route answers within `request_timeout` (else `408`,
/// see [`crate::net::http::timed`]); a streaming route, when there is one,
/// is merged after the timed ones and sends heartbeats.
pub fn router(state: HttpState, request_timeout: std::time::Duration) -> Router {
    let timed = Router::new()
        .route("/v1/events", post(post_events))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .merge(admin::router(state.clone()))
        .with_state(state);
    crate::net::http::timed(timed, request_timeout)
}

/// A JSON error answer.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
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

/// One event of a request that could not even be parsed.
struct Unreadable {
    index: usize,
    id: Option<String>,
    error: String,
}

async fn post_events(
    State(s): State<HttpState>,
    ConnectInfo(_peer): ConnectInfo<SocketAddr>,
    _headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match axum::body::to_bytes(body, s.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            let too_big = std::error::Error::source(&e)
                .is_some_and(|src| src.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            return if too_big {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "request body exceeds the limit of {} bytes (--max-body-size)",
                        s.max_body_bytes
                    ),
                )
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("request body could not be read (cut short?): {e}"),
                )
            };
        }
    };
    if let Err(e) = std::str::from_utf8(&bytes) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "request body is not valid UTF-8 (at byte {})",
                e.valid_up_to()
            ),
        );
    }
    let v: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "malformed JSON at line {} column {}: {e}",
                    e.line(),
                    e.column()
                ),
            );
        }
    };
    let events = match v.get("events") {
        Some(Value::Array(a)) => a,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "\"events\" must be an array of events",
            );
        }
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON object with an \"events\" array",
            );
        }
    };
    let limits = s.tee.config().limits;
    if events.len() > limits.max_events {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} events exceed the limit of {} per request (--max-events)",
                events.len(),
                limits.max_events
            ),
        );
    }
    // Parse each event on its own: one bad event must not fail the rest.
    let mut parsed = Vec::with_capacity(events.len());
    let mut index_of = Vec::with_capacity(events.len());
    let mut unreadable = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        match protojson::parse_event_value(ev) {
            Ok(e) => {
                parsed.push(e);
                index_of.push(i);
            }
            Err(e) => unreadable.push(Unreadable {
                index: i,
                id: ev.get("id").and_then(Value::as_str).map(str::to_string),
                error: format!("event {i}: {e}"),
            }),
        }
    }
    let outcomes = match record(
        &s.tee,
        &s.wake,
        parsed,
        Ids::Generate,
        InvalidPolicy::Report,
    )
    .await
    {
        Ok(o) => o,
        Err(e) => {
            let (status, retry) = http_status(&e);
            let mut r = error(status, e.to_string());
            if retry {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            return r;
        }
    };
    metrics::counter!("telespool_ingest_events_total", "transport" => "http")
        .increment(events.len() as u64);
    let mut ids: Vec<Value> = vec![Value::Null; events.len()];
    let mut succeeded = Vec::new();
    let mut failed = Vec::new();
    for (o, &i) in outcomes.iter().zip(&index_of) {
        match o {
            Outcome::Recorded { id, .. } => {
                ids[i] = json!(id);
                succeeded.push(json!(id));
            }
            Outcome::Invalid { id, error } => {
                if let Some(id) = id {
                    ids[i] = json!(id);
                }
                failed.push((i, json!({"index": i, "id": id, "error": error.to_string()})));
            }
        }
    }
    for u in unreadable {
        if let Some(id) = &u.id {
            ids[u.index] = json!(id);
        }
        failed.push((
            u.index,
            json!({"index": u.index, "id": u.id, "error": u.error}),
        ));
    }
    failed.sort_by_key(|(i, _)| *i);
    let failed: Vec<Value> = failed.into_iter().map(|(_, v)| v).collect();
    (
        StatusCode::OK,
        axum::Json(json!({"succeeded": succeeded, "failed": failed, "ids": ids})),
    )
        .into_response()
}
