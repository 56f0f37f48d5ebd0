//! Maintenance: retention, sealing, the quota, the dedup filter's upkeep,
//! index snapshots, and the background thread that runs the periodic part.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::block::{BlockMeta, Head};
use super::cuckoo::{Cuckoo, TARGET_LOAD};
use super::idx::{self, IdxWrite};
use super::key::EventTime;
use super::rewrite::{Decision, RewriteSpec};
use super::store::{
    DayView, EventLogError, EventLogStore, Inner, PROTECTED_NEWEST, SEAL_AFTER, SNAPSHOT_INTERVAL,
    SYNC_INTERVAL, View,
};
use super::write::Writer;
use crate::clock::UnixNanos;
use crate::timestamp;

/// The file of the dedup filter.
pub(crate) const CUCKOO_FILE: &str = "sealed.ids";

/// Wakes and stops the background thread.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    state: Mutex<(bool, bool)>,
    cv: Condvar,
}

impl Signal {
    fn wait(&self, timeout: Duration) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !s.0 && !s.1 {
            s = self
                .cv
                .wait_timeout(s, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        s.1 = false;
        s.0
    }

    fn set(&self, stop: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if stop {
            s.0 = true;
        }
        s.1 = true;
        self.cv.notify_all();
    }
}

/// The store's background thread: fdatasyncs the day files written in the
/// last [`SYNC_INTERVAL`], saves the indexes of changed days and the dedup
/// filter every [`SNAPSHOT_INTERVAL`], runs pending erasure compactions and
/// removes the ids of dropped days from the dedup filter.
#[derive(Debug)]
pub(crate) struct Background {
    inner: Arc<Inner>,
    handle: Option<JoinHandle<()>>,
}

impl Background {
    pub(crate) fn start(inner: Arc<Inner>) -> std::io::Result<Background> {
        let i = inner.clone();
        let handle = std::thread::Builder::new()
            .name("telespool-event-logs".into())
            .spawn(move || run(&i))?;
        Ok(Background {
            inner,
            handle: Some(handle),
        })
    }

    #[cfg(test)]
    pub(crate) fn stop_without_saving(self) {
        self.stop();
    }

    pub(crate) fn stop(mut self) {
        self.inner.signal.set(true);
        if let Some(h) = self.handle.take()
            && h.join().is_err()
        {
            tracing::error!("the event_logs background thread panicked");
        }
    }
}

fn run(inner: &Inner) {
    let mut last_snapshot = Instant::now();
    loop {
        if inner.signal.wait(SYNC_INTERVAL) {
            return;
        }
        inner.sync_dirty();
        if last_snapshot.elapsed() >= SNAPSHOT_INTERVAL {
            inner.snapshot_open_days(false);
            let mut w = inner.writer();
            inner.persist_cuckoo(&mut w);
            drop(w);
            last_snapshot = Instant::now();
        }
        if !inner.view().tombstones.is_empty()
            && inner
                .background_compaction
                .load(std::sync::atomic::Ordering::SeqCst)
            && let Err(e) = inner.compact_erasures()
        {
            tracing::error!(error = %e, "event_logs erasure compaction failed; retried in a moment");
        }
        inner.remove_stale_ids();
    }
}

impl Inner {
    pub(crate) fn wake_background(&self) {
        self.signal.set(false);
    }

    /// fdatasyncs the day files written since the last call.
    pub(crate) fn sync_dirty(&self) {
        let files: Vec<_> = std::mem::take(&mut self.writer().dirty)
            .into_values()
            .collect();
        for f in files {
            if let Err(e) = f.file.sync_data() {
                tracing::warn!(path = %f.path.display(), error = %e, "event_logs fdatasync failed");
            }
        }
    }

