//! Goldens written by hand from Go's protojson rules, presence, errors, and
//! a render/parse round trip.

use std::collections::BTreeMap;

use proptest::prelude::*;
use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Timestamp, Value};
use serde_json::json;

use super::*;
use crate::proto::telemetrygateway::v1::event_interaction::Geolocation;
use crate::proto::telemetrygateway::v1::event_source::{Client, Server};
use crate::proto::telemetrygateway::v1::identifier::{
    Identifier as IdentifierKind, LicensedInstanceIdentifier, ManagedServiceIdentifier,
    UnlicensedInstanceIdentifier,
};
use crate::proto::telemetrygateway::v1::{
    EventBillingMetadata, EventFeatureFlags, EventInteraction, EventMarketingTracking,
    EventParameters, EventSource, EventUser, Identifier,
};
use crate::timestamp::{
    MAX_SECONDS as MAX_TIMESTAMP_SECONDS, MIN_SECONDS as MIN_TIMESTAMP_SECONDS,
};

/// 2023-02-24T14:48:30Z, the timestamp of Sourcegraph's own goldens.
pub(crate) const GOLDEN_SECONDS: i64 = 1_677_250_110;
pub(crate) const TRACE_ID: &str = "01020304050607080102040810203040";

/// Compares JSON values, numbers by value (Go writes `1.0` as `1`), and
/// names the path of the first difference.
pub(crate) fn assert_json_eq(actual: &serde_json::Value, expected: &serde_json::Value) {
    fn walk(path: &str, actual: &serde_json::Value, expected: &serde_json::Value) {
        use serde_json::Value as J;
        match (actual, expected) {
            (J::Number(a), J::Number(b)) => {
                assert_eq!(a.as_f64(), b.as_f64(), "number differs at {path}");
            }
            (J::Array(a), J::Array(b)) => {
                assert_eq!(a.len(), b.len(), "array length differs at {path}");
                for (index, (a, b)) in a.iter().zip(b).enumerate() {
                    walk(&format!("{path}[{index}]"), a, b);
                }
            }
            (J::Object(a), J::Object(b)) => {
                let keys = |m: &serde_json::Map<String, J>| m.keys().cloned().collect::<Vec<_>>();
                assert_eq!(keys(a), keys(b), "keys differ at {path}");
                for (key, a) in a {
                    walk(&format!("{path}.{key}"), a, &b[key]);
                }
            }
            _ => assert_eq!(actual, expected, "value differs at {path}"),
        }
    }
    walk("$", actual, expected);
}

