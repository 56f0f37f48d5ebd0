//! The admin operations on real stores in a temporary directory, and their
//! answers through JSON and back (what `--addr` does).

use super::*;
use crate::clock::UnixNanos;
use crate::dead_letter::{DeadLetterConfig, DeadLetterEntry, DeadLetterSource, DeadLetterStore};
use crate::event_logs::store::{EventLogConfig, EventLogStore};
use crate::log::Batch;
use crate::queue::{Queue, QueueConfig};

fn round_trip<T: Serialize + serde::de::DeserializeOwned>(v: &T) -> T {
    let text = serde_json::to_string(v).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_queue_status_reads_back_from_its_json_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, report) = Queue::open_dir(dir.path(), QueueConfig::default()).unwrap();
    queue
        .append(Batch::from_slices(&[b"a".as_slice(), b"bb", b"ccc"]))
        .unwrap();
    let status = queue_status(
        &queue,
        Some(&report),
        UnixNanos::from_system(std::time::SystemTime::now()),
    );
    assert_eq!(status.backlog.records, 3);
    assert_eq!(status.records, 3);
    assert_eq!(status.next_record_id, status.segments[0].first_record + 3);
    assert_eq!(round_trip(&status), status);
    let served = queue_status(
        &queue,
        None,
        UnixNanos::from_system(std::time::SystemTime::now()),
    );
    let json = serde_json::to_value(&served).unwrap();
    assert!(
        json.get("recovery").is_none(),
        "a running sidecar has no recovery to report"
    );
    queue.close().unwrap();
}

#[test]
fn an_erasure_names_exactly_one_user_and_never_user_id_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventLogStore::open(dir.path(), EventLogConfig::default()).unwrap();
    let bad = [
        (EraseParams::default(), "exactly one"),
        (
            EraseParams {
                user_id: Some(0),
                anonymous_user_id: None,
            },
            "must not be 0",
        ),
        (
            EraseParams {
                user_id: None,
                anonymous_user_id: Some(String::new()),
            },
            "must not be empty",
        ),
        (
            EraseParams {
                user_id: Some(4),
                anonymous_user_id: Some("x".into()),
            },
            "exactly one",
        ),
    ];
    for (p, says) in bad {
        let e = erase(&store, &p, false).unwrap_err();
        assert!(e.is_bad_request(), "{p:?}: {e}");
        assert!(e.to_string().contains(says), "{p:?}: {e}");
    }
    let p = EraseParams {
        user_id: Some(42),
        anonymous_user_id: None,
    };
    let pending = erase(&store, &p, false).unwrap();
    assert_eq!(pending.erased, "user id 42");
    assert_eq!(pending.compaction, Compaction::Pending);
    let json = serde_json::to_value(&pending).unwrap();
    assert_eq!(json["compaction"], "pending");
    assert!(json["rows_removed"].is_null());
    assert_eq!(round_trip(&pending), pending);
    let done = erase(&store, &p, true).unwrap();
    assert_eq!(done.compaction, Compaction::Done);
    assert!(done.rows_removed.is_some());
    store.close();
}

#[test]
fn a_limit_outside_its_range_is_the_callers_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventLogStore::open(dir.path(), EventLogConfig::default()).unwrap();
    let now = UnixNanos::from_system(std::time::SystemTime::now());
    for limit in [0, 10_001] {
        let p = RecentParams {
            limit: Some(limit),
            ..RecentParams::default()
        };
        let e = recent(&store, &p, now).unwrap_err();
        assert!(matches!(e, QueryError::LimitOutOfRange { .. }), "{e}");
        assert!(e.is_bad_request());
    }
    let p = RangeParams {
        from: Some("yesterday".into()),
        to: None,
    };
    let e = counts(&store, &p, now).unwrap_err();
    assert!(e.to_string().starts_with("from=\"yesterday\""), "{e}");
    assert!(e.is_bad_request());
    store.close();
}

#[test]
fn a_dead_letter_listing_reads_back_from_its_json_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = DeadLetterStore::open(dir.path(), DeadLetterConfig::default()).unwrap();
    let entry = DeadLetterEntry {
        event_id: Some("e1".into()),
        event: b"not protobuf".to_vec(),
        reason: "refused".into(),
        source: DeadLetterSource::Export,
        attempts: 10,
        recorded_at: UnixNanos::from_system(std::time::SystemTime::now()),
        last_error: None,
        original_size: None,
    };
    store.put_batch(&[entry]).unwrap();
    let listing = dead_letters(&store, &DeadLetterParams::default()).unwrap();
    assert_eq!(listing.count, 1);
    let view = &listing.dead_letters[0];
    assert_eq!(view.event_id.as_deref(), Some("e1"));
    assert_eq!(view.event_bytes, 12);
    assert_eq!(round_trip(&listing), listing);
    let too_many = DeadLetterParams {
        after: None,
        limit: Some(10_001),
    };
    assert!(
        dead_letters(&store, &too_many)
            .unwrap_err()
            .is_bad_request()
    );
}
