//! Redaction of the export copy of an event: Sourcegraph's three modes.
//!
//! Applied to the copy that goes to the export queue, never to the
//! `event_logs` row (which stays on the instance). Modes, strictest first:
//!
//! | Mode | Marketing tracking | Private metadata |
//! |---|---|---|
//! | [`RedactAllSensitive`](RedactMode::RedactAllSensitive) | cleared | cleared |
//! | [`RedactMarketingAndUnallowedPrivateMetadataKeys`](RedactMode::RedactMarketingAndUnallowedPrivateMetadataKeys) | cleared | top-level keys outside the allowlist entry deleted; non-string values of allowed keys replaced by an error string |
//! | [`RedactNothing`](RedactMode::RedactNothing) | kept | kept |
//!
//! [`select_mode`] chooses: dotcom mode → nothing; an allowlisted event type →
//! the key mode with that entry's keys; anything else → all sensitive.
//! Numeric metadata, user, feature flags, billing, interaction and source are
//! never redacted.

use prost_types::Value;
use prost_types::value::Kind;

use super::allowlist::Allowlist;
use crate::proto::telemetrygateway::v1::Event;

/// How much of an event to strip before export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RedactMode<'a> {
    /// Clear marketing tracking and all private metadata.
    RedactAllSensitive,
    /// Clear marketing tracking; keep only these top-level private-metadata
    /// keys, and only with string values.
    RedactMarketingAndUnallowedPrivateMetadataKeys {
        /// The allowlist entry's keys.
        allowed_keys: &'a [String],
    },
    /// Keep everything (Sourcegraph.com only).
    RedactNothing,
}

impl<'a> RedactMode<'a> {
    /// The allowed private-metadata keys of the key mode; `None` otherwise.
    pub fn allowed_keys(&self) -> Option<&'a [String]> {
        match self {
            RedactMode::RedactMarketingAndUnallowedPrivateMetadataKeys { allowed_keys } => {
                Some(allowed_keys)
            }
            RedactMode::RedactAllSensitive | RedactMode::RedactNothing => None,
        }
    }

    /// Sourcegraph's name for the mode (for logs and metrics labels).
    pub fn name(&self) -> &'static str {
        match self {
            RedactMode::RedactAllSensitive => "redactAllSensitive",
            RedactMode::RedactMarketingAndUnallowedPrivateMetadataKeys { .. } => {
                "redactMarketingAndUnallowedPrivateMetadataKeys"
            }
            RedactMode::RedactNothing => "redactNothing",
        }
    }
}

/// The mode for an event: `dotcom` (the instance is Sourcegraph.com) →
/// [`RedactMode::RedactNothing`]; allowlisted → the key mode with the
/// entry's keys; otherwise [`RedactMode::RedactAllSensitive`].
pub fn select_mode<'a>(allowlist: &'a Allowlist, event: &Event, dotcom: bool) -> RedactMode<'a> {
    if dotcom {
        return RedactMode::RedactNothing;
    }
    mode_for(allowlist.is_allowed(event), dotcom)
}

/// [`select_mode`] from the allowlist's answer for the event (its keys when
/// allowlisted), for callers that already asked it.
pub fn mode_for(allowed_keys: Option<&[String]>, dotcom: bool) -> RedactMode<'_> {
    match (dotcom, allowed_keys) {
        (true, _) => RedactMode::RedactNothing,
        (false, Some(allowed_keys)) => {
            RedactMode::RedactMarketingAndUnallowedPrivateMetadataKeys { allowed_keys }
        }
        (false, None) => RedactMode::RedactAllSensitive,
    }
}

/// Strips `event` as `mode` says. Absent parameters or private metadata are
/// fine.
pub fn redact(event: &mut Event, mode: RedactMode<'_>) {
    let allowed_keys = match mode {
        RedactMode::RedactNothing => return,
        RedactMode::RedactAllSensitive => {
            event.marketing_tracking = None;
            if let Some(parameters) = event.parameters.as_mut() {
                parameters.private_metadata = None;
            }
            return;
        }
        RedactMode::RedactMarketingAndUnallowedPrivateMetadataKeys { allowed_keys } => allowed_keys,
    };
    event.marketing_tracking = None;
    let Some(private) = event
        .parameters
        .as_mut()
        .and_then(|p| p.private_metadata.as_mut())
    else {
        return;
    };
    private
        .fields
        .retain(|key, _| allowed_keys.iter().any(|k| k == key));
    for value in private.fields.values_mut() {
        if !matches!(value.kind, Some(Kind::StringValue(_))) {
            // Nested or typed values could carry anything: only strings
            // leave the instance.
            *value = Value {
                kind: Some(Kind::StringValue(format!(
                    "ERROR: value of allowlisted key was not a string, got: {}",
                    go_kind_name(value.kind.as_ref())
                ))),
            };
        }
    }
}

