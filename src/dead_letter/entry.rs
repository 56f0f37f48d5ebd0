//! A dead letter, and its stored form.
//!
//! ```text
//! key    [seq: u64 BE]
//! value  [header_len: u32 LE][header: JSON, header_len bytes][event bytes, to the end]
//! header {"event_id": "…" | null, "reason": "…", "source": "ingest" | "export",
//!         "attempts": 3, "recorded_at": <unix nanos>, "last_error": "…" | null,
//!         "original_size": <bytes>}          (only when the event was cut)
//! ```
//!
//! The event bytes (protobuf) stay raw after the header: as a JSON array of
//! numbers they would take about 3.6 times the space. Export dead letters
//! keep the whole event (at most the 1 MiB event limit: it was queued).
//! Invalid ingest events can be up to the 16 MiB message limit (an event
//! refused for its size), so they keep only their first
//! [`INGEST_EVENT_PREFIX_BYTES`] (64 KiB), with `original_size` saying how
//! large they were ([`DeadLetterEntry::truncate_event`]); a cut event no
//! longer decodes, and only its reason and prefix are left to inspect
//! (ingest dead letters are never requeued).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::DeadLetterError;
use crate::clock::UnixNanos;

/// Bytes of an invalid ingest event kept in its dead letter: 64 KiB.
pub const INGEST_EVENT_PREFIX_BYTES: usize = 64 * 1024;

/// Bytes of a stored key.
pub(super) const KEY_LEN: usize = 8;
/// Bytes of the header length prefix of a stored value.
const HEADER_LEN_BYTES: usize = 4;

/// The position of a dead letter in the store: monotonic, never reused
/// (sled's `generate_id`, which skips ahead after a crash), not contiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeadLetterSeq(pub u64);

impl DeadLetterSeq {
    /// The stored key.
    pub(super) fn key(self) -> [u8; KEY_LEN] {
        self.0.to_be_bytes()
    }

    /// The seq of a stored key; `None` when it is not eight bytes.
    pub(super) fn from_key(key: &[u8]) -> Option<DeadLetterSeq> {
        Some(DeadLetterSeq(u64::from_be_bytes(key.try_into().ok()?)))
    }
}

impl fmt::Display for DeadLetterSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which path gave up on the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeadLetterSource {
    /// Refused at ingest (invalid, unreadable, over a limit).
    Ingest,
    /// The gateway kept refusing it (poison).
    Export,
}

impl fmt::Display for DeadLetterSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeadLetterSource::Ingest => "ingest",
            DeadLetterSource::Export => "export",
        })
    }
}

/// An event that could not be exported or was invalid, as stored (without
/// its [`DeadLetterSeq`], which the store assigns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterEntry {
    /// The event id, when the event was readable and had one.
    pub event_id: Option<String>,
    /// The event as protobuf bytes; empty when it was unreadable and no
    /// bytes could be kept.
    pub event: Vec<u8>,
    /// Why it is here (a validation error, "refused N times", ...).
    pub reason: String,
    /// Which path gave up on it.
    pub source: DeadLetterSource,
    /// Export attempts answered without its id (0 for ingest).
    pub attempts: u32,
    /// When it was dead-lettered.
    pub recorded_at: UnixNanos,
    /// The last export error seen for it, if any.
    pub last_error: Option<String>,
    /// The event's size in bytes when `event` holds only a prefix of it
    /// ([`DeadLetterEntry::truncate_event`]); `None` when whole.
    pub original_size: Option<u64>,
}

impl DeadLetterEntry {
    /// Keeps only the first `max` bytes of the event, noting its original
    /// size in [`DeadLetterEntry::original_size`]; nothing changes when it
    /// is not longer than that.
    pub fn truncate_event(&mut self, max: usize) {
        if self.event.len() > max {
            self.original_size
                .get_or_insert(u64::try_from(self.event.len()).unwrap_or(u64::MAX));
            self.event.truncate(max);
            self.event.shrink_to_fit();
        }
    }
}

/// A stored dead letter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its position in the store.
    pub seq: DeadLetterSeq,
    /// What was stored.
    pub entry: DeadLetterEntry,
}

/// Everything but the event bytes, as JSON.
#[derive(Serialize, Deserialize)]
struct Header<'a> {
    event_id: Option<Cow<'a, str>>,
    reason: Cow<'a, str>,
    source: DeadLetterSource,
    attempts: u32,
    recorded_at: i64,
    last_error: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    original_size: Option<u64>,
}

