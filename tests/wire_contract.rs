//! The `telemetrygateway.v1` wire contract, checked byte by byte.
//!
//! Sourcegraph instances persist raw `Event` bytes in their export queues and
//! stream them to whatever answers on the gateway's gRPC paths, so telespool
//! must agree with Sourcegraph's field numbers, wire types and method paths
//! exactly, not just round-trip with itself. These tests therefore do not
//! trust prost alone: a tiny hand-written protobuf reader ([`Msg`]) and writer
//! ([`Pb`]) check the encodings against the field numbers of Sourcegraph's
//! `lib/telemetrygateway/v1/telemetrygateway.proto` (listed below in
//! [`render_fields`]' notation), and Sourcegraph's backcompat snapshots
//! (`internal/telemetrygateway/backcompat_test.go`, `testdata/snapshots`)
//! are rebuilt by hand, in the field order Go marshals them, and decoded.

// clippy.toml allows these inside `#[test]` functions only; the reader,
// writer and fixtures below are test code too, and fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use prost::Message;
use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Timestamp, Value};
use telespool::proto::telemetrygateway::v1 as pb;
use telespool::proto::telemetrygateway::v1::{
    Event, EventBillingMetadata, EventFeatureFlags, EventInteraction, EventMarketingTracking,
    EventParameters, EventSource, EventUser, Identifier, RecordEventRequest, RecordEventResponse,
    RecordEventsRequest, RecordEventsRequestMetadata, RecordEventsResponse,
};
use tonic::codegen::{Service, http};

// ---------------------------------------------------------------------------
// A minimal protobuf reader: key = field << 3 | wire type.

/// One field value as it sits on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Wire<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Len(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

fn read_varint(b: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first().expect("varint runs past the end");
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return v;
        }
    }
    panic!("varint longer than 10 bytes");
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> &'a [u8] {
    assert!(b.len() >= n, "{n} bytes wanted, {} left", b.len());
    let (head, rest) = b.split_at(n);
    *b = rest;
    head
}

/// The fields of one message, in wire order.
#[derive(Debug)]
struct Msg<'a>(Vec<(u32, Wire<'a>)>);

impl<'a> Msg<'a> {
    fn parse(mut b: &'a [u8]) -> Msg<'a> {
        let mut fields = Vec::new();
        while !b.is_empty() {
            let key = read_varint(&mut b);
            let field = u32::try_from(key >> 3).expect("field number fits u32");
            assert_ne!(field, 0, "field number 0");
            let value = match key & 7 {
                0 => Wire::Varint(read_varint(&mut b)),
                1 => Wire::Fixed64(u64::from_le_bytes(take(&mut b, 8).try_into().unwrap())),
                2 => {
                    let n = read_varint(&mut b) as usize;
                    Wire::Len(take(&mut b, n))
                }
                5 => Wire::Fixed32(u32::from_le_bytes(take(&mut b, 4).try_into().unwrap())),
                w => panic!("field {field}: unexpected wire type {w}"),
            };
            fields.push((field, value));
        }
        Msg(fields)
    }

    /// The distinct field numbers present, sorted.
    fn numbers(&self) -> Vec<u32> {
        let mut n: Vec<u32> = self.0.iter().map(|&(f, _)| f).collect();
        n.sort_unstable();
        n.dedup();
        n
    }

    /// Asserts that exactly these field numbers are present.
    fn has_fields(&self, expected: &[u32]) -> &Self {
        assert_eq!(self.numbers(), expected, "field numbers of {self:?}");
        self
    }

    fn all(&self, field: u32) -> Vec<Wire<'a>> {
        self.0
            .iter()
            .filter(|&&(f, _)| f == field)
            .map(|&(_, v)| v)
            .collect()
    }

    /// The single occurrence of `field`.
    fn one(&self, field: u32) -> Wire<'a> {
        match self.all(field)[..] {
            [v] => v,
            ref vs => panic!("field {field}: expected once, found {vs:?}"),
        }
    }

    fn varint(&self, field: u32) -> u64 {
        match self.one(field) {
            Wire::Varint(v) => v,
            other => panic!("field {field}: expected varint (wire type 0), got {other:?}"),
        }
    }

    fn fixed64(&self, field: u32) -> u64 {
        match self.one(field) {
            Wire::Fixed64(v) => v,
            other => panic!("field {field}: expected fixed64 (wire type 1), got {other:?}"),
        }
    }

    fn bytes(&self, field: u32) -> &'a [u8] {
        as_len(field, self.one(field))
    }

    fn string(&self, field: u32) -> &'a str {
        std::str::from_utf8(self.bytes(field)).expect("string field is UTF-8")
    }

    fn msg(&self, field: u32) -> Msg<'a> {
        Msg::parse(self.bytes(field))
    }

    /// The entries of map field `field`, by key. Each entry is a message with
    /// the key in field 1 (a string here) and the value in field 2.
    fn map(&self, field: u32) -> BTreeMap<&'a str, Wire<'a>> {
        let mut out = BTreeMap::new();
        for entry in self.all(field) {
            let entry = Msg::parse(as_len(field, entry));
            entry.has_fields(&[1, 2]);
            assert!(out.insert(entry.string(1), entry.one(2)).is_none());
        }
        out
    }
}

fn as_len(field: u32, w: Wire<'_>) -> &[u8] {
    match w {
        Wire::Len(b) => b,
        other => panic!("field {field}: expected length-delimited (wire type 2), got {other:?}"),
    }
}