fn string(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

fn number(n: f64) -> Value {
    Value {
        kind: Some(Kind::NumberValue(n)),
    }
}

fn boolean(b: bool) -> Value {
    Value {
        kind: Some(Kind::BoolValue(b)),
    }
}

fn null() -> Value {
    Value {
        kind: Some(Kind::NullValue(0)),
    }
}

fn object(fields: impl IntoIterator<Item = (&'static str, Value)>) -> Struct {
    Struct {
        fields: fields
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    }
}

fn list(values: Vec<Value>) -> Value {
    Value {
        kind: Some(Kind::ListValue(ListValue { values })),
    }
}

/// Every field of every message set, optional ones included.
pub(crate) fn full_event() -> Event {
    Event {
        id: "0190b6d2-7f3a-7c55-9a1e-8f5b8e2c4d11".to_owned(),
        timestamp: Some(Timestamp {
            seconds: GOLDEN_SECONDS,
            nanos: 123_456_789,
        }),
        feature: "cody.completion".to_owned(),
        action: "accepted".to_owned(),
        source: Some(EventSource {
            server: Some(Server {
                version: "5.3.0".to_owned(),
            }),
            client: Some(Client {
                name: "VSCODE_CODY_EXTENSION".to_owned(),
                version: Some("1.2.3".to_owned()),
            }),
        }),
        parameters: Some(EventParameters {
            version: 2,
            legacy_metadata: BTreeMap::from([("legacyCount".to_owned(), 7)]),
            metadata: BTreeMap::from([
                ("metadata".to_owned(), 1.0),
                ("float".to_owned(), 1.3),
                ("recordsPrivateMetadataTranscript".to_owned(), 1.0),
            ]),
            private_metadata: Some(object([
                ("private", string("data")),
                ("count", number(3.0)),
                ("ratio", number(0.25)),
                ("nothing", null()),
                (
                    "nested",
                    Value {
                        kind: Some(Kind::StructValue(object([
                            ("flag", boolean(false)),
                            (
                                "list",
                                list(vec![
                                    number(1.0),
                                    string("two"),
                                    boolean(true),
                                    null(),
                                    Value {
                                        kind: Some(Kind::StructValue(object([(
                                            "deep",
                                            number(2.5),
                                        )]))),
                                    },
                                    list(vec![]),
                                ]),
                            ),
                            (
                                "empty",
                                Value {
                                    kind: Some(Kind::StructValue(Struct::default())),
                                },
                            ),
                        ]))),
                    },
                ),
            ])),
            billing_metadata: Some(EventBillingMetadata {
                product: "Product".to_owned(),
                category: "Category".to_owned(),
            }),
        }),
        user: Some(EventUser {
            user_id: Some(123),
            anonymous_user_id: Some("anonymous".to_owned()),
            sams_external_id: Some("018d21f2-04a6-7aaf-9128-8f3d6b5f2a01".to_owned()),
        }),
        feature_flags: Some(EventFeatureFlags {
            flags: BTreeMap::from([
                ("feature".to_owned(), "true".to_owned()),
                ("other-feature".to_owned(), "false".to_owned()),
            ]),
        }),
        marketing_tracking: Some(EventMarketingTracking {
            url: Some("https://sourcegraph.com/search".to_owned()),
            first_source_url: Some("https://sourcegraph.com/".to_owned()),
            cohort_id: Some("2023-02".to_owned()),
            referrer: Some("https://example.com/".to_owned()),
            last_source_url: Some("https://sourcegraph.com/pricing".to_owned()),
            device_session_id: Some("device-session".to_owned()),
            session_referrer: Some("https://example.com/blog".to_owned()),
            session_first_url: Some("https://sourcegraph.com/blog".to_owned()),
        }),
        interaction: Some(EventInteraction {
            trace_id: Some(TRACE_ID.to_owned()),
            interaction_id: Some("interaction-1".to_owned()),
            geolocation: Some(Geolocation {
                country_code: "US".to_owned(),
            }),
        }),
    }
}

/// The full event after the gateway's legacy metadata migration, by hand:
/// `legacyCount` moves into `metadata`.
fn full_event_migrated() -> Event {
    let mut event = full_event();
    let parameters = event.parameters.as_mut().unwrap();
    parameters.legacy_metadata.clear();
    parameters.metadata.insert("legacyCount".to_owned(), 7.0);
    event
}

/// The protojson of [`full_event_migrated`], written from the rules: camel
/// case names, int64 as strings, UTC timestamp with 9 digits, Struct as
/// plain JSON, no `legacyMetadata`.
fn full_event_migrated_json() -> serde_json::Value {
    json!({
        "id": "0190b6d2-7f3a-7c55-9a1e-8f5b8e2c4d11",
        "timestamp": "2023-02-24T14:48:30.123456789Z",
        "feature": "cody.completion",
        "action": "accepted",
        "source": {
            "server": { "version": "5.3.0" },
            "client": { "name": "VSCODE_CODY_EXTENSION", "version": "1.2.3" }
        },
        "parameters": {
            "version": 2,
            "metadata": {
                "metadata": 1,
                "float": 1.3,
                "recordsPrivateMetadataTranscript": 1,
                "legacyCount": 7
            },
            "privateMetadata": {
                "private": "data",
                "count": 3,
                "ratio": 0.25,
                "nothing": null,
                "nested": {
                    "flag": false,
                    "list": [1, "two", true, null, { "deep": 2.5 }, []],
                    "empty": {}
                }
            },
            "billingMetadata": { "product": "Product", "category": "Category" }
        },
        "user": {
            "userId": "123",
            "anonymousUserId": "anonymous",
            "samsExternalId": "018d21f2-04a6-7aaf-9128-8f3d6b5f2a01"
        },
        "featureFlags": { "flags": { "feature": "true", "other-feature": "false" } },
        "marketingTracking": {
            "url": "https://sourcegraph.com/search",
            "firstSourceUrl": "https://sourcegraph.com/",
            "cohortId": "2023-02",
            "referrer": "https://example.com/",
            "lastSourceUrl": "https://sourcegraph.com/pricing",
            "deviceSessionId": "device-session",
            "sessionReferrer": "https://example.com/blog",
            "sessionFirstUrl": "https://sourcegraph.com/blog"
        },
        "interaction": {
            "traceId": "01020304050607080102040810203040",
            "interactionId": "interaction-1",
            "geolocation": { "countryCode": "US" }
        }
    })
}

fn licensed_metadata() -> RecordEventsRequestMetadata {
    RecordEventsRequestMetadata {
        request_id: "request-1".to_owned(),
        identifier: Some(Identifier {
            identifier: Some(IdentifierKind::LicensedInstance(
                LicensedInstanceIdentifier {
                    license_key: "key".to_owned(),
                    instance_id: "instance".to_owned(),
                    external_url: "https://sourcegraph.example.com".to_owned(),
                },
            )),
        }),
    }
}

fn event_at(seconds: i64, nanos: i32) -> Event {
    Event {
        timestamp: Some(Timestamp { seconds, nanos }),
        ..Event::default()
    }
}

// ---- rendering goldens ----

#[test]
fn full_event_renders_as_hand_written_protojson() {
    let rendered = render_event(&full_event_migrated()).unwrap();
    assert_json_eq(&rendered, &full_event_migrated_json());
}

#[test]
fn unmigrated_legacy_metadata_renders_as_int64_strings() {
    let rendered = render_event(&full_event()).unwrap();
    assert_eq!(
        rendered["parameters"]["legacyMetadata"],
        json!({ "legacyCount": "7" })
    );
}

#[test]
fn client_side_golden_from_sourcegraph_renders_identically() {
    let event = Event {
        id: "id".to_owned(),
        timestamp: Some(Timestamp {
            seconds: GOLDEN_SECONDS,
            nanos: 0,
        }),
        user: Some(EventUser {
            user_id: Some(123),
            ..EventUser::default()
        }),
        interaction: Some(EventInteraction {
            trace_id: Some(TRACE_ID.to_owned()),
            ..EventInteraction::default()
        }),
        ..Event::default()
    };
    // No floats: exact equality, not just by value.
    assert_eq!(
        render_event(&event).unwrap(),
        json!({
            "id": "id",
            "interaction": { "traceId": "01020304050607080102040810203040" },
            "timestamp": "2023-02-24T14:48:30Z",
            "user": { "userId": "123" }
        })
    );
}

#[test]
fn licensed_identifier_renders_with_its_three_fields() {
    assert_eq!(
        render_metadata(&licensed_metadata()).unwrap(),
        json!({
            "requestId": "request-1",
            "identifier": { "licensedInstance": {
                "externalUrl": "https://sourcegraph.example.com",
                "instanceId": "instance",
                "licenseKey": "key"
            } }
        })
    );
}

#[test]
fn unlicensed_identifier_renders_with_instance_id_and_external_url() {
    let metadata = RecordEventsRequestMetadata {
        request_id: String::new(),
        identifier: Some(Identifier {
            identifier: Some(IdentifierKind::UnlicensedInstance(
                UnlicensedInstanceIdentifier {
                    instance_id: "instance".to_owned(),
                    external_url: "https://sourcegraph.example.com".to_owned(),
                },
            )),
        }),
    };
    assert_eq!(
        render_metadata(&metadata).unwrap(),
        json!({ "identifier": { "unlicensedInstance": {
            "externalUrl": "https://sourcegraph.example.com",
            "instanceId": "instance"
        } } })
    );
}

#[test]
fn managed_service_identifier_renders_optional_environment_only_when_present() {
    let managed = |service_environment: Option<&str>| RecordEventsRequestMetadata {
        request_id: "r".to_owned(),
        identifier: Some(Identifier {
            identifier: Some(IdentifierKind::ManagedService(ManagedServiceIdentifier {
                service_id: "my-service".to_owned(),
                service_environment: service_environment.map(str::to_owned),
            })),
        }),
    };
    assert_eq!(
        render_metadata(&managed(None)).unwrap(),
        json!({ "requestId": "r", "identifier": { "managedService": { "serviceId": "my-service" } } })
    );
    assert_eq!(
        render_metadata(&managed(Some(""))).unwrap(),
        json!({ "requestId": "r", "identifier": { "managedService": {
            "serviceId": "my-service", "serviceEnvironment": ""
        } } })
    );
}

#[test]
fn empty_messages_render_as_empty_objects_and_empty_oneof_members_stay() {
    assert_eq!(render_event(&Event::default()).unwrap(), json!({}));
    assert_eq!(
        render_metadata(&RecordEventsRequestMetadata::default()).unwrap(),
        json!({})
    );
    let metadata = RecordEventsRequestMetadata {
        request_id: String::new(),
        identifier: Some(Identifier {
            identifier: Some(IdentifierKind::LicensedInstance(
                LicensedInstanceIdentifier::default(),
            )),
        }),
    };
    assert_eq!(
        render_metadata(&metadata).unwrap(),
        json!({ "identifier": { "licensedInstance": {} } })
    );
}

#[test]
fn timestamps_render_in_utc_with_zero_three_six_or_nine_fractional_digits() {
    let cases = [
        (0, "2023-02-24T14:48:30Z"),
        (100_000_000, "2023-02-24T14:48:30.100Z"),
        (120_000, "2023-02-24T14:48:30.000120Z"),
        (1, "2023-02-24T14:48:30.000000001Z"),
        (999_999_999, "2023-02-24T14:48:30.999999999Z"),
    ];
    for (nanos, expected) in cases {
        let rendered = render_event(&event_at(GOLDEN_SECONDS, nanos)).unwrap();
        assert_eq!(rendered["timestamp"], json!(expected), "nanos {nanos}");
    }
    let extremes = [
        (MIN_TIMESTAMP_SECONDS, "0001-01-01T00:00:00Z"),
        (MAX_TIMESTAMP_SECONDS, "9999-12-31T23:59:59Z"),
        (-1, "1969-12-31T23:59:59Z"),
    ];
    for (seconds, expected) in extremes {
        let rendered = render_event(&event_at(seconds, 0)).unwrap();
        assert_eq!(rendered["timestamp"], json!(expected), "seconds {seconds}");
    }
}

#[test]
fn optional_fields_set_to_their_default_are_rendered_and_plain_defaults_are_not() {
    let event = Event {
        feature: String::new(),
        source: Some(EventSource {
            server: None,
            client: Some(Client {
                name: String::new(),
                version: Some(String::new()),
            }),
        }),
        parameters: Some(EventParameters::default()),
        user: Some(EventUser {
            user_id: Some(0),
            anonymous_user_id: Some(String::new()),
            sams_external_id: None,
        }),
        feature_flags: Some(EventFeatureFlags::default()),
        marketing_tracking: Some(EventMarketingTracking::default()),
        interaction: Some(EventInteraction {
            trace_id: Some(String::new()),
            interaction_id: None,
            geolocation: Some(Geolocation::default()),
        }),
        ..Event::default()
    };
    assert_eq!(
        render_event(&event).unwrap(),
        json!({
            "source": { "client": { "version": "" } },
            "parameters": {},
            "user": { "userId": "0", "anonymousUserId": "" },
            "featureFlags": {},
            "marketingTracking": {},
            "interaction": { "traceId": "", "geolocation": {} }
        })
    );
}

#[test]
fn int64_extremes_render_as_exact_strings() {
    for user_id in [i64::MIN, -1, i64::MAX] {
        let event = Event {
            user: Some(EventUser {
                user_id: Some(user_id),
                ..EventUser::default()
            }),
            ..Event::default()
        };
        let rendered = render_event(&event).unwrap();
        assert_eq!(rendered["user"]["userId"], json!(user_id.to_string()));
    }
}

#[test]
fn integral_doubles_are_written_as_integers_like_go() {
    let event = Event {
        parameters: Some(EventParameters {
            metadata: BTreeMap::from([
                ("one".to_owned(), 1.0),
                ("big".to_owned(), 9_007_199_254_740_992.0),
                ("negative".to_owned(), -3.0),
                ("fraction".to_owned(), 1.3),
            ]),
            ..EventParameters::default()
        }),
        ..Event::default()
    };
    let body = render_event(&event).unwrap().to_string();
    assert!(
        body.contains(
            r#""metadata":{"big":9007199254740992,"fraction":1.3,"negative":-3,"one":1}"#
        ),
        "{body}"
    );
}

#[test]
fn non_finite_metadata_doubles_render_as_strings_like_go() {
    let event = Event {
        parameters: Some(EventParameters {
            metadata: BTreeMap::from([
                ("nan".to_owned(), f64::NAN),
                ("inf".to_owned(), f64::INFINITY),
                ("ninf".to_owned(), f64::NEG_INFINITY),
            ]),
            ..EventParameters::default()
        }),
        ..Event::default()
    };
    assert_eq!(
        render_event(&event).unwrap()["parameters"]["metadata"],
        json!({ "nan": "NaN", "inf": "Infinity", "ninf": "-Infinity" })
    );
}

// ---- rendering errors (where Go's marshaller fails) ----

#[test]
fn timestamps_go_cannot_represent_are_refused_with_their_values() {
    for (seconds, nanos) in [
        (GOLDEN_SECONDS, -1),
        (GOLDEN_SECONDS, 1_000_000_000),
        (MAX_TIMESTAMP_SECONDS + 1, 0),
        (MIN_TIMESTAMP_SECONDS - 1, 0),
    ] {
        let err = render_event(&event_at(seconds, nanos)).unwrap_err();
        assert!(
            matches!(
                err,
                ProtojsonError::InvalidTimestamp { field: "timestamp", seconds: s, nanos: n }
                    if s == seconds && n == nanos
            ),
            "{err:?}"
        );
    }
}

fn event_with_private(private: Struct) -> Event {
    Event {
        parameters: Some(EventParameters {
            private_metadata: Some(private),
            ..EventParameters::default()
        }),
        ..Event::default()
    }
}

#[test]
fn struct_value_without_a_kind_is_refused_with_its_path() {
    let event = event_with_private(object([(
        "outer",
        Value {
            kind: Some(Kind::StructValue(object([(
                "odd key",
                list(vec![null(), Value { kind: None }]),
            )]))),
        },
    )]));
    let err = render_event(&event).unwrap_err();
    match &err {
        ProtojsonError::UnsetValue { path } => {
            assert_eq!(path, r#"$.parameters.privateMetadata.outer["odd key"][1]"#);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("has no kind set"), "{err}");
}

#[test]
fn non_finite_number_in_struct_is_refused_with_its_path() {
    let event = event_with_private(object([("n", number(f64::INFINITY))]));
    match render_event(&event).unwrap_err() {
        ProtojsonError::NonFiniteNumber { path, value } => {
            assert_eq!(path, "$.parameters.privateMetadata.n");
            assert_eq!(value, f64::INFINITY);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn struct_nested_too_deep_is_refused_without_overflowing_the_stack() {
    let mut value = string("bottom");
    for _ in 0..100_000 {
        value = list(vec![value]);
    }
    let event = event_with_private(object([("deep", value)]));
    let err = render_event(&event).unwrap_err();
    assert!(
        matches!(
            err,
            ProtojsonError::TooDeep {
                limit: MAX_STRUCT_DEPTH,
                ..
            }
        ),
        "{err:?}"
    );
    // Dropping 100k nested values recursively would overflow the stack of a
    // test thread; leak it (test only).
    std::mem::forget(event);
}

// ---- parsing ----

#[test]
fn full_event_parses_back_from_its_hand_written_protojson() {
    let text = full_event_migrated_json().to_string();
    assert_eq!(parse_event(text.as_bytes()).unwrap(), full_event_migrated());
    assert_eq!(
        parse_event_value(&full_event_migrated_json()).unwrap(),
        full_event_migrated()
    );
}

#[test]
fn full_event_round_trips_through_render_and_parse() {
    let event = full_event();
    let text = render_event(&event).unwrap().to_string();
    assert_eq!(parse_event(text.as_bytes()).unwrap(), event);
}

#[test]
fn metadata_round_trips_through_render_and_parse() {
    let metadata = licensed_metadata();
    let text = render_metadata(&metadata).unwrap().to_string();
    assert_eq!(parse_metadata(text.as_bytes()).unwrap(), metadata);
}

#[test]
fn proto_field_names_are_accepted_like_json_names() {
    let snake = br#"{
        "id": "1",
        "feature_flags": { "flags": { "a": "true" } },
        "marketing_tracking": { "first_source_url": "u", "session_first_url": "s" },
        "parameters": { "legacy_metadata": { "x": "1" }, "private_metadata": {}, "billing_metadata": { "product": "p" } },
        "user": { "user_id": "5", "anonymous_user_id": "a", "sams_external_id": "s" },
        "interaction": { "trace_id": "t", "interaction_id": "i", "geolocation": { "country_code": "US" } }
    }"#;
    let camel = br#"{
        "id": "1",
        "featureFlags": { "flags": { "a": "true" } },
        "marketingTracking": { "firstSourceUrl": "u", "sessionFirstUrl": "s" },
        "parameters": { "legacyMetadata": { "x": "1" }, "privateMetadata": {}, "billingMetadata": { "product": "p" } },
        "user": { "userId": "5", "anonymousUserId": "a", "samsExternalId": "s" },
        "interaction": { "traceId": "t", "interactionId": "i", "geolocation": { "countryCode": "US" } }
    }"#;
    let from_snake = parse_event(snake).unwrap();
    assert_eq!(from_snake, parse_event(camel).unwrap());
    assert_eq!(from_snake.user.unwrap().user_id, Some(5));
    assert_eq!(
        from_snake.parameters.unwrap().legacy_metadata,
        BTreeMap::from([("x".to_owned(), 1)])
    );
}

#[test]
fn int64_is_accepted_as_a_string_or_a_number() {
    for text in [
        br#"{"user": {"userId": "123"}}"#.as_slice(),
        br#"{"user": {"userId": 123}}"#.as_slice(),
    ] {
        let event = parse_event(text).unwrap();
        assert_eq!(event.user.unwrap().user_id, Some(123));
    }
}

#[test]
fn explicit_zero_for_an_optional_field_keeps_its_presence() {
    let event = parse_event(br#"{"user": {"userId": "0", "anonymousUserId": ""}}"#).unwrap();
    let user = event.user.unwrap();
    assert_eq!(user.user_id, Some(0));
    assert_eq!(user.anonymous_user_id, Some(String::new()));
    assert_eq!(user.sams_external_id, None);
}

#[test]
fn null_means_not_set_except_inside_a_struct() {
    let event = parse_event(
        br#"{"feature": null, "user": null, "parameters": {"privateMetadata": {"k": null}}}"#,
    )
    .unwrap();
    assert_eq!(event.feature, "");
    assert_eq!(event.user, None);
    assert_eq!(
        event.parameters.unwrap().private_metadata,
        Some(object([("k", null())]))
    );
}

#[test]
fn timestamps_with_an_offset_are_converted_to_utc() {
    let event = parse_event(br#"{"timestamp": "2023-02-24T15:48:30.5+01:00"}"#).unwrap();
    assert_eq!(
        event.timestamp,
        Some(Timestamp {
            seconds: GOLDEN_SECONDS,
            nanos: 500_000_000
        })
    );
    assert_eq!(
        render_event(&event).unwrap()["timestamp"],
        json!("2023-02-24T14:48:30.500Z")
    );
}

// ---- parse errors ----

#[test]
fn malformed_json_is_reported_with_its_line_and_column() {
    let err = parse_event(b"{\n  \"id\": \"1\",,\n}").unwrap_err();
    match &err {
        ProtojsonError::Syntax { position, .. } => {
            assert_eq!(
                *position,
                Position {
                    line: 2,
                    column: 13
                }
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("malformed JSON at line 2 column 13: "),
        "{err}"
    );
}

#[test]
fn truncated_and_trailing_input_are_malformed_json() {
    assert!(matches!(
        parse_event(br#"{"id": "1""#).unwrap_err(),
        ProtojsonError::Syntax { .. }
    ));
    assert!(matches!(
        parse_event(br#"{"id": "1"} {}"#).unwrap_err(),
        ProtojsonError::Syntax {
            position: Position {
                line: 1,
                column: 13
            },
            ..
        }
    ));
    assert!(matches!(
        parse_event(b"").unwrap_err(),
        ProtojsonError::Syntax { .. }
    ));
}

#[test]
fn wrong_type_for_a_field_names_the_field_and_position() {
    let err = parse_event(br#"{"id": "1", "feature": 5}"#).unwrap_err();
    match &err {
        ProtojsonError::Invalid {
            message_type,
            path,
            position,
            reason,
        } => {
            assert_eq!(*message_type, EVENT_MESSAGE);
            assert_eq!(path, "$.feature");
            assert_eq!(
                *position,
                Some(Position {
                    line: 1,
                    column: 24
                })
            );
            assert_eq!(reason, "invalid type: integer `5`, expected a string");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "invalid protojson telemetrygateway.v1.Event at $.feature (line 1 column 24): \
         invalid type: integer `5`, expected a string"
    );
}

#[test]
fn wrong_type_deep_inside_names_the_full_path() {
    let err = parse_event(br#"{"parameters": {"metadata": {"count": true}}}"#).unwrap_err();
    assert!(
        matches!(&err, ProtojsonError::Invalid { path, .. } if path == "$.parameters.metadata.count"),
        "{err:?}"
    );
    let err = parse_event(br#"{"user": {"userId": "12x"}}"#).unwrap_err();
    assert!(
        matches!(&err, ProtojsonError::Invalid { path, .. } if path == "$.user.userId"),
        "{err:?}"
    );
}

#[test]
fn unknown_field_is_rejected_naming_the_field_and_its_object() {
    let err = parse_event(br#"{"id": "1", "user": {"userId": "1", "userName": "x"}}"#).unwrap_err();
    match &err {
        ProtojsonError::Invalid { path, reason, .. } => {
            assert_eq!(path, "$.user");
            assert_eq!(reason, "unrecognized field name 'userName'");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn invalid_timestamps_are_rejected_at_the_timestamp_field() {
    for text in [
        r#"{"timestamp": "2023-02-30T00:00:00Z"}"#,
        r#"{"timestamp": "2023-02-24"}"#,
        r#"{"timestamp": "yesterday"}"#,
        r#"{"timestamp": 1677250110}"#,
        r#"{"timestamp": "10000-01-01T00:00:00Z"}"#,
    ] {
        let err = parse_event(text.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, ProtojsonError::Invalid { path, .. } if path == "$.timestamp"),
            "{text}: {err:?}"
        );
    }
}

#[test]
fn invalid_utf8_is_rejected_with_its_offset() {
    let err = parse_event(b"{\"id\": \"\xff\"}").unwrap_err();
    assert!(
        matches!(err, ProtojsonError::InvalidUtf8 { offset: 8 }),
        "{err:?}"
    );
}

#[test]
fn a_json_value_that_is_not_an_object_is_rejected_without_a_position() {
    let err = parse_event_value(&json!(["not", "an", "event"])).unwrap_err();
    assert!(
        matches!(&err, ProtojsonError::Invalid { path, position: None, .. } if path == "$"),
        "{err:?}"
    );
    let err = parse_event_value(&json!({"feature": 5})).unwrap_err();
    assert!(
        matches!(&err, ProtojsonError::Invalid { path, position: None, .. } if path == "$.feature"),
        "{err:?}"
    );
}

#[test]
fn private_metadata_nested_beyond_prosts_recursion_limit_is_an_error_not_a_crash() {
    let depth = 60;
    let text = format!(
        r#"{{"parameters": {{"privateMetadata": {}1{}}}}}"#,
        r#"{"a":"#.repeat(depth),
        "}".repeat(depth)
    );
    // prost-reflect builds each Struct through prost, whose recursion limit
    // (100 messages) trips first; the error still names where.
    let err = parse_event(text.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, ProtojsonError::Invalid { path, reason, .. }
            if path.starts_with("$.parameters.privateMetadata") && reason.contains("recursion limit")),
        "{err:?}"
    );
}

// ---- round trip property ----

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9._-]{0,12}",
        1 => any::<String>(),
    ]
}

/// Doubles that survive JSON: all finite ones, and the infinities (as
/// strings). NaN is left out only because NaN != NaN.
fn arb_double() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>().prop_filter("finite", |f| f.is_finite()),
        2 => (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
    ]
}

fn arb_struct_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(null()),
        any::<bool>().prop_map(boolean),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(number),
        arb_text().prop_map(|s| string(&s)),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(list),
            prop::collection::btree_map(arb_text(), inner, 0..4).prop_map(|fields| Value {
                kind: Some(Kind::StructValue(Struct { fields })),
            }),
        ]
    })
}

fn arb_opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(arb_text())
}

fn arb_parameters() -> impl Strategy<Value = EventParameters> {
    (
        any::<i32>(),
        prop::collection::btree_map(arb_text(), any::<i64>(), 0..3),
        prop::collection::btree_map(arb_text(), arb_double(), 0..4),
        prop::option::of(
            prop::collection::btree_map(arb_text(), arb_struct_value(), 0..4)
                .prop_map(|fields| Struct { fields }),
        ),
        prop::option::of(
            (arb_text(), arb_text())
                .prop_map(|(product, category)| EventBillingMetadata { product, category }),
        ),
    )
        .prop_map(
            |(version, legacy_metadata, metadata, private_metadata, billing_metadata)| {
                EventParameters {
                    version,
                    legacy_metadata,
                    metadata,
                    private_metadata,
                    billing_metadata,
                }
            },
        )
}

fn arb_marketing() -> impl Strategy<Value = EventMarketingTracking> {
    prop::collection::vec(arb_opt_text(), 8).prop_map(|mut v| {
        let mut next = || v.pop().flatten();
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
}

pub(crate) fn arb_event() -> impl Strategy<Value = Event> {
    let head = (
        arb_text(),
        prop::option::of(
            (
                MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS,
                0..1_000_000_000i32,
            )
                .prop_map(|(seconds, nanos)| Timestamp { seconds, nanos }),
        ),
        arb_text(),
        arb_text(),
        prop::option::of(
            (
                prop::option::of(arb_text().prop_map(|version| Server { version })),
                prop::option::of(
                    (arb_text(), arb_opt_text())
                        .prop_map(|(name, version)| Client { name, version }),
                ),
            )
                .prop_map(|(server, client)| EventSource { server, client }),
        ),
    );
    let tail = (
        prop::option::of(arb_parameters()),
        prop::option::of(
            (
                prop::option::of(any::<i64>()),
                arb_opt_text(),
                arb_opt_text(),
            )
                .prop_map(|(user_id, anonymous_user_id, sams_external_id)| EventUser {
                    user_id,
                    anonymous_user_id,
                    sams_external_id,
                }),
        ),
        prop::option::of(
            prop::collection::btree_map(arb_text(), arb_text(), 0..3)
                .prop_map(|flags| EventFeatureFlags { flags }),
        ),
        prop::option::of(arb_marketing()),
        prop::option::of(
            (
                arb_opt_text(),
                arb_opt_text(),
                prop::option::of(arb_text().prop_map(|country_code| Geolocation { country_code })),
            )
                .prop_map(|(trace_id, interaction_id, geolocation)| EventInteraction {
                    trace_id,
                    interaction_id,
                    geolocation,
                }),
        ),
    );
    (head, tail).prop_map(
        |(
            (id, timestamp, feature, action, source),
            (parameters, user, feature_flags, marketing_tracking, interaction),
        )| Event {
            id,
            timestamp,
            feature,
            action,
            source,
            parameters,
            user,
            feature_flags,
            marketing_tracking,
            interaction,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_event_round_trips_through_render_and_parse(event in arb_event()) {
        let value = render_event(&event).unwrap();
        let text = value.to_string();
        prop_assert_eq!(&parse_event(text.as_bytes()).unwrap(), &event);
        prop_assert_eq!(&parse_event_value(&value).unwrap(), &event);
    }
}
