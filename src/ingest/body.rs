//! The body of `POST /v1/events`, read as a stream.
//!
//! A request is `{"events": [e0, e1, ...]}`. The body (at most
//! `--max-body-size`, already in memory) is walked once by serde_json,
//! without building a `serde_json::Value` of it: each event is kept as a
//! borrowed [`RawValue`], a slice of the body checked to be well-formed JSON,
//! and nothing else is allocated but the list of those slices (16 bytes an
//! event). The limits apply during that walk or before any event is parsed:
//!
//! - **count**: at the first event past `--max-events` the walk stops (the
//!   rest of the body is not read) and the request is refused as a whole
//!   ([`BodyError::TooManyEvents`], HTTP 413);
//! - **size**: an event whose JSON text is longer than `--max-event-size`
//!   is never parsed; it fails alone ([`EventError::TooLarge`], a `failed`
//!   entry of the answer), as an event over the limit once encoded does
//!   (the tee checks that one, after parsing).
//!
//! Then each event that passed is parsed into an [`Event`] on its own, through
//! [`protojson::parse_event_str`] (the one per-event entry point), so memory
//! is the body, the slices, the events kept so far, and the parse of one
//! event: never a tree of the whole body. An event over `--max-event-size`
//! once encoded is dropped as soon as it is parsed ([`EventError::Encoded`];
//! the tee would refuse it anyway), so only events that can be recorded
//! are held. One event that does not fit the `Event` message fails that
//! event only, with its JSON path and its line and column in the body.
//!
//! Parsing one event through prost-reflect costs far more than its JSON:
//! about 130 MiB at the peak for a 1 MiB event of 115,000 tiny
//! private-metadata keys. The HTTP server therefore decodes at most one
//! large body per core at a time ([`super::http`]).
//!
//! Other top-level keys are ignored (skipped without allocating), as they
//! were when the body was parsed into a `Value`. `"events"` given twice is
//! refused ([`BodyError::EventsTwice`]): which copy would win is not
//! something a sender should have to guess. An event nested deeper than
//! protobuf can decode (about 33 levels of objects, 48 of arrays) fails
//! alone, naming the limit, however deep it goes: the walk skips it as raw
//! text and the event parser stops at the limit. What the event parser
//! still refuses as syntax (a number out of range) is malformed JSON for the
//! whole request, with its line and column in the body.

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;

use prost::Message;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::event::validate::{Limits, ValidationError};
use crate::proto::telemetrygateway::v1::Event;
use crate::protojson::{self, Position, ProtojsonError};

/// A request body that cannot be read as a whole (HTTP 400 or 413).
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Not UTF-8 (JSON text must be). HTTP 400; the client fixes its
    /// encoder.
    #[error("request body is not valid UTF-8 (at byte {offset})")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// Not well-formed JSON, or nested too deep for the parser. HTTP 400;
    /// the client fixes the body.
    #[error("malformed JSON at {position}: {reason}")]
    Malformed {
        /// Where, in the body.
        position: Position,
        /// What the parser expected or found.
        reason: String,
    },
    /// Well-formed JSON, but not an object with an `events` key. HTTP 400.
    #[error("the body must be a JSON object with an \"events\" array")]
    NotAnObject,
    /// `events` is not an array. HTTP 400.
    #[error("\"events\" must be an array of events")]
    EventsNotArray,
    /// `events` appears more than once. HTTP 400; the client sends one.
    #[error("\"events\" appears more than once in the body; send one array")]
    EventsTwice,
    /// More events than `--max-events`: the walk stopped at the first one
    /// past the limit. HTTP 413; the client splits the request.
    #[error(
        "at least {} events exceed the limit of {limit} per request (--max-events)",
        limit.saturating_add(1)
    )]
    TooManyEvents {
        /// The limit.
        limit: usize,
    },
}

