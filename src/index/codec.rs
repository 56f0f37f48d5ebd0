//! Conversion between [`SegmentMeta`] and its stored form.

use super::{IndexError, RangeSet, ResolvedCounts, SegmentMeta};
use crate::clock::UnixNanos;
use crate::ids::{RecordId, SegmentId};
use crate::proto::telespool::v1 as pb;
use prost::Message;

/// The key of a segment: its id, big-endian so keys sort by id.
pub fn key(id: SegmentId) -> [u8; 8] {
    id.0.to_be_bytes()
}

/// The segment id of a key.
pub fn parse_key(k: &[u8]) -> Result<SegmentId, IndexError> {
    let b: [u8; 8] = k
        .try_into()
        .map_err(|_| IndexError::BadKey { len: k.len() })?;
    Ok(SegmentId(u64::from_be_bytes(b)))
}

/// Encodes a segment's entry.
pub fn encode(m: &SegmentMeta) -> Vec<u8> {
    pb::SegmentMeta {
        segment_id: m.id.0,
        first_record_id: m.first_id.0,
        last_record_id: m.last_id.map(|r| r.0),
        bytes: m.bytes,
        created_unix_nanos: m.created.0,
        sealed: m.sealed,
        fully_resolved_unix_nanos: m.fully_resolved_at.map(|t| t.0),
        watermark: m.watermark.0,
        resolved_above: m
            .resolved_above
            .ranges()
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .collect(),
        acked: m.counts.acked,
        dead_lettered: m.counts.dead_lettered,
        lost: m.counts.lost,
        dropped: m.counts.dropped,
    }
    .encode_to_vec()
}

/// Decodes a segment's entry.
pub fn decode(id: SegmentId, bytes: &[u8]) -> Result<SegmentMeta, IndexError> {
    let p = pb::SegmentMeta::decode(bytes).map_err(|source| IndexError::Decode {
        segment: id,
        source,
    })?;
    Ok(SegmentMeta {
        id: SegmentId(p.segment_id),
        first_id: RecordId(p.first_record_id),
        last_id: p.last_record_id.map(RecordId),
        bytes: p.bytes,
        created: UnixNanos(p.created_unix_nanos),
        sealed: p.sealed,
        fully_resolved_at: p.fully_resolved_unix_nanos.map(UnixNanos),
        watermark: RecordId(p.watermark),
        resolved_above: RangeSet::from_ranges(
            p.resolved_above.chunks_exact(2).map(|c| (c[0], c[1])),
        ),
        counts: ResolvedCounts {
            acked: p.acked,
            dead_lettered: p.dead_lettered,
            lost: p.lost,
            dropped: p.dropped,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Resolution;

    #[test]
    fn meta_round_trips() {
        let mut m = SegmentMeta::new(SegmentId(4), RecordId(100), UnixNanos(5), 48);
        m.last_id = Some(RecordId(120));
        m.sealed = true;
        m.resolve_range(
            RecordId(105),
            RecordId(107),
            Resolution::Acked,
            UnixNanos(9),
        );
        m.resolve_range(RecordId(110), RecordId(110), Resolution::Lost, UnixNanos(9));
        let back = decode(m.id, &encode(&m)).unwrap();
        assert_eq!(back, m);
        assert_eq!(parse_key(&key(SegmentId(77))).unwrap(), SegmentId(77));
    }

    #[test]
    fn garbage_value_is_a_decode_error_naming_the_segment() {
        let e = decode(SegmentId(3), &[0xff, 0xff]).unwrap_err();
        assert!(e.to_string().contains("segment 3"), "{e}");
    }
}
