//! The lazy decoder against prost's full decode, the reference.

use super::*;
use crate::proto::telemetrygateway::v1::identifier::{
    Identifier as Id, UnlicensedInstanceIdentifier,
};
use crate::proto::telemetrygateway::v1::record_events_request::{EventsPayload, Payload};
use crate::proto::telemetrygateway::v1::{EventParameters, Identifier, RecordEventsRequest};
use proptest::prelude::*;
use prost::Message;
use prost_types::{Struct, Timestamp, Value, value::Kind};
use std::collections::BTreeMap;

/// The lazy decode, events decoded too, as a prost message.
fn lazy_full(bytes: &[u8]) -> Result<RecordEventsRequest, DecodeError> {
    let lazy = LazyRecordEventsRequest::decode(Bytes::copy_from_slice(bytes))?;
    let payload = match lazy.payload {
        None => None,
        Some(LazyPayload::Metadata(m)) => Some(Payload::Metadata(m)),
        Some(LazyPayload::Events(raw)) => {
            let events = raw.decode_all()?;
            assert_eq!(events.len(), raw.count(), "the count is the events decoded");
            Some(Payload::Events(EventsPayload { events }))
        }
    };
    Ok(RecordEventsRequest { payload })
}

/// Asserts the lazy decode agrees with prost's: same message, or both
/// refuse.
fn assert_agrees(bytes: &[u8]) {
    let reference = RecordEventsRequest::decode(bytes);
    let lazy = lazy_full(bytes);
    match (&reference, &lazy) {
        // NaN metadata values are never equal to themselves: compare their
        // Debug text then.
        (Ok(a), Ok(b)) if a != b => assert_eq!(format!("{a:?}"), format!("{b:?}")),
        (Ok(_), Ok(_)) => {}
        (Err(_), Err(_)) => {}
        _ => panic!("prost: {reference:?}\nlazy: {lazy:?}\nbytes: {bytes:02x?}"),
    }
}

fn key(tag: u32, wire_type: u8) -> Vec<u8> {
    let mut out = Vec::new();
    encode_varint(u64::from(tag << 3 | u32::from(wire_type)), &mut out);
    out
}

fn delimited(tag: u32, body: &[u8]) -> Vec<u8> {
    let mut out = key(tag, 2);
    encode_varint(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}

fn metadata(instance: &str) -> RecordEventsRequestMetadata {
    RecordEventsRequestMetadata {
        request_id: "req".into(),
        identifier: Some(Identifier {
            identifier: Some(Id::UnlicensedInstance(UnlicensedInstanceIdentifier {
                instance_id: instance.into(),
                external_url: String::new(),
            })),
        }),
    }
}

fn nested(depth: usize) -> Struct {
    let mut s = Struct::default();
    for _ in 0..depth {
        s = Struct {
            fields: BTreeMap::from([(
                "a".to_owned(),
                Value {
                    kind: Some(Kind::StructValue(s)),
                },
            )]),
        };
    }
    s
}

fn event(id: &str, private_depth: Option<usize>) -> Event {
    Event {
        id: id.into(),
        feature: "search".into(),
        action: "submitted".into(),
        timestamp: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
        parameters: Some(EventParameters {
            version: 1,
            metadata: BTreeMap::from([("x".to_owned(), 1.5)]),
            private_metadata: private_depth.map(nested),
            ..EventParameters::default()
        }),
        ..Event::default()
    }
}

/// One field of a message or payload, as the generator builds them.
#[derive(Clone, Debug)]
enum Field {
    /// Field 1 of the request: metadata (encoded, maybe with an unknown field).
    Metadata(String, bool),
    /// Field 2 of the request: an events payload.
    Events(Vec<Inner>),
    /// A field we do not know, of any wire type.
    Unknown(u32, Unknown),
}

/// One field of an events payload.
#[derive(Clone, Debug)]
enum Inner {
    /// An event (id, private-metadata depth, trailing unknown field).
    Event(String, Option<usize>, bool),
    /// An empty event (two bytes).
    Empty,
    /// An unknown field.
    Unknown(u32, Unknown),
}

#[derive(Clone, Debug)]
enum Unknown {
    Varint(u64),
    Fixed32(u32),
    Fixed64(u64),
    Bytes(Vec<u8>),
    Group(u64),
}

fn encode_unknown(tag: u32, u: &Unknown) -> Vec<u8> {
    match u {
        Unknown::Varint(v) => {
            let mut out = key(tag, 0);
            encode_varint(*v, &mut out);
            out
        }
        Unknown::Fixed32(v) => [key(tag, 5), v.to_le_bytes().to_vec()].concat(),
        Unknown::Fixed64(v) => [key(tag, 1), v.to_le_bytes().to_vec()].concat(),
        Unknown::Bytes(b) => delimited(tag, b),
        Unknown::Group(v) => {
            let mut out = key(tag, 3);
            out.extend(key(1, 0));
            encode_varint(*v, &mut out);
            out.extend(key(tag, 4));
            out
        }
    }
}

fn encode_fields(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        match f {
            Field::Metadata(instance, unknown) => {
                let mut body = metadata(instance).encode_to_vec();
                if *unknown {
                    body.extend(encode_unknown(9, &Unknown::Varint(7)));
                }
                out.extend(delimited(1, &body));
            }
            Field::Events(inner) => {
                let mut body = Vec::new();
                for i in inner {
                    match i {
                        Inner::Event(id, depth, unknown) => {
                            let mut e = event(id, *depth).encode_to_vec();
                            if *unknown {
                                e.extend(encode_unknown(77, &Unknown::Bytes(b"x".to_vec())));
                            }
                            body.extend(delimited(1, &e));
                        }
                        Inner::Empty => body.extend([0x0a, 0x00]),
                        Inner::Unknown(tag, u) => body.extend(encode_unknown(*tag, u)),
                    }
                }
                out.extend(delimited(2, &body));
            }
            Field::Unknown(tag, u) => out.extend(encode_unknown(*tag, u)),
        }
    }
    out
}

