//! Tests of erasure: tombstones honoured by every query at once, the
//! compaction that removes the rows from disk, and both across restarts.

use super::EventLogRow;
use super::erase::EraseTarget;
use super::query::RecentQuery;
use super::store_tests::{all_rows, assert_consistent, at, open, row};
use crate::clock::UnixNanos;

/// Rows of users 1..=4 (anonymous ids `anon-N`) over three days and two
/// names; user 3's rows are also on the sealed day.
fn rows() -> Vec<EventLogRow> {
    (0..240)
        .map(|i| {
            let user = i % 4 + 1;
            row(
                &format!("e{i}"),
                &format!(
                    "2024-03-0{}T10:{:02}:{:02}Z",
                    1 + i % 3,
                    i / 60 % 60,
                    i % 60
                ),
                if i % 2 == 0 { "search" } else { "cody" },
                Some(i64::from(user)),
                Some(&format!("anon-{user}")),
                None,
            )
        })
        .collect()
}

fn year() -> (UnixNanos, UnixNanos) {
    (at("2024-01-01T00:00:00Z"), at("2025-01-01T00:00:00Z"))
}

fn everything() -> RecentQuery {
    let (from, to) = year();
    let mut q = RecentQuery::new(from, to);
    q.limit = 10_000;
    q
}

fn users_of(store: &super::EventLogStore) -> Vec<u64> {
    let (from, to) = year();
    store
        .distinct_users_per_day(from, to)
        .unwrap()
        .iter()
        .map(|d| d.users)
        .collect()
}

#[test]
fn an_erased_user_disappears_from_every_query_at_once_and_from_disk_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.pause_background_compaction();
    store.insert_batch(&rows()).unwrap();
    // One day sealed, two open: erasure works on both kinds.
    store.expire(at("2024-03-02T02:00:00Z")).unwrap();
    assert_eq!(users_of(&store), [4, 4, 4]);

    let out = store.erase(EraseTarget::UserId(3)).unwrap();
    assert_eq!((out.rows, out.days), (60, 3));
    // Hidden from every query before any compaction.
    assert!(
        store
            .recent(&everything())
            .unwrap()
            .rows
            .iter()
            .all(|r| r.user_id != 3)
    );
    assert_eq!(store.recent(&everything()).unwrap().rows.len(), 180);
    let mut q = everything();
    q.user_id = Some(3);
    assert!(store.recent(&q).unwrap().rows.is_empty());
    assert!(store.get("e2").unwrap().is_none(), "e2 is user 3's");
    assert!(store.get("e0").unwrap().is_some());
    assert_eq!(users_of(&store), [3, 3, 3]);
    let (from, to) = year();
    let total: u64 = store
        .counts_by_name_per_day(from, to)
        .unwrap()
        .iter()
        .map(|c| c.count)
        .sum();
    assert_eq!(total, 180);

    assert_eq!(store.compact_erasures().unwrap(), 60);
    assert!(store.pending_erasures().is_empty());
    // Gone from the files: every block decoded holds no row of user 3.
    let left = all_rows(&store);
    assert_eq!(left.len(), 180);
    assert!(
        left.iter()
            .all(|(_, _, r)| r.user_id != 3 && r.anonymous_user_id != "anon-3")
    );
    for f in std::fs::read_dir(dir.path().join("days")).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "{name} left behind");
    }
    assert_eq!(users_of(&store), [3, 3, 3]);
    assert_consistent(&store);
    // Its ids are forgotten, like expired ones: a retry is stored again.
    assert_eq!(store.insert_batch(&rows()[2..3]).unwrap().inserted, 1);
}

#[test]
fn rows_recorded_after_an_erasure_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.pause_background_compaction();
    store.insert_batch(&rows()).unwrap();
    store
        .erase(EraseTarget::AnonymousUserId("anon-2".into()))
        .unwrap();
    let later = row(
        "later",
        "2024-03-01T12:00:00Z",
        "search",
        Some(2),
        Some("anon-2"),
        None,
    );
    store.insert_batch(std::slice::from_ref(&later)).unwrap();
    assert_eq!(store.get("later").unwrap(), Some(later.clone()));
    store.compact_erasures().unwrap();
    assert_eq!(store.get("later").unwrap(), Some(later));
    let left = all_rows(&store);
    assert_eq!(
        left.iter()
            .filter(|(_, _, r)| r.anonymous_user_id == "anon-2")
            .count(),
        1
    );
    assert_consistent(&store);
}

#[test]
fn a_pending_erasure_survives_a_crash_and_its_compaction_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.pause_background_compaction();
    store.insert_batch(&rows()).unwrap();
    store.erase(EraseTarget::UserId(1)).unwrap();
    store.crash();
    let store = open(dir.path());
    assert_eq!(store.pending_erasures().len(), 1);
    assert!(
        store
            .recent(&everything())
            .unwrap()
            .rows
            .iter()
            .all(|r| r.user_id != 1)
    );
    // The background thread resumes the compaction; wait for it.
    let started = std::time::Instant::now();
    while !store.pending_erasures().is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "compaction never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(all_rows(&store).iter().all(|(_, _, r)| r.user_id != 1));
    assert_consistent(&store);
}

#[test]
fn erasures_that_name_no_user_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(store.erase(EraseTarget::UserId(0)).is_err());
    assert!(
        store
            .erase(EraseTarget::AnonymousUserId(String::new()))
            .is_err()
    );
    assert!(store.pending_erasures().is_empty());
}
