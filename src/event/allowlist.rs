//! The sensitive-metadata allowlist: which event types may export which
//! top-level keys of their private metadata.
//!
//! Sourcegraph's rules (`sensitivemetadataallowlist`), kept exactly:
//!
//! - An entry is (feature, action, allowed keys). An entry whose action is
//!   [`WILDCARD_ACTION`] (`*`) covers every action of its feature.
//! - Lookup tries the exact feature/action pair first, then the feature-wide
//!   entry.
//! - The built-in entries are [`builtin_entries`]. Extra entries come from
//!   [`ADDITIONAL_ALLOWED_EVENT_TYPES_ENV`], parsed by
//!   [`parse_additional_allowed_event_types`]; Sourcegraph lists them before
//!   the built-ins, and when two entries share a key the later one wins, so a
//!   built-in entry cannot be overridden from the environment.
//! - Every entry needs a non-empty feature, action and at least one key (a
//!   non-empty one: Sourcegraph accepts `feature::action::` with an empty key,
//!   which could never match; we refuse it instead).
//!
//! Sourcegraph panics at startup on a bad environment value; here parsing
//! returns an [`AllowlistError`] with Sourcegraph's message, and the caller
//! decides (the CLI refuses to start).

use std::collections::HashMap;
use std::fmt;

use crate::proto::telemetrygateway::v1::Event;

/// The environment variable holding extra allowlist entries, in Sourcegraph's
/// format: comma-separated `feature::action::key1::key2...` items.
pub const ADDITIONAL_ALLOWED_EVENT_TYPES_ENV: &str =
    "SRC_TELEMETRY_SENSITIVEMETADATA_ADDITIONAL_ALLOWED_EVENT_TYPES";

/// The action of an entry that covers every action of its feature.
pub const WILDCARD_ACTION: &str = "*";

/// One allowlisted event type and the private-metadata keys it may export.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AllowlistEntry {
    /// The event feature, matched exactly (`cody.completion`).
    pub feature: String,
    /// The event action, matched exactly, or [`WILDCARD_ACTION`].
    pub action: String,
    /// Top-level private-metadata keys that may be exported (string values
    /// only; see [`crate::event::redact`](mod@crate::event::redact)).
    pub allowed_keys: Vec<String>,
}

impl AllowlistEntry {
    /// An entry from borrowed parts.
    pub fn new(feature: &str, action: &str, allowed_keys: &[&str]) -> AllowlistEntry {
        AllowlistEntry {
            feature: feature.to_owned(),
            action: action.to_owned(),
            allowed_keys: allowed_keys.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    /// Whether this entry covers every action of its feature.
    pub fn is_feature_wide(&self) -> bool {
        self.action == WILDCARD_ACTION
    }

    fn empty_part(&self) -> Option<EntryPart> {
        if self.feature.is_empty() {
            Some(EntryPart::Feature)
        } else if self.action.is_empty() {
            Some(EntryPart::Action)
        } else if self.allowed_keys.is_empty() || self.allowed_keys.iter().any(String::is_empty) {
            Some(EntryPart::Key)
        } else {
            None
        }
    }
}

/// The part of an allowlist entry that was found empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryPart {
    /// The feature.
    Feature,
    /// The action.
    Action,
    /// An allowed key (or the key list as a whole).
    Key,
}

impl fmt::Display for EntryPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryPart::Feature => "feature",
            EntryPart::Action => "action",
            EntryPart::Key => "allowlisted field",
        })
    }
}

/// Why the allowlist (or its environment value) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllowlistError {
    /// An item of the environment value has no `::` separator. Nothing
    /// starts; the operator fixes the item named.
    #[error(
        "cannot parse SRC_TELEMETRY_SENSITIVEMETADATA_ADDITIONAL_ALLOWED_EVENT_TYPES value {item:?}"
    )]
    Unparsable {
        /// The offending comma-separated item, as written.
        item: String,
    },
    /// An item of the environment value names a feature and action but no
    /// keys. Nothing starts; the operator adds the keys.
    #[error(
        "cannot parse SRC_TELEMETRY_SENSITIVEMETADATA_ADDITIONAL_ALLOWED_EVENT_TYPES value {item:?}, missing allowlisted fields"
    )]
    MissingAllowedKeys {
        /// The offending comma-separated item, as written.
        item: String,
    },
    /// An item of the environment value has an empty feature, action or
    /// key. Nothing starts; the operator fills it in.
    #[error(
        "cannot parse SRC_TELEMETRY_SENSITIVEMETADATA_ADDITIONAL_ALLOWED_EVENT_TYPES value {item:?}, empty {part}"
    )]
    EmptyPart {
        /// The offending comma-separated item, as written.
        item: String,
        /// Which part is empty.
        part: EntryPart,
    },
    /// An entry given in code has an empty feature, action or key: a bug
    /// in the caller, which fixes the entry.
    #[error("sensitive-metadata allowlist entry {feature:?}::{action:?} has an empty {part}")]
    InvalidEntry {
        /// The entry's feature.
        feature: String,
        /// The entry's action.
        action: String,
        /// Which part is empty.
        part: EntryPart,
    },
}

