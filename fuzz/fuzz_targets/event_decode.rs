//! Fuzzes prost decoding of the wire contract: `telemetrygateway.v1.Event`
//! (what the queue stores and the exporter re-reads) and
//! `RecordEventsRequest` (what a client streams in).
//!
//! Decoding arbitrary bytes must never panic. Whatever decodes must survive
//! a round trip: encode, decode again, get the same message, and encoding
//! that gives the same bytes (maps are BTreeMaps, so encoding is
//! deterministic).
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use telespool::proto::telemetrygateway::v1::{Event, RecordEventsRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = Event::decode(data) {
        round_trip(&event);
    }
    if let Ok(request) = RecordEventsRequest::decode(data) {
        round_trip(&request);
    }
});

fn round_trip<M: Message + Default + PartialEq + Debug>(first: &M) {
    let bytes = first.encode_to_vec();
    assert_eq!(bytes.len(), first.encoded_len());
    let second = match M::decode(bytes.as_slice()) {
        Ok(m) => m,
        Err(e) => panic!("re-encoded {first:?} does not decode: {e}"),
    };
    if &second != first {
        // NaN metadata values are never equal to themselves; their Debug
        // text (and their bits, checked below) still must be.
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
    }
    assert_eq!(second.encode_to_vec(), bytes);
}
