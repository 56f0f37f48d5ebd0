//! Tests of the store's files across crashes, damage, sealing, retention,
//! the quota, and the conversion from format 2.

use std::sync::Arc;
use std::time::Duration;

use super::EventLogRow;
use super::dayfile;
use super::key;
use super::query::RecentQuery;
use super::store::{EventLogConfig, EventLogStore};
use super::store_tests::{all_rows, assert_consistent, at, ids, open, recount, row, simple};
use crate::clock::{ManualClock, UnixNanos};

fn day_of(ts: &str) -> i64 {
    key::parse_timestamp(ts).unwrap().day()
}

fn day_file(dir: &std::path::Path, ts: &str) -> std::path::PathBuf {
    dir.join("days").join(dayfile::file_name(day_of(ts)))
}

fn idx_file(dir: &std::path::Path, ts: &str) -> std::path::PathBuf {
    dir.join("days").join(super::idx::file_name(day_of(ts)))
}

/// `n` rows on 2024-03-01 from second `from`, ids `{prefix}{i}`.
fn batch(prefix: &str, from: usize, n: usize) -> Vec<EventLogRow> {
    (from..from + n)
        .map(|i| {
            row(
                &format!("{prefix}{i}"),
                &format!(
                    "2024-03-01T{:02}:{:02}:{:02}Z",
                    i / 3600 % 24,
                    i / 60 % 60,
                    i % 60
                ),
                if i % 3 == 0 { "search" } else { "cody" },
                Some((i % 7) as i64),
                Some("anon"),
                Some("VSCODE"),
            )
        })
        .collect()
}

fn everything() -> RecentQuery {
    let mut q = RecentQuery::new(UnixNanos(i64::MIN), UnixNanos(i64::MAX));
    q.limit = 10_000;
    q
}

#[test]
fn a_flipped_byte_costs_one_block_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for b in 0..3 {
        store
            .insert_batch(&batch(&format!("b{b}-"), b * 100, 100))
            .unwrap();
    }
    let second = store.inner.view().days.values().next().unwrap().blocks[1].clone();
    drop(store);
    // Without the index the whole day is scanned at open, frame by frame.
    std::fs::remove_file(idx_file(dir.path(), "2024-03-01T00:00:00Z")).unwrap();
    let path = day_file(dir.path(), "2024-03-01T00:00:00Z");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[second.offset as usize + 200] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let store = open(dir.path());
    assert_eq!(store.damaged_blocks(), 1, "the damage is reported");
    assert_eq!(
        store.row_count().unwrap(),
        200,
        "one block of 100 rows lost"
    );
    let got = store.recent(&everything()).unwrap().rows;
    assert!(got.iter().all(|r| !r.event_id.starts_with("b1-")));
    assert_eq!(got.len(), 200);
    assert_consistent(&store);
    // The store goes on: new rows land after the good blocks.
    store.insert_batch(&batch("c-", 500, 10)).unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.row_count().unwrap(), 210);
    assert_consistent(&store);
}

#[test]
fn a_damaged_block_of_a_sealed_day_is_skipped_by_queries_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for b in 0..3 {
        store
            .insert_batch(&batch(&format!("b{b}-"), b * 3000, 3000))
            .unwrap();
    }
    store.expire(at("2024-03-03T00:00:00Z")).unwrap();
    let view = store.inner.view();
    let dv = view.days.values().next().unwrap();
    assert!(dv.sealed.is_some());
    assert!(dv.blocks.len() >= 2);
    let victim = dv.blocks[0].clone();
    drop(view);
    drop(store);
    let path = day_file(dir.path(), "2024-03-01T00:00:00Z");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[victim.offset as usize + victim.frame_len as usize - 10] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let store = open(dir.path());
    let got = store.recent(&everything()).unwrap().rows;
    assert_eq!(got.len() as u64, 9000 - victim.rows());
    assert!(store.damaged_blocks() >= 1);
    let counts = store
        .counts_by_name_per_day(at("2024-03-01T00:00:00Z"), at("2024-03-01T12:00:00Z"))
        .unwrap();
    assert!(!counts.is_empty());
}

