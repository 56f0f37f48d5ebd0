//! The admin queries' parameters: HTTP query strings and CLI flags alike.

use serde::{Deserialize, Serialize};

/// Parameters of the recent-events query (`GET /v1/event-logs/recent`,
/// `telespool event-logs recent`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
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

/// Parameters of the per-day aggregates (`GET /v1/event-logs/counts` and
/// `users`, `telespool event-logs counts` and `users`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
pub struct RangeParams {
    /// Earliest event time, RFC 3339 [default: 30 days before `to`].
    #[arg(long)]
    pub from: Option<String>,
    /// Event time excluded, RFC 3339 [default: now].
    #[arg(long)]
    pub to: Option<String>,
}

/// Parameters of an erasure (`POST /v1/event-logs/erase`, `telespool
/// event-logs erase`): exactly one of the two.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
pub struct EraseParams {
    /// Erase the rows of this user id (non-zero).
    #[arg(long)]
    pub user_id: Option<i64>,
    /// Erase the rows of this anonymous user id.
    #[arg(long)]
    pub anonymous_user_id: Option<String>,
}

/// Parameters of the dead-letter listing (`GET /v1/dead-letter`,
/// `telespool dead-letter list`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
pub struct DeadLetterParams {
    /// List entries after this seq.
    #[arg(long)]
    pub after: Option<u64>,
    /// Most entries, 1 to 10000 [default: 100].
    #[arg(long)]
    pub limit: Option<usize>,
}

/// Parameters of `POST /v1/dead-letter/requeue` (`telespool dead-letter
/// requeue`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequeueParams {
    /// Most entries to requeue; `None` requeues all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}
