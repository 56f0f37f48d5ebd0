//! An event's `event_logs` row written straight into its stored form:
//! [`super::row::translate`] then [`super::codec::encode`] in one pass, with
//! nothing built in between.
//!
//! The record path encodes one row per event on the callers' threads. The
//! two-step form builds an [`EventLogRow`](super::EventLogRow) (a dozen
//! `String`s, two `serde_json::Value` trees, a `BTreeMap`), serializes it
//! and drops it; a profile of `serve` under gRPC load put that at ~22% of
//! the process's CPU. Here every field is written from the event as
//! borrowed text and the JSON columns are serialized from the protobuf
//! types ([`crate::event::json::JsonValue`]). The two-step form stays as
//! the reference: a property test checks both give the same bytes for any
//! event.

use prost_types::Value;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::codec::{put_json, put_opt_str, put_str, put_str_parts, put_varint, zigzag};
use super::row::{
    BACKEND_SOURCE, EXPORTABLE_EVENT_KEY, PRIVATE_EXPORTABLE_FIELDS_KEY, PRIVATE_EXPORTABLE_KEY,
    TRACE_ID_KEY, UNKNOWN_ANONYMOUS_USER, event_timestamp, go_parse_bool,
};
use crate::clock::UnixNanos;
use crate::event::json::{JsonValue, Number};
use crate::proto::telemetrygateway::v1::Event;

/// Writes the stored form of `event`'s row (all but its id) to `out`, as
/// `codec::encode(&translate(event, allowlisted_keys, server_version,
/// now))` would, and returns the row's timestamp text.
pub(crate) fn encode_event_row(
    event: &Event,
    allowlisted_keys: Option<&[String]>,
    server_version: &str,
    now: UnixNanos,
    out: &mut Vec<u8>,
) -> Result<String, serde_json::Error> {
    let user = event.user.as_ref();
    let user_id = user.and_then(|u| u.user_id).unwrap_or(0);
    let anonymous = user
        .and_then(|u| u.anonymous_user_id.as_deref())
        .unwrap_or("");
    let client = event.source.as_ref().and_then(|s| s.client.as_ref());
    let event_server_version = event
        .source
        .as_ref()
        .and_then(|s| s.server.as_ref())
        .map_or("", |s| s.version.as_str());
    let marketing = event.marketing_tracking.as_ref();
    let parameters = event.parameters.as_ref();
    let billing_category = parameters
        .and_then(|p| p.billing_metadata.as_ref())
        .map_or("", |b| b.category.as_str());
    let timestamp = event_timestamp(event, now);

    put_str_parts(out, &[&event.feature, ".", &event.action]);
    put_varint(out, zigzag(user_id));
    put_str(
        out,
        if user_id == 0 && anonymous.is_empty() {
            UNKNOWN_ANONYMOUS_USER
        } else {
            anonymous
        },
    );
    put_str(
        out,
        match client {
            Some(c) if !c.name.is_empty() => &c.name,
            _ => BACKEND_SOURCE,
        },
    );
    put_str(out, &timestamp);
    put_str(out, marketing.and_then(|m| m.url.as_deref()).unwrap_or(""));
    put_str(
        out,
        if event_server_version.is_empty() {
            server_version
        } else {
            event_server_version
        },
    );
    // client, cohort_id, first_source_url, last_source_url, referrer,
    // device_id, insert_id, billing_product_category, billing_event_id.
    match client {
        Some(c) => put_str_parts_opt(out, &[&c.name, ":", c.version.as_deref().unwrap_or("")]),
        None => put_opt_str(out, None),
    }
    for field in [
        marketing.and_then(|m| m.cohort_id.as_deref()),
        marketing.and_then(|m| m.first_source_url.as_deref()),
        marketing.and_then(|m| m.last_source_url.as_deref()),
        marketing.and_then(|m| m.referrer.as_deref()),
        marketing.and_then(|m| m.device_session_id.as_deref()),
    ] {
        put_opt_str(out, field.filter(|s| !s.is_empty()));
    }
    put_opt_str(out, None);
    put_opt_str(out, Some(billing_category).filter(|s| !s.is_empty()));
    put_opt_str(out, None);
    match &event.feature_flags {
        Some(f) => {
            put_varint(out, f.flags.len() as u64);
            for (k, v) in &f.flags {
                put_str(out, k);
                out.push(u8::from(go_parse_bool(v)));
            }
        }
        None => put_varint(out, 0),
    }

    let private = parameters
        .and_then(|p| p.private_metadata.as_ref())
        .filter(|s| !s.fields.is_empty());
    let mut argument = Object::with_capacity(private.map_or(0, |p| p.fields.len() + 2));
    if let Some(private) = private {
        for (k, v) in &private.fields {
            argument.insert(k, Entry::Value(v));
        }
        argument.insert(
            PRIVATE_EXPORTABLE_KEY,
            Entry::Bool(allowlisted_keys.is_some()),
        );
        argument.insert(
            PRIVATE_EXPORTABLE_FIELDS_KEY,
            Entry::Strings(allowlisted_keys),
        );
    }
    put_json(out, &argument.sorted())?;

    let mut public = Object::with_capacity(
        parameters.map_or(0, |p| p.metadata.len() + p.legacy_metadata.len()) + 2,
    );
    if let Some(p) = parameters {
        for (k, v) in &p.metadata {
            public.insert(k, Entry::Number(*v));
        }
        for (k, v) in &p.legacy_metadata {
            public.insert(k, Entry::Int(*v));
        }
    }
    public.insert(EXPORTABLE_EVENT_KEY, Entry::Bool(true));
    if let Some(interaction) = &event.interaction {
        public.insert(
            TRACE_ID_KEY,
            Entry::Str(interaction.trace_id.as_deref().unwrap_or("")),
        );
    }
    put_json(out, &public.sorted())?;
    Ok(timestamp)
}

