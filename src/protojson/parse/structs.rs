//! `google.protobuf.Struct` (`privateMetadata`): any JSON object, built
//! straight into `prost_types::Struct`/`Value`/`ListValue`, with its depth
//! counted in prost's unit and checked before descending.
//!
//! Levels are those of prost's decoder reading the encoded `Event` (which
//! is level 0): `parameters` is 1, `privateMetadata` 2. Inside, a member of
//! an object is a map entry (Struct + 1) holding a `Value` (Struct + 2); an
//! object value is a `Struct` (Value + 1); an array value a `ListValue`
//! (Value + 1) whose elements are `Value`s (ListValue + 1). prost refuses
//! to decode a message at a level above [`PROST_RECURSION_LIMIT`], so none
//! is built here: the reference refuses the same events (when it encodes
//! and decodes them).

use std::collections::BTreeMap;
use std::fmt;

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};

/// prost's `RECURSION_LIMIT` (private in prost; a test checks it).
pub(super) const PROST_RECURSION_LIMIT: u32 = 100;

/// Level of `Event.parameters.private_metadata` in the decoder.
pub(super) const PRIVATE_METADATA_LEVEL: u32 = 2;

/// `privateMetadata` nested deeper than prost can decode.
#[derive(Debug, Clone, Copy)]
pub(super) struct TooDeep;

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "recursion limit reached: private_metadata is nested deeper than protobuf can \
             decode ({PROST_RECURSION_LIMIT} nested messages: about 33 levels of objects or \
             48 of arrays)"
        )
    }
}

fn check<E: Error>(level: u32) -> Result<(), E> {
    if level > PROST_RECURSION_LIMIT {
        Err(E::custom(TooDeep))
    } else {
        Ok(())
    }
}

/// A `Struct` at a given level: a JSON object, read with `deserialize_map`
/// as the reference does.
#[derive(Clone, Copy)]
pub(super) struct StructSeed {
    pub(super) level: u32,
}

impl<'de> DeserializeSeed<'de> for StructSeed {
    type Value = Struct;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Struct, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StructSeed {
    type Value = Struct;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Struct, A::Error> {
        check(self.level)?;
        let mut fields = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(ValueSeed {
                level: self.level + 2,
            })?;
            fields.insert(key, value);
        }
        Ok(Struct { fields })
    }
}

/// A `Value` at a given level: any JSON value.
#[derive(Clone, Copy)]
struct ValueSeed {
    level: u32,
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        check(self.level)?;
        deserializer.deserialize_any(self)
    }
}

fn value(kind: Kind) -> Value {
    Value { kind: Some(kind) }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_bool<E: Error>(self, v: bool) -> Result<Value, E> {
        Ok(value(Kind::BoolValue(v)))
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<Value, E> {
        Ok(value(Kind::NumberValue(v as f64)))
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<Value, E> {
        Ok(value(Kind::NumberValue(v as f64)))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<Value, E> {
        Ok(value(Kind::NumberValue(v)))
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Value, E> {
        Ok(value(Kind::StringValue(v.to_owned())))
    }

    fn visit_string<E: Error>(self, v: String) -> Result<Value, E> {
        Ok(value(Kind::StringValue(v)))
    }

    fn visit_unit<E: Error>(self) -> Result<Value, E> {
        Ok(value(Kind::NullValue(0)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let list_level = self.level + 1;
        check(list_level)?;
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(ValueSeed {
            level: list_level + 1,
        })? {
            values.push(item);
        }
        Ok(value(Kind::ListValue(ListValue { values })))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        StructSeed {
            level: self.level + 1,
        }
        .visit_map(map)
        .map(|fields| value(Kind::StructValue(fields)))
    }
}
