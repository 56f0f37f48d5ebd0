//! The crash-recovery model: random sequences of appends, syncs,
//! resolutions, index flushes, purges, rolls, clean reopens and crashes (the
//! disk keeps what was synced plus a torn tail; the index keeps what was
//! flushed), run against the real queue on the in-memory disk and against a
//! simple model side by side.
//!
//! The queue runs under `interval` with an interval longer than any test,
//! so data becomes durable only when the model says so (a `Sync`, a `Roll`,
//! a clean close) or when a size roll seals a segment (which the model
//! treats as "maybe durable"). After every reopen:
//! - every record whose append was acknowledged durable is present and
//!   byte-identical, unless a purge removed it, and a purge only removes
//!   resolved records;
//! - no record appears that was never appended, and none changes bytes;
//! - record ids stay monotonic: new appends get ids above every record
//!   present;
//! - resolutions never fall below their last explicit index flush, and
//!   nothing becomes resolved that was not resolved before the crash;
//!   watermarks never pass the end of their segment;
//! - no corruption is reported (a crash tears tails, it does not damage).
//!
//! 256 cases by default; more with `PROPTEST_CASES`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use telespool::index::Resolution;
use telespool::storage::Torn;
use telespool::{Batch, Queue, QueueConfig, RecordId, SyncPolicy};
use testkit::queue::*;

#[derive(Clone, Debug)]
enum Action {
    Append { n: usize, len: usize },
    Sync,
    Resolve { picks: Vec<prop::sample::Index> },
    FlushIndex,
    Purge { retention_secs: u64 },
    Advance { secs: u64 },
    Roll,
    Reopen,
    Crash { torn: Torn },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (1usize..6, 1usize..200).prop_map(|(n, len)| Action::Append { n, len }),
        2 => Just(Action::Sync),
        3 => prop::collection::vec(any::<prop::sample::Index>(), 1..8).prop_map(|picks| Action::Resolve { picks }),
        1 => Just(Action::FlushIndex),
        1 => (0u64..3).prop_map(|retention_secs| Action::Purge { retention_secs }),
        1 => (0u64..3).prop_map(|secs| Action::Advance { secs }),
        1 => Just(Action::Roll),
        1 => Just(Action::Reopen),
        2 => prop_oneof![
            Just(Torn::Nothing),
            Just(Torn::Everything),
            any::<u64>().prop_map(Torn::Prefix),
        ]
        .prop_map(|torn| Action::Crash { torn }),
    ]
}

#[derive(Default, Debug)]
struct Model {
    /// Appended records that may exist: id -> (bytes, acknowledged durable).
    records: BTreeMap<u64, (Vec<u8>, bool)>,
    /// Resolved, as the running process sees it.
    resolved: BTreeSet<u64>,
    /// Resolved as of the last explicit index flush (a lower bound after a crash).
    flushed: BTreeSet<u64>,
    /// Purged ids (gone for good).
    purged: BTreeSet<u64>,
    counter: u64,
}

fn config() -> QueueConfig {
    QueueConfig {
        sync: SyncPolicy::Interval(Duration::from_secs(3600)),
        segment_bytes: 1024,
        ..QueueConfig::default()
    }
}

/// Every record the queue holds, resolved or not: id -> (bytes, resolved).
fn contents(q: &Queue, upto: u64) -> BTreeMap<u64, Vec<u8>> {
    let mut out = BTreeMap::new();
    for id in 1..upto {
        if let Some(r) = q.get(RecordId(id)).unwrap() {
            out.insert(id, r.event.to_vec());
        }
    }
    out
}

fn unresolved(q: &Queue) -> BTreeSet<u64> {
    q.read(RecordId(1), usize::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.id.0)
        .collect()
}

fn check_reopen(
    q: &Queue,
    report: &telespool::queue::OpenReport,
    m: &mut Model,
) -> Result<(), TestCaseError> {
    prop_assert!(
        report.lost.is_empty(),
        "a crash reported lost records: {:?}",
        report
    );
    prop_assert!(
        report.damaged.is_empty(),
        "a crash reported damage: {:?}",
        report
    );
    let upto = m
        .records
        .keys()
        .next_back()
        .map_or(1, |k| k + 1)
        .max(report.next_id.0);
    let present = contents(q, upto);
    // Nothing invented, nothing changed.
    for (id, bytes) in &present {
        let known = m.records.get(id);
        prop_assert!(
            known.is_some(),
            "record {} appeared but was never appended",
            id
        );
        prop_assert_eq!(&known.unwrap().0, bytes, "record {} changed bytes", id);
    }
    // Every durable record is present unless purged.
    for (id, (_, durable)) in &m.records {
        if *durable && !m.purged.contains(id) {
            prop_assert!(
                present.contains_key(id),
                "durable record {} is missing after reopen",
                id
            );
        }
    }
    // Ids above every present record.
    if let Some(max) = present.keys().next_back() {
        prop_assert!(report.next_id.0 > *max);
    }
    // Resolution bounds.
    let unres = unresolved(q);
    let resolved_now: BTreeSet<u64> = present
        .keys()
        .filter(|id| !unres.contains(id))
        .copied()
        .collect();
    for id in &m.flushed {
        if present.contains_key(id) {
            prop_assert!(
                resolved_now.contains(id),
                "record {} was resolved and flushed, but is unresolved after reopen",
                id
            );
        }
    }
    for id in &resolved_now {
        prop_assert!(
            m.resolved.contains(id),
            "record {} became resolved without being resolved",
            id
        );
    }
    // Watermarks stay inside their segments; segments are ordered.
    let segs = q.segments();
    let mut prev_last = 0;
    for s in &segs {
        let last = s.meta.last_id.map_or(s.meta.first_id.0 - 1, |l| l.0);
        prop_assert!(
            s.meta.watermark.0 <= last.max(s.meta.first_id.0 - 1),
            "watermark past the log: {:?}",
            s.meta
        );
        prop_assert!(s.meta.first_id.0 > prev_last || s.meta.last_id.is_none());
        if s.meta.last_id.is_some() {
            prev_last = last;
        }
    }
    // The model follows what survived.
    m.records.retain(|id, _| present.contains_key(id));
    for v in m.records.values_mut() {
        v.1 = true;
    }
    m.resolved = resolved_now.clone();
    m.flushed = resolved_now;
    Ok(())
}

