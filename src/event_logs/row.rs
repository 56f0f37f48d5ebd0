//! One `event_logs` row, and the translation from a telemetry event.
//!
//! The mapping is Sourcegraph's tee store's (`toEventLogs`) plus what its
//! bulk insert adds, so a row here is what Sourcegraph would have stored:
//!
//! | Column | From the event |
//! |---|---|
//! | `name` | `feature.action`, dot-joined (`.` for an empty event) |
//! | `timestamp` | the event timestamp, else `now`; RFC 3339 UTC (below) |
//! | `user_id` | `user.user_id`, 0 when absent |
//! | `anonymous_user_id` | `user.anonymous_user_id`; `unknown` when neither id is set |
//! | `public_argument` | numeric metadata, legacy int64 metadata merged in (legacy wins on a shared key, as the gateway's migration does), `"telemetry.event.exportable": true`, and `"interaction.traceID"` (empty string if unset) when `interaction` is present |
//! | `argument` | private metadata as an object plus `"telemetry.privateMetadata.exportable"` and `"telemetry.privateMetadata.exportableFields"` (the allowlisted keys, or `null`); `{}` when private metadata is absent or empty |
//! | `source` | `source.client.name`, else `BACKEND` |
//! | `client` | `name:version` when `source.client` is present, else null |
//! | `version` | `source.server.version`, else the running server's version |
//! | `url` | `marketing_tracking.url`, else `""` |
//! | `cohort_id`, `first_source_url`, `last_source_url`, `referrer`, `device_id` | the marketing fields, null when empty; `device_id` ← `device_session_id` |
//! | `feature_flags` | the flags parsed as Go's `strconv.ParseBool` does (anything else is `false`) |
//! | `billing_product_category` | `parameters.billing_metadata.category`, null when empty |
//! | `billing_event_id`, `insert_id` | null |
//! | `event_id` | the event id (ours: the dedup key of the mirror) |
//!
//! Decisions where Sourcegraph's two steps differ or do not apply:
//!
//! - `argument`: Sourcegraph's translator returns NULL for empty private
//!   metadata and its insert stores `{}`; the row holds `{}` directly.
//! - `version`: Sourcegraph's translator takes `source.server.version` but
//!   its insert writes the running server's version (the same instance, so
//!   the same string). Beside an instance, the event's own server version is
//!   the instance's; `server_version` (ours) is only the fallback that keeps
//!   the column non-empty, as the table requires.
//! - `url` is kept as sent: Sourcegraph's insert drops URLs outside the
//!   instance's external URL, which a sidecar does not know.
//! - `device_id`/`insert_id`: Sourcegraph's insert fills empty ones with a
//!   random UUID; translation stays deterministic and leaves them null.
//! - `timestamp` is an RFC 3339 UTC string as Go's `time.Time` renders it in
//!   JSON (fraction only when non-zero, trailing zeros trimmed:
//!   `2022-11-02T01:00:00Z`, `...:00.5Z`); its first ten characters are the
//!   UTC day. Chosen over Unix nanos so rows read like Sourcegraph's.
//! - Non-finite numbers become `null` instead of replacing the whole
//!   argument with `{"marshal.error": ...}` as Go's JSON encoder would.
//! - Sourcegraph's insert-time extras (`sourcegraph_operator`,
//!   `interaction.trace_id` from the request's trace) depend on the request
//!   context and are not added here.

use std::collections::BTreeMap;

use prost_types::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::clock::UnixNanos;
use crate::event::json::{number_to_json, struct_to_json_map};
use crate::proto::telemetrygateway::v1::Event;

