//! Admin analytics over the `event_logs` mirror, and erasure of one user's
//! rows: `GET /v1/event-logs/*`, `POST /v1/event-logs/erase` and
//! `telespool event-logs`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::QueryError;
use super::params::{EraseParams, RangeParams, RecentParams};
use crate::clock::UnixNanos;
use crate::event_logs::EraseTarget;
use crate::event_logs::query::{
    DayNameCount, DayUsers, MAX_RECENT_LIMIT, RecentCursor, RecentQuery,
};
use crate::event_logs::row::EventLogRow;
use crate::event_logs::store::EventLogStore;

/// Days before `to` that `recent` covers by default.
const RECENT_DEFAULT_DAYS: u64 = 7;
/// Days before `to` that the per-day aggregates cover by default.
const AGGREGATE_DEFAULT_DAYS: u64 = 30;

/// One page of recent rows, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentEvents {
    /// The rows (unredacted).
    pub rows: Vec<EventLogRow>,
    /// Set when more rows may follow: pass it as `before`.
    pub next: Option<RecentCursor>,
}

/// Rows by name per UTC day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCounts {
    /// One entry per (day, name) with rows.
    pub counts: Vec<DayNameCount>,
}

/// Distinct users per UTC day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyUsers {
    /// One entry per day with rows.
    pub users: Vec<DayUsers>,
}

/// What an erasure did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erased {
    /// Whose rows, for a person (`user id 42`).
    pub erased: String,
    /// Rows of the user found: hidden from every query now.
    pub rows: u64,
    /// Days holding them.
    pub days: u64,
    /// Whether they are already removed from disk.
    pub compaction: Compaction,
    /// Rows the compaction removed from disk, when it ran before the
    /// answer (the offline CLI); `None` while it runs in the background.
    pub rows_removed: Option<u64>,
}

/// Where the compaction of an erasure stands when it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compaction {
    /// It ran: the rows are gone from disk.
    Done,
    /// The store's background thread runs it (a running sidecar).
    Pending,
}

fn parse_time(
    param: &'static str,
    value: Option<&str>,
    default: UnixNanos,
) -> Result<UnixNanos, QueryError> {
    match value {
        None => Ok(default),
        Some(s) => humantime::parse_rfc3339_weak(s)
            .map(UnixNanos::from_system)
            .map_err(|source| QueryError::BadTime {
                param,
                value: s.to_owned(),
                source,
            }),
    }
}

/// `[from, to)`: `to` defaults to just after `now`, `from` to `days`
/// before `to`.
fn range(
    from: Option<&str>,
    to: Option<&str>,
    days: u64,
    now: UnixNanos,
) -> Result<(UnixNanos, UnixNanos), QueryError> {
    let to = parse_time("to", to, now.plus(Duration::from_secs(1)))?;
    let from = parse_time("from", from, to.minus(Duration::from_secs(days * 86_400)))?;
    if from >= to {
        return Err(QueryError::EmptyRange);
    }
    Ok((from, to))
}

/// Recent `event_logs` rows, newest first, with a paging cursor.
pub fn recent(
    store: &EventLogStore,
    p: &RecentParams,
    now: UnixNanos,
) -> Result<RecentEvents, QueryError> {
    let (from, to) = range(p.from.as_deref(), p.to.as_deref(), RECENT_DEFAULT_DAYS, now)?;
    let mut q = RecentQuery::new(from, to);
    q.name = p.name.clone();
    q.name_prefix = p.name_prefix.clone();
    q.user_id = p.user_id;
    q.anonymous_user_id = p.anonymous_user_id.clone();
    q.source = p.source.clone();
    if let Some(limit) = p.limit {
        if limit == 0 || limit > MAX_RECENT_LIMIT {
            return Err(QueryError::LimitOutOfRange {
                limit,
                max: MAX_RECENT_LIMIT,
            });
        }
        q.limit = limit;
    }
    if let Some(c) = &p.before {
        q.before_cursor = Some(c.parse().map_err(QueryError::BadCursor)?);
    }
    let page = store.recent(&q)?;
    Ok(RecentEvents {
        rows: page.rows,
        next: page.next_cursor,
    })
}

/// Rows by name per UTC day.
pub fn counts(
    store: &EventLogStore,
    p: &RangeParams,
    now: UnixNanos,
) -> Result<EventCounts, QueryError> {
    let (from, to) = range(
        p.from.as_deref(),
        p.to.as_deref(),
        AGGREGATE_DEFAULT_DAYS,
        now,
    )?;
    Ok(EventCounts {
        counts: store.counts_by_name_per_day(from, to)?,
    })
}

/// Distinct users per UTC day.
pub fn users(
    store: &EventLogStore,
    p: &RangeParams,
    now: UnixNanos,
) -> Result<DailyUsers, QueryError> {
    let (from, to) = range(
        p.from.as_deref(),
        p.to.as_deref(),
        AGGREGATE_DEFAULT_DAYS,
        now,
    )?;
    Ok(DailyUsers {
        users: store.distinct_users_per_day(from, to)?,
    })
}

/// The user an erasure names: exactly one of the two ids, neither of them
/// the "no user" value.
fn erase_target(p: &EraseParams) -> Result<EraseTarget, QueryError> {
    match (p.user_id, p.anonymous_user_id.as_deref()) {
        (Some(0), None) => Err(QueryError::ZeroUserId),
        (Some(u), None) => Ok(EraseTarget::UserId(u)),
        (None, Some("")) => Err(QueryError::EmptyAnonymousUserId),
        (None, Some(a)) => Ok(EraseTarget::AnonymousUserId(a.to_owned())),
        _ => Err(QueryError::EraseNeedsOneUser),
    }
}

/// Erases one user's `event_logs` rows: hidden from every query at once,
/// removed from disk by the store's compaction (started in the background;
/// with `compact` it runs before the answer, as the offline CLI wants).
pub fn erase(store: &EventLogStore, p: &EraseParams, compact: bool) -> Result<Erased, QueryError> {
    let target = erase_target(p)?;
    let out = store.erase(target.clone())?;
    let rows_removed = if compact {
        Some(store.compact_erasures()?)
    } else {
        None
    };
    Ok(Erased {
        erased: target.to_string(),
        rows: out.rows,
        days: out.days,
        compaction: if compact {
            Compaction::Done
        } else {
            Compaction::Pending
        },
        rows_removed,
    })
}
