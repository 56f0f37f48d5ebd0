//! Admin-analytics queries over the `event_logs` store.
//!
//! Every query takes a half-open range `[from, to)` of event time and reads
//! only the `rows` keys inside it: rows are keyed by time first (see
//! [`super::store`]), so the range is one contiguous sled range, found with
//! one seek. Days are UTC days, rendered `YYYY-MM-DD`.
//!
//! # Costs
//!
//! | Query | Reads | Memory |
//! |---|---|---|
//! | [`EventLogStore::recent`] | newest first from `min(to, cursor)` until `limit` rows match, their JSON reaches `max_bytes` (8 MiB by default), or the range ends; one full decode per row returned (rows a filter refuses: only their head, without allocating) | `limit` rows, at most `max_bytes` of JSON plus one row |
//! | [`EventLogStore::counts_by_name_per_day`] | every row in the range, only its head decoded | one day's distinct names, plus the output |
//! | [`EventLogStore::distinct_users_per_day`] | every row in the range, only its head decoded | one day's distinct users, plus the output |
//!
//! A selective filter on `recent` over a long range can read the whole
//! range to fill a page: narrow the range for interactive use. Days without
//! rows are left out of the per-day answers.
//!
//! # Distinct users
//!
//! A distinct user is the user id when it is non-zero, else the anonymous
//! user id, as Sourcegraph's analytics count them (DESIGN.md, "Defaults at
//! a glance"). The two kinds never collide: user `5` and anonymous `"5"` are
//! two users (Sourcegraph's SQL casts both to text and would merge them).
//! The `unknown` fallback that translation gives events with neither id is
//! one anonymous id like any other, so all such events on a day count as
//! **one** user: they cannot be told apart, and counting each as a user
//! would inflate the figure without bound.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::codec::RowHead;
use super::key::{self, EventTime, ROWS};
use super::store::{EventLogError, EventLogStore, decode_head, decode_row};
use crate::clock::UnixNanos;
use crate::event_logs::EventLogRow;

/// Default [`RecentQuery::limit`].
pub const DEFAULT_RECENT_LIMIT: usize = 100;
/// Largest [`RecentQuery::limit`].
pub const MAX_RECENT_LIMIT: usize = 10_000;
/// Default [`RecentQuery::max_bytes`]: a page ends once its rows pass
/// 8 MiB of JSON (rows can hold up to an event's size of private metadata,
/// so 10,000 of them are not a bounded answer).
pub const DEFAULT_RECENT_MAX_BYTES: usize = 8 * 1024 * 1024;

/// A query for the most recent rows in a time range, newest first. Filters
/// combine with "and".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentQuery {
    /// Earliest event time included.
    pub from: UnixNanos,
    /// Event time excluded, and everything after it.
    pub to: UnixNanos,
    /// Exact `name` (`feature.action`).
    pub name: Option<String>,
    /// `name` starts with this (a feature is `"feature."`).
    pub name_prefix: Option<String>,
    /// Exact `user_id`.
    pub user_id: Option<i64>,
    /// Exact `anonymous_user_id`.
    pub anonymous_user_id: Option<String>,
    /// Exact `source` (client name, or `BACKEND`).
    pub source: Option<String>,
    /// Most rows returned, 1 to [`MAX_RECENT_LIMIT`]. Default
    /// [`DEFAULT_RECENT_LIMIT`].
    pub limit: usize,
    /// Continue after the page that returned this cursor.
    pub before_cursor: Option<RecentCursor>,
    /// The page ends (with a cursor) after the row that takes its rows'
    /// JSON to this many bytes or more; a page holds at least one row.
    /// Default [`DEFAULT_RECENT_MAX_BYTES`].
    pub max_bytes: usize,
}

impl RecentQuery {
    /// All rows in `[from, to)`, the default limit, no filter.
    pub fn new(from: UnixNanos, to: UnixNanos) -> RecentQuery {
        RecentQuery {
            from,
            to,
            name: None,
            name_prefix: None,
            user_id: None,
            anonymous_user_id: None,
            source: None,
            limit: DEFAULT_RECENT_LIMIT,
            before_cursor: None,
            max_bytes: DEFAULT_RECENT_MAX_BYTES,
        }
    }

