//! Admin-analytics queries over the `event_logs` store.
//!
//! Every query takes a half-open range `[from, to)` of event time. Days are
//! UTC days, rendered `YYYY-MM-DD`; days without rows are left out of the
//! per-day answers.
//!
//! # Costs
//!
//! | Query | Reads | Memory |
//! |---|---|---|
//! | [`EventLogStore::recent`] | days newest first; in each, the blocks the range, the filters (names, sources and user bloom of each block's summary) and the cursor leave, newest first, until `limit` rows are found and the next block is older than all of them; only the head section of a block to filter, the rest only for the rows returned; the page ends early once its rows' JSON reaches `max_bytes` (8 MiB by default) | `limit` row positions, at most `max_bytes` of JSON plus one row, a few decoded blocks |
//! | [`EventLogStore::counts_by_name_per_day`] | nothing for a day whose blocks all lie inside the range (the day's counts are the sum of its blocks' summaries); the head section of the blocks across the range's edges | the output |
//! | [`EventLogStore::distinct_users_per_day`] | nothing for a day whose blocks all lie inside the range (its aggregate); the head section of the day's blocks in the range otherwise | one day's distinct users |
//!
//! Rows of a pending erasure ([`super::erase`]) are hidden from all three:
//! a day holding some is counted from its rows until the erasure's
//! compaction has rewritten it.
//!
//! # Distinct users
//!
//! A distinct user is the user id when it is non-zero, else the anonymous
//! user id, as Sourcegraph's analytics count them. The two kinds never collide: user `5` and anonymous `"5"` are
//! two users (Sourcegraph's SQL casts both to text and would merge them).
//! The `unknown` fallback that translation gives events with neither id is
//! one anonymous id like any other, so all such events on a day count as
//! **one** user: they cannot be told apart, and counting each as a user
//! would inflate the figure without bound. Counts are exact up to 100,000
//! users per day and a HyperLogLog estimate above (standard error 0.81%,
//! see `event_logs::hll`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::block::{self, BlockMeta, Head, Ids, Rest};
use super::codec;
use super::hll::UserSet;
use super::key::{self, EventTime};
use super::store::{DayView, EventLogError, EventLogStore, View, block_err};
use crate::clock::UnixNanos;
use crate::event_logs::EventLogRow;
use crate::timestamp;

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

    fn matches(&self, head: &Head, row: usize) -> bool {
        let name = head.name(row);
        self.name.as_ref().is_none_or(|n| n == name)
            && self
                .name_prefix
                .as_ref()
                .is_none_or(|p| name.starts_with(p.as_str()))
            && self.user_id.is_none_or(|u| u == head.user_id(row))
            && self
                .anonymous_user_id
                .as_ref()
                .is_none_or(|a| a == head.anonymous_user_id(row))
            && self.source.as_ref().is_none_or(|s| s == head.source(row))
    }

    /// Whether a block may hold a matching row, from its summary alone.
    fn may_match(&self, b: &BlockMeta) -> bool {
        let s = &b.summary;
        self.name.as_ref().is_none_or(|n| {
            s.names
                .binary_search_by(|(x, _)| x.as_ref().cmp(n.as_str()))
                .is_ok()
        }) && self
            .name_prefix
            .as_ref()
            .is_none_or(|p| s.names.iter().any(|(x, _)| x.starts_with(p.as_str())))
            && self
                .source
                .as_ref()
                .is_none_or(|src| s.sources.iter().any(|x| x.as_ref() == src.as_str()))
            && self
                .user_id
                .is_none_or(|u| block::bloom_may_contain(&s.bloom, block::user_id_hash(u)))
            && self
                .anonymous_user_id
                .as_ref()
                .is_none_or(|a| block::bloom_may_contain(&s.bloom, block::anonymous_hash(a)))
    }
}

/// Where a page of [`EventLogStore::recent`] ended: the event time and id
/// of its last (oldest) row (12 bytes of time, sortable, then the id, as
/// format 2's row keys were, so its cursors still work). Opaque; its text
/// form (lower-case hex) is what the admin API hands out and takes back.
/// Stable under concurrent inserts: a page never repeats or skips a row
/// that was there when the first page was read.
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
    /// Set when the page is full: pass it as [`RecentQuery::before_cursor`] for the
    /// next page (which may turn out empty). `None` means no more rows.
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

/// A row chosen for a page: ordered by (event time, event id).
struct Pick {
    time: EventTime,
    id: String,
    day: Arc<DayView>,
    block: Arc<BlockMeta>,
    row: usize,
}