#[test]
fn a_torn_tail_is_truncated_on_open_and_the_rows_before_it_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.insert_batch(&batch("a", 0, 50)).unwrap();
    store.insert_batch(&batch("b", 50, 50)).unwrap();
    let good_len = store.inner.view().days.values().next().unwrap().len;
    drop(store);
    // Half of a third block: the write a crash cut short.
    let dir2 = tempfile::tempdir().unwrap();
    let other = open(dir2.path());
    other.insert_batch(&batch("c", 100, 50)).unwrap();
    let frame = {
        let v = other.inner.view();
        let dv = v.days.values().next().unwrap();
        let b = &dv.blocks[0];
        std::fs::read(&dv.file.path).unwrap()[b.offset as usize..b.end() as usize].to_vec()
    };
    drop(other);
    let path = day_file(dir.path(), "2024-03-01T00:00:00Z");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&frame[..frame.len() / 2]);
    std::fs::write(&path, &bytes).unwrap();

    let store = open(dir.path());
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        good_len,
        "tail cut"
    );
    assert_eq!(store.row_count().unwrap(), 100);
    assert_eq!(store.damaged_blocks(), 0, "a torn tail is not damage");
    store.insert_batch(&batch("c", 100, 50)).unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.row_count().unwrap(), 150);
    assert_consistent(&store);
}

#[test]
fn a_day_dropped_while_a_query_reads_it_stays_readable_to_that_query() {
    let dir = tempfile::tempdir().unwrap();
    let config = EventLogConfig {
        retention: Duration::from_secs(86_400),
        ..EventLogConfig::default()
    };
    let store = Arc::new(EventLogStore::open(dir.path(), config).unwrap());
    store.insert_batch(&batch("a", 0, 2000)).unwrap();
    store
        .insert_batch(&[simple("late", "2024-03-05T00:00:00Z", "s")])
        .unwrap();
    // A reader's snapshot of the day, taken before the drop.
    let view = store.inner.view();
    let dv = view
        .days
        .get(&day_of("2024-03-01T00:00:00Z"))
        .unwrap()
        .clone();
    // Queries in a loop on another thread while the day is dropped.
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            for _ in 0..50 {
                let n = store.recent(&everything()).unwrap().rows.len();
                assert!(n == 2001 || n == 1, "{n} rows: a query saw half a day");
                let c = store
                    .counts_by_name_per_day(at("2024-03-01T00:00:00Z"), at("2024-03-02T00:00:00Z"))
                    .unwrap();
                let total: u64 = c.iter().map(|c| c.count).sum();
                assert!(total == 2000 || total == 0, "{total}");
            }
        })
    };
    assert_eq!(store.expire(at("2024-03-03T00:00:00Z")).unwrap(), 2000);
    assert!(!day_file(dir.path(), "2024-03-01T00:00:00Z").exists());
    reader.join().unwrap();
    // The unlinked file is still read through the snapshot's handle.
    let mut n = 0;
    for meta in &dv.blocks {
        let payload = store.inner.read_block(&dv, meta).unwrap();
        n += super::block::Head::decode(&payload, meta).unwrap().len();
    }
    assert_eq!(n, 2000);
    assert_eq!(store.row_count().unwrap(), 1);
    assert_consistent(&store);
}

