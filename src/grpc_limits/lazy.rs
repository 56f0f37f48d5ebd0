//! `RecordEventsRequest` decoded lazily: the metadata is decoded, the
//! events are counted and left as bytes until the call asks for them.
//!
//! ```text
//! RecordEventsRequest (the message, one Bytes, zero-copy from tonic's buffer)
//!  ├ 1 metadata  RecordEventsRequestMetadata   decoded (strings only: bounded by the message)
//!  ├ 2 events    EventsPayload                 walked, not decoded: its field-1 records
//!  │   ├ 1 Event ─┐                            are counted and their lengths checked,
//!  │   ├ 1 Event  ├ RawEvents::count()         nothing is allocated
//!  │   └ …       ─┘
//!  └ n unknown   skipped
//! RawEvents::events() then decodes one Event at a time, on demand.
//! ```
//!
//! **Same answers as prost.** The walk uses prost's own primitives
//! (`decode_key`, `skip_field`, `message::merge`) with the same recursion
//! context prost would have at each level, and follows prost's oneof rules:
//! the last of metadata/events wins, and consecutive events fields are
//! merged (their events concatenated). Unknown fields are skipped at every
//! level, never an error. A message that prost decodes is decoded here into
//! the same metadata and the same events; a message prost refuses is
//! refused here too, either by [`LazyRecordEventsRequest::decode`] (its
//! structure, and the contents of events that a later metadata field
//! replaces, which prost decodes too) or by the events iterator (an event's
//! contents). The property
//! tests below check both against prost's full decode. Error messages are
//! prost's, with the same field path; only where prost would report an
//! event's contents before a later structural error does the structural
//! error come first here.
//!
//! **Memory.** Decoding holds the message's bytes and, for metadata, its
//! decoded strings; the walk keeps a counter. A 16 MiB message of empty
//! events (8 M two-byte records, ~664 bytes each as a prost `Event`, so
//! 5.5 GB decoded) costs 16 MiB and a count, and the caller refuses it
//! before any event exists.

use bytes::{Buf, BufMut, Bytes};
use prost::DecodeError;
use prost::encoding::{
    DecodeContext, WireType, check_wire_type, decode_key, decode_varint, encode_varint, message,
    skip_field,
};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};

use crate::proto::telemetrygateway::v1::{
    Event, RecordEventsRequestMetadata, RecordEventsResponse,
};

/// `RecordEventsRequest` field 1.
const METADATA: u32 = 1;
/// `RecordEventsRequest` field 2.
const EVENTS: u32 = 2;
/// `EventsPayload` field 1.
const EVENT: u32 = 1;

/// Pushes prost's field path onto an error, as prost's generated code does.
fn at(message: &'static str, field: &'static str) -> impl FnOnce(DecodeError) -> DecodeError {
    move |mut error| {
        error.push(message, field);
        error
    }
}

/// A `RecordEventsRequest` whose events are not decoded yet.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LazyRecordEventsRequest {
    /// The oneof `payload`, as prost would decode it, events left raw.
    pub payload: Option<LazyPayload>,
}

/// The payload of a [`LazyRecordEventsRequest`].
#[derive(Clone, Debug, PartialEq)]
pub enum LazyPayload {
    /// Stream metadata, decoded.
    Metadata(RecordEventsRequestMetadata),
    /// An events payload, counted but not decoded.
    Events(RawEvents),
}

