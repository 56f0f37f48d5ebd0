//! What the gateway publishes for each event: a message body and a set of
//! attributes, as Sourcegraph's Telemetry Gateway publishes them to Pub/Sub.
//!
//! ```text
//! body       = {"event":<protojson Event>,"metadata":<protojson RecordEventsRequestMetadata>}
//!              compact, keys in that order; the metadata is the stream's as sent
//!              (instance id, external URL, request id included), except the
//!              license key, which `publish_license_key` decides: `raw` (as sent,
//!              Sourcegraph's behaviour), `sha256` (the default:
//!              "sha256:<64 lowercase hex>") or `omit` (no `licenseKey`)
//! attributes = publisher.source          licensed_instance | unlicensed_instance
//!                                        | <service_id> | unknown
//!              event.feature, event.action
//!              event.hasPrivateMetadata  "true" when private metadata is present,
//!                                        even as an empty struct; else "false"
//!              event.<key> = "true"      for each numeric metadata key that starts
//!                                        with `recordsPrivateMetadata`, has at least
//!                                        two more bytes, and whose value is > 0
//! ```
//!
//! Before publishing, the gateway folds the pre-November-2023 integer
//! metadata into the double metadata ([`migrate_legacy_metadata`]), so
//! downstream JSON never has `legacyMetadata`.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use super::config::PublishLicenseKey;
use crate::proto::telemetrygateway::v1::identifier::Identifier as IdentifierKind;
use crate::proto::telemetrygateway::v1::{Event, RecordEventsRequestMetadata};
use crate::protojson::{self, ProtojsonError};

/// Attribute naming who published the event.
pub const ATTR_PUBLISHER_SOURCE: &str = "publisher.source";
/// Attribute holding the event's feature.
pub const ATTR_FEATURE: &str = "event.feature";
/// Attribute holding the event's action.
pub const ATTR_ACTION: &str = "event.action";
/// Attribute saying whether the event carries private metadata.
pub const ATTR_HAS_PRIVATE_METADATA: &str = "event.hasPrivateMetadata";
/// Numeric metadata keys with this prefix (and at least two more bytes)
/// flag the kind of private data an event records.
pub const RECORDS_PRIVATE_METADATA_PREFIX: &str = "recordsPrivateMetadata";

/// Who published a stream of events, from the stream's identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PublisherSource {
    /// A licensed Sourcegraph instance.
    LicensedInstance,
    /// An unlicensed Sourcegraph instance.
    UnlicensedInstance,
    /// A managed service, named by its service id.
    ManagedService {
        /// The service id from the identifier (e.g. `my-service`).
        service_id: String,
    },
    /// No identifier (the gateway rejects such streams before publishing).
    Unknown,
}

impl PublisherSource {
    /// The `publisher.source` attribute value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::LicensedInstance => "licensed_instance",
            Self::UnlicensedInstance => "unlicensed_instance",
            Self::ManagedService { service_id } => service_id,
            Self::Unknown => "unknown",
        }
    }

    /// Whether the publisher is a Sourcegraph instance (licensed or not).
    /// For these, the gateway reports non-retryable failures as succeeded
    /// so instances do not retry them forever.
    pub fn is_sourcegraph_instance(&self) -> bool {
        matches!(self, Self::LicensedInstance | Self::UnlicensedInstance)
    }
}

impl fmt::Display for PublisherSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The publisher source of a stream, from its metadata's identifier.
pub fn publisher_source(metadata: &RecordEventsRequestMetadata) -> PublisherSource {
    match metadata
        .identifier
        .as_ref()
        .and_then(|identifier| identifier.identifier.as_ref())
    {
        Some(IdentifierKind::LicensedInstance(_)) => PublisherSource::LicensedInstance,
        Some(IdentifierKind::UnlicensedInstance(_)) => PublisherSource::UnlicensedInstance,
        Some(IdentifierKind::ManagedService(service)) => PublisherSource::ManagedService {
            service_id: service.service_id.clone(),
        },
        None => PublisherSource::Unknown,
    }
}

/// Copies each `legacy_metadata` entry into `metadata` as a double
/// (replacing an entry with the same key), then clears `legacy_metadata`.
/// Integers beyond 2^53 lose precision, as in Go's `float64(v)`.
pub fn migrate_legacy_metadata(event: &mut Event) {
    let Some(parameters) = event.parameters.as_mut() else {
        return;
    };
    for (key, value) in std::mem::take(&mut parameters.legacy_metadata) {
        #[allow(clippy::cast_precision_loss)] // the documented conversion
        parameters.metadata.insert(key, value as f64);
    }
}

