//! Validation and defaults for an incoming event.
//!
//! Two callers, two rules for the id and timestamp:
//!
//! - The **gateway** takes events as sent: [`validate_event`] requires an id
//!   and a timestamp (Sourcegraph's gateway refuses events without them).
//! - The **sidecar** fills them first: [`prepare_event`] runs
//!   [`fill_defaults`] (id: UUID v7, Sourcegraph's current generator;
//!   timestamp: now) and then [`validate_event`].
//!
//! Both apply Sourcegraph's feature/action rules ([`validate_feature_action`])
//! and our [`Limits`]: encoded size, private-metadata nesting depth, events
//! per request. Every error names the field or limit and the values, so the
//! sender can fix the event.

use std::fmt;

use prost::Message;
use prost_types::value::Kind;
use prost_types::{Struct, Timestamp, Value};
use serde::{Deserialize, Serialize};

use crate::clock::UnixNanos;
use crate::proto::telemetrygateway::v1::Event;

/// Default [`Limits::max_event_bytes`]: 1 MiB, Sourcegraph's export chunk size.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Default [`Limits::max_events`]: 10,000 events per request or payload.
pub const DEFAULT_MAX_EVENTS: usize = 10_000;
/// Default [`Limits::max_depth`]: 64 levels of private-metadata nesting.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// Longest feature or action, in bytes (Sourcegraph's; 64 itself is allowed).
pub const MAX_FEATURE_ACTION_BYTES: usize = 64;
/// Earliest protobuf timestamp, 0001-01-01T00:00:00Z, in Unix seconds
/// ([`crate::timestamp::MIN_SECONDS`]).
pub const MIN_TIMESTAMP_SECONDS: i64 = crate::timestamp::MIN_SECONDS;
/// Latest protobuf timestamp second, 9999-12-31T23:59:59Z, in Unix seconds
/// ([`crate::timestamp::MAX_SECONDS`]).
pub const MAX_TIMESTAMP_SECONDS: i64 = crate::timestamp::MAX_SECONDS;

/// Size limits applied to incoming events. Each one, when exceeded, is
/// reported by a [`ValidationError`] that names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest event, protobuf-encoded, in bytes. Default
    /// [`DEFAULT_MAX_EVENT_BYTES`] (1 MiB).
    pub max_event_bytes: usize,
    /// Most events in one request or payload. Default [`DEFAULT_MAX_EVENTS`]
    /// (10,000).
    pub max_events: usize,
    /// Deepest private-metadata nesting: a flat object is depth 1, each
    /// nested object or list adds one. Default [`DEFAULT_MAX_DEPTH`] (64).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_events: DEFAULT_MAX_EVENTS,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// An event field named in a [`ValidationError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventField {
    /// `id`.
    Id,
    /// `timestamp`.
    Timestamp,
    /// `feature`.
    Feature,
    /// `action`.
    Action,
}

impl fmt::Display for EventField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventField::Id => "id",
            EventField::Timestamp => "timestamp",
            EventField::Feature => "feature",
            EventField::Action => "action",
        })
    }
}

/// How a feature or action breaks `^[a-z][a-zA-Z-\.]+$`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FormatProblem {
    /// A single character; at least two are needed.
    TooShort,
    /// The first character is not a lowercase ASCII letter.
    FirstNotLowercase {
        /// The character found.
        found: char,
    },
    /// A later character is not an ASCII letter, `-` or `.`.
    InvalidChar {
        /// The character found.
        found: char,
        /// Its byte offset.
        offset: usize,
    },
}

impl fmt::Display for FormatProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatProblem::TooShort => f.write_str("it must be at least 2 characters long"),
            FormatProblem::FirstNotLowercase { found } => {
                write!(f, "it must start with a lowercase letter, not {found:?}")
            }
            FormatProblem::InvalidChar { found, offset } => write!(
                f,
                "{found:?} at byte {offset} is not allowed (only letters, '-' and '.')"
            ),
        }
    }
}