/// The built-in entries (Sourcegraph's newest list, in its order).
pub fn builtin_entries() -> Vec<AllowlistEntry> {
    vec![
        // Sourcegraph's example event, used by its tests.
        AllowlistEntry::new("exampleFeature", "exampleAction", &["testField"]),
        AllowlistEntry::new(
            "cody.completion",
            WILDCARD_ACTION,
            &["languageId", "otherCompletionProviders"],
        ),
        AllowlistEntry::new("cody.hoverCommands", "visible", &["languageId"]),
        AllowlistEntry::new("blob.codeintel", WILDCARD_ACTION, &["languageId"]),
        AllowlistEntry::new("cody.chat-question", "submitted", &["chatModel"]),
        AllowlistEntry::new("cody.chatResponse", WILDCARD_ACTION, &["chatModel"]),
        AllowlistEntry::new("cody.chatResponseNew", WILDCARD_ACTION, &["chatModel"]),
        AllowlistEntry::new("cody.command.doc", "executed", &["model"]),
        AllowlistEntry::new("cody.command.edit", "executed", &["model"]),
        AllowlistEntry::new("cody.command.fix", "executed", &["model"]),
        AllowlistEntry::new("cody.command.test", "executed", &["model"]),
    ]
}

/// Parses the value of [`ADDITIONAL_ALLOWED_EVENT_TYPES_ENV`].
///
/// Items are separated by `,` and parts by `::`, with no trimming (as in
/// Sourcegraph). An empty value means no extra entries.
pub fn parse_additional_allowed_event_types(
    raw: &str,
) -> Result<Vec<AllowlistEntry>, AllowlistError> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    raw.split(',').map(parse_item).collect()
}

fn parse_item(item: &str) -> Result<AllowlistEntry, AllowlistError> {
    let parts: Vec<&str> = item.split("::").collect();
    let (feature, action, keys) = match parts.as_slice() {
        [feature, action, keys @ ..] if !keys.is_empty() => (*feature, *action, keys),
        [_, _] => {
            return Err(AllowlistError::MissingAllowedKeys {
                item: item.to_owned(),
            });
        }
        _ => {
            return Err(AllowlistError::Unparsable {
                item: item.to_owned(),
            });
        }
    };
    let entry = AllowlistEntry::new(feature, action, keys);
    match entry.empty_part() {
        Some(part) => Err(AllowlistError::EmptyPart {
            item: item.to_owned(),
            part,
        }),
        None => Ok(entry),
    }
}

/// A validated allowlist with its lookup index.
#[derive(Clone, Debug)]
pub struct Allowlist {
    entries: Vec<AllowlistEntry>,
    /// feature → its entries (indexes into `entries`); lookups borrow the
    /// event's strings, no allocation per event.
    by_feature: HashMap<String, FeatureEntries>,
}

#[derive(Clone, Debug, Default)]
struct FeatureEntries {
    /// action → exact entry.
    exact: HashMap<String, usize>,
    /// The feature-wide (`*`) entry.
    wide: Option<usize>,
}

impl Allowlist {
    /// An allowlist of exactly these entries. When two entries share a
    /// feature/action (or are both feature-wide for one feature), the later
    /// one wins.
    pub fn new(entries: Vec<AllowlistEntry>) -> Result<Allowlist, AllowlistError> {
        if let Some((entry, part)) = entries
            .iter()
            .find_map(|e| e.empty_part().map(|part| (e, part)))
        {
            return Err(AllowlistError::InvalidEntry {
                feature: entry.feature.clone(),
                action: entry.action.clone(),
                part,
            });
        }
        Ok(Allowlist::index(entries))
    }

    /// The built-in entries only. (They are valid: a test checks it.)
    pub fn builtin() -> Allowlist {
        Allowlist::index(builtin_entries())
    }

