//! The typed protojson parser: JSON text (or a `serde_json::Value`) straight
//! into the prost [`Event`], without a `DynamicMessage` or an intermediate
//! JSON tree. It is the hot path of HTTP ingest; the prost-reflect path in
//! [`super`] is the **reference**, and a proptest (`equivalence_tests.rs`) checks
//! that both accept and refuse the same inputs, with the same bytes and the
//! same error text.
//!
//! # How
//!
//! One serde `Visitor` per message, generic over the `Deserializer`, so the
//! same code reads text (`serde_json::Deserializer::from_str`, field names
//! borrowed from the input) and an already parsed `&Value`. Each message
//! implements [`Message`]: one `match` on the JSON key (both the JSON name
//! and the proto name of every field), whose arm reads the value with the
//! seed of the field's type and stores it. Nothing is allocated but what the
//! `Event` keeps (plus the key of a field name written with escapes).
//!
//! The visitors copy prost-reflect's choices one for one, because serde's
//! messages and serde_json's error positions follow from them: which
//! `deserialize_*` method is called (a message field goes through
//! `deserialize_option`, then `deserialize_map`; a map field through
//! `deserialize_any`; a string through `deserialize_string`), the
//! `expecting` text of each visitor, which `visit_*` methods exist, and the
//! conversions (`"+5"` and `1e2` are integers, `9223372036854775808.0`
//! saturates to `i64::MAX`, `"inf"` is a double, `-0.0` in `metadata` is
//! `0.0` as after prost's encode and decode).
//!
//! Duplicates follow the reference too: a field given twice keeps the last
//! value, except a proto3 `optional` field (a synthetic oneof), which
//! fails the second time with `multiple fields provided for oneof
//! '_user'`; `null` never clears an earlier value. A map key given twice
//! keeps the last value.
//!
//! # Errors
//!
//! Errors are `serde_json::Error`s while parsing (so serde_json attaches the
//! line and column); the JSON path is kept on the side: a [`PathTrack`]
//! gets each key the error passes through on its way out (only on error:
//! nothing is tracked on success), and [`event`] turns both into the
//! [`ProtojsonError`] the reference gives.
//!
//! # Nesting
//!
//! `privateMetadata` (a `google.protobuf.Struct`) is the only recursive
//! part. Its depth is counted in prost's unit, nested messages (a JSON
//! object member is a map entry and a `Value`, an object a `Struct`, an
//! array a `ListValue`), and checked **before** descending: an event
//! accepted here always decodes with prost, whose recursion limit is 100
//! nested messages (about 33 levels of objects or 48 of arrays in
//! `privateMetadata`). The reference refuses the same events, later.

mod event;
mod parameters;
mod scalars;
mod structs;
mod timestamp;

#[cfg(test)]
mod equivalence_tests;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, Visitor};

use super::{EVENT_MESSAGE, ProtojsonError, json_error, push_key};
use crate::proto::telemetrygateway::v1::Event;

/// Parses an [`Event`] from `deserializer` (see the module docs); the
/// caller checks for trailing input.
pub(super) fn event<'de, D>(deserializer: D) -> Result<Event, ProtojsonError>
where
    D: Deserializer<'de, Error = serde_json::Error>,
{
    let track = PathTrack::default();
    MessageSeed::<Event>::new(Ctx { track: &track })
        .deserialize(deserializer)
        .map_err(|err| json_error(EVENT_MESSAGE, Some(track.into_path()), &err))
}

/// The JSON path of an error, collected as the error travels outwards.
#[derive(Default)]
pub(super) struct PathTrack {
    /// Keys, innermost first.
    keys: Cell<Vec<String>>,
}

impl PathTrack {
    fn push(&self, key: &str) {
        let mut keys = self.keys.take();
        keys.push(key.to_owned());
        self.keys.set(keys);
    }

    /// `$`, then `.key` (or `["odd key"]`) steps, as the reference writes it.
    fn into_path(self) -> String {
        let mut out = String::from("$");
        for key in self.keys.into_inner().iter().rev() {
            push_key(&mut out, key);
        }
        out
    }
}

/// What every seed carries: where to note the path of an error.
#[derive(Clone, Copy)]
pub(super) struct Ctx<'a> {
    track: &'a PathTrack,
}

