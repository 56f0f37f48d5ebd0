//! Fuzzes the record frame codec (`telespool::log::record`).
//!
//! `decode` must be total: for any bytes at any offset it answers
//! valid / incomplete / corrupt without panicking or reading past the slice.
//! A valid frame never claims more bytes than it was given, and re-encoding
//! the record it yields gives a frame that decodes to the same record.
//!
//! Random bytes almost never carry a matching CRC, so the target also wraps
//! the input in a frame with a correct CRC and feeds it to the envelope
//! parser directly: that is what reaches the code behind the CRC check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telespool::log::record::{self, Decoded, FRAME_HEADER_LEN, RecordRef};

fuzz_target!(|data: &[u8]| {
    // Every offset, the empty tail included.
    for at in 0..=data.len() {
        let rest = &data[at..];
        check(rest, record::decode(rest));
    }

    // The same bytes as the payload of a frame whose CRC is right.
    let mut framed = Vec::with_capacity(FRAME_HEADER_LEN + data.len());
    framed.extend_from_slice(&(data.len() as u32).to_le_bytes());
    framed.extend_from_slice(&record::frame_crc(data).to_le_bytes());
    framed.extend_from_slice(data);
    let decoded = record::decode(&framed);
    check(&framed, decoded);
    match (record::decode_envelope(data), decoded) {
        (
            Ok(record),
            Decoded::Valid {
                record: framed_record,
                len,
            },
        ) => {
            assert_eq!(record, framed_record);
            assert_eq!(len, framed.len());
        }
        // The frame layer refuses an empty or oversized payload before
        // looking at the envelope.
        (_, Decoded::Corrupt(_)) => {}
        (envelope, framed) => panic!("envelope {envelope:?} but frame {framed:?}"),
    }
});

/// Checks one decode outcome of `input`.
fn check(input: &[u8], decoded: Decoded<'_>) {
    let Decoded::Valid { record, len } = decoded else {
        return;
    };
    assert!(len >= FRAME_HEADER_LEN, "frame of {len} bytes");
    assert!(
        len <= input.len(),
        "frame of {len} bytes in {} bytes",
        input.len()
    );

    let again = encode(&record);
    assert_eq!(again.len(), record::encoded_len(record.event.len()));
    match record::decode(&again) {
        Decoded::Valid {
            record: re,
            len: re_len,
        } => {
            assert_eq!(re, record);
            assert_eq!(re_len, again.len());
            // The writer's encoding is a fixed point.
            assert_eq!(encode(&re), again);
        }
        other => panic!("re-encoded {record:?} decodes as {other:?}"),
    }
}

fn encode(r: &RecordRef<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    record::encode(&mut out, r.id, r.append_time, r.event);
    out
}