/// An `opt str` field holding `parts` joined.
fn put_str_parts_opt(out: &mut Vec<u8>, parts: &[&str]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    put_varint(out, len as u64 + 1);
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
}

/// A value of a row's JSON object, borrowed from the event.
#[derive(Clone, Copy, Debug)]
enum Entry<'a> {
    Number(f64),
    Int(i64),
    Bool(bool),
    Str(&'a str),
    Value(&'a Value),
    /// An array of strings, or null.
    Strings(Option<&'a [String]>),
}

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Entry::Number(n) => Number(n).serialize(s),
            Entry::Int(i) => s.serialize_i64(i),
            Entry::Bool(b) => s.serialize_bool(b),
            Entry::Str(v) => s.serialize_str(v),
            Entry::Value(v) => JsonValue(v).serialize(s),
            Entry::Strings(None) => s.serialize_unit(),
            Entry::Strings(Some(keys)) => {
                let mut seq = s.serialize_seq(Some(keys.len()))?;
                for k in keys {
                    seq.serialize_element(k)?;
                }
                seq.end()
            }
        }
    }
}

/// A JSON object built as `serde_json::Map` is: a key inserted again
/// replaces its value, and the keys are written sorted (the map is a
/// `BTreeMap`).
#[derive(Debug, Default)]
struct Object<'a>(Vec<(&'a str, Entry<'a>)>);

impl<'a> Object<'a> {
    fn with_capacity(n: usize) -> Object<'a> {
        Object(Vec::with_capacity(n))
    }

    fn insert(&mut self, key: &'a str, value: Entry<'a>) {
        self.0.push((key, value));
    }

    /// Sorted by key, the last value of each key kept.
    fn sorted(mut self) -> Object<'a> {
        // Stable: the entries of one key stay in insertion order, and the
        // last of each run of equal keys is the one kept.
        self.0.sort_by(|a, b| a.0.cmp(b.0));
        let mut keep = 0;
        for i in 0..self.0.len() {
            let next_same = matches!(
                (self.0.get(i), self.0.get(i + 1)),
                (Some(a), Some(b)) if a.0 == b.0
            );
            if !next_same {
                self.0.swap(keep, i);
                keep += 1;
            }
        }
        self.0.truncate(keep);
        self
    }
}

impl Serialize for Object<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::event::Allowlist;
    use crate::event_logs::{codec, row::translate};

    fn both(event: &Event, keys: Option<&[String]>, now: UnixNanos) -> (Vec<u8>, Vec<u8>) {
        let row = translate(event, keys, "6.0.0", now);
        let mut reference = Vec::new();
        codec::encode(&row, &mut reference).unwrap();
        let mut direct = Vec::new();
        let ts = encode_event_row(event, keys, "6.0.0", now, &mut direct).unwrap();
        assert_eq!(ts, row.timestamp);
        (direct, reference)
    }

    #[test]
    fn the_benchmarks_event_encodes_as_the_two_step_form_does() {
        let e = crate::protojson::tests::full_event();
        let list = Allowlist::builtin();
        let (direct, reference) = both(
            &e,
            list.is_allowed(&e),
            UnixNanos(1_700_000_000_000_000_000),
        );
        assert_eq!(direct, reference);
    }

    #[test]
    fn keys_given_twice_keep_the_last_value_as_the_map_does() {
        use crate::proto::telemetrygateway::v1::{EventInteraction, EventParameters};
        use prost_types::{Struct, value::Kind};
        let text = |s: &str| Value {
            kind: Some(Kind::StringValue(s.into())),
        };
        let e = Event {
            id: "e".into(),
            parameters: Some(EventParameters {
                metadata: [
                    (EXPORTABLE_EVENT_KEY.to_owned(), 5.0),
                    ("k".to_owned(), 1.5),
                ]
                .into(),
                legacy_metadata: [("k".to_owned(), 7), (TRACE_ID_KEY.to_owned(), 9)].into(),
                private_metadata: Some(Struct {
                    fields: [
                        (PRIVATE_EXPORTABLE_KEY.to_owned(), text("x")),
                        (PRIVATE_EXPORTABLE_FIELDS_KEY.to_owned(), text("y")),
                        ("a".to_owned(), text("z")),
                    ]
                    .into(),
                }),
                ..Default::default()
            }),
            interaction: Some(EventInteraction::default()),
            ..Default::default()
        };
        for keys in [None, Some(&["a".to_owned()][..])] {
            let (direct, reference) = both(&e, keys, UnixNanos(0));
            assert_eq!(direct, reference);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_event_encodes_as_the_two_step_form_does(
            event in crate::proto::arb::event(),
            keys in prop::option::of(prop::collection::vec(crate::proto::arb::text(), 0..3)),
            now in 0i64..4_000_000_000_000_000_000,
        ) {
            let (direct, reference) = both(&event, keys.as_deref(), UnixNanos(now));
            prop_assert_eq!(direct, reference);
        }
    }
}