fn check_running(q: &Queue, m: &Model) -> Result<(), TestCaseError> {
    let unres = unresolved(q);
    for (id, (_, durable)) in &m.records {
        let expect_visible = *durable && !m.resolved.contains(id) && !m.purged.contains(id);
        if expect_visible {
            prop_assert!(
                unres.contains(id),
                "durable unresolved record {} is not readable",
                id
            );
        }
    }
    for id in &unres {
        prop_assert!(
            m.records.contains_key(id),
            "read returned unknown record {}",
            id
        );
        prop_assert!(
            !m.resolved.contains(id),
            "read returned resolved record {}",
            id
        );
    }
    Ok(())
}

fn run(actions: Vec<Action>) -> Result<(), TestCaseError> {
    let mut h = Harness::new(config());
    let mut m = Model::default();
    let (q, _) = h.open();
    let mut q = Some(q);
    for a in actions {
        let queue = q.as_ref().unwrap();
        match a {
            Action::Append { n, len } => {
                let events: Vec<Vec<u8>> = (0..n)
                    .map(|_| {
                        m.counter += 1;
                        event(m.counter, len)
                    })
                    .collect();
                let ack = queue.append(Batch::from_slices(&events)).unwrap();
                for (id, e) in ack.ids().zip(events) {
                    prop_assert!(
                        !m.records.contains_key(&id.0)
                            || m.records[&id.0].0 == e
                            || !m.records[&id.0].1,
                        "id {} reused while its record is durable",
                        id
                    );
                    m.records.insert(id.0, (e, false));
                }
            }
            Action::Sync => {
                queue.sync().unwrap();
                for v in m.records.values_mut() {
                    v.1 = true;
                }
            }
            Action::Roll => {
                queue.roll().unwrap();
                for v in m.records.values_mut() {
                    v.1 = true;
                }
            }
            Action::Resolve { picks } => {
                let candidates: Vec<u64> = m
                    .records
                    .iter()
                    .filter(|(id, (_, d))| *d && !m.purged.contains(id))
                    .map(|(id, _)| *id)
                    .collect();
                if candidates.is_empty() {
                    continue;
                }
                let ids: Vec<RecordId> = picks
                    .iter()
                    .map(|p| RecordId(candidates[p.index(candidates.len())]))
                    .collect();
                let out = queue.resolve(&ids, Resolution::Acked);
                prop_assert_eq!(out.unknown, 0, "durable records must be resolvable");
                m.resolved.extend(ids.iter().map(|r| r.0));
            }
            Action::FlushIndex => {
                queue.flush_index().unwrap();
                m.flushed = m.resolved.clone();
            }
            Action::Purge { retention_secs } => {
                let before: Vec<u64> = m
                    .records
                    .keys()
                    .filter(|id| !m.purged.contains(id))
                    .copied()
                    .collect();
                let report = queue.purge(Duration::from_secs(retention_secs)).unwrap();
                for id in before {
                    if queue.get(RecordId(id)).unwrap().is_none() && m.records[&id].1 {
                        prop_assert!(
                            m.resolved.contains(&id),
                            "purge removed unresolved record {}",
                            id
                        );
                        m.purged.insert(id);
                    }
                }
                // A purge that deletes anything flushes the index first.
                if report.segments > 0 {
                    m.flushed = m.resolved.clone();
                }
            }
            Action::Advance { secs } => h.clock.advance(Duration::from_secs(secs)),
            Action::Reopen => {
                q.take().unwrap().close().unwrap();
                for v in m.records.values_mut() {
                    v.1 = true;
                }
                m.flushed = m.resolved.clone();
                let (nq, report) = h.open();
                check_reopen(&nq, &report, &mut m)?;
                q = Some(nq);
            }
            Action::Crash { torn } => {
                h.crash(torn);
                drop(q.take());
                let (nq, report) = h.open();
                check_reopen(&nq, &report, &mut m)?;
                q = Some(nq);
            }
        }
        check_running(q.as_ref().unwrap(), &m)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn acknowledged_records_survive_any_sequence_of_crashes(actions in prop::collection::vec(action(), 1..60)) {
        run(actions)?;
    }
}