impl LazyRecordEventsRequest {
    /// Decodes the top level of an encoded `RecordEventsRequest`: the
    /// metadata is decoded, the events payload is walked (counted, its
    /// records' lengths checked) and kept as bytes.
    pub fn decode(message: Bytes) -> Result<LazyRecordEventsRequest, DecodeError> {
        let ctx = DecodeContext::default();
        let total = message.len();
        let mut buf: &[u8] = &message;
        let mut payload: Option<LazyPayload> = None;
        while buf.has_remaining() {
            let start = total - buf.remaining();
            let (tag, wire_type) = decode_key(&mut buf)?;
            match tag {
                METADATA => {
                    if let Some(LazyPayload::Events(superseded)) = &payload {
                        // prost decodes the events this field replaces, and
                        // refuses the message if one is invalid: so do we,
                        // one event at a time, keeping none.
                        for event in superseded.events() {
                            event?;
                        }
                    }
                    if let Some(LazyPayload::Metadata(metadata)) = &mut payload {
                        message::merge(wire_type, metadata, &mut buf, ctx.clone())
                    } else {
                        let mut metadata = RecordEventsRequestMetadata::default();
                        message::merge(wire_type, &mut metadata, &mut buf, ctx.clone())
                            .map(|()| payload = Some(LazyPayload::Metadata(metadata)))
                    }
                    .map_err(at("RecordEventsRequest", "payload"))?;
                }
                EVENTS => {
                    let mut walk = PayloadWalk::default();
                    message::merge(wire_type, &mut walk, &mut buf, ctx.clone())
                        .map_err(at("RecordEventsRequest", "payload"))?;
                    match &mut payload {
                        Some(LazyPayload::Events(events)) => {
                            events.count = events.count.saturating_add(walk.events);
                        }
                        _ => {
                            payload = Some(LazyPayload::Events(RawEvents {
                                message: message.clone(),
                                from: start,
                                count: walk.events,
                            }));
                        }
                    }
                }
                _ => skip_field(wire_type, tag, &mut buf, ctx.clone())?,
            }
        }
        Ok(LazyRecordEventsRequest { payload })
    }
}

/// The events of one payload, still encoded: the message they came in and
/// where their run of events fields starts (every field 2 from there to the
/// end of the message belongs to this payload: a metadata field after it
/// would have replaced it).
#[derive(Clone, PartialEq)]
pub struct RawEvents {
    message: Bytes,
    from: usize,
    count: usize,
}

impl std::fmt::Debug for RawEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawEvents")
            .field("count", &self.count)
            .field("bytes", &(self.message.len() - self.from))
            .finish()
    }
}

impl RawEvents {
    /// How many events the payload holds (counted without decoding any).
    pub fn count(&self) -> usize {
        self.count
    }

    /// The encoded bytes the payload spans (its fields and anything
    /// between them).
    pub fn encoded_len(&self) -> usize {
        self.message.len() - self.from
    }

    /// The events, decoded one at a time as the iterator is advanced. An
    /// event that does not decode yields prost's error (the payload, as a
    /// whole, is then invalid, as prost would have said of the message) and
    /// ends the iteration.
    pub fn events(&self) -> Events {
        Events {
            message: self.message.clone(),
            top: self.from,
            segment: None,
            left: self.count,
            failed: false,
            scratch: Vec::new(),
        }
    }

    /// All the events, or the first decoding error.
    pub fn decode_all(&self) -> Result<Vec<Event>, DecodeError> {
        let mut out = Vec::with_capacity(self.count);
        for event in self.events() {
            out.push(event?);
        }
        Ok(out)
    }
}

/// Iterator over the events of a [`RawEvents`], decoding each one when it
/// is reached.
#[derive(Debug)]
pub struct Events {
    message: Bytes,
    /// Position of the next top-level field.
    top: usize,
    /// The events field being walked: next position, end.
    segment: Option<(usize, usize)>,
    left: usize,
    failed: bool,
    /// The record being decoded, after its length (see [`decode_event`]).
    scratch: Vec<u8>,
}

impl Iterator for Events {
    type Item = Result<Event, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.failed {
            return None;
        }
        match self.step() {
            Ok(Some(event)) => {
                self.left -= 1;
                Some(Ok(event))
            }
            Ok(None) => {
                self.left = 0;
                None
            }
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            (0, Some(0))
        } else {
            (0, Some(self.left))
        }
    }
}

impl Events {
    /// Finds and decodes the next event. The structure was checked when the
    /// message was decoded, so the walk's own errors cannot happen; they
    /// are still returned, not assumed away.
    fn step(&mut self) -> Result<Option<Event>, DecodeError> {
        let bytes: &[u8] = &self.message;
        let total = bytes.len();
        let ctx = DecodeContext::default();
        loop {
            if let Some((pos, end)) = self.segment
                && pos < end
            {
                let mut buf = bytes.get(pos..end).unwrap_or_default();
                let (tag, wire_type) = decode_key(&mut buf)?;
                skip_field(wire_type, tag, &mut buf, ctx.clone())?;
                let next = end - buf.remaining();
                self.segment = Some((next, end));
                if tag == EVENT {
                    let record = bytes.get(pos..next).unwrap_or_default();
                    return decode_event(record, &mut self.scratch).map(Some);
                }
                continue;
            }
            self.segment = None;
            if self.top >= total {
                return Ok(None);
            }
            let mut buf = bytes.get(self.top..).unwrap_or_default();
            let (tag, wire_type) = decode_key(&mut buf)?;
            if tag == EVENTS {
                let mut length = buf;
                decode_varint(&mut length)?;
                let start = total - length.remaining();
                skip_field(wire_type, tag, &mut buf, ctx.clone())?;
                let end = total - buf.remaining();
                self.segment = Some((start, end));
                self.top = end;
            } else {
                skip_field(wire_type, tag, &mut buf, ctx.clone())?;
                self.top = total - buf.remaining();
            }
        }
    }
}

