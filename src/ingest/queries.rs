//! The admin queries, shared by the HTTP admin API and the offline CLI:
//! parameters in, JSON out, so both print the same thing.

use crate::clock::UnixNanos;
use crate::dead_letter::{DeadLetter, DeadLetterSeq, DeadLetterStore};
use crate::event_logs::EraseTarget;
use crate::event_logs::query::{MAX_RECENT_LIMIT, RecentQuery};
use crate::event_logs::store::EventLogStore;
use crate::queue::Queue;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// A query that cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The parameters are wrong (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// A store failed (HTTP 500).
    #[error("{0}")]
    Store(String),
}

/// Parameters of the recent-events query.
#[derive(Clone, Debug, Default, Serialize, Deserialize, clap::Args)]
pub struct RecentParams {
    /// Earliest event time, RFC 3339 [default: 7 days before `to`].
    #[arg(long)]
    pub from: Option<String>,
    /// Event time excluded, and everything after, RFC 3339 [default: now].
    #[arg(long)]
    pub to: Option<String>,
    /// Exact name (`feature.action`).
    #[arg(long)]
    pub name: Option<String>,
    /// Name prefix (a feature: `cody.`).
    #[arg(long)]
    pub name_prefix: Option<String>,
    /// Exact user id.
    #[arg(long)]
    pub user_id: Option<i64>,
    /// Exact anonymous user id.
    #[arg(long)]
    pub anonymous_user_id: Option<String>,
    /// Exact source (client name, or BACKEND).
    #[arg(long)]
    pub source: Option<String>,
    /// Most rows, 1 to 10000 [default: 100].
    #[arg(long)]
    pub limit: Option<usize>,
    /// Paging cursor: the `next` of the previous page.
    #[arg(long)]
    pub before: Option<String>,
}

/// Parameters of the per-day aggregates.
#[derive(Clone, Debug, Default, Serialize, Deserialize, clap::Args)]
pub struct RangeParams {
    /// Earliest event time, RFC 3339 [default: 30 days before `to`].
    #[arg(long)]
    pub from: Option<String>,
    /// Event time excluded, RFC 3339 [default: now].
    #[arg(long)]
    pub to: Option<String>,
}

/// Parameters of an erasure: exactly one of the two.
#[derive(Clone, Debug, Default, Serialize, Deserialize, clap::Args)]
pub struct EraseParams {
    /// Erase the rows of this user id (non-zero).
    #[arg(long)]
    pub user_id: Option<i64>,
    /// Erase the rows of this anonymous user id.
    #[arg(long)]
    pub anonymous_user_id: Option<String>,
}

/// Parameters of the dead-letter listing.
#[derive(Clone, Debug, Default, Serialize, Deserialize, clap::Args)]
pub struct DeadLetterParams {
    /// List entries after this seq.
    #[arg(long)]
    pub after: Option<u64>,
    /// Most entries, 1 to 10000 [default: 100].
    #[arg(long)]
    pub limit: Option<usize>,
}

fn parse_time(name: &str, v: Option<&str>, default: UnixNanos) -> Result<UnixNanos, QueryError> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_rfc3339_weak(s)
            .map(UnixNanos::from_system)
            .map_err(|e| {
                QueryError::BadRequest(format!(
                    "{name}={s:?} is not an RFC 3339 time (like 2026-11-25T00:00:00Z): {e}"
                ))
            }),
    }
}

fn range(
    from: Option<&str>,
    to: Option<&str>,
    days: u64,
    now: UnixNanos,
) -> Result<(UnixNanos, UnixNanos), QueryError> {
    let to = parse_time("to", to, now.plus(Duration::from_secs(1)))?;
    let from = parse_time("from", from, to.minus(Duration::from_secs(days * 86_400)))?;
    if from >= to {
        return Err(QueryError::BadRequest("from must be before to".into()));
    }
    Ok((from, to))
}

fn store_err(e: impl std::fmt::Display) -> QueryError {
    QueryError::Store(e.to_string())
}

