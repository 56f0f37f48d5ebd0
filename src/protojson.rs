//! Protojson: the canonical JSON mapping of the `telemetrygateway.v1`
//! messages, rendered the way Go's `protojson.Marshal` (default options)
//! renders them, so the JSON telespool publishes matches what Sourcegraph's
//! Telemetry Gateway publishes.
//!
//! # How
//!
//! Nothing here hand-writes JSON. A prost message is transcoded into a
//! [`prost_reflect::DynamicMessage`] (encode, then decode against the
//! descriptor from [`crate::proto::FILE_DESCRIPTOR_SET`]; decoding keeps
//! explicit presence, so a proto3 `optional` field set to its default, such
//! as `user_id = Some(0)`, is still rendered: `"userId": "0"`), and
//! prost-reflect's serde support writes the JSON. (The gateway has a direct
//! writer for its hot path, checked against this one:
//! `gateway/render/event_json.rs`.)
//!
//! Parsing has two paths:
//!
//! - the **typed parser** (`parse/`), behind [`parse_event_str`],
//!   [`parse_event`] and [`parse_event_value`]: serde visitors that read
//!   JSON text, or an already parsed `serde_json::Value`, straight into the
//!   prost `Event`, allocating only what the event keeps (measured: 32
//!   allocations for the ingest benchmark's 600-byte event, against 187
//!   on the reference path). It is what ingest calls.
//! - the **reference** (prost-reflect), behind [`parse_event_reference`],
//!   [`parse_event_value_reference`] and [`parse_metadata`]: JSON into a
//!   `DynamicMessage`, encoded, then decoded by prost. It defines the rules
//!   below; proptests (`parse/equivalence_tests.rs`) hold the typed parser to it:
//!   the same inputs accepted and refused, the same bytes, the same error
//!   text, on rendered events, on structured mutations of them and on
//!   random byte edits. The one difference is how too deep
//!   `privateMetadata` is refused (see below).
//!
//! # Rendering rules (Go `protojson.Marshal` defaults)
//!
//! - field names are the lowerCamelCase JSON names (`featureFlags`,
//!   `anonymousUserId`, `traceId`, …);
//! - 64-bit integers are JSON strings (`"userId": "123"`);
//! - `google.protobuf.Timestamp` is an RFC 3339 UTC string with 0, 3, 6 or 9
//!   fractional digits (`2023-02-24T14:48:30Z`, `2023-02-24T14:48:30.100Z`);
//! - `google.protobuf.Struct` is a plain JSON object;
//! - fields at their default value are left out, unless they are proto3
//!   `optional` (or message-typed) and present;
//! - `map<string, double>` values are JSON numbers (`NaN`, `Infinity` and
//!   `-Infinity` become those strings, as in Go).
//!
//! Differences from Go that do not change the JSON *value*: doubles with an
//! integral value below 2^53 are written as integers (`1`, like Go, not
//! serde_json's `1.0`), other doubles use serde_json's shortest
//! representation (Go writes `1e-07` where we write `1e-7`); object keys come
//! out sorted, serde_json's default map (Go keeps field-number order; JSON
//! objects are unordered). One difference in value: prost never encodes a
//! double field or map value equal to `0.0`, so `-0.0` there renders as `0`
//! (Go: `-0`); inside a `Struct` it survives.
//!
//! Where Go's marshaller fails, rendering fails too, with the path of the
//! offending value: a timestamp outside years 1–9999 or with nanos outside
//! `0..1_000_000_000` ([`ProtojsonError::InvalidTimestamp`]), a
//! `google.protobuf.Value` with no kind set ([`ProtojsonError::UnsetValue`];
//! prost-reflect alone would write `null`), a non-finite number inside a
//! `Struct` ([`ProtojsonError::NonFiniteNumber`]). The gateway treats these
//! as non-retryable "JSON encoding" failures.
//!
//! # Parsing rules
//!
//! [`parse_event`] accepts what Go's `protojson.Unmarshal` accepts: JSON
//! names and the original proto names (`featureFlags` and `feature_flags`),
//! 64-bit integers as strings or numbers, RFC 3339 timestamps with any
//! offset, `null` for "not set". **Unknown fields are rejected** (Go's
//! default; a typo must not silently drop data), and so is trailing input.
//! Errors name the JSON path (`$.parameters.privateMetadata`) and, for text
//! input, the line and column.
//!
//! Known leniency compared with Go (the reference's, kept by the typed
//! parser): a field without presence given twice (or under both of its
//! names) keeps the last value instead of failing (a proto3 `optional`
//! field given twice fails, as Go's does, with "multiple fields provided
//! for oneof '_user'"); `null` never clears a value given earlier; a
//! float for an `int64` is range-checked against 2^63, so
//! `9223372036854775808.0` becomes `i64::MAX`. Numbers in strings are read
//! by Rust's `from_str` where Go reads them as JSON numbers: `"+5"` and
//! `"inf"` are accepted here and not in Go, `"1e2"` for an integer the
//! other way round.
//!
//! Known strictness: `privateMetadata` is refused when its encoding could
//! not be decoded by prost, whose recursion limit is 100 nested messages
//! (each JSON object level costs 3: `Struct`, map entry, `Value`; each
//! array level 2), that is about 33 levels of objects or 48 of arrays (Go
//! allows 10,000); such an event could not arrive over gRPC either. The
//! typed parser counts these levels while parsing and refuses before
//! descending further, with "recursion limit reached: private_metadata is
//! nested deeper than protobuf can decode (…)" at
//! `$.parameters.privateMetadata` and the position where the limit was
//! reached. The reference finds out after parsing the whole event, when
//! prost decodes it, with prost's own message (or with serde_json's
//! "recursion limit exceeded" past 128 levels of JSON).

