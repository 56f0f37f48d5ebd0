//! Corruption on disk, each case with its outcome: torn tails are truncated;
//! damage in the middle costs only the damaged records, whose ids are
//! reported and resolved as lost; files that are not ours (bad magic, a
//! future version) refuse the open and are never modified; an index out of
//! step with the files is reconciled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use telespool::index::{Resolution, SegmentMeta};
use telespool::log::record::encoded_len;
use telespool::log::segment::{Cause, HEADER_LEN};
use telespool::queue::open::LostWhy;
use telespool::{QueueError, RecordId, SegmentId};
use testkit::queue::*;

const LEN: usize = 40;

fn rec_len() -> u64 {
    encoded_len(LEN) as u64
}

/// Offset of the k-th record (0-based) of a segment of equal-size records.
fn offset(k: u64) -> u64 {
    HEADER_LEN as u64 + k * rec_len()
}

/// A queue with `n` records of LEN bytes in its one (active) segment, closed.
fn active_with(n: u64) -> Harness {
    let h = Harness::small();
    let (q, _) = h.open();
    q.append(batch(0..n, LEN)).unwrap();
    q.close().unwrap();
    h
}

/// A queue whose active segment holds `synced` records the index knows of
/// and, after them, `torn` records written but never synced, as a crash
/// leaves it (the process died; the page cache kept the bytes).
fn active_with_unsynced(synced: u64, torn: u64) -> Harness {
    let mut cfg = small_config();
    cfg.sync = telespool::SyncPolicy::Interval(std::time::Duration::from_secs(3600));
    let mut h = Harness::new(cfg);
    let (q, _) = h.open();
    q.append(batch(0..synced, LEN)).unwrap();
    q.sync().unwrap();
    q.flush_index().unwrap();
    q.append(batch(synced..synced + torn, LEN)).unwrap();
    h.crash(telespool::storage::Torn::Everything);
    drop(q);
    h
}

fn ids(q: &telespool::Queue) -> Vec<u64> {
    q.read(RecordId(1), 10_000, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.id.0)
        .collect()
}

fn assert_tail_truncated(h: &Harness, n_valid: u64, cut_at: u64) {
    let (q, report) = h.open();
    assert_eq!(report.truncated.len(), 1, "{report:?}");
    assert_eq!(report.truncated[0].offset, cut_at);
    assert!(
        report.lost.is_empty() && report.damaged.is_empty(),
        "{report:?}"
    );
    assert_eq!(ids(&q), (1..=n_valid).collect::<Vec<_>>());
    assert_eq!(h.disk.file_len(&h.segment_path(1)), Some(cut_at));
    // Appends continue right after the last valid record.
    assert_eq!(
        q.append(batch(100..101, LEN)).unwrap().first,
        RecordId(n_valid + 1)
    );
}

#[test]
fn truncated_length_is_a_torn_tail_and_is_truncated() {
    let h = active_with_unsynced(5, 0);
    h.disk.append(&h.segment_path(1), &[0x30, 0x00]).unwrap();
    assert_tail_truncated(&h, 5, offset(5));
}

#[test]
fn truncated_payload_is_a_torn_tail_and_is_truncated() {
    let h = active_with_unsynced(4, 1);
    h.disk.truncate(&h.segment_path(1), offset(5) - 7).unwrap();
    assert_tail_truncated(&h, 4, offset(4));
}

#[test]
fn flipped_crc_of_the_last_record_is_a_torn_tail_and_is_truncated() {
    let h = active_with_unsynced(4, 1);
    h.disk
        .corrupt(&h.segment_path(1), offset(4) + 5, &[0xAA])
        .unwrap();
    assert_tail_truncated(&h, 4, offset(4));
}

#[test]
fn zeroed_tail_is_trimmed_as_preallocated_space() {
    let h = active_with_unsynced(5, 0);
    h.disk.append(&h.segment_path(1), &[0u8; 4096]).unwrap();
    let (q, report) = h.open();
    assert!(
        report.truncated.is_empty() && report.lost.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.trimmed.len(), 1, "{report:?}");
    assert_eq!(report.trimmed[0].1, offset(5));
    assert_eq!(ids(&q), vec![1, 2, 3, 4, 5]);
    assert_eq!(h.disk.file_len(&h.segment_path(1)), Some(offset(5)));
}

