//! The admin API: what `telespool status`, `event-logs` and `dead-letter`
//! ask a running sidecar, since sled locks the data directory.
//!
//! Every route here exposes unredacted data, so the guard answers loopback
//! clients, and others only with `Authorization: Bearer <--admin-token>`
//! (compared in constant time). Without a token configured, non-loopback
//! clients get 403.
//!
//! | Route | Query parameters |
//! |---|---|
//! | `GET /v1/status` | — |
//! | `GET /v1/event-logs/recent` | `from`, `to` (RFC 3339; default the last 7 days), `name`, `name_prefix`, `user_id`, `anonymous_user_id`, `source`, `limit` (≤ 10,000), `before` (cursor from `next`) |
//! | `GET /v1/event-logs/counts` | `from`, `to` (default the last 30 days) |
//! | `GET /v1/event-logs/users` | `from`, `to` (default the last 30 days) |
//! | `POST /v1/event-logs/erase` | `user_id` or `anonymous_user_id` (exactly one): that user's rows are hidden from every query at once and removed from disk by a compaction in the background |
//! | `GET /v1/dead-letter` | `after` (seq), `limit` (default 100, ≤ 10,000) |
//! | `POST /v1/dead-letter/requeue` | `limit` (default all): export dead letters back into the queue |

use super::http::{HttpState, error};
use super::queries::{self, DeadLetterParams, EraseParams, QueryError, RangeParams, RecentParams};
use crate::clock::Clock;
use crate::deadletter::DeadLetterStore;
use crate::event_logs::store::EventLogStore;
use crate::queue::Queue;
use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

/// The stores the admin API reads.
#[derive(Debug)]
pub struct Admin {
    /// The export queue.
    pub queue: Arc<Queue>,
    /// The event_logs mirror.
    pub event_logs: Arc<EventLogStore>,
    /// The dead-letter store.
    pub dead_letters: Arc<DeadLetterStore>,
    /// Token for non-loopback clients.
    pub token: Option<String>,
    /// Time source for default ranges.
    pub clock: Arc<dyn Clock>,
}

/// The admin routes, behind the guard.
pub fn router(state: HttpState) -> Router<HttpState> {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/event-logs/recent", get(recent))
        .route("/v1/event-logs/counts", get(counts))
        .route("/v1/event-logs/users", get(users))
        .route("/v1/event-logs/erase", post(erase))
        .route("/v1/dead-letter", get(dead_letters))
        .route("/v1/dead-letter/requeue", post(requeue))
        .route_layer(middleware::from_fn_with_state(state, guard))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn guard(
    State(s): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if peer.ip().is_loopback() {
        return next.run(req).await;
    }
    let Some(token) = s.admin.token.clone() else {
        return error(
            StatusCode::FORBIDDEN,
            "the admin API answers loopback clients only (configure --admin-token to allow others)",
        );
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => next.run(req).await,
        Some(_) => error(StatusCode::FORBIDDEN, "wrong admin token"),
        None => error(
            StatusCode::UNAUTHORIZED,
            "the admin API needs Authorization: Bearer <admin token> from non-loopback clients",
        ),
    }
}

async fn status(State(s): State<HttpState>) -> Response {
    let q = s.admin.queue.clone();
    let r =
        tokio::task::spawn_blocking(move || crate::commands::status::status_json(&q, None)).await;
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Runs a query off the runtime and answers it.
async fn answer(
    f: impl FnOnce() -> Result<serde_json::Value, QueryError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(QueryError::BadRequest(m))) => error(StatusCode::BAD_REQUEST, m),
        Ok(Err(QueryError::Store(m))) => error(StatusCode::INTERNAL_SERVER_ERROR, m),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn recent(State(s): State<HttpState>, Query(p): Query<RecentParams>) -> Response {
    let store = s.admin.event_logs.clone();
    let now = s.admin.clock.now();
    answer(move || queries::recent(&store, &p, now)).await
}

async fn counts(State(s): State<HttpState>, Query(p): Query<RangeParams>) -> Response {
    let store = s.admin.event_logs.clone();
    let now = s.admin.clock.now();
    answer(move || queries::counts(&store, &p, now)).await
}

async fn users(State(s): State<HttpState>, Query(p): Query<RangeParams>) -> Response {
    let store = s.admin.event_logs.clone();
    let now = s.admin.clock.now();
    answer(move || queries::users(&store, &p, now)).await
}

async fn erase(State(s): State<HttpState>, Query(p): Query<EraseParams>) -> Response {
    let store = s.admin.event_logs.clone();
    answer(move || queries::erase(&store, &p, false)).await
}

async fn dead_letters(State(s): State<HttpState>, Query(p): Query<DeadLetterParams>) -> Response {
    let store = s.admin.dead_letters.clone();
    answer(move || queries::dead_letters(&store, &p)).await
}

/// Query parameters of `POST /v1/dead-letter/requeue`.
#[derive(Debug, Deserialize)]
pub struct RequeueParams {
    limit: Option<usize>,
}

async fn requeue(State(s): State<HttpState>, Query(p): Query<RequeueParams>) -> Response {
    let store = s.admin.dead_letters.clone();
    let queue = s.admin.queue.clone();
    let limit = p.limit.unwrap_or(usize::MAX);
    let r = answer(move || queries::requeue(&store, &queue, limit)).await;
    s.wake.notify_one();
    r
}