/// `source` of an event recorded without a client name.
pub const BACKEND_SOURCE: &str = "BACKEND";
/// `anonymous_user_id` of an event with neither user id nor anonymous id.
pub const UNKNOWN_ANONYMOUS_USER: &str = "unknown";
/// `public_argument` marker: the event came through the new telemetry.
pub const EXPORTABLE_EVENT_KEY: &str = "telemetry.event.exportable";
/// `public_argument` key of the interaction's trace id.
pub const TRACE_ID_KEY: &str = "interaction.traceID";
/// `argument` key: whether the event type is on the allowlist.
pub const PRIVATE_EXPORTABLE_KEY: &str = "telemetry.privateMetadata.exportable";
/// `argument` key: the allowlisted private-metadata keys, or null.
pub const PRIVATE_EXPORTABLE_FIELDS_KEY: &str = "telemetry.privateMetadata.exportableFields";

/// One row of the `event_logs` mirror. Field names are the table's column
/// names (plus `event_id`, ours).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLogRow {
    /// The telemetry event id: the mirror's dedup key.
    pub event_id: String,
    /// `feature.action`.
    pub name: String,
    /// Marketing URL, `""` when none.
    pub url: String,
    /// Instance user id, 0 when none (Sourcegraph's column is a 32-bit
    /// integer and its translator truncates; we keep all 64 bits).
    pub user_id: i64,
    /// Anonymous user id; `unknown` when neither id is set.
    pub anonymous_user_id: String,
    /// Client name, or `BACKEND`.
    pub source: String,
    /// Private metadata and the exportability markers (unredacted).
    pub argument: Json,
    /// Numeric metadata and the public markers.
    pub public_argument: Json,
    /// Version of the instance that recorded the event.
    pub version: String,
    /// Event time, RFC 3339 UTC (see the module doc).
    pub timestamp: String,
    /// Evaluated feature flags.
    pub feature_flags: BTreeMap<String, bool>,
    /// Marketing cohort id.
    pub cohort_id: Option<String>,
    /// Marketing first-source URL.
    pub first_source_url: Option<String>,
    /// Marketing last-source URL.
    pub last_source_url: Option<String>,
    /// Marketing referrer.
    pub referrer: Option<String>,
    /// Marketing device session id.
    pub device_id: Option<String>,
    /// Legacy insert id (never set by translation).
    pub insert_id: Option<String>,
    /// Billing category.
    pub billing_product_category: Option<String>,
    /// Legacy billing event id (no telemetry equivalent; always null).
    pub billing_event_id: Option<String>,
    /// `client_name:client_version`.
    pub client: Option<String>,
}