#[test]
fn dedup_holds_across_restarts_for_open_and_sealed_days_and_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2024-03-02T12:00:00Z")));
    let first: Vec<EventLogRow> = (0..300)
        .map(|_| {
            simple(
                &uuid::Uuid::new_v4().to_string(),
                "2024-03-01T10:00:00Z",
                "s",
            )
        })
        .chain((0..300).map(|_| {
            simple(
                &uuid::Uuid::new_v4().to_string(),
                "2024-03-02T10:00:00Z",
                "s",
            )
        }))
        .collect();
    {
        let store =
            EventLogStore::open_with_clock(dir.path(), EventLogConfig::default(), clock.clone())
                .unwrap();
        store.insert_batch(&first).unwrap();
        // 2024-03-01 is sealed (its ids go to the filter), 03-02 stays open.
        store.expire(at("2024-03-02T12:00:00Z")).unwrap();
        assert_eq!(
            super::maintain::describe(&store.inner.view())
                .values()
                .filter(|d| d.0)
                .count(),
            1
        );
    }
    let store =
        EventLogStore::open_with_clock(dir.path(), EventLogConfig::default(), clock.clone())
            .unwrap();
    let again = store.insert_batch(&first).unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 600));
    // A crash: the open day's index is not saved; reopening recounts it.
    let more: Vec<EventLogRow> = (0..200)
        .map(|_| {
            simple(
                &uuid::Uuid::new_v4().to_string(),
                "2024-03-02T11:00:00Z",
                "s",
            )
        })
        .collect();
    store.insert_batch(&more).unwrap();
    store.crash();
    let store =
        EventLogStore::open_with_clock(dir.path(), EventLogConfig::default(), clock).unwrap();
    let all: Vec<EventLogRow> = first.iter().chain(&more).cloned().collect();
    let again = store.insert_batch(&all).unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 800));
    assert_consistent(&store);
}

#[test]
fn a_retry_across_utc_midnight_finds_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = simple("e-midnight", "2024-03-01T23:59:59.9Z", "s");
    store.insert_batch(std::slice::from_ref(&first)).unwrap();
    // The retry got "now" again, after midnight: another day.
    let retry = simple("e-midnight", "2024-03-02T00:00:00.1Z", "s");
    assert_eq!(
        store
            .insert_batch(std::slice::from_ref(&retry))
            .unwrap()
            .duplicates,
        1
    );
    // Still one row once the first day is sealed (the check goes through the
    // filter and the sealed day's index), and after a restart.
    store.expire(at("2024-03-02T02:00:00Z")).unwrap();
    assert!(
        store
            .inner
            .view()
            .days
            .get(&day_of("2024-03-01T00:00:00Z"))
            .unwrap()
            .sealed
            .is_some()
    );
    assert_eq!(
        store
            .insert_batch(std::slice::from_ref(&retry))
            .unwrap()
            .duplicates,
        1
    );
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.insert_batch(&[retry]).unwrap().duplicates, 1);
    assert_eq!(store.row_count().unwrap(), 1);
    assert_eq!(store.get("e-midnight").unwrap(), Some(first));
}

#[test]
fn aggregates_equal_a_recount_after_a_simulated_crash_and_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for b in 0..20 {
        // Two days, many users, small commits (some merged into one block).
        let rows: Vec<EventLogRow> = (0..30)
            .map(|i| {
                let n = b * 30 + i;
                row(
                    &format!("e{n}"),
                    &format!(
                        "2024-03-0{}T10:{:02}:{:02}Z",
                        1 + n % 2,
                        n / 60 % 60,
                        n % 60
                    ),
                    ["a", "b", "c"][n % 3],
                    Some((n % 37) as i64),
                    Some(&format!("anon{}", n % 11)),
                    None,
                )
            })
            .collect();
        store.insert_batch(&rows).unwrap();
        if b == 8 {
            store.inner.snapshot_open_days(true);
        }
    }
    let last_len = store.inner.view().days.values().next().unwrap().len;
    store.crash();
    let path = day_file(dir.path(), "2024-03-01T00:00:00Z");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[7, 0, 0, 0, 1, 2]);
    std::fs::write(&path, &bytes).unwrap();

    let store = open(dir.path());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), last_len);
    assert_eq!(store.row_count().unwrap(), 600);
    let (counts, users) = recount(&store);
    let (from, to) = (at("2024-01-01T00:00:00Z"), at("2025-01-01T00:00:00Z"));
    assert_eq!(store.counts_by_name_per_day(from, to).unwrap(), counts);
    assert_eq!(store.distinct_users_per_day(from, to).unwrap(), users);
    assert_consistent(&store);
}