/// Why an event was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A required field is empty or absent. The event is invalid
    /// (reported, or dead-lettered over gRPC); the sender fixes it.
    #[error("event {field} is required")]
    Missing {
        /// The field.
        field: EventField,
    },
    /// A feature or action is longer than [`MAX_FEATURE_ACTION_BYTES`].
    /// Invalid, as above.
    #[error("event {field} is {actual} bytes long, over the limit of {limit} bytes")]
    TooLong {
        /// The field.
        field: EventField,
        /// The limit, in bytes.
        limit: usize,
        /// The field's length, in bytes.
        actual: usize,
    },
    /// A feature or action does not match `^[a-z][a-zA-Z-\.]+$`. Invalid,
    /// as above.
    #[error(
        "event {field} {value:?} is invalid: {problem} (it must start with a lowercase letter and contain only letters, '-' and '.')"
    )]
    BadFormat {
        /// The field.
        field: EventField,
        /// The value given (at most [`MAX_FEATURE_ACTION_BYTES`] long).
        value: String,
        /// What is wrong with it.
        problem: FormatProblem,
    },
    /// The timestamp is outside what protobuf (and RFC 3339) can express.
    /// Invalid, as above.
    #[error(
        "event timestamp ({seconds} s, {nanos} ns since the Unix epoch) is outside 0001-01-01T00:00:00Z..=9999-12-31T23:59:59.999999999Z or has nanos outside 0..=999999999"
    )]
    TimestampOutOfRange {
        /// The timestamp's seconds.
        seconds: i64,
        /// The timestamp's nanos.
        nanos: i32,
    },
    /// Private metadata is nested deeper than [`Limits::max_depth`].
    /// Invalid; the sender flattens it or the operator raises the limit.
    #[error(
        "event private metadata is nested {actual} levels deep, over the limit of {limit} (max_depth)"
    )]
    TooDeep {
        /// The limit.
        limit: usize,
        /// The nesting depth found.
        actual: usize,
    },
    /// The encoded event is larger than [`Limits::max_event_bytes`].
    /// Invalid; the sender shrinks it or the operator raises the limit.
    #[error("event is {actual} bytes encoded, over the limit of {limit} bytes (max_event_bytes)")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
        /// The encoded size, in bytes.
        actual: usize,
    },
    /// A request or payload holds more than [`Limits::max_events`] events.
    /// The whole request is refused; the sender splits it.
    #[error("{actual} events in one request, over the limit of {limit} (max_events)")]
    TooManyEvents {
        /// The limit.
        limit: usize,
        /// The number of events.
        actual: usize,
    },
}

/// Sourcegraph's feature/action rules: both required, each at most
/// [`MAX_FEATURE_ACTION_BYTES`] bytes, each matching `^[a-z][a-zA-Z-\.]+$`.
/// Checked in Sourcegraph's order: presence, lengths, then formats.
pub fn validate_feature_action(feature: &str, action: &str) -> Result<(), ValidationError> {
    for (field, value) in [(EventField::Feature, feature), (EventField::Action, action)] {
        if value.is_empty() {
            return Err(ValidationError::Missing { field });
        }
    }
    for (field, value) in [(EventField::Feature, feature), (EventField::Action, action)] {
        if value.len() > MAX_FEATURE_ACTION_BYTES {
            return Err(ValidationError::TooLong {
                field,
                limit: MAX_FEATURE_ACTION_BYTES,
                actual: value.len(),
            });
        }
    }
    for (field, value) in [(EventField::Feature, feature), (EventField::Action, action)] {
        check_format(value).map_err(|problem| ValidationError::BadFormat {
            field,
            value: value.to_owned(),
            problem,
        })?;
    }
    Ok(())
}

/// `^[a-z][a-zA-Z-\.]+$`, by hand.
fn check_format(value: &str) -> Result<(), FormatProblem> {
    let mut chars = value.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_lowercase() => {}
        Some((_, found)) => return Err(FormatProblem::FirstNotLowercase { found }),
        None => return Err(FormatProblem::TooShort),
    }
    let mut rest = 0usize;
    for (offset, found) in chars {
        if !(found.is_ascii_alphabetic() || found == '-' || found == '.') {
            return Err(FormatProblem::InvalidChar { found, offset });
        }
        rest += 1;
    }
    if rest == 0 {
        return Err(FormatProblem::TooShort);
    }
    Ok(())
}