use std::fmt;
use std::sync::OnceLock;

use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions,
};
use serde_path_to_error::Segment;

use crate::proto::telemetrygateway::v1::{Event, RecordEventsRequestMetadata};

/// Full name of the `Event` message.
pub const EVENT_MESSAGE: &str = "telemetrygateway.v1.Event";
/// Full name of the `RecordEventsRequestMetadata` message.
pub const METADATA_MESSAGE: &str = "telemetrygateway.v1.RecordEventsRequestMetadata";

/// Go's `protojson.Marshal` defaults, spelled out (they are also
/// prost-reflect's defaults; being explicit guards against a change there).
const SERIALIZE: SerializeOptions = SerializeOptions::new()
    .stringify_64_bit_integers(true)
    .use_proto_field_name(false)
    .skip_default_fields(true)
    .use_enum_numbers(false);

/// Go's `protojson.Unmarshal` defaults: unknown fields are an error.
const DESERIALIZE: DeserializeOptions = DeserializeOptions::new().deny_unknown_fields(true);

/// Nesting limit for `Struct`/`ListValue` values checked before rendering.
/// Prost (and prost-reflect) refuse to decode messages nested more than 100
/// deep, and one JSON level inside a `Struct` costs at least two message
/// levels, so anything deeper could never have been received.
pub const MAX_STRUCT_DEPTH: usize = 64;

/// Integers up to this magnitude are exactly representable as `f64`.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0; // 2^53

/// A line and column (both 1-based) in JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} column {}", self.line, self.column)
    }
}

