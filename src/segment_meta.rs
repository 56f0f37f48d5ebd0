//! What is known about one segment: its record range, size, seal, and
//! which of its records are resolved.
//!
//! A record is *resolved* once nothing more needs to be done for it: the
//! gateway acknowledged it, it was moved to the dead-letter store, it was
//! lost to corruption, or the quota policy dropped it. The *resolved
//! watermark* (older docs say "exported-id watermark"; it counts every
//! resolution, not only exports) is the highest id such that every record up
//! to it is resolved; acks arrive partial and out of order, so the ids
//! resolved above it are kept as a set of ranges, which collapses into the
//! watermark as the gaps fill.
//!
//! These types sit below both the log (whose segment table holds one
//! [`SegmentMeta`] per segment and updates it as groups become durable) and
//! the index (which persists them); neither owns them.

use crate::clock::UnixNanos;
use crate::ids::{RecordId, SegmentId};

/// How a record was resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// The gateway acknowledged it.
    Acked,
    /// It was moved to the dead-letter store.
    DeadLettered,
    /// It was lost to corruption (and reported).
    Lost,
    /// The quota policy dropped it (and counted it).
    Dropped,
}

impl Resolution {
    /// The word used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Acked => "acked",
            Resolution::DeadLettered => "dead_lettered",
            Resolution::Lost => "lost",
            Resolution::Dropped => "dropped",
        }
    }
}

/// Records resolved by each outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolvedCounts {
    /// Acknowledged by the gateway.
    pub acked: u64,
    /// Moved to the dead-letter store.
    pub dead_lettered: u64,
    /// Lost to corruption.
    pub lost: u64,
    /// Dropped by the quota policy.
    pub dropped: u64,
}

impl ResolvedCounts {
    fn add(&mut self, how: Resolution, n: u64) {
        let c = match how {
            Resolution::Acked => &mut self.acked,
            Resolution::DeadLettered => &mut self.dead_lettered,
            Resolution::Lost => &mut self.lost,
            Resolution::Dropped => &mut self.dropped,
        };
        *c = c.saturating_add(n);
    }
}

/// A set of u64 as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<(u64, u64)>,
}

impl RangeSet {
    /// Builds a set from ranges, normalising them.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u64, u64)>) -> RangeSet {
        let mut s = RangeSet::default();
        for (a, b) in ranges {
            s.insert_range(a, b);
        }
        s
    }

    /// The ranges, sorted.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Whether the set holds `v`.
    pub fn contains(&self, v: u64) -> bool {
        match self.ranges.binary_search_by(|&(a, _)| a.cmp(&v)) {
            Ok(_) => true,
            Err(0) => false,
            Err(i) => self.ranges[i - 1].1 >= v,
        }
    }

    /// Number of values in the set (saturating).
    pub fn len(&self) -> u64 {
        self.ranges.iter().fold(0u64, |n, &(a, b)| {
            n.saturating_add((b - a).saturating_add(1))
        })
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The smallest value, if any.
    pub fn first(&self) -> Option<u64> {
        self.ranges.first().map(|r| r.0)
    }

    /// Adds `[a, b]`; returns how many values were new.
    pub fn insert_range(&mut self, a: u64, b: u64) -> u64 {
        if a > b {
            return 0;
        }
        // First range that could touch [a, b]: ends at or after a - 1.
        let lo = self
            .ranges
            .partition_point(|&(_, e)| e.saturating_add(1) < a);
        // Ranges starting at or before b + 1 touch it too.
        let hi = self
            .ranges
            .partition_point(|&(s, _)| s <= b.saturating_add(1));
        let mut new = (b - a).saturating_add(1);
        let (mut na, mut nb) = (a, b);
        for &(s, e) in &self.ranges[lo..hi] {
            let overlap_start = s.max(a);
            let overlap_end = e.min(b);
            if overlap_start <= overlap_end {
                new = new.saturating_sub((overlap_end - overlap_start).saturating_add(1));
            }
            na = na.min(s);
            nb = nb.max(e);
        }
        self.ranges.splice(lo..hi, [(na, nb)]);
        new
    }

    /// Adds `v`; returns whether it was new.
    pub fn insert(&mut self, v: u64) -> bool {
        self.insert_range(v, v) == 1
    }

    /// Removes every value `> v`.
    pub fn remove_above(&mut self, v: u64) {
        let keep = self.ranges.partition_point(|&(s, _)| s <= v);
        self.ranges.truncate(keep);
        if let Some(last) = self.ranges.last_mut()
            && last.1 > v
        {
            last.1 = v;
        }
    }

    /// Removes every value `<= v`.
    pub fn remove_through(&mut self, v: u64) {
        let keep_from = self.ranges.partition_point(|&(_, e)| e <= v);
        self.ranges.drain(..keep_from);
        if let Some(first) = self.ranges.first_mut()
            && first.0 <= v
        {
            first.0 = v.saturating_add(1);
        }
    }
}