    fn index(entries: Vec<AllowlistEntry>) -> Allowlist {
        let mut by_feature: HashMap<String, FeatureEntries> = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            let slot = by_feature.entry(entry.feature.clone()).or_default();
            if entry.is_feature_wide() {
                slot.wide = Some(i);
            } else {
                slot.exact.insert(entry.action.clone(), i);
            }
        }
        Allowlist {
            entries,
            by_feature,
        }
    }

    /// Extra entries followed by the built-ins, as Sourcegraph assembles
    /// them (so a built-in entry wins over an extra one with the same key).
    pub fn with_additional(additional: Vec<AllowlistEntry>) -> Result<Allowlist, AllowlistError> {
        let mut entries = additional;
        entries.extend(builtin_entries());
        Allowlist::new(entries)
    }

    /// The built-ins plus the entries parsed from a value of
    /// [`ADDITIONAL_ALLOWED_EVENT_TYPES_ENV`] (empty: built-ins only).
    pub fn from_env_value(raw: &str) -> Result<Allowlist, AllowlistError> {
        Allowlist::with_additional(parse_additional_allowed_event_types(raw)?)
    }

    /// Every entry, in the order given.
    pub fn entries(&self) -> &[AllowlistEntry] {
        &self.entries
    }

    /// The allowed keys for an event type, or `None` if it is not
    /// allowlisted: the exact feature/action entry first, then the
    /// feature-wide entry.
    pub fn allowed_keys(&self, feature: &str, action: &str) -> Option<&[String]> {
        let slot = self.by_feature.get(feature)?;
        let i = slot.exact.get(action).copied().or(slot.wide)?;
        self.entries.get(i).map(|e| e.allowed_keys.as_slice())
    }

    /// Sourcegraph's `IsAllowed`: the allowed keys for this event's type, or
    /// `None` if the event is not allowlisted.
    pub fn is_allowed(&self, event: &Event) -> Option<&[String]> {
        self.allowed_keys(&event.feature, &event.action)
    }
}