/// Checks a whole event as the gateway receives it: id, feature/action,
/// timestamp (present and in range), private-metadata depth, encoded size.
pub fn validate_event(event: &Event, limits: &Limits) -> Result<(), ValidationError> {
    if event.id.is_empty() {
        return Err(ValidationError::Missing {
            field: EventField::Id,
        });
    }
    validate_feature_action(&event.feature, &event.action)?;
    match &event.timestamp {
        None => {
            return Err(ValidationError::Missing {
                field: EventField::Timestamp,
            });
        }
        Some(ts) => check_timestamp(ts)?,
    }
    // Depth before size: measuring the size walks the nesting recursively,
    // the depth check does not.
    if let Some(private) = event
        .parameters
        .as_ref()
        .and_then(|p| p.private_metadata.as_ref())
    {
        let actual = struct_depth(private);
        if actual > limits.max_depth {
            return Err(ValidationError::TooDeep {
                limit: limits.max_depth,
                actual,
            });
        }
    }
    let actual = event.encoded_len();
    if actual > limits.max_event_bytes {
        return Err(ValidationError::TooLarge {
            limit: limits.max_event_bytes,
            actual,
        });
    }
    Ok(())
}

fn check_timestamp(ts: &Timestamp) -> Result<(), ValidationError> {
    if crate::timestamp::is_valid(ts.seconds, ts.nanos) {
        Ok(())
    } else {
        Err(ValidationError::TimestampOutOfRange {
            seconds: ts.seconds,
            nanos: ts.nanos,
        })
    }
}

/// Checks the number of events in one request or payload.
pub fn check_event_count(count: usize, limits: &Limits) -> Result<(), ValidationError> {
    if count > limits.max_events {
        return Err(ValidationError::TooManyEvents {
            limit: limits.max_events,
            actual: count,
        });
    }
    Ok(())
}

/// The nesting depth of a private-metadata object: 1 for a flat object,
/// plus one per nested object or list. Walks with an explicit stack, so any
/// depth is measured without recursion.
pub fn struct_depth(s: &Struct) -> usize {
    let mut deepest = 1;
    let mut stack: Vec<(&Value, usize)> = s.fields.values().map(|v| (v, 1)).collect();
    while let Some((value, parent_depth)) = stack.pop() {
        let depth = parent_depth + 1;
        match &value.kind {
            Some(Kind::StructValue(inner)) => {
                deepest = deepest.max(depth);
                stack.extend(inner.fields.values().map(|v| (v, depth)));
            }
            Some(Kind::ListValue(list)) => {
                deepest = deepest.max(depth);
                stack.extend(list.values.iter().map(|v| (v, depth)));
            }
            _ => {}
        }
    }
    deepest
}

/// A new event id: a UUID v7 string (time-ordered; Sourcegraph's current
/// generator).
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Fills what the sidecar may fill: an empty id with `new_id()` (called only
/// then; production passes [`new_event_id`]) and an absent timestamp with
/// `now`.
pub fn fill_defaults(event: &mut Event, now: UnixNanos, new_id: impl FnOnce() -> String) {
    if event.id.is_empty() {
        event.id = new_id();
    }
    if event.timestamp.is_none() {
        let (seconds, nanos) = now.to_seconds_nanos();
        event.timestamp = Some(Timestamp { seconds, nanos });
    }
}

/// The sidecar path: [`fill_defaults`], then [`validate_event`].
pub fn prepare_event(
    event: &mut Event,
    now: UnixNanos,
    new_id: impl FnOnce() -> String,
    limits: &Limits,
) -> Result<(), ValidationError> {
    fill_defaults(event, now, new_id);
    validate_event(event, limits)
}

#[cfg(test)]
mod tests;
