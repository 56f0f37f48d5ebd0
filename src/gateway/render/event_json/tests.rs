//! The direct writer against the reference renderer: byte for byte on
//! goldens and on random events (proptest), same errors where the
//! reference fails.

use std::collections::BTreeMap;

use proptest::prelude::*;
use prost_types::value::Kind;
use prost_types::{Struct, Timestamp, Value};

use crate::gateway::render::{RenderedMetadata, message_body, message_body_with};
use crate::proto::arb::event;
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