#[test]
fn small_commits_are_merged_and_a_sealed_day_is_compact_and_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in (0..100).rev() {
        store
            .insert_batch(&[simple(
                &format!("e{i}"),
                &format!("2024-03-01T10:{:02}:{:02}Z", i / 60, i % 60),
                "s",
            )])
            .unwrap();
    }
    let blocks = store
        .inner
        .view()
        .days
        .values()
        .next()
        .unwrap()
        .blocks
        .len();
    assert!(
        blocks <= super::write::MERGE_RUN,
        "{blocks} blocks for 100 one-row commits"
    );
    assert_consistent(&store);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.row_count().unwrap(), 100);
    assert_consistent(&store);
    store.expire(at("2024-03-02T01:00:00Z")).unwrap();
    let v = store.inner.view();
    let dv = v.days.values().next().unwrap();
    assert!(dv.sealed.is_some());
    assert_eq!(dv.blocks.len(), 1);
    let head = store.inner.block_head(dv, &dv.blocks[0]).unwrap();
    let times: Vec<_> = (0..head.len()).map(|r| head.time(r)).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "sorted by time");
    // The file holds only the compact block now.
    assert_eq!(dv.len, dv.blocks[0].end());
    drop(v);
    assert_consistent(&store);
}

#[test]
fn a_late_write_reopens_a_sealed_day_and_dedup_still_sees_its_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.insert_batch(&batch("a", 0, 500)).unwrap();
    store.expire(at("2024-03-03T00:00:00Z")).unwrap();
    assert!(
        store
            .inner
            .view()
            .days
            .values()
            .next()
            .unwrap()
            .sealed
            .is_some()
    );
    let out = store.insert_batch(&batch("a", 400, 200)).unwrap();
    assert_eq!((out.inserted, out.duplicates), (100, 100));
    assert!(
        store
            .inner
            .view()
            .days
            .values()
            .next()
            .unwrap()
            .sealed
            .is_none()
    );
    assert_consistent(&store);
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        store.insert_batch(&batch("a", 0, 600)).unwrap().duplicates,
        600
    );
    store.expire(at("2024-03-03T00:00:00Z")).unwrap();
    assert!(
        store
            .inner
            .view()
            .days
            .values()
            .next()
            .unwrap()
            .sealed
            .is_some()
    );
    assert_eq!(
        store.insert_batch(&batch("a", 0, 600)).unwrap().duplicates,
        600
    );
    assert_consistent(&store);
}