/// Everything the index keeps about one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentMeta {
    /// The segment.
    pub id: SegmentId,
    /// Its first record id.
    pub first_id: RecordId,
    /// Its last durable record id; `None` while empty.
    pub last_id: Option<RecordId>,
    /// File length, header included.
    pub bytes: u64,
    /// When it was created.
    pub created: UnixNanos,
    /// Whether it is sealed (no more appends).
    pub sealed: bool,
    /// When it became sealed with every record resolved.
    pub fully_resolved_at: Option<UnixNanos>,
    /// Every record id `<=` the watermark is resolved.
    pub watermark: RecordId,
    /// Resolved ids above the watermark.
    pub resolved_above: RangeSet,
    /// Records resolved, by outcome.
    pub counts: ResolvedCounts,
}

impl SegmentMeta {
    /// A new, empty segment.
    pub fn new(id: SegmentId, first_id: RecordId, created: UnixNanos, bytes: u64) -> SegmentMeta {
        SegmentMeta {
            id,
            first_id,
            last_id: None,
            bytes,
            created,
            sealed: false,
            fully_resolved_at: None,
            watermark: first_id.prev(),
            resolved_above: RangeSet::default(),
            counts: ResolvedCounts::default(),
        }
    }

    /// Number of record ids the segment spans.
    pub fn records(&self) -> u64 {
        match self.last_id {
            Some(last) if last >= self.first_id => (last.0 - self.first_id.0).saturating_add(1),
            _ => 0,
        }
    }

    /// Whether `id` belongs to the segment's range.
    pub fn holds(&self, id: RecordId) -> bool {
        id >= self.first_id && self.last_id.is_some_and(|last| id <= last)
    }

    /// Whether `id` is resolved.
    pub fn is_resolved(&self, id: RecordId) -> bool {
        id <= self.watermark || self.resolved_above.contains(id.0)
    }

    /// Records not yet resolved.
    pub fn unresolved(&self) -> u64 {
        let Some(last) = self.last_id else { return 0 };
        if self.watermark >= last {
            return 0;
        }
        let span = last.0 - self.watermark.0.max(self.first_id.0.saturating_sub(1));
        span.saturating_sub(self.resolved_above.len())
    }

    /// Whether every record is resolved.
    pub fn all_resolved(&self) -> bool {
        self.unresolved() == 0
    }

    /// The first unresolved record id, if any.
    pub fn first_unresolved(&self) -> Option<RecordId> {
        let last = self.last_id?;
        let next = self.watermark.next();
        (next <= last).then_some(next)
    }

