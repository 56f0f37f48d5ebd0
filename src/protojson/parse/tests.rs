//! Unit tests of the typed parser, one rule at a time (the reference is
//! compared on random inputs in `equivalence_tests.rs`).

use std::collections::BTreeMap;

use prost::Message as _;
use prost_reflect::{Kind, MessageDescriptor};
use prost_types::value::Kind as ValueKind;
use prost_types::{ListValue, Struct, Timestamp, Value};
use serde_json::json;

use super::structs::{PRIVATE_METADATA_LEVEL, PROST_RECURSION_LIMIT};
use super::timestamp::{Shape, check_shape};
use crate::proto::telemetrygateway::v1::{Event, EventParameters};
use crate::protojson::tests::GOLDEN_SECONDS;
use crate::protojson::{
    Position, ProtojsonError, event_descriptor, parse_event, parse_event_reference,
    parse_event_str, parse_event_value,
};

fn ok(text: &str) -> Event {
    parse_event_str(text).unwrap_or_else(|err| panic!("{text}: {err}"))
}

/// The error's path, position and reason.
fn invalid(text: &str) -> (String, Option<Position>, String) {
    match parse_event_str(text) {
        Err(ProtojsonError::Invalid {
            path,
            position,
            reason,
            ..
        }) => (path, position, reason),
        other => panic!("{text}: {other:?}"),
    }
}

fn at(line: usize, column: usize) -> Option<Position> {
    Some(Position { line, column })
}

// ---- field names ----

/// A value of a field's type, not its default.
fn sample(kind: &Kind) -> serde_json::Value {
    match kind {
        Kind::String => json!("s"),
        Kind::Int32 => json!(7),
        Kind::Int64 => json!("-7"),
        Kind::Double => json!(1.5),
        Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
            json!("2023-02-24T14:48:30Z")
        }
        Kind::Message(m) if m.full_name() == "google.protobuf.Struct" => json!({"k": [1, "x"]}),
        Kind::Message(_) => json!({}),
        other => panic!("no sample for {other:?}: a new field type needs a seed and a test"),
    }
}

/// `{outer: {… {inner} …}}`.
fn wrap(prefix: &[String], inner: serde_json::Value) -> serde_json::Value {
    prefix
        .iter()
        .rev()
        .fold(inner, |value, key| json!({ key.clone(): value }))
}

fn walk(desc: &MessageDescriptor, prefix: &mut Vec<String>, seen: &mut usize) {
    for field in desc.fields() {
        let value = if field.is_map() {
            let entry = field.kind();
            let entry = entry.as_message().unwrap();
            json!({ "k": sample(&entry.map_entry_value_field().kind()) })
        } else {
            sample(&field.kind())
        };
        let unset = ok(&wrap(prefix, json!({})).to_string());
        let mut parsed = Vec::new();
        for name in [field.json_name(), field.name()] {
            let null = wrap(prefix, json!({ name: null })).to_string();
            assert_eq!(ok(&null), unset, "{null}: null is not set");
            let text = wrap(prefix, json!({ name: value.clone() })).to_string();
            let event = ok(&text);
            assert_ne!(event, unset, "{text}: the field was not read");
            assert_eq!(
                event.encode_to_vec(),
                parse_event_reference(text.as_bytes())
                    .unwrap()
                    .encode_to_vec(),
                "{text}"
            );
            parsed.push(event);
        }
        assert_eq!(parsed[0], parsed[1], "{}: both names", field.full_name());
        *seen += 1;
        if let Kind::Message(inner) = field.kind()
            && !field.is_map()
            && !inner.full_name().starts_with("google.protobuf.")
        {
            prefix.push(field.json_name().to_owned());
            walk(&inner, prefix, seen);
            prefix.pop();
        }
    }
    let bogus = wrap(prefix, json!({ "bogus": 1 })).to_string();
    let (path, _, reason) = invalid(&bogus);
    assert_eq!(reason, "unrecognized field name 'bogus'");
    assert_eq!(
        path,
        prefix
            .iter()
            .fold(String::from("$"), |path, k| path + "." + k)
    );
}

#[test]
fn every_field_of_every_message_is_read_under_its_json_name_and_its_proto_name() {
    let mut seen = 0;
    walk(event_descriptor().unwrap(), &mut Vec::new(), &mut seen);
    // Event 10, source 2, server 1, client 2, parameters 5, billing 2,
    // user 3, flags 1, marketing 8, interaction 3, geolocation 1.
    assert_eq!(
        seen, 38,
        "a field was added to the proto: add it to the parser"
    );
}