#[test]
fn a_damaged_last_record_the_index_knew_of_is_truncated_and_reported_lost() {
    let h = active_with(5);
    h.disk
        .corrupt(&h.segment_path(1), offset(4) + 5, &[0xAA])
        .unwrap();
    let (q, report) = h.open();
    assert_eq!(report.truncated.len(), 1);
    assert_eq!(report.lost.len(), 1, "{report:?}");
    assert_eq!(
        (report.lost[0].first, report.lost[0].why),
        (RecordId(5), LostWhy::IndexAhead)
    );
    assert_eq!(ids(&q), vec![1, 2, 3, 4]);
    assert_eq!(q.append(batch(9..10, LEN)).unwrap().first, RecordId(6));
}

#[test]
fn garbage_after_the_last_record_is_truncated() {
    let h = active_with(5);
    h.disk
        .append(
            &h.segment_path(1),
            b"\xde\xad\xbe\xef garbage that is not a frame",
        )
        .unwrap();
    let (_, report) = h.open();
    assert!(
        matches!(report.truncated[0].cause, Cause::Corrupt(_)),
        "{report:?}"
    );
    drop(report);
    let h2 = h;
    let (q, _) = h2.open();
    assert_eq!(ids(&q), vec![1, 2, 3, 4, 5]);
}

#[test]
fn a_flipped_byte_in_the_middle_of_the_active_segment_costs_only_that_record() {
    let h = active_with(8);
    h.disk
        .corrupt(&h.segment_path(1), offset(3) + 20, &[0xFF])
        .unwrap();
    let (q, report) = h.open();
    assert!(report.truncated.is_empty(), "{report:?}");
    assert_eq!(report.damaged.len(), 1);
    assert_eq!(report.lost.len(), 1);
    assert_eq!(
        (report.lost[0].first, report.lost[0].last),
        (RecordId(4), RecordId(4))
    );
    assert_eq!(report.lost[0].why, LostWhy::Damaged);
    assert_eq!(ids(&q), vec![1, 2, 3, 5, 6, 7, 8]);
    // The lost record counts as resolved: it cannot pin its segment.
    let seg = &q.segments()[0];
    assert_eq!(seg.meta.counts.lost, 1);
    assert_eq!(seg.unresolved, 7);
}

#[test]
fn two_adjacent_damaged_records_are_both_reported_and_every_later_record_is_read() {
    let h = active_with(8);
    h.disk
        .corrupt(&h.segment_path(1), offset(2) + 3, &[0x77, 0x77])
        .unwrap();
    h.disk
        .corrupt(&h.segment_path(1), offset(3) + 30, &[0x01])
        .unwrap();
    let (q, report) = h.open();
    assert_eq!(report.lost.len(), 1, "{report:?}");
    assert_eq!(
        (report.lost[0].first, report.lost[0].last),
        (RecordId(3), RecordId(4))
    );
    assert_eq!(ids(&q), vec![1, 2, 5, 6, 7, 8]);
}

#[test]
fn damage_in_a_sealed_segment_is_found_when_read_and_resolved_as_lost() {
    let h = Harness::small();
    {
        let (q, _) = h.open();
        q.append(batch(0..8, LEN)).unwrap();
        q.roll().unwrap();
        q.append(batch(8..10, LEN)).unwrap();
        q.close().unwrap();
    }
    h.disk
        .corrupt(&h.segment_path(1), offset(5) + 25, &[0x5A])
        .unwrap();
    let (q, report) = h.open();
    // The index vouches for the sealed segment: it is not walked on open.
    assert_eq!(report.scanned, vec![SegmentId(2)]);
    assert!(report.lost.is_empty());
    assert_eq!(ids(&q), vec![1, 2, 3, 4, 5, 7, 8, 9, 10]);
    let s = &q.segments()[0];
    assert_eq!(s.meta.counts.lost, 1);
    assert!(s.meta.is_resolved(RecordId(6)));
    // Once everything else is acknowledged the segment is fully resolved.
    q.resolve(
        &(1..=8).map(RecordId).collect::<Vec<_>>(),
        Resolution::Acked,
    );
    assert!(q.segments()[0].meta.fully_resolved_at.is_some());
}