    /// The unresolved ids in `[a, b]`, as inclusive ranges (linear in the
    /// number of resolved ranges, not in the span).
    pub fn unresolved_ranges(&self, a: RecordId, b: RecordId) -> Vec<(RecordId, RecordId)> {
        let mut out = Vec::new();
        let mut from = a.0.max(self.watermark.0.saturating_add(1));
        let to = b.0;
        for &(s, e) in self.resolved_above.ranges() {
            if from > to {
                break;
            }
            if e < from {
                continue;
            }
            if s > from {
                out.push((RecordId(from), RecordId((s - 1).min(to))));
            }
            from = from.max(e.saturating_add(1));
            if e == u64::MAX {
                return out;
            }
        }
        if from <= to {
            out.push((RecordId(from), RecordId(to)));
        }
        out
    }

    /// Makes the entry consistent after loading it from the index (which
    /// may be damaged or hostile): the watermark is kept inside
    /// `[first_id - 1, last_id]` and the resolved ids above it inside the
    /// segment's range. Returns whether anything changed.
    pub fn sanitize(&mut self) -> bool {
        let before = self.clone();
        let floor = self.first_id.prev();
        let ceiling = self.last_id.unwrap_or(floor).max(floor);
        self.watermark = self.watermark.clamp(floor, ceiling);
        self.resolved_above.remove_through(self.watermark.0);
        self.resolved_above.remove_above(ceiling.0);
        self.advance();
        *self != before
    }

    /// Resolves the records `[a, b]` (clamped to the segment) as `how`;
    /// returns how many were newly resolved. Marks the segment fully
    /// resolved at `now` if it is sealed and nothing is left.
    pub fn resolve_range(
        &mut self,
        a: RecordId,
        b: RecordId,
        how: Resolution,
        now: UnixNanos,
    ) -> u64 {
        let Some(last) = self.last_id else { return 0 };
        let a = a.max(self.watermark.next()).max(self.first_id);
        let b = b.min(last);
        if a > b {
            return 0;
        }
        let new = self.resolved_above.insert_range(a.0, b.0);
        if new > 0 {
            self.counts.add(how, new);
            self.advance();
            self.mark_if_fully_resolved(now);
        }
        new
    }

    fn advance(&mut self) {
        if let Some(&(s, e)) = self.resolved_above.ranges().first()
            && s == self.watermark.0.saturating_add(1)
        {
            self.watermark = RecordId(e);
            self.resolved_above.remove_through(e);
        }
    }