    /// Saves the index of every open day written since its last save (all
    /// of them when `all`).
    pub(crate) fn snapshot_open_days(&self, all: bool) {
        struct Job {
            day: i64,
            file_id: u64,
            len: u64,
            tmp_len: u64,
        }
        let mut jobs = Vec::new();
        {
            let mut w = self.writer();
            let view = self.view();
            let days: Vec<i64> = w
                .open
                .iter()
                .filter(|(_, od)| od.changed || all)
                .map(|(d, _)| *d)
                .collect();
            for day in days {
                let (Some(od), Some(dv)) = (w.open.get_mut(&day), view.days.get(&day)) else {
                    continue;
                };
                od.changed = false;
                let entries = od.ids.entries();
                let refs: Vec<&BlockMeta> = dv.blocks.iter().map(|b| &**b).collect();
                let path = self.idx_path(day);
                // Written while holding the lock is what keeps the index
                // and the file in step; the temporary file is renamed
                // below, after checking the day was not rewritten.
                match idx::write_tmp(
                    &path,
                    &IdxWrite {
                        sealed: false,
                        day,
                        covered_len: od.len,
                        ids_generation: dv.ids_generation,
                        next_seq: od.next_seq,
                        max_commit: dv.max_commit(),
                        blocks: &refs,
                        users: &od.users,
                        entries: &entries,
                    },
                    false,
                ) {
                    Ok(tmp_len) => jobs.push(Job {
                        day,
                        file_id: dv.file_id,
                        len: od.len,
                        tmp_len,
                    }),
                    Err(e) => {
                        od.changed = true;
                        tracing::warn!(day = %timestamp::day_string(day), error = %e, "saving an event_logs index failed");
                    }
                }
            }
            if jobs.is_empty() {
                return;
            }
            let mut v = (*view).clone();
            for j in &jobs {
                let path = self.idx_path(j.day);
                let tmp = idx::tmp_path(&path);
                let current = v
                    .days
                    .get(&j.day)
                    .filter(|d| d.file_id == j.file_id && d.len >= j.len);
                match current {
                    Some(dv) if std::fs::rename(&tmp, &path).is_ok() => {
                        let mut nv = dv.clone_view();
                        nv.idx_len = j.tmp_len;
                        v.days.insert(j.day, Arc::new(nv));
                    }
                    _ => {
                        let _ = std::fs::remove_file(&tmp);
                    }
                }
            }
            v.retotal();
            self.publish(v);
        }
    }

    /// Removes the ids of dropped sealed days from the dedup filter.
    pub(crate) fn remove_stale_ids(&self) {
        let mut w = self.writer();
        let stale = std::mem::take(&mut w.stale);
        for idx in stale {
            match idx.entries() {
                Ok(entries) => {
                    for (h, _) in entries {
                        w.cuckoo.delete(h);
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "ids of a dropped day not removed from the dedup filter (harmless: the next rebuild drops them)");
                }
            }
            w.cuckoo_dirty = true;
        }
    }