/// Everything that can go wrong rendering or parsing protojson.
#[derive(Debug, thiserror::Error)]
pub enum ProtojsonError {
    /// The embedded descriptor set could not be used (a build problem, not
    /// a data problem): a bug to report.
    #[error("protobuf descriptors unusable: {reason}")]
    Descriptors {
        /// What went wrong.
        reason: String,
    },
    /// The input bytes are not UTF-8 (JSON text must be). The sender
    /// fixes its encoder.
    #[error("protojson input is not UTF-8: invalid byte at offset {offset}")]
    InvalidUtf8 {
        /// Offset of the first byte that is not valid UTF-8.
        offset: usize,
    },
    /// The input is not well-formed JSON (or has trailing characters).
    /// The sender fixes the text at the position given.
    #[error("malformed JSON at {position}: {reason}")]
    Syntax {
        /// Where the parser stopped.
        position: Position,
        /// What the parser expected or found.
        reason: String,
    },
    /// Well-formed JSON that does not fit the message: a wrong type, an
    /// unknown field, an invalid timestamp, a number out of range. The
    /// sender fixes the value at the path given.
    #[error("invalid protojson {message_type} at {path}{}: {reason}", at_position(.position))]
    Invalid {
        /// Full protobuf name of the message being parsed.
        message_type: &'static str,
        /// JSON path of the offending value (`$` is the message itself).
        path: String,
        /// Line and column (text input only).
        position: Option<Position>,
        /// What was wrong, from prost-reflect or serde.
        reason: String,
    },
    /// A `google.protobuf.Timestamp` that protojson cannot represent. The
    /// event cannot be rendered: it is treated as invalid.
    #[error(
        "{field} is not a valid timestamp (seconds {seconds}, nanos {nanos}): seconds must be within years 1-9999 and nanos within 0..1000000000"
    )]
    InvalidTimestamp {
        /// Which field.
        field: &'static str,
        /// The seconds.
        seconds: i64,
        /// The nanos.
        nanos: i32,
    },
    /// A `google.protobuf.Value` with none of its kinds set (Go's protojson
    /// refuses to render it). Treated as invalid, as above.
    #[error("{path}: google.protobuf.Value has no kind set")]
    UnsetValue {
        /// Path of the value (`$.parameters.privateMetadata.key`).
        path: String,
    },
    /// NaN or an infinity inside a `google.protobuf.Struct` (JSON has no
    /// such numbers; Go's protojson refuses them there). Treated as
    /// invalid, as above.
    #[error("{path}: {value} is not a finite number, which a google.protobuf.Value cannot hold")]
    NonFiniteNumber {
        /// Path of the value.
        path: String,
        /// The number.
        value: f64,
    },
    /// A `Struct`/`ListValue` nested deeper than [`MAX_STRUCT_DEPTH`].
    /// Invalid; the sender flattens it.
    #[error("{path}: nested deeper than {limit} levels")]
    TooDeep {
        /// Path where the limit was reached.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// prost and prost-reflect disagreed on the binary form of a message:
    /// a bug to report, with the message type.
    #[error("transcoding {message_type} between prost and prost-reflect failed: {source}")]
    Transcode {
        /// Full protobuf name of the message.
        message_type: &'static str,
        /// The decoder's complaint.
        source: prost::DecodeError,
    },
    /// The JSON serializer failed for another reason: treated as an
    /// invalid event; a bug to report if the event looks valid.
    #[error("rendering {message_type} as protojson failed: {reason}")]
    Render {
        /// Full protobuf name of the message.
        message_type: &'static str,
        /// The serializer's complaint.
        reason: String,
    },
}

fn at_position(position: &Option<Position>) -> String {
    match position {
        Some(position) => format!(" ({position})"),
        None => String::new(),
    }
}

/// The descriptors protojson needs, decoded once.
struct Descriptors {
    pool: DescriptorPool,
    event: MessageDescriptor,
    metadata: MessageDescriptor,
}

fn descriptors() -> Result<&'static Descriptors, ProtojsonError> {
    static DESCRIPTORS: OnceLock<Result<Descriptors, String>> = OnceLock::new();
    DESCRIPTORS
        .get_or_init(|| {
            let pool = DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET)
                .map_err(|err| err.to_string())?;
            let message = |name: &str| {
                pool.get_message_by_name(name)
                    .ok_or_else(|| format!("message {name} is not in the descriptor set"))
            };
            Ok(Descriptors {
                event: message(EVENT_MESSAGE)?,
                metadata: message(METADATA_MESSAGE)?,
                pool: pool.clone(),
            })
        })
        .as_ref()
        .map_err(|reason| ProtojsonError::Descriptors {
            reason: reason.clone(),
        })
}