    fn has_filter(&self) -> bool {
        self.name.is_some()
            || self.name_prefix.is_some()
            || self.user_id.is_some()
            || self.anonymous_user_id.is_some()
            || self.source.is_some()
    }

    fn matches(&self, row: &RowHead<'_>) -> bool {
        self.name.as_ref().is_none_or(|n| n == row.name)
            && self
                .name_prefix
                .as_ref()
                .is_none_or(|p| row.name.starts_with(p.as_str()))
            && self.user_id.is_none_or(|u| u == row.user_id)
            && self
                .anonymous_user_id
                .as_ref()
                .is_none_or(|a| a == row.anonymous_user_id)
            && self.source.as_ref().is_none_or(|s| s == row.source)
    }
}

/// Where a page of [`EventLogStore::recent`] ended: the key of its last
/// (oldest) row. Opaque; its text form (lower-case hex) is what the admin
/// API hands out and takes back. Stable under concurrent inserts: a page
/// never repeats or skips a row that was there when the first page was read.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecentCursor(Vec<u8>);

impl fmt::Display for RecentCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&key::hex(&self.0))
    }
}

/// A cursor text that [`EventLogStore::recent`] did not hand out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("paging cursor {cursor:?} is not one this store issued")]
pub struct ParseCursorError {
    /// The text given (cut to 64 characters).
    pub cursor: String,
}

impl FromStr for RecentCursor {
    type Err = ParseCursorError;

    fn from_str(s: &str) -> Result<RecentCursor, ParseCursorError> {
        match key::unhex(s) {
            Some(bytes) if key::split_row_key(&bytes).is_some() => Ok(RecentCursor(bytes)),
            _ => Err(ParseCursorError {
                cursor: s.chars().take(64).collect(),
            }),
        }
    }
}

