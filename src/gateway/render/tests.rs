//! Golden attribute maps and migration cases from Sourcegraph's gateway
//! tests, and the shape of the published body.

use std::collections::BTreeMap;

use prost_types::Struct;
use serde_json::json;

use super::*;
use crate::proto::telemetrygateway::v1::identifier::{
    LicensedInstanceIdentifier, ManagedServiceIdentifier, UnlicensedInstanceIdentifier,
};
use crate::proto::telemetrygateway::v1::{EventParameters, Identifier};
use crate::protojson::tests::{assert_json_eq, full_event};

fn metadata_with(identifier: Option<IdentifierKind>) -> RecordEventsRequestMetadata {
    RecordEventsRequestMetadata {
        request_id: "request-1".to_owned(),
        identifier: Some(Identifier { identifier }),
    }
}

fn licensed() -> RecordEventsRequestMetadata {
    metadata_with(Some(IdentifierKind::LicensedInstance(
        LicensedInstanceIdentifier {
            license_key: "key".to_owned(),
            instance_id: "instance".to_owned(),
            external_url: "https://sourcegraph.example.com".to_owned(),
        },
    )))
}

fn event(parameters: Option<EventParameters>) -> Event {
    Event {
        id: "1".to_owned(),
        feature: "Feature".to_owned(),
        action: "Action".to_owned(),
        parameters,
        ..Event::default()
    }
}

fn with_metadata(entries: &[(&str, f64)]) -> Event {
    event(Some(EventParameters {
        metadata: entries
            .iter()
            .map(|(key, value)| ((*key).to_owned(), *value))
            .collect(),
        ..EventParameters::default()
    }))
}

fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

// ---- publisher source ----

#[test]
fn publisher_source_is_derived_from_the_identifier() {
    assert_eq!(
        publisher_source(&licensed()),
        PublisherSource::LicensedInstance
    );
    assert_eq!(
        publisher_source(&metadata_with(Some(IdentifierKind::UnlicensedInstance(
            UnlicensedInstanceIdentifier::default()
        )))),
        PublisherSource::UnlicensedInstance
    );
    let managed = publisher_source(&metadata_with(Some(IdentifierKind::ManagedService(
        ManagedServiceIdentifier {
            service_id: "my-service".to_owned(),
            service_environment: Some("prod".to_owned()),
        },
    ))));
    assert_eq!(managed.as_str(), "my-service");
    assert!(!managed.is_sourcegraph_instance());
    assert_eq!(
        publisher_source(&metadata_with(None)),
        PublisherSource::Unknown
    );
    assert_eq!(
        publisher_source(&RecordEventsRequestMetadata::default()).to_string(),
        "unknown"
    );
}

#[test]
fn publisher_source_strings_match_sourcegraph() {
    assert_eq!(
        PublisherSource::LicensedInstance.to_string(),
        "licensed_instance"
    );
    assert_eq!(
        PublisherSource::UnlicensedInstance.to_string(),
        "unlicensed_instance"
    );
    assert!(PublisherSource::LicensedInstance.is_sourcegraph_instance());
    assert!(PublisherSource::UnlicensedInstance.is_sourcegraph_instance());
    assert!(!PublisherSource::Unknown.is_sourcegraph_instance());
}

// ---- attributes (Sourcegraph's golden maps) ----

#[test]
fn basic_event_has_source_feature_action_and_no_private_metadata() {
    assert_eq!(
        attributes(&event(None), &PublisherSource::LicensedInstance),
        map(&[
            ("event.action", "Action"),
            ("event.feature", "Feature"),
            ("event.hasPrivateMetadata", "false"),
            ("publisher.source", "licensed_instance"),
        ])
    );
}

#[test]
fn empty_private_metadata_struct_still_counts_as_private_metadata() {
    let event = event(Some(EventParameters {
        private_metadata: Some(Struct::default()),
        ..EventParameters::default()
    }));
    assert_eq!(
        attributes(&event, &PublisherSource::UnlicensedInstance),
        map(&[
            ("event.action", "Action"),
            ("event.feature", "Feature"),
            ("event.hasPrivateMetadata", "true"),
            ("publisher.source", "unlicensed_instance"),
        ])
    );
}

#[test]
fn positive_records_private_metadata_key_becomes_an_attribute() {
    let event = with_metadata(&[("recordsPrivateMetadataTranscript", 1.0)]);
    let source = PublisherSource::ManagedService {
        service_id: "my-service".to_owned(),
    };
    assert_eq!(
        attributes(&event, &source),
        map(&[
            ("event.action", "Action"),
            ("event.feature", "Feature"),
            ("event.hasPrivateMetadata", "false"),
            ("event.recordsPrivateMetadataTranscript", "true"),
            ("publisher.source", "my-service"),
        ])
    );
}