/// The stored value of `entry`.
pub(super) fn encode(entry: &DeadLetterEntry) -> Result<Vec<u8>, serde_json::Error> {
    let header = serde_json::to_vec(&Header {
        event_id: entry.event_id.as_deref().map(Cow::Borrowed),
        reason: Cow::Borrowed(&entry.reason),
        source: entry.source,
        attempts: entry.attempts,
        recorded_at: entry.recorded_at.0,
        last_error: entry.last_error.as_deref().map(Cow::Borrowed),
        original_size: entry.original_size,
    })?;
    // A header is a few hundred bytes unless a reason is absurdly long;
    // the u32 prefix caps it at 4 GiB, which serde_json would not reach.
    let len = u32::try_from(header.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(HEADER_LEN_BYTES + header.len() + entry.event.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&entry.event);
    Ok(out)
}

/// The entry stored at `seq`.
pub(super) fn decode(seq: DeadLetterSeq, value: &[u8]) -> Result<DeadLetterEntry, DeadLetterError> {
    let corrupt = |problem| DeadLetterError::Corrupt { seq, problem };
    let prefix: [u8; HEADER_LEN_BYTES] = value
        .get(..HEADER_LEN_BYTES)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("shorter than its header length"))?;
    let header_len = usize::try_from(u32::from_le_bytes(prefix))
        .map_err(|_| corrupt("header length does not fit in memory"))?;
    let header_end = HEADER_LEN_BYTES
        .checked_add(header_len)
        .ok_or_else(|| corrupt("header length overflows"))?;
    let header = value
        .get(HEADER_LEN_BYTES..header_end)
        .ok_or_else(|| corrupt("header runs past the end of the value"))?;
    let event = value.get(header_end..).unwrap_or_default();
    let h: Header<'static> =
        serde_json::from_slice(header).map_err(|source| DeadLetterError::Decode { seq, source })?;
    Ok(DeadLetterEntry {
        event_id: h.event_id.map(Cow::into_owned),
        event: event.to_vec(),
        reason: h.reason.into_owned(),
        source: h.source,
        attempts: h.attempts,
        recorded_at: UnixNanos(h.recorded_at),
        last_error: h.last_error.map(Cow::into_owned),
        original_size: h.original_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> DeadLetterEntry {
        DeadLetterEntry {
            event_id: Some("e1".into()),
            event: vec![0, 1, 2, 0xff],
            reason: "feature \"x\" is invalid".into(),
            source: DeadLetterSource::Export,
            attempts: 10,
            recorded_at: UnixNanos(-5),
            last_error: Some("stream reset".into()),
            original_size: None,
        }
    }

    #[test]
    fn entries_round_trip_through_the_value_codec() {
        let e = entry();
        assert_eq!(decode(DeadLetterSeq(1), &encode(&e).unwrap()).unwrap(), e);
        let unreadable = DeadLetterEntry {
            event_id: None,
            event: Vec::new(),
            last_error: None,
            source: DeadLetterSource::Ingest,
            ..entry()
        };
        assert_eq!(
            decode(DeadLetterSeq(1), &encode(&unreadable).unwrap()).unwrap(),
            unreadable
        );
    }

    #[test]
    fn a_truncated_event_keeps_its_prefix_and_original_size() {
        let mut e = entry();
        e.event = vec![7; 1000];
        e.truncate_event(1000);
        assert_eq!((e.event.len(), e.original_size), (1000, None));
        e.truncate_event(10);
        assert_eq!((e.event.len(), e.original_size), (10, Some(1000)));
        let back = decode(DeadLetterSeq(1), &encode(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        // Headers written before `original_size` existed still decode.
        let old = br#"{"event_id":null,"reason":"r","source":"ingest","attempts":0,"recorded_at":1,"last_error":null}"#;
        let mut value = (old.len() as u32).to_le_bytes().to_vec();
        value.extend_from_slice(old);
        assert_eq!(
            decode(DeadLetterSeq(2), &value).unwrap().original_size,
            None
        );
    }

    #[test]
    fn the_header_is_json_and_the_event_bytes_stay_raw() {
        let value = encode(&entry()).unwrap();
        let len = u32::from_le_bytes(value[..4].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&value[4..4 + len]).unwrap();
        assert_eq!(header["source"], "export");
        assert_eq!(header["recorded_at"], -5);
        assert_eq!(&value[4 + len..], &[0, 1, 2, 0xff]);
    }

    #[test]
    fn damaged_values_are_reported_with_their_seq() {
        let seq = DeadLetterSeq(7);
        for value in [&b""[..], &[1, 0], &[200, 0, 0, 0, b'{']] {
            let e = decode(seq, value).unwrap_err();
            assert!(
                matches!(
                    e,
                    DeadLetterError::Corrupt {
                        seq: DeadLetterSeq(7),
                        ..
                    }
                ),
                "{e}"
            );
        }
        let e = decode(seq, &[2, 0, 0, 0, b'{', b'}']).unwrap_err();
        assert!(matches!(e, DeadLetterError::Decode { .. }), "{e}");
    }
}
