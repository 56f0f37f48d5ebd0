//! The typed parser checked against the reference (prost-reflect): on
//! rendered events, on structured mutations of them (field name variants,
//! integers as strings or numbers, nulls, unknown and duplicated fields,
//! wrong types, odd numbers and timestamps, deep nesting) and on random
//! byte edits, both must accept or both refuse; when both accept, the
//! events encode to the same bytes (and print the same, so `-0.0` and NaN
//! count); when both refuse, with the same error text. The one allowed
//! difference: `privateMetadata` too deep to decode, which the typed
//! parser refuses as soon as it sees it, with its own words (see
//! `structs.rs`), where the reference refuses it after parsing the rest.

use proptest::prelude::*;
use prost::Message as _;

use crate::proto::telemetrygateway::v1::Event;
use crate::protojson::tests::arb_event;
use crate::protojson::{
    ProtojsonError, parse_event, parse_event_reference, parse_event_value,
    parse_event_value_reference, render_event,
};

/// What a parser made of an input, in comparable form.
#[derive(Debug, PartialEq)]
enum Outcome {
    Event { bytes: Vec<u8>, debug: String },
    Refused(String),
}

fn outcome(result: Result<Event, ProtojsonError>) -> Outcome {
    match result {
        Ok(event) => Outcome::Event {
            bytes: event.encode_to_vec(),
            debug: format!("{event:?}"),
        },
        Err(err) => Outcome::Refused(err.to_string()),
    }
}

fn is_typed_depth_error(message: &str) -> bool {
    message.contains("recursion limit reached: private_metadata is nested deeper")
}

fn same(typed: Outcome, reference: Outcome, input: &str) -> Result<(), TestCaseError> {
    match (&typed, &reference) {
        (Outcome::Refused(t), Outcome::Refused(_)) if is_typed_depth_error(t) => Ok(()),
        _ => {
            prop_assert_eq!(typed, reference, "input: {}", input);
            Ok(())
        }
    }
}

/// Both parsers on `text`, as bytes and, when it is well-formed JSON, as
/// an already parsed value.
fn check_text(text: &[u8]) -> Result<(), TestCaseError> {
    let shown = String::from_utf8_lossy(text);
    same(
        outcome(parse_event(text)),
        outcome(parse_event_reference(text)),
        &shown,
    )?;
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(text) {
        same(
            outcome(parse_event_value(&value)),
            outcome(parse_event_value_reference(&value)),
            &shown,
        )?;
    }
    Ok(())
}

// ---- a JSON tree that keeps member order, duplicates and number text ----

#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    /// Written as is (may be any text, valid JSON or not).
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

fn from_value(value: &serde_json::Value) -> J {
    use serde_json::Value as V;
    match value {
        V::Null => J::Null,
        V::Bool(b) => J::Bool(*b),
        V::Number(n) => J::Num(n.to_string()),
        V::String(s) => J::Str(s.clone()),
        V::Array(items) => J::Arr(items.iter().map(from_value).collect()),
        V::Object(members) => J::Obj(
            members
                .iter()
                .map(|(k, v)| (k.clone(), from_value(v)))
                .collect(),
        ),
    }
}

fn write(j: &J, out: &mut String, pretty: bool) {
    let quote = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    match j {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Num(n) => out.push_str(n),
        J::Str(s) => out.push_str(&quote(s)),
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out, pretty);
            }
            out.push(']');
        }
        J::Obj(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if pretty {
                    out.push_str("\n  ");
                }
                out.push_str(&quote(k));
                out.push_str(if pretty { ": " } else { ":" });
                write(v, out, pretty);
            }
            if pretty {
                out.push('\n');
            }
            out.push('}');
        }
    }
}

/// Which nodes a mutation picks from.
#[derive(Clone, Copy)]
enum Nodes {
    Any,
    Objects,
    /// Scalars: null, booleans, numbers, strings.
    Leaves,
}

impl Nodes {
    fn has(self, j: &J) -> bool {
        match self {
            Nodes::Any => true,
            Nodes::Objects => matches!(j, J::Obj(_)),
            Nodes::Leaves => !matches!(j, J::Obj(_) | J::Arr(_)),
        }
    }
}