fn refuses_and_leaves_the_file_untouched(patch: &[u8], at: u64, expect: &str) {
    let h = active_with(3);
    let path = h.segment_path(1);
    h.disk.corrupt(&path, at, patch).unwrap();
    let before = h.disk.read_file(&path).unwrap();
    let err = telespool::Queue::open(
        std::sync::Arc::new(h.disk.clone()),
        &h.dir,
        Box::new(h.index.clone()),
        std::sync::Arc::new(h.clock.clone()),
        h.config.clone(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, QueueError::BadSegment { .. }), "{msg}");
    assert!(
        msg.contains("00000000000000000001.seg") && msg.contains(expect),
        "{msg}"
    );
    assert_eq!(
        h.disk.read_file(&path).unwrap(),
        before,
        "the file was modified"
    );
}

#[test]
fn bad_magic_refuses_to_open_naming_the_file_and_never_truncates_it() {
    refuses_and_leaves_the_file_untouched(b"NOTOURS!", 0, "bad magic");
}

#[test]
fn a_future_format_version_refuses_to_open_naming_the_file_and_never_truncates_it() {
    refuses_and_leaves_the_file_untouched(&[9, 0, 0, 0], 8, "unsupported format version 9");
}

#[test]
fn an_index_ahead_of_the_files_is_reconciled_and_the_missing_records_are_reported_lost() {
    let h = active_with(5);
    // The file loses its last two records, but the index still knows them.
    let mut meta: SegmentMeta = h.index.flushed().into_iter().next().unwrap();
    meta.last_id = Some(RecordId(5));
    h.index.overwrite(meta);
    h.disk.truncate(&h.segment_path(1), offset(3)).unwrap();
    let (q, report) = h.open();
    assert_eq!(report.lost.len(), 1, "{report:?}");
    assert_eq!(
        (
            report.lost[0].first,
            report.lost[0].last,
            report.lost[0].why
        ),
        (RecordId(4), RecordId(5), LostWhy::IndexAhead)
    );
    assert_eq!(ids(&q), vec![1, 2, 3]);
    // Ids are never reused: the next record is 6.
    assert_eq!(q.append(batch(0..1, LEN)).unwrap().first, RecordId(6));
}

#[test]
fn a_missing_segment_file_is_reported_and_its_unresolved_records_count_as_lost() {
    let h = Harness::small();
    {
        let (q, _) = h.open();
        q.append(batch(0..4, LEN)).unwrap();
        q.roll().unwrap();
        q.append(batch(4..6, LEN)).unwrap();
        q.resolve(&[RecordId(1)], Resolution::Acked);
        q.close().unwrap();
    }
    h.disk.delete(&h.segment_path(1)).unwrap();
    let (q, report) = h.open();
    assert_eq!(report.missing, vec![SegmentId(1)]);
    assert_eq!(report.lost.len(), 1);
    assert_eq!(
        (report.lost[0].first, report.lost[0].last),
        (RecordId(2), RecordId(4))
    );
    assert_eq!(report.lost[0].why, LostWhy::MissingFile);
    assert_eq!(ids(&q), vec![5, 6]);
    assert_eq!(q.append(batch(0..1, LEN)).unwrap().first, RecordId(7));
}

#[test]
fn an_index_entry_whose_file_was_purged_completes_the_purge_silently() {
    let h = Harness::small();
    {
        let (q, _) = h.open();
        q.append(batch(0..4, LEN)).unwrap();
        q.roll().unwrap();
        q.resolve(
            &(1..=4).map(RecordId).collect::<Vec<_>>(),
            Resolution::Acked,
        );
        q.close().unwrap();
    }
    h.disk.delete(&h.segment_path(1)).unwrap();
    let (_q, report) = h.open();
    assert_eq!(report.completed_purges, vec![SegmentId(1)]);
    assert!(report.lost.is_empty() && report.missing.is_empty());
}

