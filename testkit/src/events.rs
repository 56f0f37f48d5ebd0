//! The benchmarks' realistic event: a Cody/search event of about 600 B
//! encoded (feature/action, source with client, 8 numeric metadata keys, 4
//! private-metadata keys, billing, user, 2 feature flags), with a fresh
//! random UUID v4 id (or one given, [`event_with_id`]) and the current time. Used
//! by `benches/ingest.rs`, `benches/mirror.rs`, `benches/protojson.rs` and
//! the gRPC load client ([`crate::load`], `examples/grpc_load.rs`).

use std::collections::BTreeMap;
use std::time::SystemTime;

use prost_types::value::Kind;
use prost_types::{Struct, Timestamp, Value};
use telespool::proto::telemetrygateway::v1 as pb;

fn s(v: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(v.to_string())),
    }
}

/// A realistic Cody/search event, ~600 B encoded, with a fresh random
/// UUID v4 id (older Sourcegraph versions send v4, and random keys are
/// what costs an index most: figures are taken with v4). The id comes from
/// a userspace generator (rand's thread-local one): `Uuid::new_v4` makes a
/// `getrandom` call per id, CPU taken from the server being measured on a
/// 2-core machine.
pub fn event(n: u64) -> pb::Event {
    let bytes: [u8; 16] = rand::random();
    event_with_id(
        n,
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string(),
    )
}

/// [`event`] with the id given (`uuid::Uuid::now_v7` reads the system's
/// random source on every call: a load client makes its ids from a
/// userspace generator instead, [`crate::load::IdGen`]).
pub fn event_with_id(n: u64, id: String) -> pb::Event {
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
        id,
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