/// Why one event of a request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Its JSON text is over the event size limit: it was not parsed. The
    /// event is reported invalid; retrying it fails the same way.
    #[error(
        "event is {bytes} bytes of JSON, over the limit of {limit} bytes (max_event_bytes, --max-event-size)"
    )]
    TooLarge {
        /// Length of the event's JSON text.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// It does not fit the `Event` message. Reported invalid, with the
    /// field; the client fixes the event.
    #[error(transparent)]
    Protojson(#[from] ProtojsonError),
    /// Parsed, it is over the event size limit once encoded: dropped at
    /// once rather than held until the tee refuses it. Reported invalid.
    #[error(transparent)]
    Encoded(#[from] ValidationError),
}

/// An event that failed before reaching the tee.
#[derive(Debug)]
pub struct Unreadable {
    /// Its index in `events`.
    pub index: usize,
    /// Its `id`, when it had a string one.
    pub id: Option<String>,
    /// Why.
    pub error: EventError,
}

/// A request body, read.
#[derive(Debug, Default)]
pub struct Decoded {
    /// How many events the request holds.
    pub total: usize,
    /// The events that parsed, in order.
    pub events: Vec<Event>,
    /// `index_of[i]`: the index in the request of `events[i]`.
    pub index_of: Vec<usize>,
    /// The events that did not, in order.
    pub unreadable: Vec<Unreadable>,
}

/// Reads a request body: walks it (count limit), then parses each event
/// within the size limit. See the module docs.
pub fn decode(body: &[u8], limits: &Limits) -> Result<Decoded, BodyError> {
    let text = std::str::from_utf8(body).map_err(|e| BodyError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let raws = scan(text, limits.max_events)?;
    let mut out = Decoded {
        total: raws.len(),
        events: Vec::with_capacity(raws.len()),
        index_of: Vec::with_capacity(raws.len()),
        unreadable: Vec::new(),
    };
    let mut lines = LineCursor::new(text);
    for (index, raw) in raws.into_iter().enumerate() {
        let json = raw.get();
        let parsed = if json.len() > limits.max_event_bytes {
            Err(EventError::TooLarge {
                bytes: json.len(),
                limit: limits.max_event_bytes,
            })
        } else {
            protojson::parse_event_str(json).map_err(|mut e| {
                relocate(&mut e, lines.start_of(offset_in(text, json)));
                EventError::from(e)
            })
        };
        match parsed {
            Ok(event) if event.encoded_len() > limits.max_event_bytes => {
                out.unreadable.push(Unreadable {
                    index,
                    id: (!event.id.is_empty()).then(|| event.id.clone()),
                    error: EventError::Encoded(ValidationError::TooLarge {
                        limit: limits.max_event_bytes,
                        actual: event.encoded_len(),
                    }),
                });
            }
            Ok(event) => {
                out.events.push(event);
                out.index_of.push(index);
            }
            // The walk checked the syntax; what the parser still refuses as
            // syntax (a number out of range) is malformed JSON for the whole
            // request, as it always was. Nesting past protobuf's limit is
            // not syntax: it fails the event alone (module docs).
            Err(EventError::Protojson(ProtojsonError::Syntax { position, reason })) => {
                return Err(BodyError::Malformed { position, reason });
            }
            Err(error) => out.unreadable.push(Unreadable {
                index,
                id: event_id(json),
                error,
            }),
        }
    }
    Ok(out)
}

/// Walks `{"events": [...]}` and returns each event's raw JSON, refusing
/// at the first event past `max_events`.
pub fn scan(text: &str, max_events: usize) -> Result<Vec<&RawValue>, BodyError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let mut state = Scan::default();
    let walked = de::Deserializer::deserialize_map(
        &mut de,
        BodyVisitor {
            state: &mut state,
            max_events,
        },
    )
    .and_then(|()| de.end());
    let Err(e) = walked else {
        return state.events.ok_or(BodyError::NotAnObject);
    };
    if let Some(refusal) = state.refusal {
        return Err(refusal);
    }
    // A type error can only come from the body itself or from `events`:
    // events are raw JSON and other keys are skipped.
    let wrong_type = e.classify() == serde_json::error::Category::Data;
    Err(if wrong_type && !state.in_object {
        BodyError::NotAnObject
    } else if wrong_type && state.in_events {
        BodyError::EventsNotArray
    } else {
        malformed(&e)
    })
}

fn malformed(e: &serde_json::Error) -> BodyError {
    let position = Position {
        line: e.line(),
        column: e.column(),
    };
    // serde_json appends " at line L column C" to its message.
    let text = e.to_string();
    let reason = text
        .strip_suffix(&format!(" at {position}"))
        .map_or_else(|| text.clone(), str::to_owned);
    BodyError::Malformed { position, reason }
}

/// What the walk found, and why it stopped early.
#[derive(Default)]
struct Scan<'de> {
    events: Option<Vec<&'de RawValue>>,
    refusal: Option<BodyError>,
    in_object: bool,
    in_events: bool,
}

struct BodyVisitor<'s, 'de> {
    state: &'s mut Scan<'de>,
    max_events: usize,
}

impl<'de> Visitor<'de> for BodyVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with an \"events\" array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.state.in_object = true;
        while let Some(is_events) = map.next_key_seed(IsEvents)? {
            if !is_events {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if self.state.events.is_some() {
                self.state.refusal = Some(BodyError::EventsTwice);
                return Err(de::Error::custom("\"events\" twice"));
            }
            self.state.in_events = true;
            let events = map.next_value_seed(EventsSeed {
                refusal: &mut self.state.refusal,
                max_events: self.max_events,
            })?;
            self.state.in_events = false;
            self.state.events = Some(events);
        }
        Ok(())
    }
}

