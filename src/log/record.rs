//! The record codec: frames and envelopes.
//!
//! ```text
//! frame    = len:u32 LE | crc:u32 LE | payload[len]
//!            crc = CRC-32 (IEEE, crc32fast) over the 4 length bytes, then the payload
//! payload  = telespool.v1.RecordEnvelope, protobuf binary:
//!            0x09 record_id:fixed64 | 0x11 append_time_unix_nanos:sfixed64 |
//!            0x1a varint(len) event[len]
//! ```
//!
//! Writers emit the envelope fields in that order with fixed-width numbers,
//! so an envelope's size depends only on its event's length
//! ([`encoded_len`]). Readers accept any field order and skip unknown
//! fields, as protobuf allows, so the envelope can grow.
//!
//! Decoding is total: for any bytes, [`decode`] answers [`Decoded::Valid`],
//! [`Decoded::Incomplete`] (the bytes end inside a frame: a torn tail, or a
//! read that stopped short) or [`Decoded::Corrupt`] with the reason. It never
//! panics and never reads past the slice.

use crate::clock::UnixNanos;
use crate::ids::RecordId;

/// Bytes of the frame header (length and CRC).
pub const FRAME_HEADER_LEN: usize = 8;

/// The largest payload a frame may carry. Longer lengths are corruption.
pub const MAX_PAYLOAD_LEN: usize = 32 * 1024 * 1024;

const TAG_RECORD_ID: u8 = 0x09;
const TAG_APPEND_TIME: u8 = 0x11;
const TAG_EVENT: u8 = 0x1a;

/// One record, borrowed from the bytes it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record id.
    pub id: RecordId,
    /// When the record was appended.
    pub append_time: UnixNanos,
    /// The event bytes (a redacted `telemetrygateway.v1.Event`).
    pub event: &'a [u8],
}

/// Why bytes are not a valid record. Expected on disk damage and torn
/// writes: a walk reports it as damage (or as the torn tail) and
/// resynchronises on the next valid frame; nothing fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    /// The length field is zero (an envelope is never empty).
    #[error("frame length is zero")]
    ZeroLength,
    /// The length field exceeds [`MAX_PAYLOAD_LEN`].
    #[error("frame length {len} exceeds the maximum {max}")]
    LengthTooLarge {
        /// The length read.
        len: u32,
        /// The maximum.
        max: usize,
    },
    /// The CRC does not match the length and payload.
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The CRC stored in the frame.
        stored: u32,
        /// The CRC of the bytes read.
        computed: u32,
    },
    /// The CRC matched but the payload is not an envelope.
    #[error("invalid envelope: {0}")]
    Envelope(#[source] EnvelopeError),
}

/// Why a payload whose CRC matched is not a record envelope. Only a writer
/// bug or a collision of the CRC produces one; the frame counts as corrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// A varint runs past the end of the payload.
    #[error("truncated varint")]
    TruncatedVarint,
    /// A varint is longer than ten bytes.
    #[error("varint too long")]
    VarintTooLong,
    /// A fixed64 field runs past the end of the payload.
    #[error("truncated fixed64")]
    TruncatedFixed64,
    /// A fixed32 field runs past the end of the payload.
    #[error("truncated fixed32")]
    TruncatedFixed32,
    /// A length-delimited field's length does not fit the address space.
    #[error("length overflow")]
    LengthOverflow,
    /// A length-delimited field runs past the end of the payload.
    #[error("truncated bytes")]
    TruncatedBytes,
    /// A wire type protobuf does not define (or a group).
    #[error("unsupported wire type")]
    UnsupportedWireType,
    /// A field number of zero.
    #[error("field number zero")]
    FieldNumberZero,
    /// The record id is zero (ids start at 1).
    #[error("record id zero")]
    ZeroRecordId,
    /// The record id field is absent.
    #[error("missing record id")]
    MissingRecordId,
}

/// The outcome of decoding one frame at the start of a byte slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid record occupying the first `len` bytes.
    Valid {
        /// The record.
        record: RecordRef<'a>,
        /// Bytes of the whole frame.
        len: usize,
    },
    /// The slice ends inside the frame.
    Incomplete,
    /// The bytes at the start are not a valid frame.
    Corrupt(Corruption),
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes of the envelope for an event of `event_len` bytes.
pub fn envelope_len(event_len: usize) -> usize {
    1 + 8 + 1 + 8 + 1 + varint_len(event_len as u64) + event_len
}

/// Bytes of the whole frame for an event of `event_len` bytes.
pub fn encoded_len(event_len: usize) -> usize {
    FRAME_HEADER_LEN + envelope_len(event_len)
}