impl PartialEq for Pick {
    fn eq(&self, o: &Pick) -> bool {
        self.time == o.time && self.id == o.id
    }
}
impl Eq for Pick {}
impl PartialOrd for Pick {
    fn partial_cmp(&self, o: &Pick) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pick {
    fn cmp(&self, o: &Pick) -> std::cmp::Ordering {
        (self.time, self.id.as_bytes()).cmp(&(o.time, o.id.as_bytes()))
    }
}

/// Whether row (time, id) sorts before the cursor.
fn before(cursor: &Option<(EventTime, Vec<u8>)>, time: EventTime, ids: &Ids, row: usize) -> bool {
    match cursor {
        None => true,
        Some((ct, _)) if time != *ct => time < *ct,
        Some((_, cid)) => ids.get(row).as_bytes() < cid.as_slice(),
    }
}

fn check_range(from: UnixNanos, to: UnixNanos) -> Result<(EventTime, EventTime), EventLogError> {
    if from > to {
        return Err(EventLogError::InvertedRange { from, to });
    }
    Ok((EventTime::from(from), EventTime::from(to)))
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
        let (lo, to) = check_range(q.from, q.to)?;
        let cursor = q
            .before_cursor
            .as_ref()
            .and_then(|c| key::split_row_key(&c.0).map(|(t, id)| (t, id.to_vec())));
        // Rows at the cursor's own time may still come before it (by id).
        let (hi, hi_inclusive) = match &cursor {
            Some((ct, _)) if *ct < to => (*ct, true),
            _ => (to, false),
        };
        let in_range = |t: EventTime| t >= lo && (t < hi || (hi_inclusive && t == hi));
        let mut page = RecentPage {
            rows: Vec::new(),
            next_cursor: None,
        };
        if lo > hi || (lo == hi && !hi_inclusive) {
            return Ok(page);
        }
        let inner = &self.inner;
        let view = inner.view();
        let tombs = view.tombstones.clone();
        let mut best: BinaryHeap<Reverse<Pick>> = BinaryHeap::with_capacity(q.limit + 1);
        for dv in view.days.range(lo.day()..=hi.day()).rev().map(|(_, d)| d) {
            if best.len() == q.limit {
                break;
            }
            let mut blocks: Vec<&Arc<BlockMeta>> = dv
                .blocks
                .iter()
                .filter(|b| in_range_block(b, lo, hi, hi_inclusive) && q.may_match(b))
                .collect();
            blocks.sort_by_key(|b| Reverse(b.summary.max));
            for b in blocks {
                if best.len() == q.limit
                    && best.peek().is_some_and(|Reverse(p)| b.summary.max < p.time)
                {
                    break;
                }
                let (head, ids) = match (inner.block_head(dv, b), inner.block_ids(dv, b)) {
                    (Ok(h), Ok(i)) => (h, i),
                    (Err(e), _) | (_, Err(e)) => {
                        inner.report_damage(dv.day, b.offset, &e);
                        continue;
                    }
                };
                for row in 0..head.len() {
                    let time = head.time(row);
                    if !in_range(time)
                        || !q.matches(&head, row)
                        || !before(&cursor, time, &ids, row)
                        || tombs.hides(
                            b.summary.commit,
                            head.user_id(row),
                            head.anonymous_user_id(row),
                        )
                    {
                        continue;
                    }
                    if best.len() == q.limit && best.peek().is_some_and(|Reverse(p)| time < p.time)
                    {
                        continue;
                    }
                    best.push(Reverse(Pick {
                        time,
                        id: ids.get(row),
                        day: dv.clone(),
                        block: b.clone(),
                        row,
                    }));
                    if best.len() > q.limit {
                        best.pop();
                    }
                }
            }
        }
        let mut picks: Vec<Pick> = best.into_iter().map(|Reverse(p)| p).collect();
        picks.sort_by(|a, b| b.cmp(a));
        let mut decoded: HashMap<(u64, u64), (Arc<Head>, Rest)> = HashMap::new();
        let mut bytes = 0usize;
        for p in &picks {
            let k = (p.day.file_id, p.block.offset);
            if let std::collections::hash_map::Entry::Vacant(e) = decoded.entry(k) {
                let payload = inner.read_block(&p.day, &p.block)?;
                let head = inner.block_head(&p.day, &p.block)?;
                let rest =
                    Rest::decode(&payload, &p.block).map_err(|e| block_err(&p.day, &p.block, e))?;
                e.insert((head, rest));
            }
            let Some((head, rest)) = decoded.get(&k) else {
                continue;
            };
            let row =
                codec::row_from_fields(&p.id, &head.timestamp(p.row), &rest.fields(head, p.row))
                    .map_err(|source| EventLogError::Decode {
                        event_id: p.id.clone(),
                        source,
                    })?;
            bytes = bytes.saturating_add(json_len(&row));
            page.rows.push(row);
            if bytes >= q.max_bytes && page.rows.len() < picks.len() {
                page.next_cursor = Some(RecentCursor(key::row_key(p.time, &p.id)));
                return Ok(page);
            }
        }
        if page.rows.len() == q.limit
            && let Some(last) = picks.last()
        {
            page.next_cursor = Some(RecentCursor(key::row_key(last.time, &last.id)));
        }
        Ok(page)
    }

