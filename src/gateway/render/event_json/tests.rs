//! The direct writer against the reference renderer: byte for byte on
//! goldens and on random events (proptest), same errors where the
//! reference fails.

use std::collections::BTreeMap;

use proptest::prelude::*;
use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Timestamp, Value};

use crate::gateway::render::{RenderedMetadata, message_body, message_body_with};
use crate::proto::telemetrygateway::v1::event_interaction::Geolocation;
use crate::proto::telemetrygateway::v1::event_source::{Client, Server};
use crate::proto::telemetrygateway::v1::identifier::{
    Identifier as IdentifierKind, UnlicensedInstanceIdentifier,
};
use crate::proto::telemetrygateway::v1::{
    Event, EventBillingMetadata, EventFeatureFlags, EventInteraction, EventMarketingTracking,
    EventParameters, EventSource, EventUser, Identifier, RecordEventsRequestMetadata,
};
use crate::protojson::tests::full_event;

fn metadata() -> RecordEventsRequestMetadata {
    RecordEventsRequestMetadata {
        request_id: "r\"1".to_owned(),
        identifier: Some(Identifier {
            identifier: Some(IdentifierKind::UnlicensedInstance(
                UnlicensedInstanceIdentifier {
                    instance_id: "i".to_owned(),
                    external_url: "https://x.example".to_owned(),
                },
            )),
        }),
    }
}

/// Both paths agree: the same bytes, or the same error.
fn assert_same(event: &Event) {
    let m = metadata();
    let reference = message_body(event, &m);
    let fast = message_body_with(event, &RenderedMetadata::new(&m).unwrap());
    match (reference, fast) {
        (Ok(r), Ok(f)) => assert_eq!(
            String::from_utf8(f).unwrap(),
            String::from_utf8(r).unwrap(),
            "{event:?}"
        ),
        (Err(r), Err(f)) => assert_eq!(f.to_string(), r.to_string()),
        (r, f) => panic!("reference {r:?} vs fast {f:?} for {event:?}"),
    }
}

fn nested(depth: usize) -> Struct {
    let mut s = Struct::default();
    for _ in 0..depth {
        s = Struct {
            fields: [(
                "k".to_owned(),
                Value {
                    kind: Some(Kind::StructValue(s)),
                },
            )]
            .into(),
        };
    }
    s
}

fn with_private(s: Struct) -> Event {
    Event {
        parameters: Some(EventParameters {
            private_metadata: Some(s),
            ..EventParameters::default()
        }),
        ..Event::default()
    }
}

#[test]
fn the_full_event_and_the_empty_event_match_the_reference() {
    assert_same(&full_event());
    assert_same(&Event::default());
}

#[test]
fn every_optional_field_set_to_its_default_matches_the_reference() {
    assert_same(&Event {
        source: Some(EventSource {
            server: Some(Server::default()),
            client: Some(Client {
                name: String::new(),
                version: Some(String::new()),
            }),
        }),
        parameters: Some(EventParameters {
            billing_metadata: Some(EventBillingMetadata::default()),
            private_metadata: Some(Struct::default()),
            ..EventParameters::default()
        }),
        user: Some(EventUser {
            user_id: Some(0),
            anonymous_user_id: Some(String::new()),
            sams_external_id: Some(String::new()),
        }),
        feature_flags: Some(EventFeatureFlags::default()),
        marketing_tracking: Some(EventMarketingTracking::default()),
        interaction: Some(EventInteraction {
            trace_id: Some(String::new()),
            interaction_id: Some(String::new()),
            geolocation: Some(Geolocation::default()),
        }),
        ..Event::default()
    });
}

#[test]
fn unusual_inputs_fall_back_to_the_reference_and_its_errors() {
    let unset = Struct {
        fields: [("x".to_owned(), Value { kind: None })].into(),
    };
    let nan = Struct {
        fields: [(
            "x".to_owned(),
            Value {
                kind: Some(Kind::NumberValue(f64::NAN)),
            },
        )]
        .into(),
    };
    for private in [unset, nan, nested(40), nested(70)] {
        assert_same(&with_private(private));
    }
    for (seconds, nanos) in [(0, -1), (0, 1_000_000_000), (253_402_300_800, 0)] {
        assert_same(&Event {
            timestamp: Some(Timestamp { seconds, nanos }),
            ..Event::default()
        });
    }
}

#[test]
fn timestamps_across_the_calendar_match_the_reference() {
    for seconds in [
        -62_135_596_800,
        -1,
        0,
        951_782_400, // 2000-02-29
        1_677_250_110,
        4_107_542_400, // 2100-03-01
        253_402_300_799,
    ] {
        for nanos in [0, 1, 1_000, 100_000_000, 123_456_000, 999_999_999] {
            assert_same(&Event {
                timestamp: Some(Timestamp { seconds, nanos }),
                ..Event::default()
            });
        }
    }
}