/// Nodes of a kind, in pre-order.
fn count(j: &J, nodes: Nodes) -> usize {
    usize::from(nodes.has(j))
        + match j {
            J::Arr(items) => items.iter().map(|i| count(i, nodes)).sum(),
            J::Obj(members) => members.iter().map(|(_, v)| count(v, nodes)).sum(),
            _ => 0,
        }
}

/// Applies `f` to the `n`th node of a kind in pre-order.
fn at(j: &mut J, n: &mut usize, nodes: Nodes, f: &mut dyn FnMut(&mut J)) -> bool {
    if nodes.has(j) {
        if *n == 0 {
            f(j);
            return true;
        }
        *n -= 1;
    }
    match j {
        J::Arr(items) => items.iter_mut().any(|i| at(i, n, nodes, f)),
        J::Obj(members) => members.iter_mut().any(|(_, v)| at(v, n, nodes, f)),
        _ => false,
    }
}

// ---- mutations ----

/// Every field name of every message in an `Event`, both forms, and some
/// near misses.
const KEYS: &[&str] = &[
    "id",
    "timestamp",
    "feature",
    "action",
    "source",
    "parameters",
    "user",
    "featureFlags",
    "feature_flags",
    "marketingTracking",
    "marketing_tracking",
    "interaction",
    "server",
    "client",
    "version",
    "name",
    "legacyMetadata",
    "legacy_metadata",
    "metadata",
    "privateMetadata",
    "private_metadata",
    "billingMetadata",
    "billing_metadata",
    "product",
    "category",
    "userId",
    "user_id",
    "anonymousUserId",
    "anonymous_user_id",
    "samsExternalId",
    "sams_external_id",
    "flags",
    "url",
    "firstSourceUrl",
    "first_source_url",
    "cohortId",
    "cohort_id",
    "referrer",
    "lastSourceUrl",
    "last_source_url",
    "deviceSessionId",
    "device_session_id",
    "sessionReferrer",
    "session_referrer",
    "sessionFirstUrl",
    "session_first_url",
    "traceId",
    "trace_id",
    "interactionId",
    "interaction_id",
    "geolocation",
    "countryCode",
    "country_code",
    // near misses
    "Feature",
    "USERID",
    "userID",
    "feature-flags",
    "featureflags",
    "",
    "@type",
    "odd key",
];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-0.0",
    "1",
    "7",
    "1.5",
    "1e2",
    "1E2",
    "-1",
    "0.1",
    "-1.5e-7",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "9223372036854775808.0",
    "-9223372036854775808.0",
    "9223372036854775807.0",
    "1e19",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234567890",
    "1e400",
    "01",
    "+1",
    "1.",
];

const STRINGS: &[&str] = &[
    "",
    "0",
    "-0",
    "+5",
    "5",
    " 5",
    "5 ",
    "1.5",
    "1e2",
    "0x10",
    "2147483648",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "-inf",
    "infinity",
    "1e400",
    "true",
    "NULL_VALUE",
    "2023-02-24T14:48:30Z",
    "2023-02-24T15:48:30.5+01:00",
    "2023-02-24T14:48:30.1234567891Z",
    "2023-02-24T14:48:30.000000001-00:00",
    "0001-01-01T00:00:00Z",
    "0000-12-31T23:59:59Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
    "2023-02-30T00:00:00Z",
    "2023-02-24T24:00:00Z",
    "2023-02-24T14:48:60Z",
    "1972-06-30T23:59:60Z",
    "2023-02-24t14:48:30Z",
    "2023-02-24T14:48:30z",
    "2023-02-24 14:48:30Z",
    "2023-02-24T14:48:30.Z",
    "2023-02-24T14:48:30+0100",
    "2023-02-24T14:48:30+01",
    "2023-02-24T14:48:30+24:00",
    "2023-02-24T14:48:30Zx",
    "2023-02-24",
    "yesterday",
    "é",
];

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-zA-Z_]{1,8}",
    ]
}