fn len_msg(w: Wire<'_>) -> Msg<'_> {
    Msg::parse(as_len(0, w))
}

// ---------------------------------------------------------------------------
// A minimal protobuf writer, to build bytes the way another implementation
// (Go) would, unknown fields included.

#[derive(Clone, Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn new() -> Pb {
        Pb::default()
    }

    fn put_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(mut self, field: u32, wire: u8) -> Pb {
        self.put_varint(u64::from(field) << 3 | u64::from(wire));
        self
    }

    fn varint(self, field: u32, v: u64) -> Pb {
        let mut p = self.key(field, 0);
        p.put_varint(v);
        p
    }

    fn fixed64(self, field: u32, v: u64) -> Pb {
        let mut p = self.key(field, 1);
        p.0.extend_from_slice(&v.to_le_bytes());
        p
    }

    fn fixed32(self, field: u32, v: u32) -> Pb {
        let mut p = self.key(field, 5);
        p.0.extend_from_slice(&v.to_le_bytes());
        p
    }

    fn bytes(self, field: u32, b: &[u8]) -> Pb {
        let mut p = self.key(field, 2);
        p.put_varint(b.len() as u64);
        p.0.extend_from_slice(b);
        p
    }

    fn string(self, field: u32, s: &str) -> Pb {
        self.bytes(field, s.as_bytes())
    }

    fn msg(self, field: u32, m: Pb) -> Pb {
        self.bytes(field, &m.0)
    }

    /// A (deprecated) group: start-group key, contents, end-group key.
    fn group(self, field: u32, inner: Pb) -> Pb {
        let mut p = self.key(field, 3);
        p.0.extend_from_slice(&inner.0);
        p.key(field, 4)
    }

    /// One unknown field of every wire type, numbered from `base`: varint,
    /// fixed64, length-delimited (not a valid message), a group holding
    /// fields of its own, and fixed32.
    fn unknowns(self, base: u32) -> Pb {
        self.varint(base, u64::MAX)
            .fixed64(base + 1, 0x0123_4567_89ab_cdef)
            .bytes(base + 2, &[0xff, 0x00, 0x80])
            .group(
                base + 3,
                Pb::new()
                    .varint(1, 7)
                    .string(2, "in a group")
                    .group(3, Pb::new().fixed32(1, 9)),
            )
            .fixed32(base + 4, 0xdead_beef)
    }
}

// ---------------------------------------------------------------------------
// Values

fn s(v: &str) -> String {
    v.to_owned()
}

fn value(kind: Kind) -> Value {
    Value { kind: Some(kind) }
}

/// An event with every field of every message set, each to a distinct value.
fn full_event() -> Event {
    let nested = Struct {
        fields: BTreeMap::from([(s("inner"), value(Kind::StringValue(s("deep"))))]),
    };
    Event {
        id: s("0190b7a0-0000-7000-8000-000000000001"),
        timestamp: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_456_789,
        }),
        feature: s("cody.completion"),
        action: s("accepted"),
        source: Some(EventSource {
            server: Some(pb::event_source::Server {
                version: s("5.3.0"),
            }),
            client: Some(pb::event_source::Client {
                name: s("VSCODE_CODY_EXTENSION"),
                version: Some(s("1.2.3")),
            }),
        }),
        parameters: Some(EventParameters {
            version: 3,
            legacy_metadata: BTreeMap::from([(s("legacy"), 7), (s("negative"), -7)]),
            metadata: BTreeMap::from([(s("float"), 1.3), (s("count"), 42.0)]),
            private_metadata: Some(Struct {
                fields: BTreeMap::from([
                    (s("null"), value(Kind::NullValue(0))),
                    (s("number"), value(Kind::NumberValue(2.5))),
                    (s("string"), value(Kind::StringValue(s("text")))),
                    (s("bool"), value(Kind::BoolValue(true))),
                    (s("struct"), value(Kind::StructValue(nested))),
                    (
                        s("list"),
                        value(Kind::ListValue(ListValue {
                            values: vec![
                                value(Kind::NumberValue(1.0)),
                                value(Kind::StringValue(s("two"))),
                            ],
                        })),
                    ),
                ]),
            }),
            billing_metadata: Some(EventBillingMetadata {
                product: s("cody"),
                category: s("core"),
            }),
        }),
        user: Some(EventUser {
            // Above 2^32: an int32 would truncate it.
            user_id: Some(5_000_000_000),
            anonymous_user_id: Some(s("anon-1")),
            sams_external_id: Some(s("018d0000-sams-external-id")),
        }),
        feature_flags: Some(EventFeatureFlags {
            flags: BTreeMap::from([(s("on"), s("true")), (s("off"), s("false"))]),
        }),
        marketing_tracking: Some(EventMarketingTracking {
            url: Some(s("m1-url")),
            first_source_url: Some(s("m2-first-source-url")),
            cohort_id: Some(s("m3-cohort-id")),
            referrer: Some(s("m4-referrer")),
            last_source_url: Some(s("m5-last-source-url")),
            device_session_id: Some(s("m6-device-session-id")),
            session_referrer: Some(s("m7-session-referrer")),
            session_first_url: Some(s("m8-session-first-url")),
        }),
        interaction: Some(EventInteraction {
            trace_id: Some(s("01020304050607080102040810203040")),
            interaction_id: Some(s("interaction-9")),
            geolocation: Some(pb::event_interaction::Geolocation {
                country_code: s("CH"),
            }),
        }),
    }
}

// ---------------------------------------------------------------------------
// (a) Encoding, field by field

