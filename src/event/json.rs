//! Conversions between protobuf's JSON-shaped well-known types
//! (`google.protobuf.Struct`, `Value`, `ListValue`) and `serde_json`.
//!
//! Numbers follow Go's `encoding/json`, which is what Sourcegraph's JSON
//! columns and messages were written with: an integral double within ±2^53
//! becomes a JSON integer (`2`, not `2.0`), any other finite double stays a
//! float. JSON cannot hold NaN or ±infinity; they become `null` (Go would
//! fail the whole document instead).
//!
//! [`Number`], [`JsonValue`] and [`JsonStruct`] write the same JSON text
//! straight from the protobuf types through `serde` (the record path's
//! `event_logs` rows: no `serde_json::Value` built and dropped per event);
//! the conversions above are their reference in the tests.
//!
//! The conversions recurse once per nesting level. Their inputs are bounded:
//! prost decodes at most 100 levels, serde_json parses at most 128, and the
//! sidecar and the gateway validate private metadata to
//! [`crate::event::validate::Limits::max_depth`].

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Number as JsonNumber, Value as Json};

/// 2^53: every integer of at most this magnitude is exact in a double.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// A double as JSON: an integer when integral and exact, `null` when not
/// finite.
pub fn number_to_json(n: f64) -> Json {
    if !n.is_finite() {
        return Json::Null;
    }
    if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INTEGER {
        // Exact: |n| <= 2^53 fits in i64 without rounding.
        return Json::Number(JsonNumber::from(n as i64));
    }
    JsonNumber::from_f64(n).map_or(Json::Null, Json::Number)
}

/// A double serialized as [`number_to_json`] renders it.
#[derive(Clone, Copy, Debug)]
pub struct Number(pub f64);

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        if !n.is_finite() {
            s.serialize_unit()
        } else if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INTEGER {
            s.serialize_i64(n as i64)
        } else {
            s.serialize_f64(n)
        }
    }
}

/// A protobuf `Value` serialized as [`value_to_json`] renders it.
#[derive(Clone, Copy, Debug)]
pub struct JsonValue<'a>(pub &'a Value);

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0.kind {
            None | Some(Kind::NullValue(_)) => s.serialize_unit(),
            Some(Kind::NumberValue(n)) => Number(*n).serialize(s),
            Some(Kind::StringValue(v)) => s.serialize_str(v),
            Some(Kind::BoolValue(b)) => s.serialize_bool(*b),
            Some(Kind::StructValue(v)) => JsonStruct(v).serialize(s),
            Some(Kind::ListValue(l)) => {
                let mut seq = s.serialize_seq(Some(l.values.len()))?;
                for v in &l.values {
                    seq.serialize_element(&JsonValue(v))?;
                }
                seq.end()
            }
        }
    }
}

/// A protobuf `Struct` serialized as [`struct_to_json`] renders it.
#[derive(Clone, Copy, Debug)]
pub struct JsonStruct<'a>(pub &'a Struct);

impl Serialize for JsonStruct<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.fields.len()))?;
        for (k, v) in &self.0.fields {
            map.serialize_entry(k, &JsonValue(v))?;
        }
        map.end()
    }
}

/// A protobuf `Value` as JSON. A `Value` with no kind set is `null`.
pub fn value_to_json(value: &Value) -> Json {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::NumberValue(n)) => number_to_json(*n),
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::StructValue(s)) => Json::Object(struct_to_json_map(s)),
        Some(Kind::ListValue(l)) => list_to_json(l),
    }
}

/// A protobuf `Struct` as a JSON object.
pub fn struct_to_json(s: &Struct) -> Json {
    Json::Object(struct_to_json_map(s))
}

/// A protobuf `Struct` as a JSON map (to add keys before wrapping it).
pub fn struct_to_json_map(s: &Struct) -> Map<String, Json> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), value_to_json(v)))
        .collect()
}

/// A protobuf `ListValue` as a JSON array.
pub fn list_to_json(list: &ListValue) -> Json {
    Json::Array(list.values.iter().map(value_to_json).collect())
}

/// JSON as a protobuf `Value`. Numbers become doubles (integers beyond
/// ±2^53 lose precision, as they would in any JSON-to-Struct conversion).
pub fn json_to_value(json: &Json) -> Value {
    let kind = match json {
        Json::Null => Kind::NullValue(prost_types::NullValue::NullValue as i32),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        Json::Object(map) => Kind::StructValue(json_map_to_struct(map)),
    };
    Value { kind: Some(kind) }
}

/// A JSON object as a protobuf `Struct`.
pub fn json_map_to_struct(map: &Map<String, Json>) -> Struct {
    Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(n: f64) -> Value {
        Value {
            kind: Some(Kind::NumberValue(n)),
        }
    }

    #[test]
    fn integral_doubles_render_as_integers_like_go() {
        assert_eq!(number_to_json(2.0), json!(2));
        assert_eq!(number_to_json(-3.0), json!(-3));
        assert_eq!(number_to_json(1.3), json!(1.3));
        assert_eq!(
            number_to_json(9_007_199_254_740_992.0),
            json!(9_007_199_254_740_992_i64)
        );
        assert_eq!(number_to_json(1e300), json!(1e300));
        assert_eq!(number_to_json(2.0).to_string(), "2");
    }

    #[test]
    fn non_finite_numbers_become_null() {
        assert_eq!(number_to_json(f64::NAN), Json::Null);
        assert_eq!(number_to_json(f64::INFINITY), Json::Null);
        assert_eq!(value_to_json(&num(f64::NEG_INFINITY)), Json::Null);
    }

    #[test]
    fn a_value_without_a_kind_is_null() {
        assert_eq!(value_to_json(&Value { kind: None }), Json::Null);
    }

    #[test]
    fn nested_structs_and_lists_convert_both_ways() {
        let want = json!({
            "s": "text",
            "n": 1.5,
            "i": 7,
            "b": true,
            "z": null,
            "list": [1, "two", {"three": [false]}],
            "obj": {"inner": {"deep": "yes"}}
        });
        let Json::Object(map) = &want else {
            panic!("not an object")
        };
        let s = json_map_to_struct(map);
        assert_eq!(struct_to_json(&s), want);
    }

    proptest::proptest! {
        #[test]
        fn the_serializers_write_what_the_conversions_render(
            v in crate::proto::arb::struct_value(),
            n in crate::proto::arb::double(),
        ) {
            proptest::prop_assert_eq!(
                serde_json::to_string(&JsonValue(&v)).unwrap(),
                serde_json::to_string(&value_to_json(&v)).unwrap()
            );
            proptest::prop_assert_eq!(
                serde_json::to_string(&Number(n)).unwrap(),
                serde_json::to_string(&number_to_json(n)).unwrap()
            );
            if let Some(Kind::StructValue(st)) = &v.kind {
                proptest::prop_assert_eq!(
                    serde_json::to_string(&JsonStruct(st)).unwrap(),
                    serde_json::to_string(&struct_to_json(st)).unwrap()
                );
            }
        }
    }
}