/// The published message body: compact JSON `{"event":…,"metadata":…}`,
/// keys in that order. Call [`migrate_legacy_metadata`] first (the gateway
/// does, once per payload). Fails where Go's protojson fails (see
/// [`crate::protojson`]); the gateway treats that as a non-retryable error.
///
/// This is the reference rendering (through [`crate::protojson`]); the
/// gateway publishes [`message_body_with`], which writes the same bytes
/// faster.
pub fn message_body(
    event: &Event,
    metadata: &RecordEventsRequestMetadata,
) -> Result<Vec<u8>, ProtojsonError> {
    let event = protojson::render_event(event)?;
    let metadata = protojson::render_metadata(metadata)?;
    // Written by hand so the key order does not depend on serde_json's map
    // type (sorted today; insertion order under `preserve_order`).
    let mut body = Vec::with_capacity(512);
    body.extend_from_slice(br#"{"event":"#);
    body.extend_from_slice(event.to_string().as_bytes());
    body.extend_from_slice(br#","metadata":"#);
    body.extend_from_slice(metadata.to_string().as_bytes());
    body.push(b'}');
    Ok(body)
}

/// The metadata as published: `metadata` with its license key (if any)
/// kept, replaced by `sha256:` and its lowercase hex SHA-256, or emptied
/// (protojson then omits `licenseKey`), as `mode` says.
pub fn published_metadata(
    metadata: &RecordEventsRequestMetadata,
    mode: PublishLicenseKey,
) -> RecordEventsRequestMetadata {
    let mut published = metadata.clone();
    if let Some(IdentifierKind::LicensedInstance(licensed)) = published
        .identifier
        .as_mut()
        .and_then(|identifier| identifier.identifier.as_mut())
    {
        match mode {
            PublishLicenseKey::Raw => {}
            PublishLicenseKey::Sha256 => {
                licensed.license_key = license_key_hash(&licensed.license_key);
            }
            PublishLicenseKey::Omit => licensed.license_key.clear(),
        }
    }
    published
}

/// `sha256:` and the lowercase hex SHA-256 of `key` (the form a
/// `--license-keys` file accepts).
pub fn license_key_hash(key: &str) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A stream's metadata rendered once as protojson (reference path), so
/// that each event's body ([`message_body_with`]) only renders the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedMetadata(String);

impl RenderedMetadata {
    /// Renders the metadata (request id and identifier, license key
    /// included), compact.
    pub fn new(metadata: &RecordEventsRequestMetadata) -> Result<Self, ProtojsonError> {
        Ok(RenderedMetadata(
            protojson::render_metadata(metadata)?.to_string(),
        ))
    }

    /// Renders the metadata as published with `mode` ([`published_metadata`]).
    pub fn with_license_key(
        metadata: &RecordEventsRequestMetadata,
        mode: PublishLicenseKey,
    ) -> Result<Self, ProtojsonError> {
        Self::new(&published_metadata(metadata, mode))
    }

    /// The compact JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// [`message_body`] with the metadata already rendered, and the event
/// written by the direct writer ([`event_json`]): the same bytes, about ten
/// times faster. Unusual events (invalid timestamps, unset or non-finite
/// `Struct` values, deep nesting) go through the reference path, which also
/// gives the reference errors.
pub fn message_body_with(
    event: &Event,
    metadata: &RenderedMetadata,
) -> Result<Vec<u8>, ProtojsonError> {
    const PREFIX: &[u8] = br#"{"event":"#;
    let mut body = Vec::with_capacity(1024 + metadata.0.len());
    body.extend_from_slice(PREFIX);
    if event_json::write_event(event, &mut body).is_err() {
        body.truncate(PREFIX.len());
        let event = protojson::render_event(event)?;
        body.extend_from_slice(event.to_string().as_bytes());
    }
    body.extend_from_slice(br#","metadata":"#);
    body.extend_from_slice(metadata.0.as_bytes());
    body.push(b'}');
    Ok(body)
}

/// The attributes published with an event (see the module docs).
pub fn attributes(event: &Event, source: &PublisherSource) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::from([
        (ATTR_PUBLISHER_SOURCE.to_owned(), source.as_str().to_owned()),
        (ATTR_FEATURE.to_owned(), event.feature.clone()),
        (ATTR_ACTION.to_owned(), event.action.clone()),
    ]);
    let parameters = event.parameters.as_ref();
    let has_private = parameters.is_some_and(|p| p.private_metadata.is_some());
    attributes.insert(
        ATTR_HAS_PRIVATE_METADATA.to_owned(),
        has_private.to_string(),
    );
    for (key, value) in parameters.into_iter().flat_map(|p| &p.metadata) {
        if key.starts_with(RECORDS_PRIVATE_METADATA_PREFIX)
            && key.len() > RECORDS_PRIVATE_METADATA_PREFIX.len() + 1
            && *value > 0.0
        {
            attributes.insert(format!("event.{key}"), "true".to_owned());
        }
    }
    attributes
}

pub mod event_json;

#[cfg(test)]
mod tests;