/// The pool decoded from [`crate::proto::FILE_DESCRIPTOR_SET`] (our protos
/// and the well-known types), decoded on first use.
pub fn descriptor_pool() -> Result<&'static DescriptorPool, ProtojsonError> {
    Ok(&descriptors()?.pool)
}

/// The descriptor of `telemetrygateway.v1.Event`.
pub fn event_descriptor() -> Result<&'static MessageDescriptor, ProtojsonError> {
    Ok(&descriptors()?.event)
}

/// The descriptor of `telemetrygateway.v1.RecordEventsRequestMetadata`.
pub fn metadata_descriptor() -> Result<&'static MessageDescriptor, ProtojsonError> {
    Ok(&descriptors()?.metadata)
}

/// Renders an event as Go's `protojson.Marshal` would (see the module
/// docs). Fails where Go fails: an invalid timestamp, a `Struct` value with
/// no kind or a non-finite number.
pub fn render_event(event: &Event) -> Result<serde_json::Value, ProtojsonError> {
    check_event(event)?;
    render(event_descriptor()?, EVENT_MESSAGE, event)
}

/// Renders stream metadata (request id and identifier, license key
/// included) as Go's `protojson.Marshal` would.
pub fn render_metadata(
    metadata: &RecordEventsRequestMetadata,
) -> Result<serde_json::Value, ProtojsonError> {
    render(metadata_descriptor()?, METADATA_MESSAGE, metadata)
}

fn render<M: prost::Message>(
    desc: &MessageDescriptor,
    message_type: &'static str,
    message: &M,
) -> Result<serde_json::Value, ProtojsonError> {
    let mut dynamic = DynamicMessage::new(desc.clone());
    // Encode + decode: decoding records presence for proto3 `optional`.
    dynamic
        .transcode_from(message)
        .map_err(|source| ProtojsonError::Transcode {
            message_type,
            source,
        })?;
    let mut value = dynamic
        .serialize_with_options(serde_json::value::Serializer, &SERIALIZE)
        .map_err(|err| ProtojsonError::Render {
            message_type,
            reason: err.to_string(),
        })?;
    integral_numbers_as_integers(&mut value);
    Ok(value)
}

/// Writes integral doubles as JSON integers, as Go does (`1`, not `1.0`).
/// Only magnitudes up to 2^53, where the integer is exact; `-0.0` stays a
/// float so its sign survives.
fn integral_numbers_as_integers(value: &mut serde_json::Value) {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::Number(number) => {
                if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                    && float.fract() == 0.0
                    && float.abs() <= MAX_EXACT_INTEGER
                    && !(float == 0.0 && float.is_sign_negative())
                {
                    // Exact: |float| <= 2^53 and integral.
                    let integer = float as i64;
                    *number = serde_json::Number::from(integer);
                }
            }
            serde_json::Value::Array(items) => stack.extend(items.iter_mut()),
            serde_json::Value::Object(fields) => stack.extend(fields.values_mut()),
            _ => {}
        }
    }
}

/// The checks Go's marshaller makes and prost-reflect does not (or makes
/// without a path).
fn check_event(event: &Event) -> Result<(), ProtojsonError> {
    if let Some(timestamp) = &event.timestamp
        && !crate::timestamp::is_valid(timestamp.seconds, timestamp.nanos)
    {
        return Err(ProtojsonError::InvalidTimestamp {
            field: "timestamp",
            seconds: timestamp.seconds,
            nanos: timestamp.nanos,
        });
    }
    if let Some(private) = event
        .parameters
        .as_ref()
        .and_then(|parameters| parameters.private_metadata.as_ref())
    {
        let mut path = vec![
            PathPart::Key("parameters"),
            PathPart::Key("privateMetadata"),
        ];
        check_struct(private, &mut path)?;
    }
    Ok(())
}