impl Ctx<'_> {
    /// Notes that `err` came out of the value of `key`.
    #[cold]
    fn inside<E>(self, key: &str, err: E) -> E {
        self.track.push(key);
        err
    }
}

/// A protobuf message read from a protojson object.
pub(super) trait Message: Default {
    /// Reads the field named `field.key()` (its JSON name or its proto
    /// name) into `self`; `Ok(false)` if no field has that name (its value
    /// is then left unread).
    fn merge<'de, A: MapAccess<'de>>(&mut self, field: Field<'_, 'de, A>)
    -> Result<bool, A::Error>;
}

/// One member of a JSON object being read into a message.
pub(super) struct Field<'a, 'de, A> {
    map: &'a mut A,
    key: &'a str,
    ctx: Ctx<'a>,
    de: PhantomData<&'de ()>,
}

impl<'a, 'de, A: MapAccess<'de>> Field<'a, 'de, A> {
    /// The member's key, as written.
    pub(super) fn key(&self) -> &'a str {
        self.key
    }

    /// What nested seeds carry.
    pub(super) fn ctx(&self) -> Ctx<'a> {
        self.ctx
    }

    /// The member's value read with `seed`; `None` for JSON `null` ("not
    /// set"). An error is noted as coming from inside this member.
    pub(super) fn value<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        let (key, ctx) = (self.key, self.ctx);
        self.map
            .next_value_seed(Nullable(seed))
            .map_err(|err| ctx.inside(key, err))
    }
}

/// Stores a field without presence (or a plain message field): the last
/// non-null value wins.
pub(super) fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// Stores a proto3 `optional` field, a oneof of one (`_` + its proto name):
/// given a second time, it is refused as prost-reflect refuses it.
pub(super) fn set_optional<T, E: Error>(
    slot: &mut Option<T>,
    value: Option<T>,
    oneof: &'static str,
) -> Result<(), E> {
    if value.is_some() {
        if slot.is_some() {
            return Err(E::custom(format_args!(
                "multiple fields provided for oneof '{oneof}'"
            )));
        }
        *slot = value;
    }
    Ok(())
}

/// A field value that may be `null` (not set).
struct Nullable<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nullable<S> {
    type Value = Option<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Nullable<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("option")
    }

    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(deserializer).map(Some)
    }
}

/// A message-typed value: a JSON object of its fields.
pub(super) struct MessageSeed<'a, M> {
    ctx: Ctx<'a>,
    message: PhantomData<M>,
}

impl<'a, M> MessageSeed<'a, M> {
    pub(super) fn new(ctx: Ctx<'a>) -> Self {
        Self {
            ctx,
            message: PhantomData,
        }
    }
}

impl<'de, M: Message> DeserializeSeed<'de> for MessageSeed<'_, M> {
    type Value = M;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<M, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, M: Message> Visitor<'de> for MessageSeed<'_, M> {
    type Value = M;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<M, A::Error> {
        let mut message = M::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let field = Field {
                map: &mut map,
                key: &key,
                ctx: self.ctx,
                de: PhantomData,
            };
            if !message.merge(field)? {
                return Err(A::Error::custom(format_args!(
                    "unrecognized field name '{key}'"
                )));
            }
        }
        Ok(message)
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: Error>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

/// A `map<string, V>` field: a JSON object whose values are read with
/// `value` (`null` is not a valid value). Read with `deserialize_any`, as
/// the reference does (it decides serde_json's error positions).
pub(super) struct MapSeed<'a, S> {
    value: S,
    ctx: Ctx<'a>,
}

impl<'a, S> MapSeed<'a, S> {
    pub(super) fn new(value: S, ctx: Ctx<'a>) -> Self {
        Self { value, ctx }
    }
}

impl<'de, S: DeserializeSeed<'de> + Copy> DeserializeSeed<'de> for MapSeed<'_, S> {
    type Value = BTreeMap<String, S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, S: DeserializeSeed<'de> + Copy> Visitor<'de> for MapSeed<'_, S> {
    type Value = BTreeMap<String, S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map
                .next_value_seed(self.value)
                .map_err(|err| self.ctx.inside(&key, err))?;
            out.insert(key, value);
        }
        Ok(out)
    }
}