/// Decodes one `EventsPayload` field-1 record (key, length, event) with
/// the recursion context prost's full decode has there: the record is
/// merged into [`OneEvent`] as if it were a payload's only field, itself
/// the message's events field.
///
/// The record is copied after its length into `scratch` (kept by the
/// iterator across events): prost reads one contiguous slice through its
/// fast paths, a chain of two buffers through the generic ones (the
/// gateway bench's `decode` scenario: lazy/prost 1.08-1.20 with the chain,
/// 1.00-1.04 with the copy).
fn decode_event(record: &[u8], scratch: &mut Vec<u8>) -> Result<Event, DecodeError> {
    scratch.clear();
    encode_varint(record.len() as u64, scratch);
    scratch.extend_from_slice(record);
    let mut buf: &[u8] = scratch;
    let mut one = OneEvent::default();
    message::merge(
        WireType::LengthDelimited,
        &mut one,
        &mut buf,
        DecodeContext::default(),
    )
    .map_err(at("RecordEventsRequest", "payload"))?;
    Ok(one.event)
}

/// Walks an `EventsPayload`: counts its events and checks their records,
/// without decoding them; skips unknown fields.
#[derive(Debug, Default)]
struct PayloadWalk {
    events: usize,
}

impl prost::Message for PayloadWalk {
    fn encode_raw(&self, _buf: &mut impl BufMut) {}

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        if tag == EVENT {
            // What prost checks of an event before decoding its fields: a
            // length-delimited record that fits.
            check_wire_type(WireType::LengthDelimited, wire_type)
                .and_then(|()| skip_field(wire_type, tag, buf, ctx))
                .map_err(at("EventsPayload", "events"))?;
            self.events = self.events.saturating_add(1);
            Ok(())
        } else {
            skip_field(wire_type, tag, buf, ctx)
        }
    }

    fn encoded_len(&self) -> usize {
        0
    }

    fn clear(&mut self) {
        self.events = 0;
    }
}

/// An `EventsPayload` holding one event: decodes a record found by the
/// walk.
#[derive(Debug, Default)]
struct OneEvent {
    event: Event,
}

impl prost::Message for OneEvent {
    fn encode_raw(&self, _buf: &mut impl BufMut) {}

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        if tag == EVENT {
            message::merge(wire_type, &mut self.event, buf, ctx)
                .map_err(at("EventsPayload", "events"))
        } else {
            skip_field(wire_type, tag, buf, ctx)
        }
    }

    fn encoded_len(&self) -> usize {
        0
    }

    fn clear(&mut self) {
        self.event = Event::default();
    }
}

/// The tonic codec of `RecordEvents` on our servers: requests decoded into
/// [`LazyRecordEventsRequest`] (zero-copy from tonic's buffer), responses
/// encoded by prost.
#[derive(Clone, Copy, Debug, Default)]
pub struct LazyCodec;

/// The decoder half of [`LazyCodec`].
#[derive(Clone, Copy, Debug, Default)]
pub struct LazyDecoder;

impl Codec for LazyCodec {
    type Encode = RecordEventsResponse;
    type Decode = LazyRecordEventsRequest;
    type Encoder = tonic_prost::ProstEncoder<RecordEventsResponse>;
    type Decoder = LazyDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        LazyDecoder
    }
}

impl Decoder for LazyDecoder {
    type Item = LazyRecordEventsRequest;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        let message = buf.copy_to_bytes(buf.remaining());
        LazyRecordEventsRequest::decode(message)
            .map(Some)
            .map_err(|e| decode_status(&e))
    }
}

/// The status of a message or event that does not decode: `INTERNAL` with
/// prost's message, as tonic's prost codec answers (and gRPC's status-code
/// guide says for parse errors).
pub fn decode_status(error: &DecodeError) -> Status {
    Status::internal(error.to_string())
}

#[cfg(test)]
mod tests;