fn arb_leaf() -> impl Strategy<Value = J> {
    prop_oneof![
        2 => Just(J::Null),
        1 => any::<bool>().prop_map(J::Bool),
        3 => prop::sample::select(NUMBERS).prop_map(|n| J::Num(n.to_owned())),
        1 => any::<i64>().prop_map(|n| J::Num(n.to_string())),
        4 => prop::sample::select(STRINGS).prop_map(|s| J::Str(s.to_owned())),
        1 => "[a-zA-Z0-9 .:+-]{0,12}".prop_map(J::Str),
    ]
}

fn arb_j() -> impl Strategy<Value = J> {
    arb_leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(J::Arr),
            prop::collection::vec((arb_key(), inner), 0..3).prop_map(J::Obj),
        ]
    })
}

/// How a key is changed.
#[derive(Debug, Clone)]
enum Rename {
    /// lowerCamelCase to snake_case (a proto name).
    Snake,
    /// snake_case to lowerCamelCase.
    Camel,
    Upper,
    Plural,
    Other(String),
}

fn rename(key: &str, how: &Rename) -> String {
    match how {
        Rename::Snake => {
            let mut out = String::new();
            for c in key.chars() {
                if c.is_ascii_uppercase() {
                    out.push('_');
                    out.push(c.to_ascii_lowercase());
                } else {
                    out.push(c);
                }
            }
            out
        }
        Rename::Camel => {
            let mut out = String::new();
            let mut upper = false;
            for c in key.chars() {
                if c == '_' {
                    upper = true;
                } else if upper {
                    out.push(c.to_ascii_uppercase());
                    upper = false;
                } else {
                    out.push(c);
                }
            }
            out
        }
        Rename::Upper => key.to_ascii_uppercase(),
        Rename::Plural => format!("{key}s"),
        Rename::Other(other) => other.clone(),
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Renames member `member` of object `object`.
    Rename {
        object: usize,
        member: usize,
        how: Rename,
    },
    /// Replaces any node.
    Replace {
        node: usize,
        with: J,
    },
    /// Replaces a scalar with another.
    Scalar {
        leaf: usize,
        with: J,
    },
    /// Appends a copy of a member (its value replaced, if `with`).
    Duplicate {
        object: usize,
        member: usize,
        with: Option<J>,
    },
    Remove {
        object: usize,
        member: usize,
    },
    Insert {
        object: usize,
        key: String,
        value: J,
    },
    /// A number written as a string, or a string as it is, unquoted.
    Requote {
        node: usize,
    },
    /// Replaces a node with nesting `depth` deep.
    Nest {
        node: usize,
        depth: usize,
        arrays: bool,
    },
}

fn arb_rename() -> impl Strategy<Value = Rename> {
    prop_oneof![
        3 => Just(Rename::Snake),
        2 => Just(Rename::Camel),
        1 => Just(Rename::Upper),
        1 => Just(Rename::Plural),
        2 => arb_key().prop_map(Rename::Other),
    ]
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    let i = || any::<usize>();
    prop_oneof![
        4 => (i(), i(), arb_rename())
            .prop_map(|(object, member, how)| Mutation::Rename { object, member, how }),
        3 => (i(), arb_j()).prop_map(|(node, with)| Mutation::Replace { node, with }),
        5 => (i(), arb_leaf()).prop_map(|(leaf, with)| Mutation::Scalar { leaf, with }),
        2 => (i(), i(), prop::option::of(arb_j()))
            .prop_map(|(object, member, with)| Mutation::Duplicate { object, member, with }),
        1 => (i(), i()).prop_map(|(object, member)| Mutation::Remove { object, member }),
        3 => (i(), arb_key(), arb_j())
            .prop_map(|(object, key, value)| Mutation::Insert { object, key, value }),
        3 => i().prop_map(|node| Mutation::Requote { node }),
        1 => (i(), 10..60usize, any::<bool>())
            .prop_map(|(node, depth, arrays)| Mutation::Nest { node, depth, arrays }),
    ]
}

fn nest(depth: usize, arrays: bool) -> J {
    let mut j = J::Num("1".to_owned());
    for _ in 0..depth {
        j = if arrays {
            J::Arr(vec![j])
        } else {
            J::Obj(vec![("a".to_owned(), j)])
        };
    }
    j
}

fn apply(root: &mut J, mutation: &Mutation) {
    let (nodes, selector) = match mutation {
        Mutation::Rename { object, .. }
        | Mutation::Duplicate { object, .. }
        | Mutation::Remove { object, .. }
        | Mutation::Insert { object, .. } => (Nodes::Objects, *object),
        Mutation::Scalar { leaf, .. } | Mutation::Requote { node: leaf } => (Nodes::Leaves, *leaf),
        Mutation::Replace { node, .. } | Mutation::Nest { node, .. } => (Nodes::Any, *node),
    };
    let total = count(root, nodes);
    if total == 0 {
        return;
    }
    let mut n = selector % total;
    at(root, &mut n, nodes, &mut |j| match (mutation, j) {
        (Mutation::Rename { member, how, .. }, J::Obj(members)) if !members.is_empty() => {
            let len = members.len();
            let key = &mut members[member % len].0;
            *key = rename(key, how);
        }
        (Mutation::Duplicate { member, with, .. }, J::Obj(members)) if !members.is_empty() => {
            let len = members.len();
            let (key, value) = members[member % len].clone();
            members.push((key, with.clone().unwrap_or(value)));
        }
        (Mutation::Remove { member, .. }, J::Obj(members)) if !members.is_empty() => {
            let len = members.len();
            members.remove(member % len);
        }
        (Mutation::Insert { key, value, .. }, J::Obj(members)) => {
            members.push((key.clone(), value.clone()));
        }
        (Mutation::Replace { with, .. } | Mutation::Scalar { with, .. }, j) => *j = with.clone(),
        (Mutation::Requote { .. }, j) => {
            let requoted = match &*j {
                J::Num(n) => J::Str(n.clone()),
                J::Str(s) => J::Num(s.clone()),
                other => other.clone(),
            };
            *j = requoted;
        }
        (Mutation::Nest { depth, arrays, .. }, j) => *j = nest(*depth, *arrays),
        _ => {}
    });
}

// ---- byte edits ----

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize),
    Insert(usize, u8),
    Replace(usize, u8),
    /// Copies `len` bytes at the position right after themselves.
    Repeat(usize, usize),
}