#[test]
fn other_short_or_non_positive_metadata_keys_add_no_attribute() {
    let event = with_metadata(&[
        ("anotherMetadata", 1.0),
        ("recordTranscript", 1.0),
        ("recordsPrivateMetadata", 1.0),
        ("recordsPrivateMetadataX", 1.0),
        ("recordsPrivateMetadataZero", 0.0),
        ("recordsPrivateMetadataNegative", -1.0),
        ("recordsPrivateMetadataNaN", f64::NAN),
    ]);
    assert_eq!(
        attributes(&event, &PublisherSource::LicensedInstance),
        map(&[
            ("event.action", "Action"),
            ("event.feature", "Feature"),
            ("event.hasPrivateMetadata", "false"),
            ("publisher.source", "licensed_instance"),
        ])
    );
}

#[test]
fn two_characters_after_the_prefix_are_enough_for_an_attribute() {
    let event = with_metadata(&[("recordsPrivateMetadataXY", 0.5)]);
    let attributes = attributes(&event, &PublisherSource::LicensedInstance);
    assert_eq!(
        attributes
            .get("event.recordsPrivateMetadataXY")
            .map(String::as_str),
        Some("true")
    );
}

// ---- legacy metadata migration (Sourcegraph's cases) ----

#[test]
fn legacy_metadata_alone_moves_into_metadata_as_doubles() {
    let mut event = event(Some(EventParameters {
        legacy_metadata: BTreeMap::from([("foo".to_owned(), 123)]),
        ..EventParameters::default()
    }));
    migrate_legacy_metadata(&mut event);
    let parameters = event.parameters.unwrap();
    assert_eq!(
        parameters.metadata,
        BTreeMap::from([("foo".to_owned(), 123.0)])
    );
    assert!(parameters.legacy_metadata.is_empty());
}

#[test]
fn legacy_metadata_joins_existing_metadata() {
    let mut event = event(Some(EventParameters {
        legacy_metadata: BTreeMap::from([("foo".to_owned(), 123)]),
        metadata: BTreeMap::from([("bar".to_owned(), 456.0)]),
        ..EventParameters::default()
    }));
    migrate_legacy_metadata(&mut event);
    let parameters = event.parameters.unwrap();
    assert_eq!(
        parameters.metadata,
        BTreeMap::from([("bar".to_owned(), 456.0), ("foo".to_owned(), 123.0)])
    );
    assert!(parameters.legacy_metadata.is_empty());
}

#[test]
fn legacy_metadata_overwrites_metadata_with_the_same_key() {
    let mut event = event(Some(EventParameters {
        legacy_metadata: BTreeMap::from([("foo".to_owned(), 1)]),
        metadata: BTreeMap::from([("foo".to_owned(), 2.5)]),
        ..EventParameters::default()
    }));
    migrate_legacy_metadata(&mut event);
    assert_eq!(
        event.parameters.unwrap().metadata,
        BTreeMap::from([("foo".to_owned(), 1.0)])
    );
}

#[test]
fn migrating_an_event_without_parameters_changes_nothing() {
    let mut migrated = event(None);
    migrate_legacy_metadata(&mut migrated);
    assert_eq!(migrated, event(None));
}

// ---- message body ----