    /// Rows per name per UTC day in `[from, to)`, by day then name.
    pub fn counts_by_name_per_day(
        &self,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<Vec<DayNameCount>, EventLogError> {
        let (lo, hi) = check_range(from, to)?;
        let view = self.inner.view();
        let mut out = Vec::new();
        for dv in days_in(&view, lo, hi) {
            let whole = whole_day(dv, lo, hi) && !view.tombstones.may_hide_any(&dv.blocks);
            let names: BTreeMap<Arc<str>, u64> = if whole {
                dv.names.clone()
            } else {
                let mut names: BTreeMap<Arc<str>, u64> = BTreeMap::new();
                for b in dv
                    .blocks
                    .iter()
                    .filter(|b| b.summary.min < hi && b.summary.max >= lo)
                {
                    if b.summary.min >= lo && b.summary.max < hi && !view.tombstones.may_hide(b) {
                        for (n, c) in &b.summary.names {
                            *names.entry(n.clone()).or_default() += u64::from(*c);
                        }
                        continue;
                    }
                    let Some(head) = self.head_or_report(dv, b) else {
                        continue;
                    };
                    let hint: Vec<Arc<str>> =
                        b.summary.names.iter().map(|(n, _)| n.clone()).collect();
                    for r in 0..head.len() {
                        let t = head.time(r);
                        if t < lo
                            || t >= hi
                            || view.tombstones.hides(
                                b.summary.commit,
                                head.user_id(r),
                                head.anonymous_user_id(r),
                            )
                        {
                            continue;
                        }
                        let name = head.name(r);
                        let key = match hint.binary_search_by(|x| x.as_ref().cmp(name)) {
                            Ok(i) => hint.get(i).cloned().unwrap_or_else(|| Arc::from(name)),
                            Err(_) => Arc::from(name),
                        };
                        *names.entry(key).or_default() += 1;
                    }
                }
                names
            };
            let day = timestamp::day_string(dv.day);
            out.extend(
                names
                    .into_iter()
                    .filter(|(_, c)| *c > 0)
                    .map(|(name, count)| DayNameCount {
                        day: day.clone(),
                        name: name.to_string(),
                        count,
                    }),
            );
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
        let (lo, hi) = check_range(from, to)?;
        let view = self.inner.view();
        let mut out = Vec::new();
        for dv in days_in(&view, lo, hi) {
            let whole = whole_day(dv, lo, hi) && !view.tombstones.may_hide_any(&dv.blocks);
            let users = if whole {
                dv.users
            } else {
                let mut users = UserSet::default();
                for b in dv
                    .blocks
                    .iter()
                    .filter(|b| b.summary.min < hi && b.summary.max >= lo)
                {
                    let Some(head) = self.head_or_report(dv, b) else {
                        continue;
                    };
                    for r in 0..head.len() {
                        let t = head.time(r);
                        if t >= lo
                            && t < hi
                            && !view.tombstones.hides(
                                b.summary.commit,
                                head.user_id(r),
                                head.anonymous_user_id(r),
                            )
                        {
                            users.insert(head.user_key(r));
                        }
                    }
                }
                users.count()
            };
            if users > 0 {
                out.push(DayUsers {
                    day: timestamp::day_string(dv.day),
                    users,
                });
            }
        }
        Ok(out)
    }

    fn head_or_report(&self, dv: &DayView, b: &BlockMeta) -> Option<Arc<Head>> {
        match self.inner.block_head(dv, b) {
            Ok(h) => Some(h),
            Err(e) => {
                self.inner.report_damage(dv.day, b.offset, &e);
                None
            }
        }
    }
}

fn in_range_block(b: &BlockMeta, lo: EventTime, hi: EventTime, hi_inclusive: bool) -> bool {
    b.summary.max >= lo && (b.summary.min < hi || (hi_inclusive && b.summary.min == hi))
}

/// The days with blocks in `[lo, hi)`, oldest first.
fn days_in(view: &View, lo: EventTime, hi: EventTime) -> impl Iterator<Item = &Arc<DayView>> {
    view.days
        .range(lo.day()..=hi.day())
        .map(|(_, d)| d)
        .filter(move |d| d.overlaps(lo, hi))
}

/// Whether every block of the day lies inside `[lo, hi)`.
fn whole_day(dv: &DayView, lo: EventTime, hi: EventTime) -> bool {
    dv.blocks
        .iter()
        .all(|b| b.summary.min >= lo && b.summary.max < hi)
}