#[test]
fn a_segment_the_index_never_heard_of_is_adopted() {
    let h = Harness::small();
    {
        let (q, _) = h.open();
        q.append(batch(0..4, LEN)).unwrap();
        q.roll().unwrap();
        q.append(batch(4..6, LEN)).unwrap();
        q.close().unwrap();
    }
    h.index.forget(SegmentId(2));
    let (q, report) = h.open();
    assert_eq!(report.adopted, vec![SegmentId(2)]);
    assert_eq!(ids(&q), vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn a_newest_segment_with_a_torn_header_is_removed() {
    let h = active_with(3);
    let p = h.segment_path(2);
    h.disk.put_file(&p, b"TELSP");
    let (q, report) = h.open();
    assert_eq!(report.removed_torn, vec![SegmentId(2)]);
    assert_eq!(ids(&q), vec![1, 2, 3]);
}

#[test]
fn a_newest_segment_whose_header_is_all_zeros_is_a_torn_roll_and_is_removed() {
    let h = active_with(3);
    h.disk.put_file(&h.segment_path(2), &[0u8; 4096]);
    let (q, report) = h.open();
    assert_eq!(report.removed_torn, vec![SegmentId(2)]);
    assert_eq!(ids(&q), vec![1, 2, 3]);
}

#[test]
fn a_zero_hole_in_the_newest_segment_before_records_the_index_never_saw_is_a_torn_write() {
    // Records 1-3 are known to the index; 4-6 were written but never synced,
    // and only the page holding 5-6 reached the disk: 4 reads as zeros.
    let h = active_with_unsynced(3, 3);
    let path = h.segment_path(1);
    h.disk
        .corrupt(&path, offset(3), &vec![0u8; rec_len() as usize])
        .unwrap();
    let (q, report) = h.open();
    assert!(
        report.lost.is_empty() && report.damaged.is_empty(),
        "no false alarm: {report:?}"
    );
    assert_eq!(report.truncated.len(), 1);
    assert_eq!(report.truncated[0].offset, offset(3));
    assert_eq!(ids(&q), vec![1, 2, 3]);
    assert_eq!(q.append(batch(9..10, LEN)).unwrap().first, RecordId(4));
}

#[test]
fn a_zero_hole_before_records_the_index_knew_of_is_damage() {
    let h = active_with(6);
    h.disk
        .corrupt(
            &h.segment_path(1),
            offset(3),
            &vec![0u8; rec_len() as usize],
        )
        .unwrap();
    let (q, report) = h.open();
    assert_eq!(report.lost.len(), 1, "{report:?}");
    assert_eq!(
        (report.lost[0].first, report.lost[0].last),
        (RecordId(4), RecordId(4))
    );
    assert_eq!(ids(&q), vec![1, 2, 3, 5, 6]);
}

#[test]
fn stale_frames_at_or_above_the_next_segments_first_id_are_cut_off() {
    // Segment 1 ends with records 1-4; segment 2 starts at 3 (ids 3-4 of a
    // failed write were given again after a roll), as a power loss can leave it.
    let h = Harness::small();
    {
        let (q, _) = h.open();
        q.append(batch(0..4, LEN)).unwrap();
        q.roll().unwrap();
        q.close().unwrap();
    }
    h.index.forget(SegmentId(1));
    h.index.forget(SegmentId(2));
    let header = telespool::log::segment::Header {
        segment: SegmentId(2),
        first_id: RecordId(3),
        created: START,
    };
    let mut seg2 = header.encode().to_vec();
    for i in 3..=5u64 {
        telespool::log::record::encode(&mut seg2, RecordId(i), START, &event(100 + i, LEN));
    }
    h.disk.put_file(&h.segment_path(2), &seg2);
    let (q, report) = h.open();
    assert_eq!(report.truncated.len(), 1, "{report:?}");
    assert_eq!(
        (report.truncated[0].segment, report.truncated[0].offset),
        (SegmentId(1), offset(2))
    );
    let recs = q.read(RecordId(1), 100, usize::MAX).unwrap();
    assert_eq!(
        recs.iter().map(|r| r.id.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        &recs[2].event[..],
        &event(103, LEN)[..],
        "record 3 is the one in segment 2"
    );
}

#[test]
fn an_event_holding_a_valid_frame_never_makes_a_chunked_read_skip_records() {
    // A ~1.5 MiB event whose bytes contain a complete frame with a high id,
    // read from the active segment in bounded chunks.
    let mut cfg = small_config();
    cfg.segment_bytes = 64 << 20;
    let h = Harness::new(cfg);
    let (q, _) = h.open();
    let mut forged = Vec::new();
    telespool::log::record::encode(&mut forged, RecordId(1_000_000), START, b"forged");
    let mut big = vec![b'a'; 1_048_000];
    big.extend_from_slice(&forged);
    big.extend_from_slice(&vec![b'b'; 500_000]);
    q.append(batch(0..3, LEN)).unwrap();
    q.append(telespool::Batch::from_slices(&[big.clone()]))
        .unwrap();
    q.append(batch(3..6, LEN)).unwrap();
    let recs = q.read(RecordId(1), 100, usize::MAX).unwrap();
    assert_eq!(
        recs.iter().map(|r| r.id.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6, 7]
    );
    assert_eq!(&recs[3].event[..], &big[..]);
    assert_eq!(q.segments()[0].meta.counts.lost, 0);
}