/// Selects the mode for `event` and applies it; returns the mode used
/// (Sourcegraph's `EventTypes.Redact`).
pub fn redact_with<'a>(
    allowlist: &'a Allowlist,
    event: &mut Event,
    dotcom: bool,
) -> RedactMode<'a> {
    let mode = select_mode(allowlist, event, dotcom);
    redact(event, mode);
    mode
}

/// The Go type name (`%T`) of a `structpb.Value` kind, as it appears in
/// Sourcegraph's redaction error string.
fn go_kind_name(kind: Option<&Kind>) -> &'static str {
    match kind {
        None => "<nil>",
        Some(Kind::NullValue(_)) => "*structpb.Value_NullValue",
        Some(Kind::NumberValue(_)) => "*structpb.Value_NumberValue",
        Some(Kind::StringValue(_)) => "*structpb.Value_StringValue",
        Some(Kind::BoolValue(_)) => "*structpb.Value_BoolValue",
        Some(Kind::StructValue(_)) => "*structpb.Value_StructValue",
        Some(Kind::ListValue(_)) => "*structpb.Value_ListValue",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::allowlist::AllowlistEntry;
    use crate::event::json::struct_to_json;
    use crate::proto::telemetrygateway::v1::{EventMarketingTracking, EventParameters};
    use prost::Message;
    use prost_types::{ListValue, Struct};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn v(kind: Kind) -> Value {
        Value { kind: Some(kind) }
    }

    fn s(text: &str) -> Value {
        v(Kind::StringValue(text.into()))
    }

    fn private(fields: Vec<(&str, Value)>) -> Struct {
        Struct {
            fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }

    fn marketing() -> EventMarketingTracking {
        EventMarketingTracking {
            url: Some("https://sourcegraph.com/foo".into()),
            device_session_id: Some("device".into()),
            ..Default::default()
        }
    }

    /// Sourcegraph's `makeFullEvent`, in spirit: every redactable part set.
    fn full_event() -> Event {
        Event {
            id: "1".into(),
            feature: "exampleFeature".into(),
            action: "exampleAction".into(),
            parameters: Some(EventParameters {
                metadata: BTreeMap::from([("public".into(), 1.0)]),
                private_metadata: Some(private(vec![
                    ("testField", s("sensitive-but-allowed")),
                    ("notTestField", s("sensitive")),
                    ("boolTestField", v(Kind::BoolValue(true))),
                    (
                        "nestedTestField",
                        v(Kind::StructValue(private(vec![("inner", s("deep"))]))),
                    ),
                ])),
                ..Default::default()
            }),
            marketing_tracking: Some(marketing()),
            ..Default::default()
        }
    }

    fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|k| (*k).to_owned()).collect()
    }

    fn private_json(e: &Event) -> Option<serde_json::Value> {
        e.parameters
            .as_ref()?
            .private_metadata
            .as_ref()
            .map(struct_to_json)
    }

    #[test]
    fn redact_all_sensitive_strips_private_metadata_and_marketing() {
        let mut e = full_event();
        redact(&mut e, RedactMode::RedactAllSensitive);
        assert_eq!(e.marketing_tracking, None);
        assert_eq!(private_json(&e), None);
        // Numeric metadata is never redacted.
        assert_eq!(e.parameters.unwrap().metadata.get("public"), Some(&1.0));
    }

    #[test]
    fn redact_all_sensitive_on_an_empty_event_does_not_panic() {
        let mut e = Event::default();
        redact(&mut e, RedactMode::RedactAllSensitive);
        assert_eq!(e, Event::default());
    }

    #[test]
    fn key_mode_on_an_event_without_parameters_only_strips_marketing() {
        let allowed = keys(&["testField"]);
        let mode = RedactMode::RedactMarketingAndUnallowedPrivateMetadataKeys {
            allowed_keys: &allowed,
        };
        let mut e = Event {
            marketing_tracking: Some(marketing()),
            ..Default::default()
        };
        redact(&mut e, mode);
        assert_eq!(e, Event::default());

        let mut e = Event {
            parameters: Some(EventParameters::default()),
            ..Default::default()
        };
        redact(&mut e, mode);
        assert_eq!(private_json(&e), None);
    }

    #[test]
    fn key_mode_keeps_only_allowed_keys_and_strips_marketing() {
        let allowed = keys(&["testField"]);
        let mut e = full_event();
        redact(
            &mut e,
            RedactMode::RedactMarketingAndUnallowedPrivateMetadataKeys {
                allowed_keys: &allowed,
            },
        );
        assert_eq!(e.marketing_tracking, None);
        assert_eq!(
            private_json(&e),
            Some(json!({"testField": "sensitive-but-allowed"}))
        );
    }

    #[test]
    fn key_mode_replaces_non_string_allowed_values_with_the_go_type_name() {
        let allowed = keys(&["boolTestField", "nestedTestField"]);
        let mut e = full_event();
        redact(
            &mut e,
            RedactMode::RedactMarketingAndUnallowedPrivateMetadataKeys {
                allowed_keys: &allowed,
            },
        );
        assert_eq!(
            private_json(&e),
            Some(json!({
                "boolTestField": "ERROR: value of allowlisted key was not a string, got: *structpb.Value_BoolValue",
                "nestedTestField": "ERROR: value of allowlisted key was not a string, got: *structpb.Value_StructValue",
            }))
        );
    }

    #[test]
    fn key_mode_names_every_non_string_kind_like_go() {
        let allowed = keys(&["null", "number", "list", "unset"]);
        let mut e = Event {
            parameters: Some(EventParameters {
                private_metadata: Some(private(vec![
                    ("null", v(Kind::NullValue(0))),
                    ("number", v(Kind::NumberValue(1.5))),
                    ("list", v(Kind::ListValue(ListValue { values: vec![] }))),
                    ("unset", Value { kind: None }),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        };
        redact(
            &mut e,
            RedactMode::RedactMarketingAndUnallowedPrivateMetadataKeys {
                allowed_keys: &allowed,
            },
        );
        let prefix = "ERROR: value of allowlisted key was not a string, got: ";
        assert_eq!(
            private_json(&e),
            Some(json!({
                "null": format!("{prefix}*structpb.Value_NullValue"),
                "number": format!("{prefix}*structpb.Value_NumberValue"),
                "list": format!("{prefix}*structpb.Value_ListValue"),
                "unset": format!("{prefix}<nil>"),
            }))
        );
    }

    #[test]
    fn redact_nothing_keeps_everything() {
        let mut e = full_event();
        redact(&mut e, RedactMode::RedactNothing);
        assert_eq!(e, full_event());
    }

    fn example_allowlist() -> Allowlist {
        Allowlist::new(vec![AllowlistEntry::new(
            "example",
            "exampleAction",
            &["foo"],
        )])
        .unwrap()
    }

    fn with_foo_number(feature: &str, action: &str) -> Event {
        Event {
            feature: feature.into(),
            action: action.into(),
            parameters: Some(EventParameters {
                private_metadata: Some(private(vec![("foo", v(Kind::NumberValue(1.0)))])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn dotcom_mode_redacts_nothing_even_for_events_not_on_the_allowlist() {
        let list = example_allowlist();
        let mut e = Event {
            feature: "example".into(),
            action: "exampleAction".into(),
            ..Default::default()
        };
        assert_eq!(redact_with(&list, &mut e, true), RedactMode::RedactNothing);
        let mut e = with_foo_number("foobar", "exampleAction");
        assert_eq!(redact_with(&list, &mut e, true), RedactMode::RedactNothing);
        assert_eq!(private_json(&e), Some(json!({"foo": 1})));
    }

    #[test]
    fn allowlisted_event_gets_the_key_mode_with_its_entrys_keys() {
        let list = example_allowlist();
        let mut e = Event {
            feature: "example".into(),
            action: "exampleAction".into(),
            ..Default::default()
        };
        let mode = redact_with(&list, &mut e, false);
        assert_eq!(mode.allowed_keys(), Some(keys(&["foo"]).as_slice()));
        assert_eq!(
            mode.name(),
            "redactMarketingAndUnallowedPrivateMetadataKeys"
        );
    }

    #[test]
    fn event_not_on_the_allowlist_gets_all_sensitive_with_private_metadata_removed() {
        let list = example_allowlist();
        let mut e = with_foo_number("foobar", "exampleAction");
        assert_eq!(
            redact_with(&list, &mut e, false),
            RedactMode::RedactAllSensitive
        );
        assert_eq!(private_json(&e), None);
    }

    #[test]
    fn wildcard_action_entry_keeps_foo_and_drops_bar() {
        let list = Allowlist::new(vec![AllowlistEntry::new("example", "*", &["foo"])]).unwrap();
        let mut e = Event {
            feature: "example".into(),
            action: "randomAction".into(),
            parameters: Some(EventParameters {
                private_metadata: Some(private(vec![
                    ("foo", s("allowed")),
                    ("bar", s("redacted")),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mode = redact_with(&list, &mut e, false);
        assert_eq!(
            mode.name(),
            "redactMarketingAndUnallowedPrivateMetadataKeys"
        );
        assert_eq!(private_json(&e), Some(json!({"foo": "allowed"})));
    }

    #[test]
    fn queued_copy_is_redacted_while_the_original_is_untouched() {
        let list = Allowlist::builtin();
        let original = with_foo_number("foobar", "exampleAction");
        let mut queued = original.clone();
        redact_with(&list, &mut queued, false);
        assert_eq!(private_json(&queued), None);
        assert_eq!(private_json(&original), Some(json!({"foo": 1})));
    }

    mod proptests {
        use super::*;
        use proptest::prelude::*;

        fn leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                "[a-z]{0,8}".prop_map(|t| v(Kind::StringValue(t))),
                any::<f64>().prop_map(|n| v(Kind::NumberValue(n))),
                any::<bool>().prop_map(|b| v(Kind::BoolValue(b))),
                Just(v(Kind::NullValue(0))),
                Just(Value { kind: None }),
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            leaf().prop_recursive(3, 16, 4, |inner| {
                prop_oneof![
                    proptest::collection::btree_map("[a-zA-Z]{1,6}", inner.clone(), 0..4)
                        .prop_map(|fields| v(Kind::StructValue(Struct { fields }))),
                    proptest::collection::vec(inner, 0..4)
                        .prop_map(|values| v(Kind::ListValue(ListValue { values }))),
                ]
            })
        }

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("languageId".to_owned()),
                Just("otherCompletionProviders".to_owned()),
                Just("testField".to_owned()),
                Just("chatModel".to_owned()),
                Just("model".to_owned()),
                "[a-zA-Z.]{1,10}",
            ]
        }

        fn feature_action() -> impl Strategy<Value = (String, String)> {
            prop_oneof![
                Just(("exampleFeature".to_owned(), "exampleAction".to_owned())),
                "[a-z]{1,8}".prop_map(|a| ("cody.completion".to_owned(), a)),
                Just(("cody.hoverCommands".to_owned(), "visible".to_owned())),
                Just(("cody.hoverCommands".to_owned(), "clicked".to_owned())),
                "[a-z]{1,8}".prop_map(|a| ("blob.codeintel".to_owned(), a)),
                ("[a-z.]{1,12}", "[a-z]{1,8}"),
            ]
        }

        fn event() -> impl Strategy<Value = Event> {
            (
                feature_action(),
                proptest::option::of(proptest::option::of(proptest::collection::btree_map(
                    key(),
                    value(),
                    0..6,
                ))),
                any::<bool>(),
            )
                .prop_map(|((feature, action), params, with_marketing)| Event {
                    id: "id".into(),
                    feature,
                    action,
                    parameters: params.map(|private| EventParameters {
                        private_metadata: private.map(|fields| Struct { fields }),
                        ..Default::default()
                    }),
                    marketing_tracking: with_marketing.then(marketing),
                    ..Default::default()
                })
        }

        /// Which non-dotcom mode to apply: the selected one, or either
        /// non-dotcom mode forced (key mode with the event type's entry).
        #[derive(Clone, Copy, Debug)]
        enum Choice {
            Selected,
            ForceAllSensitive,
            ForceKeys,
        }

        proptest! {
            #[test]
            fn non_dotcom_redaction_leaves_no_marketing_and_only_allowed_string_keys(
                event in event(),
                choice in prop_oneof![
                    Just(Choice::Selected),
                    Just(Choice::ForceAllSensitive),
                    Just(Choice::ForceKeys),
                ],
            ) {
                let list = Allowlist::builtin();
                let entry_keys: &[String] = list.is_allowed(&event).unwrap_or(&[]);
                let mode = match choice {
                    Choice::Selected => select_mode(&list, &event, false),
                    Choice::ForceAllSensitive => RedactMode::RedactAllSensitive,
                    Choice::ForceKeys => RedactMode::RedactMarketingAndUnallowedPrivateMetadataKeys {
                        allowed_keys: entry_keys,
                    },
                };
                let mut redacted = event.clone();
                redact(&mut redacted, mode);

                // Check what would actually leave: the encoded bytes.
                let decoded = Event::decode(redacted.encode_to_vec().as_slice()).unwrap();
                prop_assert_eq!(&decoded.marketing_tracking, &None);
                let private = decoded.parameters.as_ref().and_then(|p| p.private_metadata.as_ref());
                if let Some(private) = private {
                    prop_assert!(!matches!(mode, RedactMode::RedactAllSensitive));
                    for (key, value) in &private.fields {
                        prop_assert!(entry_keys.contains(key), "key {} not allowed", key);
                        prop_assert!(
                            matches!(value.kind, Some(Kind::StringValue(_))),
                            "key {} has a non-string value", key
                        );
                    }
                }
                // Everything but marketing and private metadata is unchanged.
                let mut expected = event.clone();
                expected.marketing_tracking = None;
                if let Some(p) = expected.parameters.as_mut() {
                    p.private_metadata = None;
                }
                let mut actual = decoded.clone();
                if let Some(p) = actual.parameters.as_mut() {
                    p.private_metadata = None;
                }
                prop_assert_eq!(actual, expected);
            }
        }
    }
}