impl Serialize for RecentCursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RecentCursor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RecentCursor, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One page of [`EventLogStore::recent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentPage {
    /// Matching rows, newest first.
    pub rows: Vec<EventLogRow>,
    /// Set when the page is full (`limit` rows, or `max_bytes` of them): pass
    /// it as [`RecentQuery::before_cursor`] for the next page (which may turn
    /// out empty). `None` means no more rows.
    pub next_cursor: Option<RecentCursor>,
}

/// Length of a row's JSON, counted without keeping it.
fn json_len(row: &EventLogRow) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing into a counter cannot fail; a row that could not be
    // serialized would fail the answer anyway.
    let _ = serde_json::to_writer(&mut count, row);
    count.0
}

/// Rows with one name on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayNameCount {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The row name (`feature.action`).
    pub name: String,
    /// Rows with that name on that day.
    pub count: u64,
}

/// Distinct users on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayUsers {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Distinct users (see the module documentation).
    pub users: u64,
}

/// Who a row counts as, for distinct users.
#[derive(PartialEq, Eq, Hash)]
enum UserKey {
    Id(i64),
    Anonymous(String),
}

impl EventLogStore {
    /// The newest rows in `[q.from, q.to)` (before `q.before_cursor`, when set)
    /// that match every filter, at most `q.limit`.
    pub fn recent(&self, q: &RecentQuery) -> Result<RecentPage, EventLogError> {
        if q.limit == 0 || q.limit > MAX_RECENT_LIMIT {
            return Err(EventLogError::LimitOutOfRange {
                limit: q.limit,
                max: MAX_RECENT_LIMIT,
            });
        }
        let (lo, mut hi) = bounds(q.from, q.to)?;
        if let Some(RecentCursor(c)) = &q.before_cursor
            && *c < hi
        {
            hi.clone_from(c);
        }
        let mut page = RecentPage {
            rows: Vec::new(),
            next_cursor: None,
        };
        if lo >= hi {
            return Ok(page);
        }
        let filtered = q.has_filter();
        let mut bytes = 0usize;
        let (lo, hi) = (key::spaced(ROWS, &lo), key::spaced(ROWS, &hi));
        for kv in self.rows_range(&lo, &hi).rev() {
            let (k, v) = kv?;
            let row_key = k.get(1..).unwrap_or_default();
            if filtered && !q.matches(&decode_head(row_key, &v)?) {
                continue;
            }
            let row = decode_row(row_key, &v)?;
            bytes = bytes.saturating_add(json_len(&row));
            page.rows.push(row);
            if page.rows.len() == q.limit || bytes >= q.max_bytes {
                page.next_cursor = Some(RecentCursor(row_key.to_vec()));
                break;
            }
        }
        Ok(page)
    }

    /// Rows per name per UTC day in `[from, to)`, by day then name.
    pub fn counts_by_name_per_day(
        &self,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<Vec<DayNameCount>, EventLogError> {
        let mut out = Vec::new();
        let mut day: Option<i64> = None;
        let mut names: BTreeMap<String, u64> = BTreeMap::new();
        let flush = |day: i64, names: &mut BTreeMap<String, u64>, out: &mut Vec<DayNameCount>| {
            let text = key::day_string(day);
            out.extend(
                std::mem::take(names)
                    .into_iter()
                    .map(|(name, count)| DayNameCount {
                        day: text.clone(),
                        name,
                        count,
                    }),
            );
        };
        self.scan_days(from, to, |row_day, head| {
            if day != Some(row_day) {
                if let Some(d) = day {
                    flush(d, &mut names, &mut out);
                }
                day = Some(row_day);
            }
            match names.get_mut(head.name) {
                Some(n) => *n += 1,
                None => {
                    names.insert(head.name.to_owned(), 1);
                }
            }
        })?;
        if let Some(d) = day {
            flush(d, &mut names, &mut out);
        }
        Ok(out)
    }

    /// Distinct users per UTC day in `[from, to)`, by day. A user is the
    /// user id when non-zero, else the anonymous user id (see the module
    /// documentation for `unknown`).
    pub fn distinct_users_per_day(
        &self,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<Vec<DayUsers>, EventLogError> {
        let mut out = Vec::new();
        let mut day: Option<i64> = None;
        let mut users: HashSet<UserKey> = HashSet::new();
        self.scan_days(from, to, |row_day, head| {
            if day != Some(row_day) {
                if let Some(d) = day {
                    out.push(DayUsers {
                        day: key::day_string(d),
                        users: users.len() as u64,
                    });
                    users.clear();
                }
                day = Some(row_day);
            }
            users.insert(if head.user_id != 0 {
                UserKey::Id(head.user_id)
            } else {
                UserKey::Anonymous(head.anonymous_user_id.to_owned())
            });
        })?;
        if let Some(d) = day {
            out.push(DayUsers {
                day: key::day_string(d),
                users: users.len() as u64,
            });
        }
        Ok(out)
    }

    /// Calls `each` with the UTC day and head of every row in `[from, to)`,
    /// oldest first.
    fn scan_days(
        &self,
        from: UnixNanos,
        to: UnixNanos,
        mut each: impl FnMut(i64, RowHead<'_>),
    ) -> Result<(), EventLogError> {
        let (lo, hi) = bounds(from, to)?;
        let (lo, hi) = (key::spaced(ROWS, &lo), key::spaced(ROWS, &hi));
        for kv in self.rows_range(&lo, &hi) {
            let (k, v) = kv?;
            let row_key = k.get(1..).unwrap_or_default();
            let (time, _) = key::split_row_key(row_key).ok_or_else(|| EventLogError::BadEntry {
                tree: "rows",
                key_hex: key::hex(&k),
                len: k.len(),
            })?;
            each(time.day(), decode_head(row_key, &v)?);
        }
        Ok(())
    }
}

/// The row key range of `[from, to)` (without the key space byte): a row at exactly `from` sorts at
/// or after `prefix(from)`, one at `to` after `prefix(to)`, so both bounds
/// are bare time prefixes.
fn bounds(from: UnixNanos, to: UnixNanos) -> Result<(Vec<u8>, Vec<u8>), EventLogError> {
    if from > to {
        return Err(EventLogError::InvertedRange { from, to });
    }
    Ok((
        EventTime::from(from).prefix().to_vec(),
        EventTime::from(to).prefix().to_vec(),
    ))
}