/// Recent `event_logs` rows, newest first, with a paging cursor.
pub fn recent(
    store: &EventLogStore,
    p: &RecentParams,
    now: UnixNanos,
) -> Result<Value, QueryError> {
    let (from, to) = range(p.from.as_deref(), p.to.as_deref(), 7, now)?;
    let mut q = RecentQuery::new(from, to);
    q.name = p.name.clone();
    q.name_prefix = p.name_prefix.clone();
    q.user_id = p.user_id;
    q.anonymous_user_id = p.anonymous_user_id.clone();
    q.source = p.source.clone();
    if let Some(l) = p.limit {
        if l == 0 || l > MAX_RECENT_LIMIT {
            return Err(QueryError::BadRequest(format!(
                "limit must be between 1 and {MAX_RECENT_LIMIT}, got {l}"
            )));
        }
        q.limit = l;
    }
    if let Some(c) = &p.before {
        q.before_cursor = Some(
            c.parse()
                .map_err(|e| QueryError::BadRequest(format!("before: {e}")))?,
        );
    }
    let page = store.recent(&q).map_err(store_err)?;
    Ok(json!({ "rows": page.rows, "next": page.next_cursor.map(|c| c.to_string()) }))
}

/// Rows by name per UTC day.
pub fn counts(store: &EventLogStore, p: &RangeParams, now: UnixNanos) -> Result<Value, QueryError> {
    let (from, to) = range(p.from.as_deref(), p.to.as_deref(), 30, now)?;
    Ok(json!({ "counts": store.counts_by_name_per_day(from, to).map_err(store_err)? }))
}

/// Distinct users per UTC day.
pub fn users(store: &EventLogStore, p: &RangeParams, now: UnixNanos) -> Result<Value, QueryError> {
    let (from, to) = range(p.from.as_deref(), p.to.as_deref(), 30, now)?;
    Ok(json!({ "users": store.distinct_users_per_day(from, to).map_err(store_err)? }))
}

/// Erases one user's `event_logs` rows: hidden from every query at once,
/// removed from disk by the store's compaction (started in the background;
/// `compact` runs it before answering, as the offline CLI does).
pub fn erase(store: &EventLogStore, p: &EraseParams, compact: bool) -> Result<Value, QueryError> {
    let target = match (p.user_id, p.anonymous_user_id.as_deref()) {
        (Some(0), None) => {
            return Err(QueryError::BadRequest(
                "user_id must not be 0 (0 means no user id; erase by anonymous_user_id)".into(),
            ));
        }
        (Some(u), None) => EraseTarget::UserId(u),
        (None, Some("")) => {
            return Err(QueryError::BadRequest(
                "anonymous_user_id must not be empty".into(),
            ));
        }
        (None, Some(a)) => EraseTarget::AnonymousUserId(a.to_owned()),
        _ => {
            return Err(QueryError::BadRequest(
                "give exactly one of user_id and anonymous_user_id".into(),
            ));
        }
    };
    let out = store.erase(target.clone()).map_err(store_err)?;
    let removed = if compact {
        Some(store.compact_erasures().map_err(store_err)?)
    } else {
        None
    };
    Ok(json!({
        "erased": target.to_string(),
        "rows": out.rows,
        "days": out.days,
        "compaction": if compact { "done" } else { "pending" },
        "rows_removed": removed,
    }))
}

/// A dead letter as JSON: the event as protojson when it decodes, and its
/// size either way.
pub fn dead_letter_json(d: &DeadLetter) -> Value {
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
        "original_size": d.entry.original_size,
    })
}

/// Dead letters after a seq.
pub fn dead_letters(store: &DeadLetterStore, p: &DeadLetterParams) -> Result<Value, QueryError> {
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > 10_000 {
        return Err(QueryError::BadRequest(format!(
            "limit must be between 1 and 10000, got {limit}"
        )));
    }
    let list = store
        .list(p.after.map(DeadLetterSeq), limit)
        .map_err(store_err)?;
    Ok(json!({
        "count": store.count().map_err(store_err)?,
        "bytes": store.bytes().map_err(store_err)?,
        "dead_letters": list.iter().map(dead_letter_json).collect::<Vec<_>>(),
    }))
}

/// Requeues up to `limit` export dead letters.
pub fn requeue(store: &DeadLetterStore, queue: &Queue, limit: usize) -> Result<Value, QueryError> {
    if limit == 0 {
        return Err(QueryError::BadRequest("limit must be at least 1".into()));
    }
    let r = crate::tee::requeue::requeue(store, queue, limit).map_err(store_err)?;
    Ok(json!({ "requeued": r.requeued, "skipped": r.skipped }))
}
