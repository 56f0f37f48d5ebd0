//! Random `telemetrygateway.v1` events for property tests: every field,
//! text with escapes and non-ASCII, every double that JSON cannot hold,
//! nested `Struct`s and lists, timestamps over the whole valid range.

use proptest::prelude::*;
use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Timestamp, Value};

use crate::proto::telemetrygateway::v1::event_interaction::Geolocation;
use crate::proto::telemetrygateway::v1::event_source::{Client, Server};
use crate::proto::telemetrygateway::v1::{
    Event, EventBillingMetadata, EventFeatureFlags, EventInteraction, EventMarketingTracking,
    EventParameters, EventSource, EventUser,
};

pub(crate) fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z.-]{1,12}",
        "[\"\\\\/\u{0}-\u{1f}\u{7f}é€😀 a]{0,6}",
        any::<String>(),
    ]
}

pub(crate) fn double() -> impl Strategy<Value = f64> {
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

pub(crate) fn struct_value() -> impl Strategy<Value = Value> {
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

pub(crate) fn optional_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

pub(crate) fn timestamp() -> impl Strategy<Value = Timestamp> {
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

pub(crate) fn parameters() -> impl Strategy<Value = EventParameters> {
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

pub(crate) fn event() -> impl Strategy<Value = Event> {
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