#[test]
fn fully_populated_event_encodes_every_field_with_its_documented_number_and_wire_type() {
    let event = full_event();
    let bytes = event.encode_to_vec();
    let e = Msg::parse(&bytes);
    e.has_fields(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

    assert_eq!(e.string(1), "0190b7a0-0000-7000-8000-000000000001");
    // timestamp: google.protobuf.Timestamp {seconds = 1 int64, nanos = 2 int32}
    let ts = e.msg(2);
    ts.has_fields(&[1, 2]);
    assert_eq!(ts.varint(1), 1_700_000_000);
    assert_eq!(ts.varint(2), 123_456_789);
    assert_eq!(e.string(3), "cody.completion");
    assert_eq!(e.string(4), "accepted");

    // source: {server = 1 {version = 1}, client = 2 {name = 1, version = 2}}
    let source = e.msg(5);
    source.has_fields(&[1, 2]);
    assert_eq!(source.msg(1).has_fields(&[1]).string(1), "5.3.0");
    let client = source.msg(2);
    client.has_fields(&[1, 2]);
    assert_eq!(client.string(1), "VSCODE_CODY_EXTENSION");
    assert_eq!(client.string(2), "1.2.3");

    // parameters
    let params = e.msg(6);
    params.has_fields(&[1, 2, 3, 4, 5]);
    assert_eq!(params.varint(1), 3);
    // legacy_metadata = 2: map<string, int64>, values are varints
    // (two's complement, not zigzag).
    let legacy = params.map(2);
    assert_eq!(legacy.len(), 2);
    assert_eq!(legacy["legacy"], Wire::Varint(7));
    assert_eq!(legacy["negative"], Wire::Varint(-7i64 as u64));
    // metadata = 5: map<string, double>, values are fixed64 f64 bits.
    let metadata = params.map(5);
    assert_eq!(metadata.len(), 2);
    assert_eq!(metadata["float"], Wire::Fixed64(1.3f64.to_bits()));
    assert_eq!(metadata["float"], Wire::Fixed64(0x3ff4_cccc_cccc_cccd));
    assert_eq!(metadata["count"], Wire::Fixed64(42.0f64.to_bits()));
    // private_metadata = 3: google.protobuf.Struct {fields = 1 map<string, Value>}
    let private = params.msg(3);
    private.has_fields(&[1]);
    let fields = private.map(1);
    assert_eq!(fields.len(), 6);
    // Value: null_value = 1 (enum), number_value = 2 (double),
    // string_value = 3, bool_value = 4, struct_value = 5, list_value = 6.
    assert_eq!(len_msg(fields["null"]).has_fields(&[1]).varint(1), 0);
    assert_eq!(
        len_msg(fields["number"]).has_fields(&[2]).fixed64(2),
        2.5f64.to_bits()
    );
    assert_eq!(len_msg(fields["string"]).has_fields(&[3]).string(3), "text");
    assert_eq!(len_msg(fields["bool"]).has_fields(&[4]).varint(4), 1);
    let nested = len_msg(fields["struct"]).has_fields(&[5]).msg(5);
    let inner = nested.map(1);
    assert_eq!(len_msg(inner["inner"]).string(3), "deep");
    let list = len_msg(fields["list"]).has_fields(&[6]).msg(6);
    list.has_fields(&[1]);
    let items = list.all(1);
    assert_eq!(items.len(), 2);
    assert_eq!(len_msg(items[0]).fixed64(2), 1.0f64.to_bits());
    assert_eq!(len_msg(items[1]).string(3), "two");
    // billing_metadata = 4: {product = 1, category = 2}
    let billing = params.msg(4);
    billing.has_fields(&[1, 2]);
    assert_eq!((billing.string(1), billing.string(2)), ("cody", "core"));

    // user = 7: {user_id = 1 int64, anonymous_user_id = 2, sams_external_id = 3}
    let user = e.msg(7);
    user.has_fields(&[1, 2, 3]);
    assert_eq!(user.varint(1), 5_000_000_000);
    assert_eq!(user.string(2), "anon-1");
    assert_eq!(user.string(3), "018d0000-sams-external-id");

    // feature_flags = 8: {flags = 1 map<string, string>}
    let flags = e.msg(8);
    flags.has_fields(&[1]);
    let flags = flags.map(1);
    assert_eq!(flags.len(), 2);
    assert_eq!(flags["on"], Wire::Len(b"true"));
    assert_eq!(flags["off"], Wire::Len(b"false"));

    // marketing_tracking = 9: eight optional strings, 1..=8
    let marketing = e.msg(9);
    marketing.has_fields(&[1, 2, 3, 4, 5, 6, 7, 8]);
    for (n, want) in [
        (1, "m1-url"),
        (2, "m2-first-source-url"),
        (3, "m3-cohort-id"),
        (4, "m4-referrer"),
        (5, "m5-last-source-url"),
        (6, "m6-device-session-id"),
        (7, "m7-session-referrer"),
        (8, "m8-session-first-url"),
    ] {
        assert_eq!(marketing.string(n), want, "marketing field {n}");
    }

    // interaction = 10: {trace_id = 1, interaction_id = 2,
    // geolocation = 3 {country_code = 1}}
    let interaction = e.msg(10);
    interaction.has_fields(&[1, 2, 3]);
    assert_eq!(interaction.string(1), "01020304050607080102040810203040");
    assert_eq!(interaction.string(2), "interaction-9");
    assert_eq!(interaction.msg(3).has_fields(&[1]).string(1), "CH");

    assert_eq!(Event::decode(bytes.as_slice()).unwrap(), event);
}

#[test]
fn negative_integers_are_plain_varints_sign_extended_to_ten_bytes() {
    let event = Event {
        parameters: Some(EventParameters {
            version: -1,
            legacy_metadata: BTreeMap::from([(s("k"), -1)]),
            ..EventParameters::default()
        }),
        user: Some(EventUser {
            user_id: Some(-2),
            ..EventUser::default()
        }),
        ..Event::default()
    };
    let bytes = event.encode_to_vec();
    let e = Msg::parse(&bytes);
    // int32 is sign-extended like int64 (not sint32's zigzag).
    let params = e.msg(6);
    assert_eq!(params.varint(1), u64::MAX);
    assert_eq!(params.map(2)["k"], Wire::Varint(u64::MAX));
    assert_eq!(e.msg(7).varint(1), -2i64 as u64);
    // The user message is one key byte and a ten-byte varint.
    assert_eq!(
        e.bytes(7),
        [
            0x08, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
        ]
    );
}

#[test]
fn explicit_presence_fields_are_encoded_even_when_empty() {
    let event = Event {
        user: Some(EventUser {
            user_id: Some(0),
            anonymous_user_id: Some(String::new()),
            sams_external_id: None,
        }),
        interaction: Some(EventInteraction::default()),
        ..Event::default()
    };
    let bytes = event.encode_to_vec();
    let e = Msg::parse(&bytes);
    e.has_fields(&[7, 10]);
    let user = e.msg(7);
    user.has_fields(&[1, 2]);
    assert_eq!(user.varint(1), 0);
    assert_eq!(user.string(2), "");
    e.msg(10).has_fields(&[]);
    // Plain proto3 scalars at their default value are not encoded at all.
    assert!(Event::default().encode_to_vec().is_empty());
}

// ---------------------------------------------------------------------------
// (b) Unknown fields

/// `full_event()` written by hand with unknown fields of every wire type
/// before, between and after the known ones, at the top level and inside
/// every nested message (a map entry and a Struct value included).
fn full_event_with_unknown_fields() -> Pb {
    let value_string = |v: &str| Pb::new().unknowns(20).string(3, v).unknowns(40);
    let entry = |k: &str, v: Pb| Pb::new().string(1, k).unknowns(30).msg(2, v);
    let private = Pb::new()
        .unknowns(50)
        .msg(1, entry("null", Pb::new().varint(1, 0).unknowns(60)))
        .msg(
            1,
            entry(
                "number",
                Pb::new().fixed64(2, 2.5f64.to_bits()).unknowns(60),
            ),
        )
        .msg(1, entry("string", value_string("text")))
        .msg(1, entry("bool", Pb::new().varint(4, 1)))
        .msg(
            1,
            entry(
                "struct",
                Pb::new().msg(
                    5,
                    Pb::new()
                        .msg(1, entry("inner", value_string("deep")))
                        .unknowns(70),
                ),
            ),
        )
        .msg(
            1,
            entry(
                "list",
                Pb::new().msg(
                    6,
                    Pb::new()
                        .msg(1, Pb::new().fixed64(2, 1.0f64.to_bits()))
                        .unknowns(80)
                        .msg(1, value_string("two")),
                ),
            ),
        );
    let params = Pb::new()
        .unknowns(100)
        .varint(1, 3)
        .msg(2, Pb::new().unknowns(90).string(1, "legacy").varint(2, 7))
        .msg(2, Pb::new().string(1, "negative").varint(2, -7i64 as u64))
        .msg(3, private)
        .unknowns(110)
        .msg(
            4,
            Pb::new().string(1, "cody").unknowns(120).string(2, "core"),
        )
        .msg(
            5,
            Pb::new()
                .string(1, "float")
                .fixed64(2, 1.3f64.to_bits())
                .unknowns(130),
        )
        .msg(
            5,
            Pb::new().string(1, "count").fixed64(2, 42.0f64.to_bits()),
        )
        .unknowns(140);
    let mut marketing = Pb::new().unknowns(150);
    for (n, v) in [
        (1, "m1-url"),
        (2, "m2-first-source-url"),
        (3, "m3-cohort-id"),
        (4, "m4-referrer"),
        (5, "m5-last-source-url"),
        (6, "m6-device-session-id"),
        (7, "m7-session-referrer"),
        (8, "m8-session-first-url"),
    ] {
        marketing = marketing.string(n, v).unknowns(160 + 10 * n);
    }
    Pb::new()
        .unknowns(11)
        .string(1, "0190b7a0-0000-7000-8000-000000000001")
        .msg(
            2,
            Pb::new()
                .varint(1, 1_700_000_000)
                .unknowns(3)
                .varint(2, 123_456_789),
        )
        .unknowns(1000)
        .string(3, "cody.completion")
        .string(4, "accepted")
        .msg(
            5,
            Pb::new()
                .msg(1, Pb::new().unknowns(2).string(1, "5.3.0").unknowns(7))
                .unknowns(3)
                .msg(
                    2,
                    Pb::new()
                        .string(1, "VSCODE_CODY_EXTENSION")
                        .unknowns(3)
                        .string(2, "1.2.3"),
                ),
        )
        .msg(6, params)
        .msg(
            7,
            Pb::new()
                .varint(1, 5_000_000_000)
                .unknowns(4)
                .string(2, "anon-1")
                .string(3, "018d0000-sams-external-id")
                .unknowns(9),
        )
        .msg(
            8,
            Pb::new()
                .unknowns(2)
                .msg(1, Pb::new().string(1, "on").string(2, "true").unknowns(3))
                .msg(1, Pb::new().string(1, "off").string(2, "false")),
        )
        .msg(9, marketing)
        .msg(
            10,
            Pb::new()
                .string(1, "01020304050607080102040810203040")
                .unknowns(4)
                .string(2, "interaction-9")
                .msg(3, Pb::new().unknowns(2).string(1, "CH").unknowns(7))
                .unknowns(9),
        )
        .unknowns(20_000)
        // The largest field number protobuf allows.
        .varint(536_870_911, 1)
}

#[test]
fn event_with_unknown_fields_of_every_wire_type_at_every_level_decodes_with_known_fields_intact() {
    let bytes = full_event_with_unknown_fields().0;
    assert!(bytes.len() > full_event().encode_to_vec().len() * 2);
    let decoded = Event::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded, full_event());
}