// ---- random events ----

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z.-]{1,12}",
        "[\"\\\\/\u{0}-\u{1f}\u{7f}é€😀 a]{0,6}",
        any::<String>(),
    ]
}

fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(1.0),
        Just(1.3),
        Just(-3.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(9_007_199_254_740_992.0),
        Just(9_007_199_254_740_994.0),
        Just(1e-7),
        Just(1e300),
        any::<f64>(),
        (-1_000_000i64..1_000_000).prop_map(|i| i as f64 / 8.0),
    ]
}

fn struct_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value { kind: None }),
        Just(Value {
            kind: Some(Kind::NullValue(0))
        }),
        double().prop_map(|n| Value {
            kind: Some(Kind::NumberValue(n))
        }),
        text().prop_map(|s| Value {
            kind: Some(Kind::StringValue(s))
        }),
        any::<bool>().prop_map(|b| Value {
            kind: Some(Kind::BoolValue(b))
        }),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::btree_map(text(), inner.clone(), 0..4).prop_map(|fields| Value {
                kind: Some(Kind::StructValue(Struct { fields }))
            }),
            prop::collection::vec(inner, 0..4).prop_map(|values| Value {
                kind: Some(Kind::ListValue(ListValue { values }))
            }),
        ]
    })
}

fn optional_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    let nanos = prop_oneof![
        Just(0),
        (0..1000).prop_map(|ms| ms * 1_000_000),
        (0..1_000_000).prop_map(|us| us * 1_000),
        0..1_000_000_000,
        Just(-1),
    ];
    (-62_135_596_800i64..=253_402_300_799, nanos)
        .prop_map(|(seconds, nanos)| Timestamp { seconds, nanos })
}

fn parameters() -> impl Strategy<Value = EventParameters> {
    (
        any::<i32>(),
        prop::collection::btree_map(text(), any::<i64>(), 0..3),
        prop::collection::btree_map(text(), double(), 0..4),
        prop::option::of(prop::collection::btree_map(text(), struct_value(), 0..4)),
        prop::option::of((text(), text())),
    )
        .prop_map(
            |(version, legacy, metadata, private, billing)| EventParameters {
                version,
                legacy_metadata: legacy,
                metadata,
                private_metadata: private.map(|fields| Struct { fields }),
                billing_metadata: billing
                    .map(|(product, category)| EventBillingMetadata { product, category }),
            },
        )
}

fn event() -> impl Strategy<Value = Event> {
    let source = prop::option::of((
        prop::option::of(text()),
        prop::option::of((text(), optional_text())),
    ))
    .prop_map(|s| {
        s.map(|(server, client)| EventSource {
            server: server.map(|version| Server { version }),
            client: client.map(|(name, version)| Client { name, version }),
        })
    });
    let user = prop::option::of((
        prop::option::of(any::<i64>()),
        optional_text(),
        optional_text(),
    ))
    .prop_map(|u| {
        u.map(|(user_id, anonymous_user_id, sams_external_id)| EventUser {
            user_id,
            anonymous_user_id,
            sams_external_id,
        })
    });
    let flags = prop::option::of(prop::collection::btree_map(text(), text(), 0..3))
        .prop_map(|f| f.map(|flags| EventFeatureFlags { flags }));
    let tracking = prop::option::of(prop::collection::vec(optional_text(), 8)).prop_map(|t| {
        t.map(|v| {
            let mut v = v.into_iter();
            let mut next = || v.next().flatten();
            EventMarketingTracking {
                url: next(),
                first_source_url: next(),
                cohort_id: next(),
                referrer: next(),
                last_source_url: next(),
                device_session_id: next(),
                session_referrer: next(),
                session_first_url: next(),
            }
        })
    });
    let interaction =
        prop::option::of((optional_text(), optional_text(), prop::option::of(text()))).prop_map(
            |i| {
                i.map(|(trace_id, interaction_id, country)| EventInteraction {
                    trace_id,
                    interaction_id,
                    geolocation: country.map(|country_code| Geolocation { country_code }),
                })
            },
        );
    (
        (text(), prop::option::of(timestamp()), text(), text()),
        (source, prop::option::of(parameters()), user),
        (flags, tracking, interaction),
    )
        .prop_map(
            |((id, timestamp, feature, action), (source, parameters, user), (f, m, i))| Event {
                id,
                timestamp,
                feature,
                action,
                source,
                parameters,
                user,
                feature_flags: f,
                marketing_tracking: m,
                interaction: i,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_events_render_to_the_same_bytes_as_the_reference(event in event()) {
        assert_same(&event);
    }
}

#[test]
fn generated_maps_are_sorted_like_serde_json_maps() {
    // The writer relies on BTreeMap order being serde_json's key order.
    let map: BTreeMap<String, f64> = [("b", 1.0), ("a", 2.0), ("B", 3.0), ("é", 4.0)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let value = serde_json::to_value(&map).unwrap();
    let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
    assert_eq!(keys, map.keys().collect::<Vec<_>>());
}