/// Appends one framed record to `out`.
pub fn encode(out: &mut Vec<u8>, id: RecordId, append_time: UnixNanos, event: &[u8]) {
    let payload_len = envelope_len(event.len());
    out.reserve(FRAME_HEADER_LEN + payload_len);
    let start = out.len();
    let len_bytes = (payload_len as u32).to_le_bytes();
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&[0; 4]);
    out.push(TAG_RECORD_ID);
    out.extend_from_slice(&id.0.to_le_bytes());
    out.push(TAG_APPEND_TIME);
    out.extend_from_slice(&append_time.0.to_le_bytes());
    out.push(TAG_EVENT);
    put_varint(out, event.len() as u64);
    out.extend_from_slice(event);
    let mut h = crc32fast::Hasher::new();
    h.update(&len_bytes);
    h.update(&out[start + FRAME_HEADER_LEN..]);
    let crc = h.finalize().to_le_bytes();
    out[start + 4..start + 8].copy_from_slice(&crc);
}

fn read_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))
}

fn read_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?))
}

/// The CRC a frame with this payload carries.
pub fn frame_crc(payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&(payload.len() as u32).to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Decodes the frame at the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded<'_> {
    let (Some(len), Some(stored)) = (read_u32(buf), buf.get(4..).and_then(read_u32)) else {
        return Decoded::Incomplete;
    };
    if len == 0 {
        return Decoded::Corrupt(Corruption::ZeroLength);
    }
    if len as usize > MAX_PAYLOAD_LEN {
        return Decoded::Corrupt(Corruption::LengthTooLarge {
            len,
            max: MAX_PAYLOAD_LEN,
        });
    }
    let total = FRAME_HEADER_LEN + len as usize;
    let Some(payload) = buf.get(FRAME_HEADER_LEN..total) else {
        return Decoded::Incomplete;
    };
    let computed = frame_crc(payload);
    if computed != stored {
        return Decoded::Corrupt(Corruption::CrcMismatch { stored, computed });
    }
    match decode_envelope(payload) {
        Ok(record) => Decoded::Valid { record, len: total },
        Err(why) => Decoded::Corrupt(Corruption::Envelope(why)),
    }
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, EnvelopeError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or(EnvelopeError::TruncatedVarint)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(EnvelopeError::VarintTooLong)
}