#[test]
fn stream_request_with_unknown_fields_around_its_payload_decodes() {
    let event = full_event_with_unknown_fields();
    let bytes = Pb::new()
        .unknowns(3)
        .msg(2, Pb::new().msg(1, event.clone()).unknowns(5).msg(1, event))
        .unknowns(30)
        .0;
    let decoded = RecordEventsRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(
        decoded,
        RecordEventsRequest {
            payload: Some(pb::record_events_request::Payload::Events(
                pb::record_events_request::EventsPayload {
                    events: vec![full_event(), full_event()],
                }
            )),
        }
    );
}

// ---------------------------------------------------------------------------
// (c) Sourcegraph's backcompat snapshots, rebuilt by hand

/// Numeric metadata of a snapshot.
enum SnapshotMetadata {
    /// `parameters.metadata` as field 2, `map<string, int64>` (before
    /// 2023-11-28): `{"metadata": 1}`.
    LegacyInt64,
    /// `parameters.metadata` as field 5, `map<string, double>`:
    /// `{"metadata": 1.0, "float": 1.3}`, entries in the given key order (Go
    /// does not sort map keys).
    Double([&'static str; 2]),
}

/// The bytes Go's `proto.Marshal(sampleEvent)` produced for a snapshot:
/// fields in field-number order, map entries with both key and value.
fn go_snapshot(metadata: SnapshotMetadata, interaction: Option<Pb>) -> Vec<u8> {
    let mut params = Pb::new().varint(1, 1);
    if let SnapshotMetadata::LegacyInt64 = metadata {
        params = params.msg(2, Pb::new().string(1, "metadata").varint(2, 1));
    }
    params = params
        .msg(
            3,
            Pb::new().msg(
                1,
                Pb::new()
                    .string(1, "private")
                    .msg(2, Pb::new().string(3, "data")),
            ),
        )
        .msg(4, Pb::new().string(1, "Product").string(2, "Category"));
    if let SnapshotMetadata::Double(keys) = metadata {
        for key in keys {
            let v: f64 = if key == "float" { 1.3 } else { 1.0 };
            params = params.msg(5, Pb::new().string(1, key).fixed64(2, v.to_bits()));
        }
    }
    let mut marketing = Pb::new();
    for n in 1..=8 {
        marketing = marketing.string(n, "value");
    }
    let mut event = Pb::new()
        .string(1, "1234")
        .msg(2, Pb::new().varint(1, 1_677_250_110))
        .string(3, "Feature")
        .string(4, "Action")
        .msg(
            5,
            Pb::new()
                .msg(1, Pb::new().string(1, "dev"))
                .msg(2, Pb::new().string(1, "CLIENT").string(2, "VERSION")),
        )
        .msg(6, params)
        .msg(7, Pb::new().varint(1, 1234).string(2, "anonymous"))
        .msg(
            8,
            Pb::new().msg(1, Pb::new().string(1, "feature").string(2, "true")),
        )
        .msg(9, marketing);
    if let Some(interaction) = interaction {
        event = event.msg(10, interaction);
    }
    event.0
}

const SNAPSHOT_TRACE_ID: &str = "01020304050607080102040810203040";

/// What every snapshot decodes to, apart from interaction and numeric metadata.
fn snapshot_event() -> Event {
    let value = || Some(s("value"));
    Event {
        id: s("1234"),
        // 2023-02-24T14:48:30Z
        timestamp: Some(Timestamp {
            seconds: 1_677_250_110,
            nanos: 0,
        }),
        feature: s("Feature"),
        action: s("Action"),
        source: Some(EventSource {
            server: Some(pb::event_source::Server { version: s("dev") }),
            client: Some(pb::event_source::Client {
                name: s("CLIENT"),
                version: Some(s("VERSION")),
            }),
        }),
        parameters: Some(EventParameters {
            version: 1,
            legacy_metadata: BTreeMap::new(),
            metadata: BTreeMap::new(),
            private_metadata: Some(Struct {
                fields: BTreeMap::from([(s("private"), string_value("data"))]),
            }),
            billing_metadata: Some(EventBillingMetadata {
                product: s("Product"),
                category: s("Category"),
            }),
        }),
        user: Some(EventUser {
            user_id: Some(1234),
            anonymous_user_id: Some(s("anonymous")),
            sams_external_id: None,
        }),
        feature_flags: Some(EventFeatureFlags {
            flags: BTreeMap::from([(s("feature"), s("true"))]),
        }),
        marketing_tracking: Some(EventMarketingTracking {
            url: value(),
            first_source_url: value(),
            cohort_id: value(),
            referrer: value(),
            last_source_url: value(),
            device_session_id: value(),
            session_referrer: value(),
            session_first_url: value(),
        }),
        interaction: None,
    }
}

fn string_value(v: &str) -> Value {
    value(Kind::StringValue(s(v)))
}

fn with_legacy_metadata(mut e: Event) -> Event {
    if let Some(p) = e.parameters.as_mut() {
        p.legacy_metadata.insert(s("metadata"), 1);
    }
    e
}

fn with_interaction(mut e: Event, country: Option<&str>) -> Event {
    e.interaction = Some(EventInteraction {
        trace_id: Some(s(SNAPSHOT_TRACE_ID)),
        interaction_id: None,
        geolocation: country.map(|c| pb::event_interaction::Geolocation { country_code: s(c) }),
    });
    e
}

fn decode_snapshot(bytes: &[u8]) -> Event {
    let event = Event::decode(bytes).unwrap();
    // Whatever we decode, we can store and re-read unchanged.
    assert_eq!(
        Event::decode(event.encode_to_vec().as_slice()).unwrap(),
        event
    );
    event
}

#[test]
fn snapshot_2023_09_15_without_interaction_and_with_int64_metadata_decodes() {
    // The doc marks this snapshot's contents as unverified: it predates
    // field 10 and carries the int64 map in field 2.
    let bytes = go_snapshot(SnapshotMetadata::LegacyInt64, None);
    assert_eq!(
        decode_snapshot(&bytes),
        with_legacy_metadata(snapshot_event())
    );
}

#[test]
fn snapshots_2023_10_24_and_2023_10_25_with_a_trace_id_decode() {
    let bytes = go_snapshot(
        SnapshotMetadata::LegacyInt64,
        Some(Pb::new().string(1, SNAPSHOT_TRACE_ID)),
    );
    assert_eq!(
        decode_snapshot(&bytes),
        with_interaction(with_legacy_metadata(snapshot_event()), None)
    );
}

#[test]
fn snapshot_2023_11_16_with_geolocation_decodes() {
    let bytes = go_snapshot(
        SnapshotMetadata::LegacyInt64,
        Some(
            Pb::new()
                .string(1, SNAPSHOT_TRACE_ID)
                .msg(3, Pb::new().string(1, "US")),
        ),
    );
    assert_eq!(
        decode_snapshot(&bytes),
        with_interaction(with_legacy_metadata(snapshot_event()), Some("US"))
    );
}

#[test]
fn snapshot_2023_11_28_with_double_metadata_decodes_in_either_map_order() {
    let mut expected = with_interaction(snapshot_event(), Some("US"));
    if let Some(p) = expected.parameters.as_mut() {
        p.metadata = BTreeMap::from([(s("metadata"), 1.0), (s("float"), 1.3)]);
    }
    for keys in [["metadata", "float"], ["float", "metadata"]] {
        let bytes = go_snapshot(
            SnapshotMetadata::Double(keys),
            Some(
                Pb::new()
                    .string(1, SNAPSHOT_TRACE_ID)
                    .msg(3, Pb::new().string(1, "US")),
            ),
        );
        // The doc's bit patterns for 1.0 and 1.3.
        let params = Msg::parse(&bytes).msg(6);
        assert_eq!(params.numbers(), [1, 3, 4, 5]);
        assert_eq!(
            params.map(5)["metadata"],
            Wire::Fixed64(0x3ff0_0000_0000_0000)
        );
        assert_eq!(params.map(5)["float"], Wire::Fixed64(0x3ff4_cccc_cccc_cccd));
        assert_eq!(decode_snapshot(&bytes), expected, "entry order {keys:?}");
    }
}

// ---------------------------------------------------------------------------
// (d) The stream's envelope messages

#[test]
fn identifier_variants_use_their_documented_oneof_and_field_numbers() {
    use pb::identifier::{
        Identifier as Id, LicensedInstanceIdentifier, ManagedServiceIdentifier,
        UnlicensedInstanceIdentifier,
    };
    let licensed = Identifier {
        identifier: Some(Id::LicensedInstance(LicensedInstanceIdentifier {
            license_key: s("key"),
            instance_id: s("site-id"),
            external_url: s("https://sg.example.com"),
        })),
    }
    .encode_to_vec();
    let m = Msg::parse(&licensed);
    let inner = m.has_fields(&[1]).msg(1);
    inner.has_fields(&[1, 2, 3]);
    assert_eq!(
        (inner.string(1), inner.string(2), inner.string(3)),
        ("key", "site-id", "https://sg.example.com")
    );

    let unlicensed = Identifier {
        identifier: Some(Id::UnlicensedInstance(UnlicensedInstanceIdentifier {
            instance_id: s("site-id"),
            external_url: s("https://sg.example.com"),
        })),
    }
    .encode_to_vec();
    let m = Msg::parse(&unlicensed);
    let inner = m.has_fields(&[2]).msg(2);
    inner.has_fields(&[1, 2]);
    assert_eq!(
        (inner.string(1), inner.string(2)),
        ("site-id", "https://sg.example.com")
    );

    for (env, fields) in [
        (None, &[1][..]),
        (Some(s("")), &[1, 2]),
        (Some(s("prod")), &[1, 2]),
    ] {
        let managed = Identifier {
            identifier: Some(Id::ManagedService(ManagedServiceIdentifier {
                service_id: s("my-service"),
                service_environment: env.clone(),
            })),
        }
        .encode_to_vec();
        let m = Msg::parse(&managed);
        let inner = m.has_fields(&[3]).msg(3);
        inner.has_fields(fields);
        assert_eq!(inner.string(1), "my-service");
        if let Some(env) = &env {
            assert_eq!(inner.string(2), env);
        }
    }

    // And the other way: hand-made bytes decode into the right variant.
    let bytes = Pb::new()
        .msg(3, Pb::new().string(1, "my-service").string(2, "dev"))
        .0;
    assert_eq!(
        Identifier::decode(bytes.as_slice()).unwrap().identifier,
        Some(Id::ManagedService(ManagedServiceIdentifier {
            service_id: s("my-service"),
            service_environment: Some(s("dev")),
        }))
    );
}

fn metadata() -> RecordEventsRequestMetadata {
    RecordEventsRequestMetadata {
        request_id: s("req-1"),
        identifier: Some(Identifier {
            identifier: Some(pb::identifier::Identifier::UnlicensedInstance(
                pb::identifier::UnlicensedInstanceIdentifier {
                    instance_id: s("site-id"),
                    external_url: s("https://sg.example.com"),
                },
            )),
        }),
    }
}

#[test]
fn record_events_request_carries_metadata_in_field_1_and_events_in_field_2() {
    use pb::record_events_request::{EventsPayload, Payload};
    let first = RecordEventsRequest {
        payload: Some(Payload::Metadata(metadata())),
    }
    .encode_to_vec();
    let m = Msg::parse(&first);
    // RecordEventsRequestMetadata {request_id = 1, identifier = 2}
    let md = m.has_fields(&[1]).msg(1);
    md.has_fields(&[1, 2]);
    assert_eq!(md.string(1), "req-1");
    assert_eq!(md.msg(2).has_fields(&[2]).msg(2).string(1), "site-id");

    let later = RecordEventsRequest {
        payload: Some(Payload::Events(EventsPayload {
            events: vec![full_event(), snapshot_event()],
        })),
    }
    .encode_to_vec();
    let m = Msg::parse(&later);
    // EventsPayload {events = 1 repeated Event}
    let payload = m.has_fields(&[2]).msg(2);
    payload.has_fields(&[1]);
    let events = payload.all(1);
    assert_eq!(events.len(), 2);
    assert_eq!(Event::decode(as_len(1, events[0])).unwrap(), full_event());
    assert_eq!(
        Event::decode(as_len(1, events[1])).unwrap(),
        snapshot_event()
    );
}

#[test]
fn record_events_response_lists_succeeded_event_ids_in_repeated_field_1() {
    let bytes = RecordEventsResponse {
        succeeded_events: vec![s("a"), s("b"), s("c")],
    }
    .encode_to_vec();
    let m = Msg::parse(&bytes);
    m.has_fields(&[1]);
    assert_eq!(
        m.all(1),
        [Wire::Len(b"a"), Wire::Len(b"b"), Wire::Len(b"c")]
    );
    let hand = Pb::new().string(1, "x").string(1, "y").0;
    assert_eq!(
        RecordEventsResponse::decode(hand.as_slice())
            .unwrap()
            .succeeded_events,
        [s("x"), s("y")]
    );
}

#[test]
fn record_event_request_carries_metadata_in_field_1_and_the_event_in_field_2() {
    let bytes = RecordEventRequest {
        metadata: Some(metadata()),
        event: Some(full_event()),
    }
    .encode_to_vec();
    let m = Msg::parse(&bytes);
    m.has_fields(&[1, 2]);
    assert_eq!(m.msg(1).string(1), "req-1");
    assert_eq!(Event::decode(m.bytes(2)).unwrap(), full_event());
    // The response is an empty message: zero bytes.
    assert!(RecordEventResponse {}.encode_to_vec().is_empty());
}

// ---------------------------------------------------------------------------
// (e) The service and its method paths

const RECORD_EVENTS_PATH: &str = "/telemetrygateway.v1.TelemeteryGatewayService/RecordEvents";
const RECORD_EVENT_PATH: &str = "/telemetrygateway.v1.TelemeteryGatewayService/RecordEvent";

use pb::telemetery_gateway_service_client::TelemeteryGatewayServiceClient;
use pb::telemetery_gateway_service_server::{
    SERVICE_NAME, TelemeteryGatewayService, TelemeteryGatewayServiceServer,
};

#[test]
fn service_name_keeps_sourcegraphs_telemetery_typo() {
    use tonic::server::NamedService;
    assert_eq!(SERVICE_NAME, "telemetrygateway.v1.TelemeteryGatewayService");
    assert_eq!(
        <TelemeteryGatewayServiceServer<Recording> as NamedService>::NAME,
        SERVICE_NAME
    );
}

fn gateway_file() -> prost_types::FileDescriptorProto {
    let set =
        prost_types::FileDescriptorSet::decode(telespool::proto::FILE_DESCRIPTOR_SET).unwrap();
    set.file
        .into_iter()
        .find(|f| f.package() == "telemetrygateway.v1")
        .expect("the descriptor set holds telemetrygateway.v1")
}

#[test]
fn descriptor_set_declares_both_methods_with_their_paths_and_streaming_shapes() {
    let file = gateway_file();
    assert_eq!(file.name(), "telemetrygateway/v1/telemetrygateway.proto");
    assert_eq!(file.syntax(), "proto3");
    let [service] = &file.service[..] else {
        panic!("one service expected: {:?}", file.service);
    };
    let methods: Vec<_> = service
        .method
        .iter()
        .map(|m| {
            (
                format!("/{}.{}/{}", file.package(), service.name(), m.name()),
                m.input_type(),
                m.output_type(),
                m.client_streaming(),
                m.server_streaming(),
            )
        })
        .collect();
    assert_eq!(
        methods,
        [
            (
                RECORD_EVENTS_PATH.to_owned(),
                ".telemetrygateway.v1.RecordEventsRequest",
                ".telemetrygateway.v1.RecordEventsResponse",
                true,
                true
            ),
            (
                RECORD_EVENT_PATH.to_owned(),
                ".telemetrygateway.v1.RecordEventRequest",
                ".telemetrygateway.v1.RecordEventResponse",
                false,
                false
            ),
        ]
    );
}

/// Renders a field as `Message.field = N : type` (message, field name,
/// number, type).
fn render_fields(
    prefix: &str,
    msg: &prost_types::DescriptorProto,
    maps: &BTreeMap<String, String>,
    out: &mut Vec<String>,
) {
    use prost_types::field_descriptor_proto::{Label, Type};
    let name = format!("{prefix}{}", msg.name());
    for f in &msg.field {
        let ty = match f.r#type() {
            Type::Message | Type::Enum => {
                let full = f.type_name().trim_start_matches('.');
                maps.get(full)
                    .cloned()
                    .unwrap_or_else(|| full.trim_start_matches("telemetrygateway.v1.").to_owned())
            }
            Type::String => s("string"),
            Type::Int32 => s("int32"),
            Type::Int64 => s("int64"),
            Type::Double => s("double"),
            Type::Bool => s("bool"),
            other => format!("{other:?}"),
        };
        let kind = if f.proto3_optional() {
            s("optional ")
        } else if let Some(i) = f.oneof_index {
            format!("oneof {} ", msg.oneof_decl[i as usize].name())
        } else if f.label() == Label::Repeated && !ty.starts_with("map<") {
            s("repeated ")
        } else {
            String::new()
        };
        out.push(format!("{name}.{} = {} : {kind}{ty}", f.name(), f.number()));
    }
    for nested in &msg.nested_type {
        if !nested.options.as_ref().is_some_and(|o| o.map_entry()) {
            render_fields(&format!("{name}."), nested, maps, out);
        }
    }
}

/// Map entry types (`telemetrygateway.v1.X.FooEntry`) rendered as `map<K, V>`.
fn map_entries(
    prefix: &str,
    msg: &prost_types::DescriptorProto,
    out: &mut BTreeMap<String, String>,
) {
    let name = format!("{prefix}{}", msg.name());
    for nested in &msg.nested_type {
        if nested.options.as_ref().is_some_and(|o| o.map_entry()) {
            let scalar = |n: i32| {
                let f = nested.field.iter().find(|f| f.number() == n).unwrap();
                format!("{:?}", f.r#type()).to_lowercase()
            };
            out.insert(
                format!("{name}.{}", nested.name()),
                format!("map<{}, {}>", scalar(1), scalar(2)),
            );
        } else {
            map_entries(&format!("{name}."), nested, out);
        }
    }
}

#[test]
fn descriptor_set_matches_the_documented_field_table() {
    let file = gateway_file();
    let mut maps = BTreeMap::new();
    for m in &file.message_type {
        map_entries("telemetrygateway.v1.", m, &mut maps);
    }
    let mut actual = Vec::new();
    for m in &file.message_type {
        render_fields("", m, &maps, &mut actual);
    }
    let messages: Vec<&str> = file.message_type.iter().map(|m| m.name()).collect();
    assert_eq!(
        messages,
        [
            "Identifier",
            "RecordEventsRequestMetadata",
            "RecordEventsRequest",
            "RecordEventsResponse",
            "RecordEventRequest",
            "RecordEventResponse",
            "Event",
            "EventSource",
            "EventParameters",
            "EventBillingMetadata",
            "EventUser",
            "EventFeatureFlags",
            "EventMarketingTracking",
            "EventInteraction",
        ]
    );
    let mut expected: Vec<String> = [
        "Identifier.licensed_instance = 1 : oneof identifier Identifier.LicensedInstanceIdentifier",
        "Identifier.unlicensed_instance = 2 : oneof identifier Identifier.UnlicensedInstanceIdentifier",
        "Identifier.managed_service = 3 : oneof identifier Identifier.ManagedServiceIdentifier",
        "Identifier.LicensedInstanceIdentifier.license_key = 1 : string",
        "Identifier.LicensedInstanceIdentifier.instance_id = 2 : string",
        "Identifier.LicensedInstanceIdentifier.external_url = 3 : string",
        "Identifier.UnlicensedInstanceIdentifier.instance_id = 1 : string",
        "Identifier.UnlicensedInstanceIdentifier.external_url = 2 : string",
        "Identifier.ManagedServiceIdentifier.service_id = 1 : string",
        "Identifier.ManagedServiceIdentifier.service_environment = 2 : optional string",
        "RecordEventsRequestMetadata.request_id = 1 : string",
        "RecordEventsRequestMetadata.identifier = 2 : Identifier",
        "RecordEventsRequest.metadata = 1 : oneof payload RecordEventsRequestMetadata",
        "RecordEventsRequest.events = 2 : oneof payload RecordEventsRequest.EventsPayload",
        "RecordEventsRequest.EventsPayload.events = 1 : repeated Event",
        "RecordEventsResponse.succeeded_events = 1 : repeated string",
        "RecordEventRequest.metadata = 1 : RecordEventsRequestMetadata",
        "RecordEventRequest.event = 2 : Event",
        "Event.id = 1 : string",
        "Event.timestamp = 2 : google.protobuf.Timestamp",
        "Event.feature = 3 : string",
        "Event.action = 4 : string",
        "Event.source = 5 : EventSource",
        "Event.parameters = 6 : EventParameters",
        "Event.user = 7 : optional EventUser",
        "Event.feature_flags = 8 : optional EventFeatureFlags",
        "Event.marketing_tracking = 9 : optional EventMarketingTracking",
        "Event.interaction = 10 : optional EventInteraction",
        "EventSource.server = 1 : EventSource.Server",
        "EventSource.client = 2 : optional EventSource.Client",
        "EventSource.Server.version = 1 : string",
        "EventSource.Client.name = 1 : string",
        "EventSource.Client.version = 2 : optional string",
        "EventParameters.version = 1 : int32",
        "EventParameters.legacy_metadata = 2 : map<string, int64>",
        "EventParameters.metadata = 5 : map<string, double>",
        "EventParameters.private_metadata = 3 : optional google.protobuf.Struct",
        "EventParameters.billing_metadata = 4 : optional EventBillingMetadata",
        "EventBillingMetadata.product = 1 : string",
        "EventBillingMetadata.category = 2 : string",
        "EventUser.user_id = 1 : optional int64",
        "EventUser.anonymous_user_id = 2 : optional string",
        "EventUser.sams_external_id = 3 : optional string",
        "EventFeatureFlags.flags = 1 : map<string, string>",
        "EventMarketingTracking.url = 1 : optional string",
        "EventMarketingTracking.first_source_url = 2 : optional string",
        "EventMarketingTracking.cohort_id = 3 : optional string",
        "EventMarketingTracking.referrer = 4 : optional string",
        "EventMarketingTracking.last_source_url = 5 : optional string",
        "EventMarketingTracking.device_session_id = 6 : optional string",
        "EventMarketingTracking.session_referrer = 7 : optional string",
        "EventMarketingTracking.session_first_url = 8 : optional string",
        "EventInteraction.trace_id = 1 : optional string",
        "EventInteraction.interaction_id = 2 : optional string",
        "EventInteraction.geolocation = 3 : optional EventInteraction.Geolocation",
        "EventInteraction.Geolocation.country_code = 1 : string",
    ]
    .map(String::from)
    .to_vec();
    expected.sort();
    actual.sort();
    assert_eq!(actual, expected);
}

/// A client-side transport that records the request path and answers
/// every call with gRPC status UNIMPLEMENTED (trailers-only).
#[derive(Clone, Default)]
struct PathRecorder(Arc<Mutex<Vec<String>>>);

impl Service<http::Request<tonic::body::Body>> for PathRecorder {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        self.0.lock().unwrap().push(req.uri().path().to_owned());
        let mut res = http::Response::new(tonic::body::Body::default());
        let headers = res.headers_mut();
        headers.insert(
            "content-type",
            http::HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", http::HeaderValue::from_static("12"));
        std::future::ready(Ok(res))
    }
}

#[tokio::test]
async fn generated_client_calls_the_documented_method_paths() {
    let recorder = PathRecorder::default();
    let mut client = TelemeteryGatewayServiceClient::new(recorder.clone());
    let status = client
        .record_event(RecordEventRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    let status = client
        .record_events(tokio_stream::iter([RecordEventsRequest::default()]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert_eq!(
        *recorder.0.lock().unwrap(),
        [RECORD_EVENT_PATH, RECORD_EVENTS_PATH]
    );
}

/// A server implementation that records which method was called.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<&'static str>>>);

#[tonic::async_trait]
impl TelemeteryGatewayService for Recording {
    type RecordEventsStream = tokio_stream::Empty<Result<RecordEventsResponse, tonic::Status>>;

    async fn record_events(
        &self,
        _: tonic::Request<tonic::Streaming<RecordEventsRequest>>,
    ) -> Result<tonic::Response<Self::RecordEventsStream>, tonic::Status> {
        self.0.lock().unwrap().push("RecordEvents");
        Ok(tonic::Response::new(tokio_stream::empty()))
    }

    async fn record_event(
        &self,
        _: tonic::Request<RecordEventRequest>,
    ) -> Result<tonic::Response<RecordEventResponse>, tonic::Status> {
        self.0.lock().unwrap().push("RecordEvent");
        Ok(tonic::Response::new(RecordEventResponse {}))
    }
}

/// Sends one gRPC request carrying an empty message to `path` and returns
/// the `grpc-status` header (present on trailers-only answers).
async fn call_server(recording: &Recording, path: &str) -> Option<String> {
    let mut server = TelemeteryGatewayServiceServer::new(recording.clone());
    // One uncompressed frame holding an empty message: flag 0, length 0.
    let body = String::from("\0\0\0\0\0");
    let req = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .unwrap();
    let res = server.call(req).await.unwrap();
    assert_eq!(res.status(), http::StatusCode::OK);
    res.headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn generated_server_routes_the_documented_paths_and_not_the_corrected_spelling() {
    let recording = Recording::default();
    assert_eq!(call_server(&recording, RECORD_EVENT_PATH).await, None);
    assert_eq!(call_server(&recording, RECORD_EVENTS_PATH).await, None);
    assert_eq!(
        *recording.0.lock().unwrap(),
        ["RecordEvent", "RecordEvents"]
    );

    // "Telemetry" spelled correctly is a different service, unknown here.
    for path in [
        "/telemetrygateway.v1.TelemetryGatewayService/RecordEvent",
        "/telemetrygateway.v1.TelemetryGatewayService/RecordEvents",
    ] {
        assert_eq!(call_server(&recording, path).await.as_deref(), Some("12"));
    }
    assert_eq!(recording.0.lock().unwrap().len(), 2);
}

// ---------------------------------------------------------------------------
// Seeds for the fuzz targets (fuzz/fuzz_targets/*.rs), built from the
// fixtures above. Not a check: `.ci/run` runs it to start each fuzz target
// from valid inputs instead of from nothing.

/// Writes the seed corpus under `$TELESPOOL_FUZZ_SEEDS/<target>/`.
#[test]
#[ignore = "writes files; run by .ci/run with TELESPOOL_FUZZ_SEEDS set"]
fn seed_corpus_for_the_fuzz_targets_is_written_on_request() {
    use telespool::log::record;
    use telespool::{RecordId, UnixNanos};

    let dir = std::path::PathBuf::from(
        std::env::var_os("TELESPOOL_FUZZ_SEEDS").expect("TELESPOOL_FUZZ_SEEDS is set"),
    );
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("seed-{name}")), bytes).unwrap();
    };

    let events = [
        ("full", full_event().encode_to_vec()),
        ("unknown-fields", full_event_with_unknown_fields().0),
        (
            "snapshot-2023-11-16",
            go_snapshot(
                SnapshotMetadata::LegacyInt64,
                Some(
                    Pb::new()
                        .string(1, SNAPSHOT_TRACE_ID)
                        .msg(3, Pb::new().string(1, "US")),
                ),
            ),
        ),
        (
            "snapshot-2023-11-28",
            go_snapshot(
                SnapshotMetadata::Double(["metadata", "float"]),
                Some(Pb::new().string(1, SNAPSHOT_TRACE_ID)),
            ),
        ),
    ];
    for (name, bytes) in &events {
        write("event_decode", name, bytes);
    }
    let request = RecordEventsRequest {
        payload: Some(pb::record_events_request::Payload::Events(
            pb::record_events_request::EventsPayload {
                events: vec![full_event(), snapshot_event()],
            },
        )),
    };
    write("event_decode", "request", &request.encode_to_vec());
    write("lazy_decode", "request", &request.encode_to_vec());
    let metadata = RecordEventsRequest {
        payload: Some(pb::record_events_request::Payload::Metadata(
            pb::RecordEventsRequestMetadata {
                request_id: "seed".into(),
                identifier: None,
            },
        )),
    };
    write("lazy_decode", "metadata", &metadata.encode_to_vec());

    // Frames with ids 1.. (the id the segment target's raw-bytes header
    // expects first), carrying the events above.
    let mut frames = Vec::new();
    for (i, (_, event)) in events.iter().enumerate() {
        record::encode(
            &mut frames,
            RecordId(i as u64 + 1),
            UnixNanos(i as i64),
            event,
        );
    }
    let mut small = Vec::new();
    record::encode(&mut small, RecordId(1), UnixNanos(1), b"e");
    for target in ["record_decode", "segment_recovery"] {
        write(target, "frames", &frames);
        write(target, "small", &small);
    }
}
