//! Tests of the dead-letter store, on real sled databases in temporary
//! directories.

use std::path::Path;

use super::store::{LIST_BYTE_BUDGET, MAX_LIST_LIMIT};
use super::*;
use crate::clock::UnixNanos;

fn letter(n: u32) -> DeadLetterEntry {
    DeadLetterEntry {
        event_id: Some(format!("e{n}")),
        event: vec![n as u8; 3],
        reason: format!("refused {n} times"),
        source: DeadLetterSource::Export,
        attempts: n,
        recorded_at: UnixNanos(1_700_000_000_000_000_000 + i64::from(n)),
        last_error: Some("stream reset".into()),
        original_size: None,
    }
}

fn open(path: &Path) -> DeadLetterStore {
    DeadLetterStore::open(path, DeadLetterConfig::default()).unwrap()
}

fn open_bounded(path: &Path, max_entries: u64) -> DeadLetterStore {
    let config = DeadLetterConfig {
        max_entries,
        ..DeadLetterConfig::default()
    };
    DeadLetterStore::open(path, config).unwrap()
}

fn attempts(letters: &[DeadLetter]) -> Vec<u32> {
    letters.iter().map(|l| l.entry.attempts).collect()
}

#[test]
fn put_list_peek_remove_and_count_keep_entries_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let unreadable = DeadLetterEntry {
        event_id: None,
        event: Vec::new(),
        reason: "body is not protobuf".into(),
        source: DeadLetterSource::Ingest,
        attempts: 0,
        recorded_at: UnixNanos(5),
        last_error: None,
        original_size: None,
    };
    let batch = [letter(1), unreadable.clone(), letter(3)];
    let put = store.put_batch(&batch).unwrap();
    assert_eq!(put.trimmed, 0);
    assert_eq!(put.seqs.len(), 3);
    assert!(put.seqs.windows(2).all(|w| w[0] < w[1]), "{:?}", put.seqs);
    assert_eq!(store.count().unwrap(), 3);

    let all = store.list(None, 10).unwrap();
    let expected: Vec<DeadLetter> = put
        .seqs
        .iter()
        .zip(batch)
        .map(|(&seq, entry)| DeadLetter { seq, entry })
        .collect();
    assert_eq!(all, expected);
    assert_eq!(store.peek(2).unwrap(), expected[..2]);
    assert_eq!(store.get(put.seqs[1]).unwrap().unwrap().entry, unreadable);

    assert_eq!(
        store
            .remove(&[put.seqs[0], DeadLetterSeq(u64::MAX)])
            .unwrap(),
        1
    );
    assert_eq!(store.count().unwrap(), 2);
    assert_eq!(store.get(put.seqs[0]).unwrap(), None);
    assert_eq!(store.peek(10).unwrap(), expected[1..]);
    assert_eq!(store.put_batch(&[]).unwrap(), PutOutcome::default());
}

#[test]
fn list_pages_after_the_last_seq_returned() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .put_batch(&(1..=7).map(letter).collect::<Vec<_>>())
        .unwrap();
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = store.list(after, 3).unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        seen.extend(attempts(&page));
    }
    assert_eq!(seen, [1, 2, 3, 4, 5, 6, 7]);
    assert!(
        store
            .list(Some(DeadLetterSeq(u64::MAX)), 3)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn take_all_returns_and_removes_the_oldest_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .put_batch(&(1..=5).map(letter).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(attempts(&store.take(Selection::All, 2).unwrap()), [1, 2]);
    assert_eq!(store.count().unwrap(), 3);
    assert_eq!(attempts(&store.peek(10).unwrap()), [3, 4, 5]);
    assert_eq!(
        attempts(&store.take(Selection::All, 10).unwrap()),
        [3, 4, 5]
    );
    assert!(store.take(Selection::All, 10).unwrap().is_empty());
    assert_eq!(store.count().unwrap(), 0);
}

#[test]
fn take_selected_seqs_skips_ones_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let seqs = store
        .put_batch(&(1..=4).map(letter).collect::<Vec<_>>())
        .unwrap()
        .seqs;
    let pick = [seqs[3], DeadLetterSeq(u64::MAX), seqs[1], seqs[3]];
    assert_eq!(
        attempts(&store.take(Selection::Seqs(&pick), 10).unwrap()),
        [2, 4]
    );
    assert_eq!(attempts(&store.peek(10).unwrap()), [1, 3]);
    assert_eq!(store.count().unwrap(), 2);
}