    /// Bytes of the store's files besides day files and indexes.
    pub(crate) fn other_bytes(&self) -> u64 {
        [CUCKOO_FILE, super::erase::FILE_NAME]
            .iter()
            .filter_map(|n| std::fs::metadata(self.days_dir.join(n)).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Saves the dedup filter (with the days it covers).
    pub(crate) fn persist_cuckoo(&self, w: &mut Writer) {
        if !w.cuckoo_dirty {
            return;
        }
        let covered: Vec<(i64, u64)> = w.covered.iter().map(|(d, g)| (*d, *g)).collect();
        let path = self.days_dir.join(CUCKOO_FILE);
        let tmp = idx::tmp_path(&path);
        let written = crate::storage::owner_only::create_file(&tmp)
            .and_then(|f| w.cuckoo.write_to(&covered, f))
            .and_then(|()| std::fs::rename(&tmp, &path));
        match written {
            Ok(()) => w.cuckoo_dirty = false,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!(error = %e, "saving the event_logs dedup filter failed; it is rebuilt at the next open");
            }
        }
    }

    /// Rebuilds the dedup filter from the sealed days' indexes, with room
    /// for `more` ids (under the writer lock: open and installs use it).
    pub(crate) fn grow_cuckoo(
        &self,
        w: &mut Writer,
        view: &View,
        more: u64,
    ) -> Result<(), EventLogError> {
        let c = self.build_cuckoo(view, more, w.cuckoo.capacity())?;
        self.swap_cuckoo(w, view, c);
        Ok(())
    }

    /// A new filter holding the ids of `view`'s sealed days, with room for
    /// `more`, at least [`super::cuckoo::GROWTH`] times `capacity`. Reads
    /// only immutable index files: runs without the writer lock.
    pub(crate) fn build_cuckoo(
        &self,
        view: &View,
        more: u64,
        capacity: u64,
    ) -> Result<Cuckoo, EventLogError> {
        let sealed: u64 = view
            .days
            .values()
            .filter_map(|d| d.sealed.as_ref().map(|i| i.header.entries))
            .sum();
        let started = Instant::now();
        // Sized for what the retention will hold, as far as the days so
        // far tell (at most 4 times the ids there are), so that a store
        // filling up rebuilds its filter a few times, not every few days.
        let needed = sealed + more;
        let days = view.days.values().filter(|d| d.sealed.is_some()).count() as u64 + 1;
        let retention_days = self.config.retention.as_secs().div_ceil(86_400).max(1);
        let projected = (needed / days)
            .saturating_mul(retention_days)
            .min(needed.saturating_mul(4));
        let grown = (capacity as f64 * TARGET_LOAD * super::cuckoo::GROWTH) as u64;
        let mut c = Cuckoo::with_capacity(needed.max(projected).max(grown));
        for dv in view.days.values() {
            let Some(idx) = &dv.sealed else { continue };
            let entries = idx.entries().map_err(|e| EventLogError::Io {
                what: "reading the ids of",
                path: self.idx_path(dv.day).display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
            for (h, _) in entries {
                c.insert(h);
            }
        }
        tracing::info!(
            ids = c.len(),
            bytes = c.memory_bytes(),
            took_ms = started.elapsed().as_millis() as u64,
            "event_logs dedup filter rebuilt"
        );
        Ok(c)
    }

    /// Puts a rebuilt filter in place: it covers the days sealed in `view`
    /// (days sealed since it was built are not: callers hold the
    /// maintenance lock, which sealing needs).
    pub(crate) fn swap_cuckoo(&self, w: &mut Writer, view: &View, c: Cuckoo) {
        w.cuckoo = c;
        w.stale.clear();
        w.covered = view
            .days
            .values()
            .filter(|d| d.sealed.is_some())
            .map(|d| (d.day, d.ids_generation))
            .collect();
        w.cuckoo_dirty = true;
    }

    /// Drops a whole day (its files are removed; readers holding its
    /// handle finish reading it). Returns its rows.
    pub(crate) fn drop_day(
        &self,
        w: &mut Writer,
        view: &mut View,
        day: i64,
    ) -> Result<u64, EventLogError> {
        let Some(dv) = view.days.remove(&day) else {
            return Ok(0);
        };
        w.open.remove(&day);
        w.dirty.remove(&day);
        if let Some(idx) = &dv.sealed {
            w.stale.push(idx.clone());
            w.covered.remove(&day);
            w.cuckoo_dirty = true;
        }
        for path in [self.day_path(day), self.idx_path(day)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(EventLogError::io("removing", &path, e)),
            }
        }
        view.retotal();
        Ok(dv.rows)
    }

    /// Evicts the oldest rows until the store is below 95% of its quota:
    /// whole days first, then blocks of the oldest day, oldest first, never
    /// a block holding a row of the newest hour. Called by writers past
    /// the quota.
    pub(crate) fn enforce_quota(&self, w: &mut Writer) -> Result<(), EventLogError> {
        let now = self.clock.now();
        let protect = EventTime::from(now.minus(PROTECTED_NEWEST));
        let target = self.config.quota_bytes / 100 * 95;
        let mut v = (*self.view()).clone();
        let mut evicted = 0u64;
        let mut stuck = false;
        while v.bytes > target {
            let Some(dv) = v.days.values().next().cloned() else {
                break;
            };
            if dv.max_time().is_none_or(|m| m < protect) {
                evicted += self.drop_day(w, &mut v, dv.day)?;
                continue;
            }
            let mut old: Vec<&Arc<BlockMeta>> = dv
                .blocks
                .iter()
                .filter(|b| b.summary.max < protect)
                .collect();
            old.sort_by_key(|b| b.summary.max);
            let need = v.bytes - target;
            let mut freed = 0u64;
            let mut chosen = std::collections::HashSet::new();
            for b in old {
                if freed >= need {
                    break;
                }
                freed += u64::from(b.frame_len);
                chosen.insert(b.offset);
            }
            if chosen.is_empty() {
                stuck = true;
                break;
            }
            let decide = |m: &BlockMeta| {
                if chosen.contains(&m.offset) {
                    Decision::Drop
                } else {
                    Decision::KeepRaw
                }
            };
            let keep = |_: &BlockMeta, _: &Head, _: usize| true;
            let rw = self.rewrite(
                &dv,
                &RewriteSpec {
                    decide: &decide,
                    keep_row: &keep,
                    merge: false,
                },
            )?;
            evicted += rw.removed_rows;
            self.install(w, &mut v, rw, false)?;
            break;
        }
        v.retotal();
        self.publish(v.clone());
        if evicted > 0 {
            metrics::counter!("telespool_event_logs_evicted_rows_total").increment(evicted);
            tracing::warn!(
                rows = evicted,
                quota_bytes = self.config.quota_bytes,
                "event_logs past its quota: oldest rows evicted"
            );
        }
        if stuck && v.bytes > self.config.quota_bytes {
            if !w.quota_warned {
                w.quota_warned = true;
                tracing::warn!(
                    bytes = v.bytes,
                    quota_bytes = self.config.quota_bytes,
                    "event_logs past its quota with only the newest hour left: not evicted; raise --event-logs-quota"
                );
            }
        } else {
            w.quota_warned = false;
        }
        Ok(())
    }

    /// What open needs saved: indexes of changed days, the filter.
    pub(crate) fn save_for_close(&self) {
        self.remove_stale_ids();
        self.sync_dirty();
        self.snapshot_open_days(false);
        let mut w = self.writer();
        self.persist_cuckoo(&mut w);
    }

    /// Seals day `day`: its blocks are merged into full blocks sorted by
    /// time (rows of pending erasures left out), its index written and
    /// fsynced, its ids moved into the filter. Skipped if the day is
    /// written meanwhile.
    fn seal(&self, day: i64) -> Result<bool, EventLogError> {
        let view = self.view();
        let Some(dv) = view.days.get(&day).cloned() else {
            return Ok(false);
        };
        let tombs = view.tombstones.clone();
        let decide = |m: &BlockMeta| {
            if m.summary.rows as usize >= super::block::MAX_BLOCK_ROWS / 2 && !tombs.may_hide(m) {
                Decision::KeepRaw
            } else {
                Decision::Rows
            }
        };
        let keep = |m: &BlockMeta, head: &Head, r: usize| {
            !tombs.hides(m.summary.commit, head.user_id(r), head.anonymous_user_id(r))
        };
        let rw = self.rewrite(
            &dv,
            &RewriteSpec {
                decide: &decide,
                keep_row: &keep,
                merge: true,
            },
        )?;
        // Growing the filter reads every sealed day's ids: done before
        // taking the writer lock, so that inserts do not wait for it.
        let more = rw.entries.len() as u64;
        let capacity = {
            let w = self.writer();
            (!w.cuckoo.has_room_for(more)).then(|| w.cuckoo.capacity())
        };
        let grown = match capacity {
            Some(cap) => Some(self.build_cuckoo(&self.view(), more, cap)?),
            None => None,
        };
        let mut w = self.writer();
        let mut v = (*self.view()).clone();
        if let Some(c) = grown {
            self.swap_cuckoo(&mut w, &v, c);
        }
        let installed = self.install(&mut w, &mut v, rw, true)?;
        if installed {
            v.retotal();
            self.publish(v);
            self.persist_cuckoo(&mut w);
        }
        Ok(installed)
    }
}

impl EventLogStore {
    /// Retention and upkeep, run by the cleanup task:
    ///
    /// - days that ended before `now - retention` are dropped whole (their
    ///   files removed: O(1) per day);
    /// - the day that holds `now - retention` is rewritten without its rows
    ///   before it (only blocks that hold such rows are decoded);
    /// - days that ended [`SEAL_AFTER`] ago are sealed;
    /// - the dedup filter is saved.
    ///
    /// Returns how many rows were removed. Once a row has expired its id is
    /// forgotten: a retry arriving after that is stored again. Rows are
    /// kept by event time, not arrival time.
    pub fn expire(&self, now: UnixNanos) -> Result<u64, EventLogError> {
        let inner = &self.inner;
        let cutoff = EventTime::from(now.minus(inner.config.retention));
        let _span =
            tracing::info_span!("event_logs_expire", cutoff = %cutoff.to_unix_nanos()).entered();
        let m = inner.maint();
        let mut removed = 0u64;
        {
            let mut w = inner.writer();
            let mut v = (*inner.view()).clone();
            let old: Vec<i64> = v.days.range(..cutoff.day()).map(|(d, _)| *d).collect();
            for day in old {
                removed += inner.drop_day(&mut w, &mut v, day)?;
            }
            if let Some(dv) = v.days.get(&cutoff.day()).cloned()
                && dv.min_time().is_some_and(|t| t < cutoff)
            {
                let decide = |m: &BlockMeta| {
                    if m.summary.max < cutoff {
                        Decision::Drop
                    } else if m.summary.min >= cutoff {
                        Decision::KeepRaw
                    } else {
                        Decision::Rows
                    }
                };
                let keep = |_: &BlockMeta, head: &Head, r: usize| head.time(r) >= cutoff;
                let rw = inner.rewrite(
                    &dv,
                    &RewriteSpec {
                        decide: &decide,
                        keep_row: &keep,
                        merge: false,
                    },
                )?;
                removed += rw.removed_rows;
                inner.install(&mut w, &mut v, rw, false)?;
            }
            v.retotal();
            inner.publish(v);
            w.interner.prune();
        }
        drop(m);
        inner.seal_finished(now);
        // The dropped days' ids leave the dedup filter in the background
        // (meanwhile they cost a lookup at most), and the filter is saved
        // there too: dropping a day is two unlinks and a new view.
        inner.wake_background();
        if removed > 0 {
            tracing::info!(removed, "event_logs rows expired");
        }
        Ok(removed)
    }
}

impl Inner {
    /// Seals the open days that ended [`SEAL_AFTER`] before `now`.
    pub(crate) fn seal_finished(&self, now: UnixNanos) {
        let inner = self;
        let _m = inner.maint();
        let ready: Vec<i64> = {
            let w = inner.writer();
            w.open
                .keys()
                .copied()
                .filter(|&d| EventTime::day_start(d + 1).to_unix_nanos().plus(SEAL_AFTER) <= now)
                .collect()
        };
        for day in ready {
            let started = Instant::now();
            match inner.seal(day) {
                Ok(true) => {
                    tracing::info!(day = %timestamp::day_string(day), took_ms = started.elapsed().as_millis() as u64, "event_logs day sealed");
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(day = %timestamp::day_string(day), error = %e, "sealing an event_logs day failed; retried at the next pass");
                }
            }
        }
    }
}

impl EventLogStore {
    /// Memory the store holds in its own structures, in bytes, about.
    pub fn memory_bytes(&self) -> u64 {
        let m = self.memory_report();
        m.dedup_filter + m.open_days + m.summaries + m.cache
    }

    /// [`EventLogStore::memory_bytes`], by part.
    pub fn memory_report(&self) -> MemoryReport {
        let w = self.inner.writer();
        let view = self.inner.view();
        let mut open_days = 0;
        for od in w.open.values() {
            // Hash table slots (16 bytes and a control byte, at most 7/8
            // full), and 8 bytes per exact user (a sketch is 16 KiB).
            open_days += (od.ids.len() as u64 * 8 / 7).next_power_of_two() * 17
                + od.users.count().min(super::hll::EXACT_USERS as u64) * 9;
        }
        let summaries = view
            .days
            .values()
            .flat_map(|dv| dv.blocks.iter())
            .map(|b| 240 + b.summary.bloom.len() as u64 + b.summary.names.len() as u64 * 24)
            .sum();
        MemoryReport {
            dedup_filter: w.cuckoo.memory_bytes() as u64,
            open_days,
            summaries,
            cache: self.inner.cache.bytes() as u64,
        }
    }
}

/// Where the store's memory goes (see [`EventLogStore::memory_report`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryReport {
    /// The cuckoo filter of the sealed days' ids.
    pub dedup_filter: u64,
    /// Id maps and user sets of the open days.
    pub open_days: u64,
    /// Block summaries (every day's directory).
    pub summaries: u64,
    /// Decoded blocks kept (`cache_bytes` at most).
    pub cache: u64,
}

/// Days of a view, for tests: (day, sealed, blocks, rows).
#[cfg(test)]
pub(crate) fn describe(view: &View) -> std::collections::BTreeMap<i64, (bool, usize, u64)> {
    view.days
        .iter()
        .map(|(d, v)| (*d, (v.sealed.is_some(), v.blocks.len(), v.rows)))
        .collect()
}

impl DayView {
    /// Whether the day has a block a query range [from, to) touches.
    pub(crate) fn overlaps(&self, from: EventTime, to: EventTime) -> bool {
        self.blocks
            .iter()
            .any(|b| b.summary.min < to && b.summary.max >= from)
    }
}
