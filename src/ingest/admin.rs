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
//! | `GET /v1/dead-letter` | `after` (seq), `limit` (default 100, ≤ 10,000) |

use super::http::{HttpState, error};
use crate::clock::{Clock, UnixNanos};
use crate::deadletter::{DeadLetter, DeadLetterSeq, DeadLetterStore};
use crate::event_logs::query::{MAX_RECENT_LIMIT, RecentQuery};
use crate::event_logs::store::EventLogStore;
use crate::queue::Queue;
use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
        .route("/v1/dead-letter", get(dead_letters))
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

fn parse_time(name: &str, v: Option<&str>, default: UnixNanos) -> Result<UnixNanos, String> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_rfc3339_weak(s)
            .map(UnixNanos::from_system)
            .map_err(|e| {
                format!("{name}={s:?} is not an RFC 3339 time (like 2026-11-25T00:00:00Z): {e}")
            }),
    }
}

/// The `[from, to)` range of a query; the error is a 400 message.
fn range(
    a: &Admin,
    from: Option<&str>,
    to: Option<&str>,
    days: u64,
) -> Result<(UnixNanos, UnixNanos), String> {
    let now = a.clock.now();
    let to = parse_time("to", to, now.plus(Duration::from_secs(1)))?;
    let from = parse_time("from", from, to.minus(Duration::from_secs(days * 86_400)))?;
    if from >= to {
        return Err("from must be before to".into());
    }
    Ok((from, to))
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

/// Query parameters of `/v1/event-logs/recent`.
#[derive(Debug, Deserialize)]
pub struct RecentParams {
    from: Option<String>,
    to: Option<String>,
    name: Option<String>,
    name_prefix: Option<String>,
    user_id: Option<i64>,
    anonymous_user_id: Option<String>,
    source: Option<String>,
    limit: Option<usize>,
    before: Option<String>,
}

async fn recent(State(s): State<HttpState>, Query(p): Query<RecentParams>) -> Response {
    let (from, to) = match range(&s.admin, p.from.as_deref(), p.to.as_deref(), 7) {
        Ok(r) => r,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let mut q = RecentQuery::new(from, to);
    q.name = p.name;
    q.name_prefix = p.name_prefix;
    q.user_id = p.user_id;
    q.anonymous_user_id = p.anonymous_user_id;
    q.source = p.source;
    if let Some(l) = p.limit {
        if l == 0 || l > MAX_RECENT_LIMIT {
            return error(
                StatusCode::BAD_REQUEST,
                format!("limit must be between 1 and {MAX_RECENT_LIMIT}, got {l}"),
            );
        }
        q.limit = l;
    }
    if let Some(c) = p.before {
        match c.parse() {
            Ok(c) => q.before_cursor = Some(c),
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("before: {e}")),
        }
    }
    let store = s.admin.event_logs.clone();
    match tokio::task::spawn_blocking(move || store.recent(&q)).await {
        Ok(Ok(page)) => axum::Json(json!({
            "rows": page.rows,
            "next": page.next_cursor.map(|c| c.to_string()),
        }))
        .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Query parameters of the per-day aggregates.
#[derive(Debug, Deserialize)]
pub struct RangeParams {
    from: Option<String>,
    to: Option<String>,
}

async fn counts(State(s): State<HttpState>, Query(p): Query<RangeParams>) -> Response {
    let (from, to) = match range(&s.admin, p.from.as_deref(), p.to.as_deref(), 30) {
        Ok(r) => r,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let store = s.admin.event_logs.clone();
    match tokio::task::spawn_blocking(move || store.counts_by_name_per_day(from, to)).await {
        Ok(Ok(rows)) => axum::Json(json!({ "counts": rows })).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn users(State(s): State<HttpState>, Query(p): Query<RangeParams>) -> Response {
    let (from, to) = match range(&s.admin, p.from.as_deref(), p.to.as_deref(), 30) {
        Ok(r) => r,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let store = s.admin.event_logs.clone();
    match tokio::task::spawn_blocking(move || store.distinct_users_per_day(from, to)).await {
        Ok(Ok(rows)) => axum::Json(json!({ "users": rows })).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Query parameters of `/v1/dead-letter`.
#[derive(Debug, Deserialize)]
pub struct DeadLetterParams {
    after: Option<u64>,
    limit: Option<usize>,
}

/// A dead letter as JSON (event bytes as base64-free protojson when they
/// decode, else their length).
pub fn dead_letter_json(d: &DeadLetter) -> serde_json::Value {
    use prost::Message;
    let event = crate::proto::telemetrygateway::v1::Event::decode(d.entry.event.as_slice())
        .ok()
        .and_then(|e| crate::protojson::render_event(&e).ok());
    json!({
        "seq": d.seq.0,
        "event_id": d.entry.event_id,
        "reason": d.entry.reason,
        "source": d.entry.source.to_string(),
        "attempts": d.entry.attempts,
        "recorded_at": d.entry.recorded_at.to_string(),
        "last_error": d.entry.last_error,
        "event": event,
        "event_bytes": d.entry.event.len(),
    })
}

async fn dead_letters(State(s): State<HttpState>, Query(p): Query<DeadLetterParams>) -> Response {
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > 10_000 {
        return error(
            StatusCode::BAD_REQUEST,
            format!("limit must be between 1 and 10000, got {limit}"),
        );
    }
    let store = s.admin.dead_letters.clone();
    let after = p.after.map(DeadLetterSeq);
    match tokio::task::spawn_blocking(move || {
        Ok::<_, crate::deadletter::DeadLetterError>((store.list(after, limit)?, store.count()?))
    })
    .await
    {
        Ok(Ok((list, count))) => axum::Json(json!({
            "count": count,
            "dead_letters": list.iter().map(dead_letter_json).collect::<Vec<_>>(),
        }))
        .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