/// Translates an event into its `event_logs` row.
///
/// `allowlisted_keys` is the allowlist's answer for the event's type
/// ([`crate::event::Allowlist::is_allowed`]; not the redaction mode, which is
/// "nothing" on dotcom whatever the allowlist says). `server_version` is used
/// only when the event carries no server version; `now` only when it has no
/// timestamp.
pub fn translate(
    event: &Event,
    allowlisted_keys: Option<&[String]>,
    server_version: &str,
    now: UnixNanos,
) -> EventLogRow {
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
    let billing_category = event
        .parameters
        .as_ref()
        .and_then(|p| p.billing_metadata.as_ref())
        .map_or("", |b| b.category.as_str());

    EventLogRow {
        event_id: event.id.clone(),
        name: format!("{}.{}", event.feature, event.action),
        url: marketing.and_then(|m| m.url.clone()).unwrap_or_default(),
        user_id,
        anonymous_user_id: if user_id == 0 && anonymous.is_empty() {
            UNKNOWN_ANONYMOUS_USER.to_owned()
        } else {
            anonymous.to_owned()
        },
        source: match client {
            Some(c) if !c.name.is_empty() => c.name.clone(),
            _ => BACKEND_SOURCE.to_owned(),
        },
        argument: argument(event, allowlisted_keys),
        public_argument: public_argument(event),
        version: if event_server_version.is_empty() {
            server_version.to_owned()
        } else {
            event_server_version.to_owned()
        },
        timestamp: event_timestamp(event, now),
        feature_flags: event
            .feature_flags
            .as_ref()
            .map(|f| {
                f.flags
                    .iter()
                    .map(|(k, v)| (k.clone(), go_parse_bool(v)))
                    .collect()
            })
            .unwrap_or_default(),
        cohort_id: non_empty(marketing.and_then(|m| m.cohort_id.as_deref())),
        first_source_url: non_empty(marketing.and_then(|m| m.first_source_url.as_deref())),
        last_source_url: non_empty(marketing.and_then(|m| m.last_source_url.as_deref())),
        referrer: non_empty(marketing.and_then(|m| m.referrer.as_deref())),
        device_id: non_empty(marketing.and_then(|m| m.device_session_id.as_deref())),
        insert_id: None,
        billing_product_category: non_empty(Some(billing_category)),
        billing_event_id: None,
        client: client.map(|c| format!("{}:{}", c.name, c.version.as_deref().unwrap_or(""))),
    }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

fn public_argument(event: &Event) -> Json {
    let mut out = Map::new();
    if let Some(p) = &event.parameters {
        for (k, v) in &p.metadata {
            out.insert(k.clone(), number_to_json(*v));
        }
        for (k, v) in &p.legacy_metadata {
            out.insert(k.clone(), Json::from(*v));
        }
    }
    out.insert(EXPORTABLE_EVENT_KEY.to_owned(), Json::Bool(true));
    if let Some(interaction) = &event.interaction {
        out.insert(
            TRACE_ID_KEY.to_owned(),
            Json::String(interaction.trace_id.clone().unwrap_or_default()),
        );
    }
    Json::Object(out)
}

fn argument(event: &Event, allowlisted_keys: Option<&[String]>) -> Json {
    let private = event
        .parameters
        .as_ref()
        .and_then(|p| p.private_metadata.as_ref())
        .filter(|s| !s.fields.is_empty());
    let Some(private) = private else {
        return Json::Object(Map::new());
    };
    let mut out = struct_to_json_map(private);
    out.insert(
        PRIVATE_EXPORTABLE_KEY.to_owned(),
        Json::Bool(allowlisted_keys.is_some()),
    );
    out.insert(
        PRIVATE_EXPORTABLE_FIELDS_KEY.to_owned(),
        allowlisted_keys.map_or(Json::Null, |keys| {
            Json::Array(keys.iter().cloned().map(Json::String).collect())
        }),
    );
    Json::Object(out)
}

/// The row's `timestamp`: the event's, else `now`.
pub(crate) fn event_timestamp(event: &Event, now: UnixNanos) -> String {
    match &event.timestamp {
        Some(ts) => format_rfc3339(ts),
        None => {
            let (seconds, nanos) = now.to_seconds_nanos();
            format_rfc3339(&Timestamp { seconds, nanos })
        }
    }
}

/// Go's `strconv.ParseBool`, with its error mapped to `false`.
pub(crate) fn go_parse_bool(s: &str) -> bool {
    matches!(s, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

/// RFC 3339 in UTC as Go renders a `time.Time` in JSON
/// ([`crate::timestamp::format_go`]): nanosecond precision with trailing
/// zeros (and an all-zero fraction) dropped. Out-of-range nanos are carried
/// into the seconds rather than refused.
fn format_rfc3339(ts: &Timestamp) -> String {
    crate::timestamp::format_go(ts.seconds, i64::from(ts.nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Allowlist;
    use crate::proto::telemetrygateway::v1::{
        EventBillingMetadata, EventFeatureFlags, EventInteraction, EventMarketingTracking,
        EventParameters, EventSource, EventUser, event_source,
    };
    use prost_types::value::Kind;
    use prost_types::{Struct, Value};
    use serde_json::json;

    /// 2022-11-03T02:00:00Z: the injected "now" of Sourcegraph's tests.
    const NOW: UnixNanos = UnixNanos(1_667_440_800_000_000_000);
    /// 2022-11-02T01:00:00Z: the event time of Sourcegraph's tests.
    const EVENT_SECONDS: i64 = 1_667_350_800;
    /// Our fallback server version in these tests (distinct from `dev`, so
    /// the goldens show which one was used).
    const RUNNING: &str = "6.0.0";

    fn row_json(event: &Event) -> Json {
        let list = Allowlist::builtin();
        let row = translate(event, list.is_allowed(event), RUNNING, NOW);
        serde_json::to_value(row).unwrap()
    }

    fn code_search() -> Event {
        Event {
            id: "1".into(),
            timestamp: Some(Timestamp {
                seconds: EVENT_SECONDS,
                nanos: 0,
            }),
            feature: "CodeSearch".into(),
            action: "Search".into(),
            ..Default::default()
        }
    }

    fn user(user_id: Option<i64>, anonymous: Option<&str>) -> Option<EventUser> {
        Some(EventUser {
            user_id,
            anonymous_user_id: anonymous.map(str::to_owned),
            sams_external_id: None,
        })
    }

    /// Sourcegraph's "simple event": client, server, metadata, private
    /// metadata, billing, both user ids, a marketing URL.
    fn full_event() -> Event {
        Event {
            source: Some(EventSource {
                server: Some(event_source::Server {
                    version: "dev".into(),
                }),
                client: Some(event_source::Client {
                    name: "VSCODE".into(),
                    version: Some("1.2.3".into()),
                }),
            }),
            parameters: Some(EventParameters {
                metadata: [("public".to_owned(), 2.0)].into(),
                private_metadata: Some(Struct {
                    fields: [(
                        "private".to_owned(),
                        Value {
                            kind: Some(Kind::StringValue("sensitive-data".into())),
                        },
                    )]
                    .into(),
                }),
                billing_metadata: Some(EventBillingMetadata {
                    product: "product".into(),
                    category: "category".into(),
                }),
                ..Default::default()
            }),
            user: user(Some(1234), Some("anonymous")),
            marketing_tracking: Some(EventMarketingTracking {
                url: Some("sourcegraph.com/foobar".into()),
                ..Default::default()
            }),
            ..code_search()
        }
    }

    /// The row every golden starts from: an event with only id, time,
    /// feature and action.
    fn base_golden() -> Json {
        json!({
            "event_id": "1",
            "name": "CodeSearch.Search",
            "url": "",
            "user_id": 0,
            "anonymous_user_id": "unknown",
            "source": "BACKEND",
            "argument": {},
            "public_argument": {"telemetry.event.exportable": true},
            "version": RUNNING,
            "timestamp": "2022-11-02T01:00:00Z",
            "feature_flags": {},
            "cohort_id": null,
            "first_source_url": null,
            "last_source_url": null,
            "referrer": null,
            "device_id": null,
            "insert_id": null,
            "billing_product_category": null,
            "billing_event_id": null,
            "client": null
        })
    }

    fn patch(mut base: Json, changes: Json) -> Json {
        if let (Json::Object(base), Json::Object(changes)) = (&mut base, changes) {
            base.extend(changes);
        }
        base
    }

    #[test]
    fn empty_event_translates_to_dot_unknown_backend_at_now() {
        assert_eq!(
            row_json(&Event::default()),
            patch(
                base_golden(),
                json!({
                    "event_id": "",
                    "name": ".",
                    "timestamp": "2022-11-03T02:00:00Z"
                })
            )
        );
    }

    #[test]
    fn user_id_only_leaves_the_anonymous_id_empty() {
        let e = Event {
            user: user(Some(1234), None),
            ..code_search()
        };
        assert_eq!(
            row_json(&e),
            patch(
                base_golden(),
                json!({"user_id": 1234, "anonymous_user_id": ""})
            )
        );
    }

    #[test]
    fn anonymous_id_only_keeps_user_id_zero() {
        let e = Event {
            user: user(None, Some("anonymous")),
            ..code_search()
        };
        assert_eq!(
            row_json(&e),
            patch(base_golden(), json!({"anonymous_user_id": "anonymous"}))
        );
    }

    #[test]
    fn both_user_ids_are_kept() {
        let e = Event {
            user: user(Some(1234), Some("anonymous")),
            ..code_search()
        };
        assert_eq!(
            row_json(&e),
            patch(
                base_golden(),
                json!({"user_id": 1234, "anonymous_user_id": "anonymous"})
            )
        );
    }

    /// Section (e)'s golden example.
    fn full_golden() -> Json {
        patch(
            base_golden(),
            json!({
                "url": "sourcegraph.com/foobar",
                "user_id": 1234,
                "anonymous_user_id": "anonymous",
                "argument": {
                    "private": "sensitive-data",
                    "telemetry.privateMetadata.exportable": false,
                    "telemetry.privateMetadata.exportableFields": null
                },
                "public_argument": {
                    "public": 2,
                    "telemetry.event.exportable": true
                },
                "source": "VSCODE",
                "version": "dev",
                "client": "VSCODE:1.2.3",
                "billing_product_category": "category"
            }),
        )
    }

    #[test]
    fn full_code_search_event_matches_sourcegraphs_golden() {
        assert_eq!(row_json(&full_event()), full_golden());
    }

    #[test]
    fn full_event_with_trace_id_adds_it_to_the_public_argument() {
        let e = Event {
            interaction: Some(EventInteraction {
                trace_id: Some("01020304050607080102040810203040".into()),
                ..Default::default()
            }),
            marketing_tracking: None,
            ..full_event()
        };
        assert_eq!(
            row_json(&e),
            patch(
                full_golden(),
                json!({
                    "url": "",
                    "public_argument": {
                        "interaction.traceID": "01020304050607080102040810203040",
                        "public": 2,
                        "telemetry.event.exportable": true
                    }
                })
            )
        );
    }

    #[test]
    fn interaction_without_trace_id_still_adds_an_empty_trace_id() {
        let e = Event {
            interaction: Some(EventInteraction::default()),
            ..code_search()
        };
        assert_eq!(
            row_json(&e)["public_argument"],
            json!({"interaction.traceID": "", "telemetry.event.exportable": true})
        );
    }

    #[test]
    fn allowlisted_private_metadata_lists_its_exportable_fields() {
        let e = Event {
            feature: "cody.completion".into(),
            action: "accepted".into(),
            parameters: Some(EventParameters {
                private_metadata: Some(Struct {
                    fields: [(
                        "languageId".to_owned(),
                        Value {
                            kind: Some(Kind::StringValue("rust".into())),
                        },
                    )]
                    .into(),
                }),
                ..Default::default()
            }),
            ..code_search()
        };
        assert_eq!(
            row_json(&e)["argument"],
            json!({
                "languageId": "rust",
                "telemetry.privateMetadata.exportable": true,
                "telemetry.privateMetadata.exportableFields": ["languageId", "otherCompletionProviders"]
            })
        );
    }

    #[test]
    fn empty_private_metadata_gives_an_empty_argument_object() {
        let e = Event {
            parameters: Some(EventParameters {
                private_metadata: Some(Struct::default()),
                ..Default::default()
            }),
            ..code_search()
        };
        assert_eq!(row_json(&e)["argument"], json!({}));
    }

    #[test]
    fn legacy_integer_metadata_is_merged_into_the_public_argument() {
        let e = Event {
            parameters: Some(EventParameters {
                metadata: [("bar".to_owned(), 456.0), ("foo".to_owned(), 1.5)].into(),
                legacy_metadata: [("foo".to_owned(), 123), ("big".to_owned(), i64::MAX)].into(),
                ..Default::default()
            }),
            ..code_search()
        };
        assert_eq!(
            row_json(&e)["public_argument"],
            json!({
                "bar": 456,
                "foo": 123,
                "big": i64::MAX,
                "telemetry.event.exportable": true
            })
        );
    }

    #[test]
    fn non_finite_metadata_becomes_null() {
        let e = Event {
            parameters: Some(EventParameters {
                metadata: [("nan".to_owned(), f64::NAN), ("x".to_owned(), 0.25)].into(),
                ..Default::default()
            }),
            ..code_search()
        };
        assert_eq!(
            row_json(&e)["public_argument"],
            json!({"nan": null, "x": 0.25, "telemetry.event.exportable": true})
        );
    }

    #[test]
    fn marketing_fields_map_to_their_columns_and_empty_ones_to_null() {
        let e = Event {
            marketing_tracking: Some(EventMarketingTracking {
                url: Some("https://example.com/x".into()),
                first_source_url: Some("first".into()),
                cohort_id: Some("2023-01-01".into()),
                referrer: Some("".into()),
                last_source_url: Some("last".into()),
                device_session_id: Some("device".into()),
                session_referrer: Some("not-a-column".into()),
                session_first_url: Some("not-a-column".into()),
            }),
            ..code_search()
        };
        let row = row_json(&e);
        assert_eq!(row["url"], json!("https://example.com/x"));
        assert_eq!(row["first_source_url"], json!("first"));
        assert_eq!(row["cohort_id"], json!("2023-01-01"));
        assert_eq!(row["referrer"], Json::Null);
        assert_eq!(row["last_source_url"], json!("last"));
        assert_eq!(row["device_id"], json!("device"));
    }

    #[test]
    fn feature_flags_are_parsed_as_go_booleans() {
        let flags = [
            "1", "t", "T", "TRUE", "true", "True", "0", "f", "false", "yes", "",
        ];
        let e = Event {
            feature_flags: Some(EventFeatureFlags {
                flags: flags
                    .iter()
                    .map(|v| (format!("flag-{v}"), (*v).to_owned()))
                    .collect(),
            }),
            ..code_search()
        };
        assert_eq!(
            row_json(&e)["feature_flags"],
            json!({
                "flag-1": true, "flag-t": true, "flag-T": true, "flag-TRUE": true,
                "flag-true": true, "flag-True": true, "flag-0": false, "flag-f": false,
                "flag-false": false, "flag-yes": false, "flag-": false
            })
        );
    }

    #[test]
    fn client_without_name_is_backend_with_a_colon_client() {
        let e = Event {
            source: Some(EventSource {
                server: None,
                client: Some(event_source::Client {
                    name: String::new(),
                    version: Some("1.0".into()),
                }),
            }),
            ..code_search()
        };
        let row = row_json(&e);
        assert_eq!(row["source"], json!("BACKEND"));
        assert_eq!(row["client"], json!(":1.0"));
    }

    #[test]
    fn rows_round_trip_through_serde() {
        let row = translate(&full_event(), None, RUNNING, NOW);
        let text = serde_json::to_string(&row).unwrap();
        let back: EventLogRow = serde_json::from_str(&text).unwrap();
        assert_eq!(back, row);
    }

    #[test]
    fn timestamps_render_like_go_time_json() {
        let ts = |seconds, nanos| format_rfc3339(&Timestamp { seconds, nanos });
        assert_eq!(ts(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(ts(1_677_250_110, 0), "2023-02-24T14:48:30Z");
        assert_eq!(ts(1_677_250_110, 500_000_000), "2023-02-24T14:48:30.5Z");
        assert_eq!(ts(1_677_250_110, 123), "2023-02-24T14:48:30.000000123Z");
        assert_eq!(ts(-1, 0), "1969-12-31T23:59:59Z");
        assert_eq!(ts(951_782_400, 0), "2000-02-29T00:00:00Z");
        assert_eq!(ts(-62_135_596_800, 0), "0001-01-01T00:00:00Z");
        assert_eq!(
            ts(253_402_300_799, 999_999_999),
            "9999-12-31T23:59:59.999999999Z"
        );
        // Malformed nanos carry instead of failing.
        assert_eq!(ts(0, 1_500_000_000), "1970-01-01T00:00:01.5Z");
        assert_eq!(ts(0, -1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn extreme_timestamps_do_not_panic() {
        for seconds in [i64::MIN, i64::MAX] {
            for nanos in [i32::MIN, 0, i32::MAX] {
                let _ = format_rfc3339(&Timestamp { seconds, nanos });
            }
        }
    }
}