#[test]
fn field_names_with_escapes_are_read_like_plain_ones() {
    let event = ok(r#"{"f\u0065ature": "x", "user": {"user\u005fid": "5"}}"#);
    assert_eq!(event.feature, "x");
    assert_eq!(event.user.unwrap().user_id, Some(5));
}

// ---- null, presence, duplicates ----

#[test]
fn null_is_not_set_and_does_not_clear_an_earlier_value() {
    let event = ok(r#"{"feature": "a", "feature": null, "user": {"userId": "1"}, "user": null}"#);
    assert_eq!(event.feature, "a");
    assert_eq!(event.user.unwrap().user_id, Some(1));
    assert_eq!(
        ok(r#"{"timestamp": null, "parameters": null}"#),
        Event::default()
    );
}

#[test]
fn an_explicit_default_in_an_optional_field_keeps_its_presence() {
    let user = ok(r#"{"user": {"userId": 0, "anonymousUserId": ""}}"#)
        .user
        .unwrap();
    assert_eq!(user.user_id, Some(0));
    assert_eq!(user.anonymous_user_id, Some(String::new()));
    assert_eq!(user.sams_external_id, None);
}

#[test]
fn a_plain_field_given_twice_keeps_the_last_value() {
    let event = ok(r#"{"feature": "a", "feature": "b",
        "parameters": {"metadata": {"x": 1}, "metadata": {"y": 2, "y": 3}},
        "source": {"server": {"version": "1"}}, "source": {}}"#);
    assert_eq!(event.feature, "b");
    let parameters = event.parameters.unwrap();
    assert_eq!(parameters.metadata, BTreeMap::from([("y".to_owned(), 3.0)]));
    assert_eq!(event.source.unwrap().server, None, "replaced, not merged");
}

#[test]
fn an_optional_field_given_twice_is_refused_like_a_oneof() {
    let (path, position, reason) = invalid(r#"{"user": {"user_id": 5, "userId": 6}}"#);
    assert_eq!(path, "$.user");
    assert_eq!(position, at(1, 36));
    assert_eq!(reason, "multiple fields provided for oneof '_user_id'");
    let (path, _, reason) = invalid(r#"{"featureFlags": {}, "feature_flags": {}}"#);
    assert_eq!(path, "$");
    assert_eq!(
        reason,
        "multiple fields provided for oneof '_feature_flags'"
    );
}

// ---- numbers ----

#[test]
fn int64_is_read_from_a_string_or_a_number() {
    for (text, want) in [
        ("\"123\"", 123),
        ("123", 123),
        ("\"+5\"", 5),
        ("\"-0\"", 0),
        ("1e2", 100),
        ("-3.0", -3),
        ("\"-9223372036854775808\"", i64::MIN),
        ("9223372036854775807", i64::MAX),
        // The reference's range check is against 2^63 as a float.
        ("9223372036854775808.0", i64::MAX),
    ] {
        let event = ok(&format!(r#"{{"user": {{"userId": {text}}}}}"#));
        assert_eq!(event.user.unwrap().user_id, Some(want), "{text}");
    }
}

#[test]
fn int64_out_of_range_or_not_integral_is_refused_naming_the_field() {
    for (text, reason) in [
        (
            "9223372036854775808",
            "out of range integral type conversion attempted",
        ),
        (
            "\"9223372036854775808\"",
            "number too large to fit in target type",
        ),
        ("1e19", "float value out of range"),
        ("1.5", "expected integer value"),
        ("\"1.5\"", "invalid digit found in string"),
        ("\" 5\"", "invalid digit found in string"),
        ("\"\"", "cannot parse integer from empty string"),
        (
            "true",
            "invalid type: boolean `true`, expected a 64-bit signed integer or decimal string",
        ),
    ] {
        let (path, _, got) = invalid(&format!(r#"{{"user": {{"userId": {text}}}}}"#));
        assert_eq!(path, "$.user.userId", "{text}");
        assert_eq!(got, reason, "{text}");
    }
    let (path, _, _) = invalid(r#"{"parameters": {"legacyMetadata": {"odd key": 1.5}}}"#);
    assert_eq!(path, r#"$.parameters.legacyMetadata["odd key"]"#);
}

#[test]
fn int32_is_range_checked() {
    assert_eq!(
        ok(r#"{"parameters": {"version": "-2147483648"}}"#)
            .parameters
            .unwrap()
            .version,
        i32::MIN
    );
    for text in ["2147483648", "-2147483649", "\"2147483648\"", "3e9"] {
        let (path, _, _) = invalid(&format!(r#"{{"parameters": {{"version": {text}}}}}"#));
        assert_eq!(path, "$.parameters.version", "{text}");
    }
}

#[test]
fn doubles_are_read_from_numbers_and_from_strings_and_negative_zero_is_zero() {
    let event = ok(
        r#"{"parameters": {"metadata": {"a": "NaN", "b": "-Infinity", "c": "1.5", "d": -0.0, "e": 18446744073709551616}}}"#,
    );
    let metadata = event.parameters.unwrap().metadata;
    assert!(metadata["a"].is_nan());
    assert_eq!(metadata["b"], f64::NEG_INFINITY);
    assert_eq!(metadata["c"], 1.5);
    assert!(
        metadata["d"] == 0.0 && metadata["d"].is_sign_positive(),
        "as prost decodes it"
    );
    assert_eq!(metadata["e"], 18_446_744_073_709_551_616.0);
    let (path, _, reason) = invalid(r#"{"parameters": {"metadata": {"n": null}}}"#);
    assert_eq!(path, "$.parameters.metadata.n");
    assert_eq!(
        reason,
        "invalid type: null, expected a 64-bit floating point value"
    );
}

// ---- timestamps ----

#[test]
fn timestamps_with_any_offset_are_converted_to_utc() {
    let golden = |nanos| {
        Some(Timestamp {
            seconds: GOLDEN_SECONDS,
            nanos,
        })
    };
    for (text, want) in [
        ("2023-02-24T14:48:30Z", golden(0)),
        ("2023-02-24T15:48:30.5+01:00", golden(500_000_000)),
        ("2023-02-24T09:18:30.000000001-05:30", golden(1)),
        // Digits past the ninth are dropped.
        ("2023-02-24T14:48:30.1234567899Z", golden(123_456_789)),
    ] {
        assert_eq!(
            ok(&format!(r#"{{"timestamp": "{text}"}}"#)).timestamp,
            want,
            "{text}"
        );
    }
}

#[test]
fn timestamps_outside_years_1_to_9999_in_utc_are_refused() {
    for text in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
        ok(&format!(r#"{{"timestamp": "{text}"}}"#));
    }
    for text in [
        "0000-12-31T23:59:59Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
    ] {
        let (path, _, reason) = invalid(&format!(r#"{{"timestamp": "{text}"}}"#));
        assert_eq!(
            (path.as_str(), reason.as_str()),
            ("$.timestamp", "timestamp out of range")
        );
    }
    let (_, _, reason) = invalid(r#"{"timestamp": "10000-01-01T00:00:00Z"}"#);
    assert_eq!(reason, "invalid rfc3339 timestamp: invalid date");
}

#[test]
fn impossible_dates_and_times_are_refused() {
    for text in [
        "2023-02-30T00:00:00Z",
        "2023-02-24T24:00:00Z",
        "2023-13-01T00:00:00Z",
    ] {
        let (path, _, reason) = invalid(&format!(r#"{{"timestamp": "{text}"}}"#));
        assert_eq!(path, "$.timestamp");
        assert_eq!(
            reason, "failed to parse RFC-3339 formatted timestamp",
            "{text}"
        );
    }
    let (_, _, reason) = invalid(r#"{"timestamp": 1677250110}"#);
    assert_eq!(
        reason,
        "invalid type: integer `1677250110`, expected a rfc3339 timestamp string"
    );
}

#[test]
fn badly_shaped_timestamps_are_refused_with_the_reference_words() {
    // The cases of prost-reflect's own test of its strict check.
    let cases = [
        ("1972-06-30T23:59:60Z", None),
        ("2019-03-26T14:00:00.4999+10:00", None),
        ("2019-03-26t14:00Z", Some("expected 'T' but found 't'")),
        ("2019-03-26T14:00z", Some("invalid time")),
        (
            "2019-03-26T14:00:00,999Z",
            Some("expected 'Z', '+' or '-' but found ','"),
        ),
        ("2019-03-26T10:00-04", Some("invalid time")),
        ("20190326T1400Z", Some("invalid date")),
        ("2019-02-30", Some("expected 'T' but found end of string")),
        ("2019-03-26T14:00:00+24", Some("invalid offset")),
        ("+2019-03-26T14:00Z", Some("invalid date")),
        ("2019-03-26 14:00Z", Some("expected 'T' but found ' '")),
        ("2019-03-26T14:00:00.", Some("empty fractional seconds")),
        (
            "2019-03-26T14:00:00Z ",
            Some("expected end of string but found ' '"),
        ),
        (
            "2019-03-26T14:00:00\u{e9}",
            Some("expected 'Z', '+' or '-' but found '\\xc3'"),
        ),
    ];
    for (text, want) in cases {
        let got = check_shape(text)
            .err()
            .map(|shape: Shape| shape.to_string());
        let want = want.map(|w| format!("invalid rfc3339 timestamp: {w}"));
        assert_eq!(got, want, "{text}");
    }
}

// ---- structure and syntax ----

#[test]
fn an_unknown_field_is_refused_naming_it_its_object_and_its_position() {
    let (path, position, reason) =
        invalid(r#"{"id": "1", "user": {"userId": "1", "userName": "x"}}"#);
    assert_eq!(path, "$.user");
    assert_eq!(position, at(1, 46));
    assert_eq!(reason, "unrecognized field name 'userName'");
}

#[test]
fn an_event_that_is_not_an_object_is_refused_at_the_root() {
    for (text, reason) in [
        ("[]", "invalid type: sequence, expected a map"),
        ("null", "invalid type: null, expected a map"),
        ("5", "invalid type: integer `5`, expected a map"),
    ] {
        assert_eq!(invalid(text).2, reason, "{text}");
    }
    let err = parse_event_value(&json!("x")).unwrap_err();
    assert!(
        matches!(&err, ProtojsonError::Invalid { path, position: None, .. } if path == "$"),
        "{err:?}"
    );
}

#[test]
fn trailing_input_and_bad_utf8_are_refused() {
    assert!(matches!(
        parse_event_str(r#"{"id": "1"} {}"#),
        Err(ProtojsonError::Syntax {
            position: Position {
                line: 1,
                column: 13
            },
            ..
        })
    ));
    assert!(matches!(
        parse_event(b"{\"id\": \"\xff\"}"),
        Err(ProtojsonError::InvalidUtf8 { offset: 8 })
    ));
}

#[test]
fn a_wrong_type_names_the_field_and_the_position() {
    let err = parse_event_str("{\n  \"id\": \"1\",\n  \"feature\": 5\n}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid protojson telemetrygateway.v1.Event at $.feature (line 3 column 14): \
         invalid type: integer `5`, expected a string"
    );
}

// ---- nesting ----

/// `privateMetadata` = `{"a": {"a": … 1 …}}`, `objects` objects deep, or
/// `{"a": [[… 1 …]]}` with `arrays` arrays.
fn nested(objects: usize, arrays: usize) -> String {
    format!(
        r#"{{"parameters": {{"privateMetadata": {}{}1{}{}}}}}"#,
        r#"{"a":"#.repeat(objects),
        "[".repeat(arrays),
        "]".repeat(arrays),
        "}".repeat(objects),
    )
}

fn assert_too_deep(text: &str) {
    let (path, position, reason) = invalid(text);
    assert_eq!(path, "$.parameters.privateMetadata");
    assert!(position.is_some());
    assert!(
        reason.starts_with("recursion limit reached: private_metadata"),
        "{reason}"
    );
    assert!(
        parse_event_reference(text.as_bytes()).is_err(),
        "the reference refuses it too"
    );
}

#[test]
fn private_metadata_up_to_prosts_limit_is_accepted_and_deeper_is_refused() {
    // Objects cost 3 levels (Struct, entry, Value), arrays 2 (ListValue,
    // Value), from privateMetadata at level 2; the leaf Value must be at
    // level 100 at most.
    for text in [nested(33, 0), nested(1, 48), nested(17, 24)] {
        let event = ok(&text);
        let bytes = event.encode_to_vec();
        assert_eq!(
            Event::decode(bytes.as_slice()).unwrap(),
            event,
            "prost decodes it"
        );
        assert_eq!(parse_event_reference(text.as_bytes()).unwrap(), event);
    }
    for text in [nested(34, 0), nested(1, 49), nested(17, 25), nested(1, 200)] {
        assert_too_deep(&text);
    }
    // An empty object or array deeper than the limit is refused too.
    assert_too_deep(&nested(33, 0).replace('1', "{}"));
    assert_too_deep(&nested(1, 48).replace('1', "[]"));
}

#[test]
fn the_recursion_limit_is_prosts() {
    // privateMetadata with `objects` nested objects (privateMetadata being
    // the first), then `arrays` nested arrays around the number 1, built
    // without the parser. The leaf Value is at level
    // PRIVATE_METADATA_LEVEL + 3 * (objects - 1) + 2 + 2 * arrays.
    fn event(objects: u32, arrays: u32) -> Event {
        let mut value = Value {
            kind: Some(ValueKind::NumberValue(1.0)),
        };
        for _ in 0..arrays {
            value = Value {
                kind: Some(ValueKind::ListValue(ListValue {
                    values: vec![value],
                })),
            };
        }
        let mut s = Struct {
            fields: BTreeMap::from([("a".to_owned(), value)]),
        };
        for _ in 1..objects {
            s = Struct {
                fields: BTreeMap::from([(
                    "a".to_owned(),
                    Value {
                        kind: Some(ValueKind::StructValue(s)),
                    },
                )]),
            };
        }
        Event {
            parameters: Some(EventParameters {
                private_metadata: Some(s),
                ..EventParameters::default()
            }),
            ..Event::default()
        }
    }
    let leaf =
        |objects: u32, arrays: u32| PRIVATE_METADATA_LEVEL + 3 * (objects - 1) + 2 + 2 * arrays;
    let decodes =
        |objects, arrays| Event::decode(event(objects, arrays).encode_to_vec().as_slice());
    assert_eq!(leaf(1, 48), PROST_RECURSION_LIMIT);
    assert!(decodes(1, 48).is_ok());
    assert_eq!(leaf(2, 47), PROST_RECURSION_LIMIT + 1);
    let err = decodes(2, 47).unwrap_err();
    assert!(err.to_string().contains("recursion limit reached"), "{err}");
    // The same shapes in JSON: accepted, refused.
    ok(&nested(1, 48));
    assert_too_deep(&nested(2, 47));
}

#[test]
fn very_deep_input_is_refused_without_overflowing_the_stack() {
    assert_too_deep(&nested(1, 100_000));
    // An already parsed value, far deeper than text could be.
    let mut deep = json!(1);
    for _ in 0..100_000 {
        deep = serde_json::Value::Array(vec![deep]);
    }
    // (Not json!: it would clone `deep` recursively.)
    for key in ["a", "privateMetadata", "parameters"] {
        deep = serde_json::Value::Object(serde_json::Map::from_iter([(key.to_owned(), deep)]));
    }
    let value = deep;
    let err = parse_event_value(&value).unwrap_err();
    assert!(err.to_string().contains("recursion limit reached"), "{err}");
    // Dropping 100k nested values recursively would overflow the stack of
    // a test thread; leak it (test only).
    std::mem::forget(value);
}

#[test]
fn struct_values_keep_their_json_types() {
    let event = ok(
        r#"{"parameters": {"privateMetadata": {"n": -0.0, "l": [null, true, "s", {}], "big": 18446744073709551615}}}"#,
    );
    let fields = event.parameters.unwrap().private_metadata.unwrap().fields;
    let kind = |k: &str| fields[k].kind.clone().unwrap();
    assert!(matches!(kind("n"), ValueKind::NumberValue(n) if n == 0.0 && n.is_sign_negative()));
    assert_eq!(
        kind("l"),
        ValueKind::ListValue(ListValue {
            values: vec![
                Value {
                    kind: Some(ValueKind::NullValue(0))
                },
                Value {
                    kind: Some(ValueKind::BoolValue(true))
                },
                Value {
                    kind: Some(ValueKind::StringValue("s".to_owned()))
                },
                Value {
                    kind: Some(ValueKind::StructValue(Struct::default()))
                },
            ]
        })
    );
    assert_eq!(
        kind("big"),
        ValueKind::NumberValue(18_446_744_073_709_551_615.0)
    );
}
