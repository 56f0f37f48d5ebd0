//! Fuzzes segment recovery: `Header::decode` and the `scan`/`Walk` over a
//! whole segment file.
//!
//! Each input is used three ways:
//! 1. raw bytes to `Header::decode` (total: a header or an error);
//! 2. a valid header followed by the raw bytes, scanned;
//! 3. the bytes read as a recipe ([`Recipe`]): valid frames with chosen
//!    ids, garbage, bit flips and a torn end. Random bytes almost never hold
//!    a frame with a correct CRC, so this is what exercises resynchronisation.
//!
//! For every scan: the walk's steps tile the body exactly (each starts where
//! the previous ended, none is empty, they end at the end of the file), record
//! ids strictly increase, a damage step reports exactly the ids between its
//! neighbours, only the last step may be a tail, and `scan` summarises the
//! walk faithfully. A recipe of in-order valid frames alone must come back
//! whole.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use telespool::log::record::{self, Decoded};
use telespool::log::segment::{self, Damage, HEADER_LEN, Header, SPARSE_EVERY, Step, Walk};
use telespool::{RecordId, SegmentId, UnixNanos};

/// How to build a segment file.
#[derive(Debug, Arbitrary)]
struct Recipe {
    segment: u64,
    /// Small, so that frame ids can land on both sides of it.
    first_id: u16,
    created: i64,
    pieces: Vec<Piece>,
}

#[derive(Debug, Arbitrary)]
enum Piece {
    /// A valid frame whose id is the previous frame's plus `step` (so it may
    /// repeat or go back, or be zero).
    Frame {
        step: i8,
        append_time: i64,
        event: Vec<u8>,
    },
    /// Bytes as they come.
    Garbage(Vec<u8>),
    /// Flips bits of a byte already written (index modulo the length).
    Flip { at: u16, mask: u8 },
    /// Cuts the file (length modulo the length): a torn write.
    Truncate { keep: u16 },
}

fuzz_target!(|data: &[u8]| {
    let _ = Header::decode(data);

    let header = Header {
        segment: SegmentId(7),
        first_id: RecordId(1),
        created: UnixNanos(0),
    };
    let mut file = header.encode().to_vec();
    file.extend_from_slice(data);
    check(&file, &header);

    if let Ok(recipe) = Recipe::arbitrary_take_rest(Unstructured::new(data)) {
        let (file, header, clean) = build(&recipe);
        let scan = check(&file, &header);
        if let Some(ids) = clean {
            assert_eq!(scan.records, ids.len() as u64, "{recipe:?}");
            assert_eq!(scan.first, ids.first().copied());
            assert_eq!(scan.last, ids.last().copied());
            assert_eq!(scan.valid_end, file.len() as u64);
            assert!(scan.damage.is_empty() && scan.tail.is_none(), "{scan:?}");
        }
    }
});

/// Builds the file a recipe describes. Returns the ids written when the file
/// holds nothing but valid frames in strictly increasing id order from the
/// header's first id on.
fn build(recipe: &Recipe) -> (Vec<u8>, Header, Option<Vec<RecordId>>) {
    let header = Header {
        segment: SegmentId(recipe.segment),
        first_id: RecordId(u64::from(recipe.first_id)),
        created: UnixNanos(recipe.created),
    };
    let mut file = header.encode().to_vec();
    let mut ids = Vec::new();
    let mut clean = true;
    let mut last = header.first_id.prev();
    for piece in &recipe.pieces {
        match piece {
            Piece::Frame {
                step,
                append_time,
                event,
            } => {
                let id = RecordId(last.0.saturating_add_signed(i64::from(*step)));
                clean &= id > last && id.0 != 0;
                record::encode(&mut file, id, UnixNanos(*append_time), event);
                ids.push(id);
                last = id;
            }
            Piece::Garbage(bytes) => {
                clean &= bytes.is_empty();
                file.extend_from_slice(bytes);
            }
            Piece::Flip { at, mask } => {
                // A truncation may have emptied the file.
                if file.is_empty() {
                    continue;
                }
                let i = usize::from(*at) % file.len();
                file[i] ^= mask;
                // Header bytes are not scanned; anything else is damage.
                clean &= *mask == 0 || i < HEADER_LEN;
            }
            Piece::Truncate { keep } => {
                let keep = usize::from(*keep) % (file.len() + 1);
                clean &= keep == file.len();
                file.truncate(keep);
            }
        }
    }
    (file, header, clean.then_some(ids))
}

/// Walks `file` step by step, checks the walk's invariants and that `scan`
/// agrees with it, and returns the scan.
fn check(file: &[u8], header: &Header) -> segment::Scan {
    let body = file.get(HEADER_LEN..).unwrap_or(&[]);
    let base = HEADER_LEN as u64;
    let mut end = base;
    let mut last = header.first_id.prev();
    let mut records = Vec::new();
    let mut damage = Vec::new();
    let mut pending: Option<Damage> = None;
    let mut tail = None;
    for step in Walk::new(body, base, last) {
        assert!(tail.is_none(), "a step after the tail: {step:?}");
        match step {
            Step::Record {
                record,
                offset,
                len,
            } => {
                assert_eq!(offset, end);
                assert!(len > 0);
                assert!(record.id > last, "id {} after {}", record.id, last);
                // The step is exactly the frame at that offset.
                match record::decode(&file[offset as usize..]) {
                    Decoded::Valid { record: r, len: l } => {
                        assert_eq!((r, l as u64), (record, len));
                    }
                    other => panic!("record step at {offset} decodes as {other:?}"),
                }
                if let Some(d) = pending.take() {
                    let gap = (record.id.0 > last.0 + 1).then(|| (last.next(), record.id.prev()));
                    assert_eq!(d.lost, gap, "{d:?} before {}", record.id);
                }
                last = record.id;
                end = offset + len;
                records.push((record, offset, len));
            }
            Step::Damage(d) => {
                assert_eq!(d.offset, end);
                assert!(d.len > 0);
                assert!(pending.is_none(), "two damage steps in a row");
                end += d.len;
                pending = Some(d);
                damage.push(d);
            }
            Step::Tail(t) => {
                assert_eq!(t.offset, end);
                assert!(t.len > 0);
                end += t.len;
                tail = Some(t);
            }
        }
    }
    assert!(pending.is_none(), "damage not followed by a record");
    assert_eq!(end, base + body.len() as u64, "steps do not tile the file");

    let scan = segment::scan(file, header);
    assert_eq!(scan.records, records.len() as u64);
    assert_eq!(scan.first, records.first().map(|r| r.0.id));
    assert_eq!(scan.last, records.last().map(|r| r.0.id));
    assert_eq!(scan.last_append, records.last().map(|r| r.0.append_time));
    assert_eq!(
        scan.valid_end,
        records
            .last()
            .map_or(base, |&(_, offset, len)| offset + len)
    );
    assert_eq!(scan.damage, damage);
    assert_eq!(scan.tail, tail);
    let sparse: Vec<_> = records
        .iter()
        .step_by(SPARSE_EVERY as usize)
        .map(|&(r, offset, _)| (r.id, offset))
        .collect();
    assert_eq!(scan.sparse, sparse);
    scan
}