/// A key: is it `events`? (Reads it without allocating unless escaped.)
struct IsEvents;

impl<'de> DeserializeSeed<'de> for IsEvents {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for IsEvents {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == "events")
    }
}

struct EventsSeed<'s> {
    refusal: &'s mut Option<BodyError>,
    max_events: usize,
}

impl<'de> DeserializeSeed<'de> for EventsSeed<'_> {
    type Value = Vec<&'de RawValue>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EventsSeed<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // No capacity from size hints: the list grows with what is read.
        let mut events = Vec::new();
        loop {
            if events.len() >= self.max_events {
                // One more element is refused before it is read.
                match seq.next_element_seed(Refuse {
                    refusal: &mut *self.refusal,
                    limit: self.max_events,
                })? {
                    None => return Ok(events),
                    Some(never) => match never {},
                }
            }
            match seq.next_element::<&'de RawValue>()? {
                Some(raw) => events.push(raw),
                None => return Ok(events),
            }
        }
    }
}

/// The element past the count limit: refuses without reading it.
struct Refuse<'s> {
    refusal: &'s mut Option<BodyError>,
    limit: usize,
}

impl<'de> DeserializeSeed<'de> for Refuse<'_> {
    type Value = Infallible;

    fn deserialize<D: de::Deserializer<'de>>(self, _: D) -> Result<Infallible, D::Error> {
        *self.refusal = Some(BodyError::TooManyEvents { limit: self.limit });
        Err(de::Error::custom("too many events"))
    }
}

/// The `id` of an event that could not be read, when it is an object with a
/// string `id`: read from the raw JSON, skipping everything else without
/// allocating.
fn event_id(json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly<'a> {
        #[serde(borrow)]
        id: Option<Cow<'a, str>>,
    }
    if !json.starts_with('{') {
        return None;
    }
    serde_json::from_str::<IdOnly<'_>>(json)
        .ok()?
        .id
        .map(Cow::into_owned)
}

/// Byte offset of `part` (a slice of `whole`) in `whole`.
fn offset_in(whole: &str, part: &str) -> usize {
    (part.as_ptr() as usize)
        .checked_sub(whole.as_ptr() as usize)
        .filter(|&o| o <= whole.len())
        .unwrap_or(0)
}