#[test]
fn a_full_store_removes_the_oldest_entries_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_bounded(dir.path(), 3);
    store
        .put_batch(&(1..=2).map(letter).collect::<Vec<_>>())
        .unwrap();
    let put = store
        .put_batch(&(3..=5).map(letter).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(put.trimmed, 2);
    assert_eq!(attempts(&store.peek(10).unwrap()), [3, 4, 5]);
    assert_eq!(store.count().unwrap(), 3);
    assert_eq!(store.trimmed_total().unwrap(), 2);
}

fn open_with_quota(path: &Path, quota_bytes: u64) -> DeadLetterStore {
    let config = DeadLetterConfig {
        quota_bytes,
        ..DeadLetterConfig::default()
    };
    DeadLetterStore::open(path, config).unwrap()
}

/// A letter whose event is `len` bytes.
fn sized(n: u32, len: usize) -> DeadLetterEntry {
    DeadLetterEntry {
        event: vec![n as u8; len],
        ..letter(n)
    }
}

#[test]
fn past_the_byte_quota_the_oldest_entries_go_first_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let quota = store::MIN_QUOTA_BYTES;
    let store = open_with_quota(dir.path(), quota);
    // Four entries of 300 KiB fit in 1 MiB only three at a time.
    for n in 1..=3 {
        let put = store.put_batch(&[sized(n, 300 * 1024)]).unwrap();
        assert_eq!(put.trimmed, 0);
    }
    let before = store.bytes().unwrap();
    assert!(before > 900 * 1024 && before <= quota, "{before}");
    let put = store.put_batch(&[sized(4, 300 * 1024)]).unwrap();
    assert_eq!(put.trimmed, 1);
    assert!(put.trimmed_bytes > 300 * 1024, "{}", put.trimmed_bytes);
    assert_eq!(attempts(&store.peek(10).unwrap()), [2, 3, 4]);
    assert_eq!(store.count().unwrap(), 3);
    assert_eq!(store.trimmed_total().unwrap(), 1);
    assert!(store.bytes().unwrap() <= quota);
    // Two large ones at once push out two more.
    let put = store
        .put_batch(&[sized(5, 350 * 1024), sized(6, 350 * 1024)])
        .unwrap();
    assert_eq!(put.trimmed, 2);
    assert_eq!(attempts(&store.peek(10).unwrap()), [4, 5, 6]);
    assert_eq!(store.trimmed_total().unwrap(), 3);
    assert!(store.bytes().unwrap() <= quota);
}

#[test]
fn the_byte_count_follows_removals_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let seqs;
    let after_put;
    {
        let store = open(dir.path());
        assert_eq!(store.bytes().unwrap(), 0);
        seqs = store
            .put_batch(&[sized(1, 1000), sized(2, 2000), sized(3, 3000)])
            .unwrap()
            .seqs;
        after_put = store.bytes().unwrap();
        assert!(after_put > 6000, "{after_put}");
        store.remove(&seqs[..1]).unwrap();
        let taken = store.take(Selection::Seqs(&seqs[1..2]), 10).unwrap();
        assert_eq!(taken.len(), 1);
        store.flush().unwrap();
    }
    let store = open(dir.path());
    let left = store.bytes().unwrap();
    assert!(
        left > 3000 && left < after_put - 3000,
        "{left} of {after_put}"
    );
    store.remove(&seqs[2..]).unwrap();
    assert_eq!(store.bytes().unwrap(), 0);
}

#[test]
fn a_batch_larger_than_the_bound_keeps_only_its_newest_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_bounded(dir.path(), 3);
    store.put_batch(&[letter(1)]).unwrap();
    let put = store
        .put_batch(&(2..=6).map(letter).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(put.seqs.len(), 5);
    assert_eq!(put.trimmed, 3);
    assert_eq!(attempts(&store.peek(10).unwrap()), [4, 5, 6]);
    assert_eq!(store.count().unwrap(), 3);
    assert_eq!(store.trimmed_total().unwrap(), 3);
}