    /// Records `now` as the fully-resolved time if the segment is sealed,
    /// all its records are resolved, and no time was recorded yet.
    pub fn mark_if_fully_resolved(&mut self, now: UnixNanos) {
        if self.sealed && self.all_resolved() && self.fully_resolved_at.is_none() {
            self.fully_resolved_at = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn out_of_order_resolution_moves_the_watermark_when_the_gap_fills() {
        let mut m = SegmentMeta::new(SegmentId(1), RecordId(10), UnixNanos(0), 0);
        m.last_id = Some(RecordId(14));
        m.sealed = true;
        assert_eq!(
            m.resolve_range(RecordId(12), RecordId(13), Resolution::Acked, UnixNanos(1)),
            2
        );
        assert_eq!(m.watermark, RecordId(9));
        assert_eq!(m.unresolved(), 3);
        assert_eq!(
            m.resolve_range(RecordId(10), RecordId(11), Resolution::Lost, UnixNanos(2)),
            2
        );
        assert_eq!(m.watermark, RecordId(13));
        assert_eq!(m.first_unresolved(), Some(RecordId(14)));
        assert_eq!(
            m.resolve_range(RecordId(12), RecordId(12), Resolution::Acked, UnixNanos(3)),
            0
        );
        assert_eq!(m.fully_resolved_at, None);
        m.resolve_range(
            RecordId(14),
            RecordId(14),
            Resolution::Dropped,
            UnixNanos(4),
        );
        assert_eq!(m.fully_resolved_at, Some(UnixNanos(4)));
        assert_eq!(
            m.counts,
            ResolvedCounts {
                acked: 2,
                dead_lettered: 0,
                lost: 2,
                dropped: 1
            }
        );
    }

    #[test]
    fn unresolved_ranges_are_the_gaps_between_resolved_ids() {
        let mut m = SegmentMeta::new(SegmentId(1), RecordId(10), UnixNanos(0), 0);
        m.last_id = Some(RecordId(30));
        m.resolve_range(RecordId(10), RecordId(12), Resolution::Acked, UnixNanos(0));
        m.resolve_range(RecordId(15), RecordId(16), Resolution::Acked, UnixNanos(0));
        m.resolve_range(RecordId(20), RecordId(20), Resolution::Acked, UnixNanos(0));
        let r: Vec<(u64, u64)> = m
            .unresolved_ranges(RecordId(10), RecordId(25))
            .iter()
            .map(|(a, b)| (a.0, b.0))
            .collect();
        assert_eq!(r, vec![(13, 14), (17, 19), (21, 25)]);
        assert!(m.unresolved_ranges(RecordId(10), RecordId(12)).is_empty());
        // Huge spans cost nothing.
        let mut big = SegmentMeta::new(SegmentId(2), RecordId(1), UnixNanos(0), 0);
        big.last_id = Some(RecordId(u64::MAX - 1));
        assert_eq!(
            big.unresolved_ranges(RecordId(1), RecordId(u64::MAX - 1))
                .len(),
            1
        );
    }

    #[test]
    fn sanitize_keeps_a_damaged_entry_inside_its_segment() {
        let mut m = SegmentMeta::new(SegmentId(1), RecordId(10), UnixNanos(0), 0);
        m.last_id = Some(RecordId(20));
        m.watermark = RecordId(3);
        m.resolved_above = RangeSet::from_ranges([(1, 5), (15, 15), (18, u64::MAX)]);
        assert!(m.sanitize());
        assert_eq!(m.watermark, RecordId(9));
        assert_eq!(m.resolved_above.ranges(), &[(15, 15), (18, 20)]);
        assert_eq!(m.unresolved(), 7);
        assert!(!m.all_resolved());
        let mut ahead = SegmentMeta::new(SegmentId(1), RecordId(10), UnixNanos(0), 0);
        ahead.last_id = Some(RecordId(20));
        ahead.watermark = RecordId(u64::MAX);
        ahead.sanitize();
        assert_eq!(ahead.watermark, RecordId(20));
        assert!(!ahead.sanitize(), "a clean entry is left alone");
    }

    proptest! {
        #[test]
        fn range_set_behaves_like_a_set(ops in proptest::collection::vec((0u64..64, 0u64..6), 0..64), cut in 0u64..70) {
            let mut s = RangeSet::default();
            let mut model = BTreeSet::new();
            for (a, n) in ops {
                let added = s.insert_range(a, a + n);
                let before = model.len();
                model.extend(a..=a + n);
                prop_assert_eq!(added as usize, model.len() - before);
            }
            for v in 0..80 { prop_assert_eq!(s.contains(v), model.contains(&v)); }
            prop_assert_eq!(s.len() as usize, model.len());
            for w in s.ranges().windows(2) { prop_assert!(w[0].1 + 1 < w[1].0); }
            s.remove_through(cut);
            model.retain(|&v| v > cut);
            for v in 0..80 { prop_assert_eq!(s.contains(v), model.contains(&v)); }
        }

        #[test]
        fn watermark_is_the_longest_resolved_prefix(acks in proptest::collection::vec(10u64..40, 0..60)) {
            let mut m = SegmentMeta::new(SegmentId(1), RecordId(10), UnixNanos(0), 0);
            m.last_id = Some(RecordId(39));
            let mut model = BTreeSet::new();
            for a in acks {
                m.resolve_range(RecordId(a), RecordId(a), Resolution::Acked, UnixNanos(0));
                model.insert(a);
                let mut w = 9;
                while model.contains(&(w + 1)) { w += 1; }
                prop_assert_eq!(m.watermark, RecordId(w));
                prop_assert_eq!(m.unresolved() as usize, 30 - model.len());
            }
        }
    }
}