/// Moves a position relative to an event's text into the body.
fn relocate(e: &mut ProtojsonError, start: Start) {
    if let ProtojsonError::Invalid {
        position: Some(p), ..
    }
    | ProtojsonError::Syntax { position: p, .. } = e
    {
        *p = if p.line <= 1 {
            Position {
                line: start.line,
                column: start.column + p.column,
            }
        } else {
            Position {
                line: start.line + p.line - 1,
                column: p.column,
            }
        };
    }
}

/// Where an event starts: its line (from 1), and the bytes before it on
/// that line (serde_json's columns count bytes since the last newline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Start {
    line: usize,
    column: usize,
}

/// Line numbers of increasing offsets, in one pass over the text overall.
struct LineCursor<'a> {
    text: &'a [u8],
    offset: usize,
    line: usize,
    line_start: usize,
}

impl<'a> LineCursor<'a> {
    fn new(text: &'a str) -> LineCursor<'a> {
        LineCursor {
            text: text.as_bytes(),
            offset: 0,
            line: 1,
            line_start: 0,
        }
    }

    fn start_of(&mut self, offset: usize) -> Start {
        if offset < self.offset {
            // Not expected (events come in order), but correct anyway.
            (self.offset, self.line, self.line_start) = (0, 1, 0);
        }
        let end = offset.min(self.text.len());
        for (i, b) in self
            .text
            .get(self.offset..end)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if *b == b'\n' {
                self.line += 1;
                self.line_start = self.offset + i + 1;
            }
        }
        self.offset = end;
        Start {
            line: self.line,
            column: end - self.line_start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_events: usize, max_event_bytes: usize) -> Limits {
        Limits {
            max_events,
            max_event_bytes,
            ..Limits::default()
        }
    }

    #[test]
    fn events_are_kept_as_their_raw_json() {
        let raws = scan(
            r#"{"x": [1, {"a": 2}], "events": [ {"id":"a"} , 5 ], "y": null}"#,
            10,
        )
        .unwrap();
        let texts: Vec<&str> = raws.iter().map(|r| r.get()).collect();
        assert_eq!(texts, vec![r#"{"id":"a"}"#, "5"]);
    }

    #[test]
    fn the_walk_stops_at_the_first_event_past_the_count_limit() {
        // Garbage after the third event is never read.
        let e = scan(r#"{"events": [1, 2, 3 this is not json"#, 2).unwrap_err();
        assert!(matches!(e, BodyError::TooManyEvents { limit: 2 }), "{e:?}");
        assert!(
            e.to_string()
                .contains("at least 3 events exceed the limit of 2 per request (--max-events)"),
            "{e}"
        );
        assert_eq!(scan(r#"{"events": [1, 2]}"#, 2).unwrap().len(), 2);
    }

    #[test]
    fn bodies_of_the_wrong_shape_are_named() {
        for body in ["[1]", "42", "\"events\"", "{}", r#"{"other": []}"#] {
            assert!(
                matches!(scan(body, 10), Err(BodyError::NotAnObject)),
                "{body}"
            );
        }
        for body in [
            r#"{"events": null}"#,
            r#"{"events": {"a": 1}}"#,
            r#"{"events": "x"}"#,
        ] {
            assert!(
                matches!(scan(body, 10), Err(BodyError::EventsNotArray)),
                "{body}"
            );
        }
        assert!(matches!(
            scan(r#"{"events": [], "ev\u0065nts": []}"#, 10),
            Err(BodyError::EventsTwice)
        ));
    }

    #[test]
    fn malformed_json_keeps_its_line_and_column() {
        let e = scan("{\"events\": [\n  {\"a\": 1,,}\n]}", 10).unwrap_err();
        let BodyError::Malformed { position, reason } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(position.line, 2);
        assert!(!reason.contains(" at line"), "{reason}");
        let e = scan("", 10).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("malformed JSON at line 1 column 0"),
            "{e}"
        );
        let e = scan(r#"{"events": []} x"#, 10).unwrap_err();
        assert!(e.to_string().contains("trailing characters"), "{e}");
    }

    #[test]
    fn an_event_over_the_size_limit_fails_alone_unparsed_with_its_id() {
        let body = format!(
            r#"{{"events": [{{"feature": "a", "action": "b"}}, {{"id": "big", "feature": "{}"}}]}}"#,
            "x".repeat(100)
        );
        let d = decode(body.as_bytes(), &limits(10, 64)).unwrap();
        assert_eq!(d.total, 2);
        assert_eq!(d.index_of, vec![0]);
        assert_eq!(d.unreadable.len(), 1);
        let u = &d.unreadable[0];
        assert_eq!((u.index, u.id.as_deref()), (1, Some("big")));
        let msg = u.error.to_string();
        assert!(
            msg.contains("over the limit of 64 bytes") && msg.contains("--max-event-size"),
            "{msg}"
        );
    }

    #[test]
    fn an_event_over_the_size_limit_once_encoded_is_dropped_as_soon_as_it_is_parsed() {
        // Numbers are 9 bytes encoded against 1 of JSON.
        let keys: Vec<String> = (0..100).map(|i| format!("\"k{i:02}\":0")).collect();
        let event = format!(
            r#"{{"id": "e", "feature": "a", "action": "b", "parameters": {{"privateMetadata": {{{}}}}}}}"#,
            keys.join(",")
        );
        assert!(event.len() < 1000, "{}", event.len());
        let body = format!(r#"{{"events": [{event}]}}"#);
        let d = decode(body.as_bytes(), &limits(10, 1000)).unwrap();
        assert!(d.events.is_empty());
        let u = &d.unreadable[0];
        assert_eq!(u.id.as_deref(), Some("e"));
        assert!(
            matches!(
                u.error,
                EventError::Encoded(ValidationError::TooLarge { limit: 1000, .. })
            ),
            "{:?}",
            u.error
        );
    }

    #[test]
    fn a_bad_event_is_located_in_the_body() {
        let body = "{\"events\": [\n  {\"feature\": \"a\"},\n  {\"id\": \"x\", \"feature\": 5}\n]}";
        let d = decode(body.as_bytes(), &limits(10, 1 << 20)).unwrap();
        assert_eq!(d.unreadable.len(), 1);
        let u = &d.unreadable[0];
        assert_eq!((u.index, u.id.as_deref()), (1, Some("x")));
        let msg = u.error.to_string();
        // `5` is byte 26 of line 3.
        assert!(
            msg.contains("$.feature") && msg.contains("line 3 column 26"),
            "{msg}"
        );
    }

    #[test]
    fn ids_of_unreadable_events_are_read_only_from_objects_with_a_string_id() {
        assert_eq!(
            event_id(r#"{"a": [1], "id": "x\ny"}"#).as_deref(),
            Some("x\ny")
        );
        assert_eq!(event_id(r#"{"id": 5}"#), None);
        assert_eq!(event_id(r#"["x"]"#), None);
        assert_eq!(event_id("5"), None);
    }

    #[test]
    fn nesting_500_deep_inside_an_event_fails_that_event_alone() {
        let body = format!(
            "{{\"events\": [{{\"parameters\": {{\"privateMetadata\": {{\"a\": {}{}}}}}}}]}}",
            "[".repeat(500),
            "]".repeat(500)
        );
        let decoded = decode(body.as_bytes(), &limits(10, 1 << 20)).unwrap();
        assert!(decoded.events.is_empty());
        assert_eq!(decoded.unreadable.len(), 1);
        let e = decoded.unreadable[0].error.to_string();
        assert!(e.contains("recursion limit"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_refused_with_its_offset() {
        let e = decode(b"{\"events\": [\xff]}", &limits(10, 100)).unwrap_err();
        assert!(matches!(e, BodyError::InvalidUtf8 { offset: 12 }), "{e:?}");
    }
}