fn unknown() -> impl Strategy<Value = Unknown> {
    prop_oneof![
        any::<u64>().prop_map(Unknown::Varint),
        any::<u32>().prop_map(Unknown::Fixed32),
        any::<u64>().prop_map(Unknown::Fixed64),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Unknown::Bytes),
        any::<u64>().prop_map(Unknown::Group),
    ]
}

fn inner() -> impl Strategy<Value = Inner> {
    prop_oneof![
        4 => ("[a-z0-9]{0,8}", proptest::option::weighted(0.1, 0usize..40), any::<bool>())
            .prop_map(|(id, depth, unknown)| Inner::Event(id, depth, unknown)),
        2 => Just(Inner::Empty),
        1 => (2u32..20, unknown()).prop_map(|(t, u)| Inner::Unknown(t, u)),
    ]
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        2 => ("[a-z]{0,6}", any::<bool>()).prop_map(|(i, u)| Field::Metadata(i, u)),
        4 => proptest::collection::vec(inner(), 0..6).prop_map(Field::Events),
        1 => (3u32..30, unknown()).prop_map(|(t, u)| Field::Unknown(t, u)),
    ]
}

/// How a generated message is damaged, if at all.
#[derive(Clone, Debug)]
enum Damage {
    None,
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => Just(Damage::None),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Damage::Flip(p, b)),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Damage::Insert(p, b)),
    ]
}

fn apply(mut bytes: Vec<u8>, d: &Damage) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    let n = bytes.len();
    match d {
        Damage::None => {}
        Damage::Flip(p, b) => bytes[p % n] ^= b.max(&1),
        Damage::Truncate(p) => bytes.truncate(p % n),
        Damage::Insert(p, b) => bytes.insert(p % (n + 1), *b),
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_lazy_decode_agrees_with_prost_on_generated_messages(
        fields in proptest::collection::vec(field(), 0..5),
        d in damage(),
    ) {
        assert_agrees(&apply(encode_fields(&fields), &d));
    }

    #[test]
    fn the_lazy_decode_agrees_with_prost_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        assert_agrees(&bytes);
    }

    #[test]
    fn the_lazy_decode_agrees_with_prost_on_an_events_field_of_arbitrary_bytes(
        body in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        assert_agrees(&delimited(2, &body));
    }
}