/// One step of a path into a message, formatted only on error.
#[derive(Clone, Copy)]
enum PathPart<'a> {
    Key(&'a str),
    Index(usize),
}

fn format_path<'a>(parts: impl IntoIterator<Item = PathPart<'a>>) -> String {
    let mut out = String::from("$");
    for part in parts {
        match part {
            PathPart::Key(key) => push_key(&mut out, key),
            PathPart::Index(index) => push_index(&mut out, index),
        }
    }
    out
}

/// Appends `[index]`.
fn push_index(out: &mut String, index: usize) {
    out.push('[');
    out.push_str(&index.to_string());
    out.push(']');
}

fn push_key(out: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        out.push('.');
        out.push_str(key);
    } else {
        // JSON string syntax (quotes and escapes) for keys that need it.
        out.push('[');
        out.push_str(&serde_json::Value::String(key.to_owned()).to_string());
        out.push(']');
    }
}

fn check_struct<'a>(
    fields: &'a prost_types::Struct,
    path: &mut Vec<PathPart<'a>>,
) -> Result<(), ProtojsonError> {
    if path.len() > MAX_STRUCT_DEPTH {
        return Err(ProtojsonError::TooDeep {
            path: format_path(path.iter().copied()),
            limit: MAX_STRUCT_DEPTH,
        });
    }
    for (key, value) in &fields.fields {
        path.push(PathPart::Key(key));
        check_value(value, path)?;
        path.pop();
    }
    Ok(())
}

fn check_value<'a>(
    value: &'a prost_types::Value,
    path: &mut Vec<PathPart<'a>>,
) -> Result<(), ProtojsonError> {
    use prost_types::value::Kind;
    match &value.kind {
        None => Err(ProtojsonError::UnsetValue {
            path: format_path(path.iter().copied()),
        }),
        Some(Kind::NumberValue(number)) if !number.is_finite() => {
            Err(ProtojsonError::NonFiniteNumber {
                path: format_path(path.iter().copied()),
                value: *number,
            })
        }
        Some(Kind::StructValue(fields)) => check_struct(fields, path),
        Some(Kind::ListValue(list)) => {
            if path.len() > MAX_STRUCT_DEPTH {
                return Err(ProtojsonError::TooDeep {
                    path: format_path(path.iter().copied()),
                    limit: MAX_STRUCT_DEPTH,
                });
            }
            for (index, item) in list.values.iter().enumerate() {
                path.push(PathPart::Index(index));
                check_value(item, path)?;
                path.pop();
            }
            Ok(())
        }
        Some(_) => Ok(()),
    }
}

/// Parses a protojson `Event` from JSON text (see the module docs for what
/// is accepted) with the typed parser. Errors carry the JSON path and the
/// line and column.
pub fn parse_event_str(json: &str) -> Result<Event, ProtojsonError> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let event = parse::event(&mut deserializer)?;
    // Trailing characters after the object.
    deserializer
        .end()
        .map_err(|err| json_error(EVENT_MESSAGE, None, &err))?;
    Ok(event)
}

/// [`parse_event_str`] on bytes, which must be UTF-8.
pub fn parse_event(json: &[u8]) -> Result<Event, ProtojsonError> {
    parse_event_str(utf8(json)?)
}

/// Parses a protojson `Event` from an already parsed JSON value, with the
/// typed parser. Errors carry the JSON path (there are no lines and
/// columns).
pub fn parse_event_value(json: &serde_json::Value) -> Result<Event, ProtojsonError> {
    parse::event(json)
}

/// The reference parser (prost-reflect) for what [`parse_event`] does:
/// slower, kept to check the typed parser against (tests, benches).
pub fn parse_event_reference(json: &[u8]) -> Result<Event, ProtojsonError> {
    parse_text(event_descriptor()?, EVENT_MESSAGE, json)
}

