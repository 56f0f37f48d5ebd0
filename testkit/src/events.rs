//! The benchmarks' realistic event: a Cody/search event of about 600 B
//! encoded (feature/action, source with client, 8 numeric metadata keys, 4
//! private-metadata keys, billing, user, 2 feature flags), with a fresh id
//! and the current time. Used by `benches/ingest.rs`, `benches/mirror.rs`
//! and `benches/protojson.rs`.
//!
//! Ids are random UUID v4 unless [`set_ids`] says v7: older Sourcegraph
//! versions send v4, and random keys are what costs an index most, so
//! figures are taken with v4 and v7 is reported beside them. The v4 ids
//! come from a userspace generator (`fastrand`): `Uuid::new_v4` makes a
//! `getrandom` call per id, which on a 2-core machine is CPU taken from
//! the server being measured.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use prost_types::value::Kind;
use prost_types::{Struct, Timestamp, Value};
use telespool::proto::telemetrygateway::v1 as pb;

fn s(v: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(v.to_string())),
    }
}

/// Which UUID version new events' ids are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ids {
    /// Random (the default).
    V4,
    /// Time-ordered.
    V7,
}

impl Ids {
    /// `v4` or `v7`.
    pub fn name(self) -> &'static str {
        match self {
            Ids::V4 => "v4",
            Ids::V7 => "v7",
        }
    }

    /// Parses `v4` or `v7`.
    pub fn parse(s: &str) -> Option<Ids> {
        match s.trim() {
            "v4" => Some(Ids::V4),
            "v7" => Some(Ids::V7),
            _ => None,
        }
    }

    /// A fresh id of this kind.
    pub fn fresh(self) -> String {
        match self {
            Ids::V4 => {
                let mut b = [0u8; 16];
                fastrand::fill(&mut b);
                uuid::Builder::from_random_bytes(b).into_uuid().to_string()
            }
            Ids::V7 => uuid::Uuid::now_v7().to_string(),
        }
    }
}

static V7: AtomicBool = AtomicBool::new(false);

/// Sets the id kind of the events [`event`] makes from now on (all
/// threads).
pub fn set_ids(ids: Ids) {
    V7.store(ids == Ids::V7, Ordering::Relaxed);
}

/// The id kind [`event`] uses.
pub fn ids() -> Ids {
    if V7.load(Ordering::Relaxed) {
        Ids::V7
    } else {
        Ids::V4
    }
}

/// A realistic Cody/search event, ~600 B encoded.
pub fn event(n: u64) -> pb::Event {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    let (feature, action) = match n % 4 {
        0 => ("cody.completion", "suggested"),
        1 => ("cody.completion", "accepted"),
        2 => ("search.results", "viewed"),
        _ => ("blob.codeintel", "hovered"),
    };
    pb::Event {
        id: ids().fresh(),
        timestamp: Some(Timestamp {
            seconds: now.as_secs() as i64,
            nanos: now.subsec_nanos() as i32,
        }),
        feature: feature.into(),
        action: action.into(),
        source: Some(pb::EventSource {
            server: Some(pb::event_source::Server {
                version: "5.9.1234".into(),
            }),
            client: Some(pb::event_source::Client {
                name: "VSCODE_CODY_EXTENSION".into(),
                version: Some("1.40.2".into()),
            }),
        }),
        parameters: Some(pb::EventParameters {
            version: 1,
            legacy_metadata: BTreeMap::new(),
            metadata: BTreeMap::from([
                ("durationMs".to_string(), 187.0 + (n % 97) as f64),
                ("lineCount".to_string(), (n % 13) as f64),
                ("charCount".to_string(), (n % 800) as f64),
                ("contextItems".to_string(), 4.0),
                ("multiline".to_string(), 1.0),
                ("providerIdentifierCode".to_string(), 2.0),
                ("triggerKind".to_string(), 0.0),
                ("latencyBudgetMs".to_string(), 900.0),
            ]),
            private_metadata: Some(Struct {
                fields: BTreeMap::from([
                    ("languageId".to_string(), s("typescript")),
                    ("model".to_string(), s("fireworks/starcoder-16b")),
                    (
                        "filePath".to_string(),
                        s("client/web/src/insights/InsightsViewGrid.tsx"),
                    ),
                    ("otherCompletionProviders".to_string(), s("copilot")),
                ]),
            }),
            billing_metadata: Some(pb::EventBillingMetadata {
                product: "CODY".into(),
                category: "CORE_PRODUCT".into(),
            }),
        }),
        user: Some(pb::EventUser {
            user_id: Some(1000 + (n % 500) as i64),
            anonymous_user_id: Some("0b8f7a42-4f6e-4b8e-9a53-1c2d3e4f5a6b".into()),
            sams_external_id: None,
        }),
        feature_flags: Some(pb::EventFeatureFlags {
            flags: BTreeMap::from([
                ("cody-autocomplete-tracing".to_string(), "true".into()),
                ("search-ranking".to_string(), "false".into()),
            ]),
        }),
        marketing_tracking: None,
        interaction: None,
    }
}