#[test]
fn listings_stop_at_the_byte_budget_but_return_at_least_one_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let big = |n| DeadLetterEntry {
        event: vec![0; LIST_BYTE_BUDGET / 4],
        ..letter(n)
    };
    store
        .put_batch(&(1..=6).map(big).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(attempts(&store.peek(10).unwrap()), [1, 2, 3, 4]);
    assert_eq!(
        attempts(&store.take(Selection::All, 10).unwrap()),
        [1, 2, 3, 4]
    );
    assert_eq!(attempts(&store.peek(10).unwrap()), [5, 6]);

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let huge = DeadLetterEntry {
        event: vec![0; LIST_BYTE_BUDGET + 1],
        ..letter(7)
    };
    store.put_batch(&[huge, letter(8)]).unwrap();
    assert_eq!(attempts(&store.peek(10).unwrap()), [7]);
    assert_eq!(attempts(&store.take(Selection::All, 10).unwrap()), [7]);
    assert_eq!(attempts(&store.peek(10).unwrap()), [8]);
}

#[test]
fn limits_out_of_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for limit in [0, MAX_LIST_LIMIT + 1] {
        let e = store.list(None, limit).unwrap_err();
        assert!(matches!(e, DeadLetterError::LimitOutOfRange { .. }), "{e}");
        let e = store.take(Selection::All, limit).unwrap_err();
        assert!(matches!(e, DeadLetterError::LimitOutOfRange { .. }), "{e}");
    }
}

#[test]
fn reopen_keeps_entries_and_the_count_and_seqs_keep_growing() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let store = open(dir.path());
        let seqs = store
            .put_batch(&(1..=3).map(letter).collect::<Vec<_>>())
            .unwrap()
            .seqs;
        store.flush().unwrap();
        seqs
    };
    let store = open(dir.path());
    assert_eq!(store.count().unwrap(), 3);
    assert_eq!(attempts(&store.peek(10).unwrap()), [1, 2, 3]);
    let next = store.put_batch(&[letter(4)]).unwrap().seqs;
    assert!(next[0] > first[2], "{next:?} after {first:?}");
}

#[test]
fn a_damaged_entry_is_reported_with_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let seq = store.put_batch(&[letter(1)]).unwrap().seqs[0];
    store.entries.insert(seq.key(), &[9, 0, 0, 0][..]).unwrap();
    let e = store.peek(10).unwrap_err();
    assert!(
        matches!(e, DeadLetterError::Corrupt { seq: s, .. } if s == seq),
        "{e}"
    );
    // It can still be removed by seq.
    assert_eq!(store.remove(&[seq]).unwrap(), 1);
    assert_eq!(store.count().unwrap(), 0);
}

#[test]
fn a_second_open_of_the_same_path_says_it_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    let e = DeadLetterStore::open(dir.path(), DeadLetterConfig::default()).unwrap_err();
    assert!(matches!(e, DeadLetterError::InUse { .. }), "{e}");
}

#[test]
fn a_quota_below_the_minimum_is_refused_naming_the_setting() {
    let config = DeadLetterConfig {
        quota_bytes: 1000,
        ..DeadLetterConfig::default()
    };
    let e = config.validate().unwrap_err();
    assert!(
        matches!(
            e,
            DeadLetterError::QuotaTooSmall {
                quota_bytes: 1000,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("--dead-letter-quota"), "{e}");
}

#[test]
fn config_validation_names_the_bad_setting() {
    assert!(DeadLetterConfig::default().validate().is_ok());
    let small = DeadLetterConfig {
        cache_bytes: 10,
        ..DeadLetterConfig::default()
    };
    assert!(matches!(
        small.validate(),
        Err(DeadLetterError::CacheTooSmall {
            cache_bytes: 10,
            ..
        })
    ));
    let zero = DeadLetterConfig {
        max_entries: 0,
        ..DeadLetterConfig::default()
    };
    assert!(matches!(
        zero.validate(),
        Err(DeadLetterError::ZeroMaxEntries)
    ));
}