#[test]
fn unknown_fields_are_skipped_at_every_level() {
    let fields = [
        Field::Unknown(7, Unknown::Group(3)),
        Field::Metadata("i".into(), true),
        Field::Unknown(8, Unknown::Fixed64(1)),
        Field::Events(vec![
            Inner::Unknown(5, Unknown::Bytes(vec![1, 2])),
            Inner::Event("a".into(), None, true),
            Inner::Unknown(6, Unknown::Varint(300)),
            Inner::Event("b".into(), Some(2), false),
        ]),
        Field::Unknown(9, Unknown::Fixed32(1)),
    ];
    let bytes = encode_fields(&fields);
    assert_agrees(&bytes);
    let lazy = LazyRecordEventsRequest::decode(Bytes::from(bytes)).unwrap();
    let Some(LazyPayload::Events(raw)) = lazy.payload else {
        panic!("the events come last");
    };
    let ids: Vec<String> = raw.events().map(|e| e.unwrap().id).collect();
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn consecutive_events_fields_are_one_payload_and_metadata_after_them_replaces_them() {
    let two_runs = encode_fields(&[
        Field::Events(vec![Inner::Event("a".into(), None, false)]),
        Field::Unknown(5, Unknown::Varint(1)),
        Field::Events(vec![Inner::Empty, Inner::Event("b".into(), None, false)]),
    ]);
    assert_agrees(&two_runs);
    let lazy = LazyRecordEventsRequest::decode(Bytes::from(two_runs)).unwrap();
    let Some(LazyPayload::Events(raw)) = lazy.payload else {
        panic!("events");
    };
    assert_eq!(raw.count(), 3);

    let replaced = encode_fields(&[
        Field::Events(vec![Inner::Event("a".into(), None, false)]),
        Field::Metadata("m".into(), false),
    ]);
    assert_agrees(&replaced);
    let lazy = LazyRecordEventsRequest::decode(Bytes::from(replaced)).unwrap();
    assert_eq!(lazy.payload, Some(LazyPayload::Metadata(metadata("m"))));
}

#[test]
fn an_invalid_event_replaced_by_metadata_is_still_refused_as_prost_refuses_it() {
    let mut bad = event("a", None).encode_to_vec();
    bad.extend(delimited(3, &[0xff])); // feature: not UTF-8
    let mut bytes = delimited(2, &delimited(1, &bad));
    bytes.extend(delimited(1, &metadata("m").encode_to_vec()));
    assert!(RecordEventsRequest::decode(&bytes[..]).is_err());
    assert!(LazyRecordEventsRequest::decode(Bytes::from(bytes)).is_err());
}

#[test]
fn an_invalid_event_fails_with_prosts_message_and_field_path() {
    let mut bad = event("a", None).encode_to_vec();
    bad.extend(delimited(3, &[0xff]));
    let mut body = delimited(1, &event("ok", None).encode_to_vec());
    body.extend(delimited(1, &bad));
    let bytes = delimited(2, &body);
    let reference = RecordEventsRequest::decode(&bytes[..]).unwrap_err();
    let lazy = LazyRecordEventsRequest::decode(Bytes::from(bytes)).unwrap();
    let Some(LazyPayload::Events(raw)) = lazy.payload else {
        panic!("events");
    };
    let mut events = raw.events();
    assert_eq!(events.next().unwrap().unwrap().id, "ok");
    let error = events.next().unwrap().unwrap_err();
    assert_eq!(error.to_string(), reference.to_string());
    assert!(events.next().is_none(), "the iteration ends at an error");
}

#[test]
fn events_are_decoded_exactly_as_deep_as_prost_allows() {
    // Find the deepest private metadata prost decodes inside a request,
    // then check the lazy decoder draws the line at the same depth.
    let request = |depth| {
        RecordEventsRequest {
            payload: Some(Payload::Events(EventsPayload {
                events: vec![event("deep", Some(depth))],
            })),
        }
        .encode_to_vec()
    };
    let deepest = (1..100)
        .take_while(|&d| RecordEventsRequest::decode(&request(d)[..]).is_ok())
        .last()
        .unwrap();
    assert!(deepest > 10, "{deepest}");
    assert!(lazy_full(&request(deepest)).is_ok());
    assert!(lazy_full(&request(deepest + 1)).is_err());
    // Unknown groups nested in the payload draw the line at prost's depth too.
    for depth in 95..101 {
        let mut group = Vec::new();
        for _ in 0..depth {
            group.extend(key(5, 3));
        }
        for _ in 0..depth {
            group.extend(key(5, 4));
        }
        assert_agrees(&delimited(2, &group));
        assert_agrees(&group);
    }
}

#[test]
fn a_payload_of_empty_events_is_counted_without_decoding_them() {
    let n = 100_000;
    let mut body = Vec::with_capacity(2 * n);
    for _ in 0..n {
        body.extend([0x0a, 0x00]);
    }
    let lazy = LazyRecordEventsRequest::decode(Bytes::from(delimited(2, &body))).unwrap();
    let Some(LazyPayload::Events(raw)) = lazy.payload else {
        panic!("events");
    };
    assert_eq!(raw.count(), n);
    assert_eq!(raw.encoded_len(), 2 * n + 4);
    assert_eq!(raw.events().take(3).flatten().count(), 3);
}

#[test]
fn a_message_that_does_not_decode_is_internal_with_prosts_message() {
    let status = decode_status(&RecordEventsRequest::decode(&[0x12, 0x05][..]).unwrap_err());
    assert_eq!(status.code(), tonic::Code::Internal);
    assert!(status.message().contains("failed to decode"), "{status:?}");
}