/// The reference parser (prost-reflect) for what [`parse_event_value`]
/// does.
pub fn parse_event_value_reference(json: &serde_json::Value) -> Result<Event, ProtojsonError> {
    parse_value(event_descriptor()?, EVENT_MESSAGE, json)
}

/// Parses protojson `RecordEventsRequestMetadata` from JSON text.
pub fn parse_metadata(json: &[u8]) -> Result<RecordEventsRequestMetadata, ProtojsonError> {
    parse_text(metadata_descriptor()?, METADATA_MESSAGE, json)
}

fn parse_text<M: prost::Message + Default>(
    desc: &MessageDescriptor,
    message_type: &'static str,
    json: &[u8],
) -> Result<M, ProtojsonError> {
    let mut deserializer = serde_json::Deserializer::from_str(utf8(json)?);
    let mut track = serde_path_to_error::Track::new();
    let parsed = DynamicMessage::deserialize_with_options(
        desc.clone(),
        serde_path_to_error::Deserializer::new(&mut deserializer, &mut track),
        &DESERIALIZE,
    );
    let dynamic =
        parsed.map_err(|err| json_error(message_type, Some(json_path(&track.path())), &err))?;
    // Trailing characters after the object.
    deserializer
        .end()
        .map_err(|err| json_error(message_type, None, &err))?;
    transcode(message_type, &dynamic)
}

fn parse_value<M: prost::Message + Default>(
    desc: &MessageDescriptor,
    message_type: &'static str,
    json: &serde_json::Value,
) -> Result<M, ProtojsonError> {
    let mut track = serde_path_to_error::Track::new();
    let parsed = DynamicMessage::deserialize_with_options(
        desc.clone(),
        serde_path_to_error::Deserializer::new(json, &mut track),
        &DESERIALIZE,
    );
    let dynamic =
        parsed.map_err(|err| json_error(message_type, Some(json_path(&track.path())), &err))?;
    transcode(message_type, &dynamic)
}

fn utf8(json: &[u8]) -> Result<&str, ProtojsonError> {
    std::str::from_utf8(json).map_err(|err| ProtojsonError::InvalidUtf8 {
        offset: err.valid_up_to(),
    })
}

fn transcode<M: prost::Message + Default>(
    message_type: &'static str,
    dynamic: &DynamicMessage,
) -> Result<M, ProtojsonError> {
    dynamic
        .transcode_to::<M>()
        .map_err(|source| ProtojsonError::Transcode {
            message_type,
            source,
        })
}

/// Sorts a serde_json error into malformed JSON versus JSON that does not
/// fit the message, keeping the path and position apart from the reason.
fn json_error(
    message_type: &'static str,
    path: Option<String>,
    err: &serde_json::Error,
) -> ProtojsonError {
    let position = (err.line() > 0).then(|| Position {
        line: err.line(),
        column: err.column(),
    });
    // serde_json appends " at line L column C" to its message.
    let text = err.to_string();
    let reason = match position {
        Some(position) => text
            .strip_suffix(&format!(" at {position}"))
            .map_or_else(|| text.clone(), str::to_owned),
        None => text,
    };
    match (err.classify(), position) {
        (serde_json::error::Category::Data, _) | (_, None) => ProtojsonError::Invalid {
            message_type,
            path: path.unwrap_or_else(|| "$".to_owned()),
            position,
            reason,
        },
        (_, Some(position)) => ProtojsonError::Syntax { position, reason },
    }
}

/// `$`, then `.key` (or `["odd key"]`) and `[index]` steps.
fn json_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::from("$");
    for segment in path {
        match segment {
            Segment::Seq { index } => push_index(&mut out, *index),
            Segment::Map { key } => push_key(&mut out, key),
            Segment::Enum { variant } => push_key(&mut out, variant),
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

mod parse;

#[cfg(test)]
pub(crate) mod tests;