impl Default for Allowlist {
    fn default() -> Allowlist {
        Allowlist::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(feature: &str, action: &str) -> Event {
        Event {
            feature: feature.into(),
            action: action.into(),
            ..Default::default()
        }
    }

    fn keys<'a>(list: &'a Allowlist, feature: &str, action: &str) -> Option<Vec<&'a str>> {
        list.is_allowed(&event(feature, action))
            .map(|k| k.iter().map(String::as_str).collect())
    }

    #[test]
    fn example_event_is_allowed_with_test_field() {
        let list = Allowlist::builtin();
        assert_eq!(
            keys(&list, "exampleFeature", "exampleAction"),
            Some(vec!["testField"])
        );
    }

    #[test]
    fn unknown_event_is_not_allowed() {
        let list = Allowlist::builtin();
        assert_eq!(keys(&list, "disallowedFeature", "disallowedAction"), None);
    }

    #[test]
    fn cody_completion_is_allowed_for_any_action_through_the_wildcard_entry() {
        let list = Allowlist::builtin();
        assert_eq!(
            keys(&list, "cody.completion", "accepted"),
            Some(vec!["languageId", "otherCompletionProviders"])
        );
    }

    #[test]
    fn cody_hover_commands_visible_is_allowed_with_language_id_only() {
        let list = Allowlist::builtin();
        assert_eq!(
            keys(&list, "cody.hoverCommands", "visible"),
            Some(vec!["languageId"])
        );
        assert_eq!(keys(&list, "cody.hoverCommands", "clicked"), None);
    }

    #[test]
    fn builtin_entries_are_sourcegraphs_newest_list() {
        let got: Vec<(String, String, Vec<String>)> = builtin_entries()
            .into_iter()
            .map(|e| (e.feature, e.action, e.allowed_keys))
            .collect();
        let want = [
            ("exampleFeature", "exampleAction", vec!["testField"]),
            (
                "cody.completion",
                "*",
                vec!["languageId", "otherCompletionProviders"],
            ),
            ("cody.hoverCommands", "visible", vec!["languageId"]),
            ("blob.codeintel", "*", vec!["languageId"]),
            ("cody.chat-question", "submitted", vec!["chatModel"]),
            ("cody.chatResponse", "*", vec!["chatModel"]),
            ("cody.chatResponseNew", "*", vec!["chatModel"]),
            ("cody.command.doc", "executed", vec!["model"]),
            ("cody.command.edit", "executed", vec!["model"]),
            ("cody.command.fix", "executed", vec!["model"]),
            ("cody.command.test", "executed", vec!["model"]),
        ];
        let want: Vec<(String, String, Vec<String>)> = want
            .into_iter()
            .map(|(f, a, k)| {
                (
                    f.into(),
                    a.into(),
                    k.into_iter().map(String::from).collect(),
                )
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn builtin_entries_pass_validation() {
        Allowlist::new(builtin_entries()).unwrap();
    }

    #[test]
    fn exact_entry_is_preferred_over_the_feature_wide_entry() {
        let list = Allowlist::new(vec![
            AllowlistEntry::new("f", "*", &["wide"]),
            AllowlistEntry::new("f", "a", &["exact"]),
        ])
        .unwrap();
        assert_eq!(keys(&list, "f", "a"), Some(vec!["exact"]));
        assert_eq!(keys(&list, "f", "b"), Some(vec!["wide"]));
        assert_eq!(keys(&list, "g", "a"), None);
    }

    #[test]
    fn parsing_asdf_comma_foobar_fails_naming_the_first_item() {
        let err = parse_additional_allowed_event_types("asdf,foobar").unwrap_err();
        assert_eq!(
            err,
            AllowlistError::Unparsable {
                item: "asdf".into()
            }
        );
        assert_eq!(
            err.to_string(),
            r#"cannot parse SRC_TELEMETRY_SENSITIVEMETADATA_ADDITIONAL_ALLOWED_EVENT_TYPES value "asdf""#
        );
    }

    #[test]
    fn parsing_an_item_without_keys_fails_with_missing_allowlisted_fields() {
        let err = parse_additional_allowed_event_types("foo::bar").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"cannot parse SRC_TELEMETRY_SENSITIVEMETADATA_ADDITIONAL_ALLOWED_EVENT_TYPES value "foo::bar", missing allowlisted fields"#
        );
    }

    #[test]
    fn parsing_one_item_gives_one_type() {
        let got = parse_additional_allowed_event_types("foo::bar::field").unwrap();
        assert_eq!(got, vec![AllowlistEntry::new("foo", "bar", &["field"])]);
    }

    #[test]
    fn parsing_two_items_gives_two_types_including_a_wildcard_action() {
        let got = parse_additional_allowed_event_types("foo::bar::field::field2,baz.bar::*::field")
            .unwrap();
        assert_eq!(
            got,
            vec![
                AllowlistEntry::new("foo", "bar", &["field", "field2"]),
                AllowlistEntry::new("baz.bar", "*", &["field"]),
            ]
        );
    }

    #[test]
    fn parsing_an_empty_value_gives_no_entries() {
        assert_eq!(parse_additional_allowed_event_types("").unwrap(), vec![]);
        let list = Allowlist::from_env_value("").unwrap();
        assert_eq!(list.entries(), builtin_entries().as_slice());
    }

    #[test]
    fn parsing_empty_parts_fails_naming_the_item_and_the_part() {
        let cases = [
            ("::bar::k", EntryPart::Feature),
            ("foo::::k", EntryPart::Action),
            ("foo::bar::", EntryPart::Key),
            ("foo::bar::a::::b", EntryPart::Key),
        ];
        for (item, part) in cases {
            let err = parse_additional_allowed_event_types(item).unwrap_err();
            assert_eq!(
                err,
                AllowlistError::EmptyPart {
                    item: item.into(),
                    part
                },
                "{item}"
            );
            assert!(err.to_string().contains(&format!("{item:?}")), "{err}");
        }
        // A trailing comma leaves an empty item, refused as in Sourcegraph.
        assert_eq!(
            parse_additional_allowed_event_types("foo::bar::k,").unwrap_err(),
            AllowlistError::Unparsable { item: "".into() }
        );
    }

    #[test]
    fn additional_entries_from_the_environment_are_looked_up() {
        let list = Allowlist::from_env_value("foo::bar::field::field2,baz.bar::*::field").unwrap();
        assert_eq!(keys(&list, "foo", "bar"), Some(vec!["field", "field2"]));
        assert_eq!(keys(&list, "baz.bar", "anything"), Some(vec!["field"]));
        assert_eq!(
            keys(&list, "exampleFeature", "exampleAction"),
            Some(vec!["testField"])
        );
    }

    #[test]
    fn builtin_entries_win_over_additional_entries_with_the_same_key() {
        let list = Allowlist::from_env_value("cody.completion::*::secret").unwrap();
        assert_eq!(
            keys(&list, "cody.completion", "accepted"),
            Some(vec!["languageId", "otherCompletionProviders"])
        );
    }

    #[test]
    fn entries_given_in_code_are_validated() {
        let err = Allowlist::new(vec![AllowlistEntry::new("f", "a", &[])]).unwrap_err();
        assert_eq!(
            err,
            AllowlistError::InvalidEntry {
                feature: "f".into(),
                action: "a".into(),
                part: EntryPart::Key
            }
        );
        assert_eq!(
            err.to_string(),
            r#"sensitive-metadata allowlist entry "f"::"a" has an empty allowlisted field"#
        );
    }
}