#[test]
fn message_body_is_compact_json_with_event_then_metadata() {
    let mut event = full_event();
    migrate_legacy_metadata(&mut event);
    let metadata = licensed();
    let body = message_body(&event, &metadata).unwrap();
    let text = std::str::from_utf8(&body).unwrap();
    assert!(text.starts_with(r#"{"event":{"#), "{text}");
    let metadata_at = text.find(r#"},"metadata":{"identifier":"#).unwrap();
    assert!(text.ends_with("}}"), "{text}");
    // Compact: re-serialising the parsed body gives the same bytes.
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(parsed.to_string().len(), body.len());
    assert!(metadata_at > 0);

    assert_json_eq(
        &parsed["event"],
        &crate::protojson::render_event(&event).unwrap(),
    );
    assert_eq!(
        parsed["metadata"],
        json!({
            "requestId": "request-1",
            "identifier": { "licensedInstance": {
                "externalUrl": "https://sourcegraph.example.com",
                "instanceId": "instance",
                "licenseKey": "key"
            } }
        })
    );
    assert_eq!(parsed.as_object().unwrap().len(), 2);
}

/// The published metadata of `licensed()` with `mode`, through the fast
/// path, checked byte for byte against the reference renderer.
fn published_metadata_json(mode: PublishLicenseKey) -> serde_json::Value {
    let mut event = full_event();
    migrate_legacy_metadata(&mut event);
    let metadata = licensed();
    let fast = message_body_with(
        &event,
        &RenderedMetadata::with_license_key(&metadata, mode).unwrap(),
    )
    .unwrap();
    let reference = message_body(&event, &published_metadata(&metadata, mode)).unwrap();
    assert_eq!(
        String::from_utf8(fast.clone()).unwrap(),
        String::from_utf8(reference).unwrap()
    );
    let parsed: serde_json::Value = serde_json::from_slice(&fast).unwrap();
    parsed["metadata"].clone()
}

#[test]
fn raw_publishes_the_license_key_as_sent_byte_for_byte() {
    let mut event = full_event();
    migrate_legacy_metadata(&mut event);
    let metadata = licensed();
    assert_eq!(
        message_body_with(
            &event,
            &RenderedMetadata::with_license_key(&metadata, PublishLicenseKey::Raw).unwrap()
        )
        .unwrap(),
        message_body(&event, &metadata).unwrap()
    );
    assert_eq!(
        published_metadata_json(PublishLicenseKey::Raw)["identifier"]["licensedInstance"]["licenseKey"],
        "key"
    );
}

#[test]
fn sha256_publishes_the_hash_of_the_license_key() {
    let metadata = published_metadata_json(PublishLicenseKey::Sha256);
    // sha256("key"), as `sha256sum` prints it.
    assert_eq!(
        metadata,
        json!({
            "requestId": "request-1",
            "identifier": { "licensedInstance": {
                "externalUrl": "https://sourcegraph.example.com",
                "instanceId": "instance",
                "licenseKey": "sha256:2c70e12b7a0646f92279f427c7b38e7334d8e5389cff167a1dc30e73f826b683"
            } }
        })
    );
    assert_eq!(
        license_key_hash("key"),
        "sha256:2c70e12b7a0646f92279f427c7b38e7334d8e5389cff167a1dc30e73f826b683"
    );
}

#[test]
fn omit_publishes_no_license_key_field() {
    assert_eq!(
        published_metadata_json(PublishLicenseKey::Omit),
        json!({
            "requestId": "request-1",
            "identifier": { "licensedInstance": {
                "externalUrl": "https://sourcegraph.example.com",
                "instanceId": "instance"
            } }
        })
    );
}

#[test]
fn the_license_key_setting_leaves_other_identifiers_alone() {
    let unlicensed = metadata_with(Some(IdentifierKind::UnlicensedInstance(
        UnlicensedInstanceIdentifier {
            instance_id: "i".to_owned(),
            external_url: "u".to_owned(),
        },
    )));
    for mode in [
        PublishLicenseKey::Raw,
        PublishLicenseKey::Sha256,
        PublishLicenseKey::Omit,
    ] {
        assert_eq!(published_metadata(&unlicensed, mode), unlicensed);
    }
}

#[test]
fn message_body_event_decodes_back_to_the_published_event() {
    let mut event = full_event();
    migrate_legacy_metadata(&mut event);
    let body = message_body(&event, &licensed()).unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        crate::protojson::parse_event_value(&parsed["event"]).unwrap(),
        event
    );
}

#[test]
fn message_body_after_migration_never_has_legacy_metadata() {
    let mut event = full_event();
    let before = String::from_utf8(message_body(&event, &licensed()).unwrap()).unwrap();
    assert!(
        before.contains(r#""legacyMetadata":{"legacyCount":"7"}"#),
        "{before}"
    );
    migrate_legacy_metadata(&mut event);
    let after = String::from_utf8(message_body(&event, &licensed()).unwrap()).unwrap();
    assert!(!after.contains("legacyMetadata"), "{after}");
    assert!(after.contains(r#""legacyCount":7"#), "{after}");
}

#[test]
fn message_body_fails_where_go_protojson_fails() {
    let mut event = event(None);
    event.timestamp = Some(prost_types::Timestamp {
        seconds: 0,
        nanos: -5,
    });
    assert!(matches!(
        message_body(&event, &licensed()).unwrap_err(),
        ProtojsonError::InvalidTimestamp { nanos: -5, .. }
    ));
}