const ALPHABET: &[u8] = b"{}[]:,\"\\ \n0123456789-+.eEnultrfasxZT_";

fn arb_edit() -> impl Strategy<Value = Edit> {
    let i = || any::<usize>();
    let byte = || prop::sample::select(ALPHABET);
    prop_oneof![
        i().prop_map(Edit::Delete),
        (i(), byte()).prop_map(|(at, b)| Edit::Insert(at, b)),
        (i(), byte()).prop_map(|(at, b)| Edit::Replace(at, b)),
        (i(), 1..24usize).prop_map(|(at, len)| Edit::Repeat(at, len)),
    ]
}

fn edit(text: &mut Vec<u8>, edit: &Edit) {
    let len = text.len();
    if len == 0 {
        return;
    }
    match *edit {
        Edit::Delete(at) => {
            text.remove(at % len);
        }
        Edit::Insert(at, b) => text.insert(at % (len + 1), b),
        Edit::Replace(at, b) => text[at % len] = b,
        Edit::Repeat(at, n) => {
            let start = at % len;
            let end = (start + n).min(len);
            let copy = text[start..end].to_vec();
            text.splice(end..end, copy);
        }
    }
}

/// Random nesting in `privateMetadata`: each level an object or an array,
/// with siblings, around prost's limit.
fn arb_deep() -> impl Strategy<Value = J> {
    prop::collection::vec((any::<bool>(), 0..3usize), 20..56).prop_map(|levels| {
        let mut j = J::Obj(vec![]);
        for (array, siblings) in levels {
            let mut items: Vec<J> = (0..siblings).map(|_| J::Num("1".to_owned())).collect();
            items.push(j);
            j = if array {
                J::Arr(items)
            } else {
                J::Obj(
                    items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (format!("k{i}"), v))
                        .collect(),
                )
            };
        }
        J::Obj(vec![(
            "parameters".to_owned(),
            J::Obj(vec![(
                "privateMetadata".to_owned(),
                J::Obj(vec![("m".to_owned(), j)]),
            )]),
        )])
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_rendered_event_parses_to_the_same_bytes_as_the_reference(event in arb_event()) {
        let text = render_event(&event).unwrap().to_string();
        let typed = parse_event(text.as_bytes()).unwrap();
        prop_assert_eq!(typed.encode_to_vec(), event.encode_to_vec());
        check_text(text.as_bytes())?;
    }

    #[test]
    fn mutated_event_json_is_accepted_or_refused_like_the_reference(
        event in arb_event(),
        mutations in prop::collection::vec(arb_mutation(), 1..5),
        pretty in any::<bool>(),
    ) {
        let mut j = from_value(&render_event(&event).unwrap());
        for mutation in &mutations {
            apply(&mut j, mutation);
        }
        let mut text = String::new();
        write(&j, &mut text, pretty);
        check_text(text.as_bytes())?;
    }

    #[test]
    fn randomly_edited_event_json_is_accepted_or_refused_like_the_reference(
        event in arb_event(),
        edits in prop::collection::vec(arb_edit(), 1..4),
    ) {
        let mut text = render_event(&event).unwrap().to_string().into_bytes();
        for e in &edits {
            edit(&mut text, e);
        }
        check_text(&text)?;
    }

    #[test]
    fn deeply_nested_private_metadata_is_refused_like_the_reference(j in arb_deep()) {
        let mut text = String::new();
        write(&j, &mut text, false);
        check_text(text.as_bytes())?;
    }
}

/// Every odd number and string, and each JSON type, in a field of each
/// kind (and under both names, where they differ).
#[test]
fn every_odd_value_in_every_kind_of_field_matches_the_reference() {
    let slots = [
        r#"{"id": X}"#,
        r#"{"timestamp": X}"#,
        r#"{"user": {"userId": X}}"#,
        r#"{"user": {"user_id": X}}"#,
        r#"{"user": {"anonymousUserId": X}}"#,
        r#"{"parameters": {"version": X}}"#,
        r#"{"parameters": {"legacyMetadata": {"k": X}}}"#,
        r#"{"parameters": {"legacy_metadata": X}}"#,
        r#"{"parameters": {"metadata": {"k": X}}}"#,
        r#"{"parameters": {"metadata": X}}"#,
        r#"{"parameters": {"privateMetadata": {"k": X}}}"#,
        r#"{"parameters": {"private_metadata": X}}"#,
        r#"{"parameters": {"billingMetadata": X}}"#,
        r#"{"featureFlags": {"flags": {"k": X}}}"#,
        r#"{"feature_flags": X}"#,
        r#"{"source": {"server": X}}"#,
        r#"{"source": {"client": {"version": X}}}"#,
        r#"{"interaction": {"geolocation": X}}"#,
        r#"{"marketingTracking": {"cohort_id": X}}"#,
        r#"{"user": {"userId": "1", "userId": X}}"#,
        r#"{"parameters": {"version": 1, "version": X}}"#,
        r"X",
    ];
    let mut values: Vec<String> = NUMBERS.iter().map(|n| (*n).to_owned()).collect();
    values.extend(
        STRINGS
            .iter()
            .map(|s| serde_json::Value::from(*s).to_string()),
    );
    values.extend(
        [
            "null",
            "true",
            "false",
            "{}",
            "[]",
            "[1]",
            r#"{"a": 1}"#,
            r#""\u0041""#,
        ]
        .map(str::to_owned),
    );
    for slot in slots {
        for value in &values {
            let text = slot.replace('X', value);
            if let Err(err) = check_text(text.as_bytes()) {
                panic!("{err}");
            }
        }
    }
}