/// Decodes an envelope (the payload of a frame).
pub fn decode_envelope(payload: &[u8]) -> Result<RecordRef<'_>, EnvelopeError> {
    let mut pos = 0;
    let mut id = None;
    let mut time = 0i64;
    let mut event: &[u8] = &[];
    while pos < payload.len() {
        let key = get_varint(payload, &mut pos)?;
        let field = key >> 3;
        let wire = key & 7;
        match wire {
            0 => {
                get_varint(payload, &mut pos)?;
            }
            1 => {
                let v = payload
                    .get(pos..pos + 8)
                    .and_then(read_u64)
                    .ok_or(EnvelopeError::TruncatedFixed64)?;
                pos += 8;
                match field {
                    1 => id = Some(v),
                    2 => time = v as i64,
                    _ => {}
                }
            }
            2 => {
                let n = usize::try_from(get_varint(payload, &mut pos)?)
                    .map_err(|_| EnvelopeError::LengthOverflow)?;
                let end = pos.checked_add(n).ok_or(EnvelopeError::LengthOverflow)?;
                let bytes = payload.get(pos..end).ok_or(EnvelopeError::TruncatedBytes)?;
                pos = end;
                if field == 3 {
                    event = bytes;
                }
            }
            5 => {
                if payload.get(pos..pos + 4).is_none() {
                    return Err(EnvelopeError::TruncatedFixed32);
                }
                pos += 4;
            }
            _ => return Err(EnvelopeError::UnsupportedWireType),
        }
        if field == 0 {
            return Err(EnvelopeError::FieldNumberZero);
        }
    }
    match id {
        Some(0) => Err(EnvelopeError::ZeroRecordId),
        Some(id) => Ok(RecordRef {
            id: RecordId(id),
            append_time: UnixNanos(time),
            event,
        }),
        None => Err(EnvelopeError::MissingRecordId),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::telespool::v1::RecordEnvelope;
    use proptest::prelude::*;
    use prost::Message;

    fn one(id: u64, event: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, RecordId(id), UnixNanos(42), event);
        out
    }

    #[test]
    fn encoded_record_round_trips_and_has_the_predicted_length() {
        let buf = one(7, b"hello");
        assert_eq!(buf.len(), encoded_len(5));
        match decode(&buf) {
            Decoded::Valid { record, len } => {
                assert_eq!(len, buf.len());
                assert_eq!(record.id, RecordId(7));
                assert_eq!(record.append_time, UnixNanos(42));
                assert_eq!(record.event, b"hello");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn envelope_is_the_protobuf_message_prost_decodes() {
        let buf = one(u64::MAX, &[1, 2, 3]);
        let env = RecordEnvelope::decode(&buf[FRAME_HEADER_LEN..]).unwrap();
        assert_eq!(env.record_id, u64::MAX);
        assert_eq!(env.append_time_unix_nanos, 42);
        assert_eq!(&env.event[..], &[1, 2, 3]);
    }

    #[test]
    fn envelope_with_fields_reordered_and_unknown_fields_decodes() {
        let env = RecordEnvelope {
            record_id: 9,
            append_time_unix_nanos: -5,
            event: bytes::Bytes::from_static(b"ev"),
        };
        let mut payload = Vec::new();
        // unknown varint field 15, then the real fields
        payload.extend_from_slice(&[0x78, 0x01]);
        env.encode(&mut payload).unwrap();
        // unknown fixed32 field 16 and length-delimited field 17
        payload.extend_from_slice(&[0x85, 0x01, 1, 2, 3, 4, 0x8a, 0x01, 1, 0xff]);
        let rec = decode_envelope(&payload).unwrap();
        assert_eq!(
            (rec.id, rec.append_time, rec.event),
            (RecordId(9), UnixNanos(-5), &b"ev"[..])
        );
    }

    #[test]
    fn truncated_length_is_incomplete() {
        assert_eq!(decode(&[1, 0]), Decoded::Incomplete);
    }

    #[test]
    fn truncated_payload_is_incomplete() {
        let buf = one(1, b"abcdef");
        assert_eq!(decode(&buf[..buf.len() - 1]), Decoded::Incomplete);
    }

    #[test]
    fn flipped_crc_is_corrupt() {
        let mut buf = one(1, b"abcdef");
        buf[5] ^= 0x10;
        assert!(matches!(
            decode(&buf),
            Decoded::Corrupt(Corruption::CrcMismatch { .. })
        ));
    }

    #[test]
    fn flipped_payload_byte_is_corrupt() {
        let mut buf = one(1, b"abcdef");
        let last = buf.len() - 1;
        buf[last] ^= 1;
        assert!(matches!(
            decode(&buf),
            Decoded::Corrupt(Corruption::CrcMismatch { .. })
        ));
    }

    #[test]
    fn zeroed_bytes_are_corrupt_not_incomplete() {
        assert_eq!(decode(&[0; 64]), Decoded::Corrupt(Corruption::ZeroLength));
    }

    #[test]
    fn absurd_length_is_corrupt() {
        let buf = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert!(matches!(
            decode(&buf),
            Decoded::Corrupt(Corruption::LengthTooLarge { .. })
        ));
    }

    #[test]
    fn crc_valid_garbage_payload_is_an_invalid_envelope() {
        let payload = [0xffu8; 5];
        let mut buf = (payload.len() as u32).to_le_bytes().to_vec();
        buf.extend_from_slice(&frame_crc(&payload).to_le_bytes());
        buf.extend_from_slice(&payload);
        assert!(matches!(
            decode(&buf),
            Decoded::Corrupt(Corruption::Envelope(_))
        ));
    }

    proptest! {
        #[test]
        fn decode_is_total_over_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            match decode(&bytes) {
                Decoded::Valid { len, .. } => prop_assert!(len <= bytes.len()),
                Decoded::Incomplete | Decoded::Corrupt(_) => {}
            }
        }

        #[test]
        fn any_event_round_trips(id in 1u64.., time in any::<i64>(), event in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut buf = Vec::new();
            encode(&mut buf, RecordId(id), UnixNanos(time), &event);
            prop_assert_eq!(buf.len(), encoded_len(event.len()));
            match decode(&buf) {
                Decoded::Valid { record, len } => {
                    prop_assert_eq!(len, buf.len());
                    prop_assert_eq!(record.id, RecordId(id));
                    prop_assert_eq!(record.append_time, UnixNanos(time));
                    prop_assert_eq!(record.event, &event[..]);
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }

        #[test]
        fn any_single_byte_flip_is_detected(event in proptest::collection::vec(any::<u8>(), 1..256), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut buf = Vec::new();
            encode(&mut buf, RecordId(3), UnixNanos(1), &event);
            let i = pos.index(buf.len());
            buf[i] ^= 1 << bit;
            let valid = matches!(decode(&buf), Decoded::Valid { .. });
            prop_assert!(!valid, "a flipped bit decoded as valid");
        }
    }
}