#[test]
fn the_quota_evicts_the_oldest_rows_first_and_never_the_newest_hour() {
    let dir = tempfile::tempdir().unwrap();
    let now = at("2024-03-10T12:00:00Z");
    let clock = Arc::new(ManualClock::new(now));
    let config = EventLogConfig {
        quota_bytes: 2 * 1024 * 1024,
        ..EventLogConfig::default()
    };
    let store = EventLogStore::open_with_clock(dir.path(), config, clock).unwrap();
    // Rows of ~2 KB that do not compress: ~1,000 rows fill the quota.
    let big = |id: String, ts: String| {
        let mut r = simple(&id, &ts, "s");
        let noise: String = (0..2048)
            .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
            .collect();
        r.argument = serde_json::json!({ "noise": noise });
        r
    };
    // Five older days, 400 rows (~0.5 MB) each.
    for d in 3..8 {
        let rows: Vec<EventLogRow> = (0..400)
            .map(|i| {
                big(
                    format!("d{d}-{i}"),
                    format!("2024-03-0{d}T10:00:{:02}Z", i % 60),
                )
            })
            .collect();
        store.insert_batch(&rows).unwrap();
    }
    assert!(store.disk_bytes() <= 2 * 1024 * 1024);
    let left: Vec<i64> = store.inner.view().days.keys().copied().collect();
    assert_eq!(
        *left.last().unwrap(),
        day_of("2024-03-07T00:00:00Z"),
        "the newest day stays"
    );
    assert!(
        !left.contains(&day_of("2024-03-03T00:00:00Z")),
        "the oldest day went first"
    );
    // Today: rows every minute of the last 10 hours, then more than the
    // quota in the newest hour: the older hours go, block by block.
    for h in 2..12 {
        let rows: Vec<EventLogRow> = (0..60)
            .map(|m| big(format!("t{h}-{m}"), format!("2024-03-10T{h:02}:{m:02}:00Z")))
            .collect();
        store.insert_batch(&rows).unwrap();
    }
    for b in 0..12 {
        let rows: Vec<EventLogRow> = (0..100)
            .map(|i| {
                big(
                    format!("n{b}-{i}"),
                    format!("2024-03-10T11:{:02}:{:02}Z", 30 + b, i % 60),
                )
            })
            .collect();
        store.insert_batch(&rows).unwrap();
    }
    // Every row of the newest hour is still there; older days are gone;
    // the store is as small as the newest hour allows.
    let rows = all_rows(&store);
    let newest: Vec<_> = rows
        .iter()
        .filter(|(_, _, r)| {
            key::parse_timestamp(&r.timestamp).unwrap()
                >= key::EventTime::from(now.minus(Duration::from_secs(3600)))
        })
        .collect();
    assert_eq!(newest.len(), 60 + 12 * 100);
    assert_eq!(store.inner.view().days.len(), 1);
    assert!(rows.len() < 60 * 10 + 12 * 100, "older hours were evicted");
    assert_consistent(&store);
}

#[test]
fn a_format_2_directory_is_converted_keeping_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<EventLogRow> = (0..500)
        .map(|i| {
            let mut r = row(
                &uuid::Uuid::new_v4().to_string(),
                &format!("2024-03-0{}T10:00:{:02}.5Z", 1 + i % 3, i % 60),
                "cody",
                Some(i64::from(i) % 9),
                Some("anon"),
                Some("VSCODE"),
            );
            r.argument = serde_json::json!({"private": format!("secret {i}")});
            r
        })
        .chain([simple("text-id", "2024-03-02T00:00:00Z", "s")])
        .collect();
    super::legacy::write_format2(dir.path(), &rows);
    let store = super::store_tests::open_when_free(dir.path()).unwrap();
    assert_eq!(store.row_count().unwrap(), rows.len() as u64);
    for r in &rows {
        assert_eq!(store.get(&r.event_id).unwrap().as_ref(), Some(r));
    }
    assert!(!dir.path().join("UPGRADING").exists());
    assert!(dir.path().join("days").is_dir());
    assert_eq!(
        store.insert_batch(&rows).unwrap().duplicates,
        rows.len() as u64
    );
    assert_consistent(&store);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.row_count().unwrap(), rows.len() as u64);
}

#[test]
fn an_interrupted_conversion_starts_again_and_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<EventLogRow> = (0..50)
        .map(|i| simple(&format!("e{i}"), &format!("2024-03-01T10:00:{i:02}Z"), "s"))
        .collect();
    super::legacy::write_format2(dir.path(), &rows);
    // What a conversion killed half-way leaves: the marker and part of the
    // new days directory; the sled files untouched.
    std::fs::write(dir.path().join("UPGRADING"), "").unwrap();
    std::fs::create_dir_all(dir.path().join("days.tmp")).unwrap();
    std::fs::write(dir.path().join("days.tmp").join("2024-03-01.evl"), b"half").unwrap();
    let store = super::store_tests::open_when_free(dir.path()).unwrap();
    assert_eq!(store.row_count().unwrap(), 50);
    assert_eq!(ids(&store.recent(&everything()).unwrap().rows).len(), 50);
    assert!(!dir.path().join("days.tmp").exists());
    assert!(!dir.path().join("UPGRADING").exists());
}
