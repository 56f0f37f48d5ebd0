//! Fuzzes the servers' lazy `RecordEventsRequest` decoder
//! (`telespool::grpc_limits::lazy`) against prost's full decode, the
//! reference: on any bytes, both decode to the same message (events
//! decoded one at a time, their count known first) or both refuse.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use telespool::grpc_limits::{LazyPayload, LazyRecordEventsRequest};
use telespool::proto::telemetrygateway::v1::RecordEventsRequest;
use telespool::proto::telemetrygateway::v1::record_events_request::{EventsPayload, Payload};

fuzz_target!(|data: &[u8]| {
    let reference = RecordEventsRequest::decode(data);
    let lazy = LazyRecordEventsRequest::decode(Bytes::copy_from_slice(data)).and_then(|lazy| {
        Ok(RecordEventsRequest {
            payload: match lazy.payload {
                None => None,
                Some(LazyPayload::Metadata(m)) => Some(Payload::Metadata(m)),
                Some(LazyPayload::Events(raw)) => {
                    let events = raw.decode_all()?;
                    assert_eq!(events.len(), raw.count());
                    Some(Payload::Events(EventsPayload { events }))
                }
            },
        })
    });
    match (&reference, &lazy) {
        (Ok(a), Ok(b)) => {
            if a != b {
                // NaN metadata values are never equal to themselves.
                assert_eq!(format!("{a:?}"), format!("{b:?}"));
            }
        }
        (Err(_), Err(_)) => {}
        _ => panic!("prost: {reference:?}, lazy: {lazy:?}"),
    }
});
