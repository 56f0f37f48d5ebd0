//! Rows encoded for insertion ([`EncodedRow`]): parsed, hashed and
//! serialized on the caller's thread.

use super::config::MAX_ROW_BYTES;
use super::error::EventLogError;
use crate::clock::UnixNanos;
use crate::event_logs::EventLogRow;
use crate::event_logs::block::{self, RowIn};
use crate::event_logs::codec;
use crate::event_logs::key::{self, EventTime};
use crate::event_logs::row_encode;
use crate::proto::telemetrygateway::v1::Event;

/// A row encoded for [`super::EventLogStore::insert_encoded`] by
/// [`super::EventLogStore::encode_row`]: the event id, its hash, the parsed event
/// time and the row's other fields in the row-wise form of
/// [`crate::event_logs::codec`], in one allocation. Encoding is the CPU-heavy part of
/// an insert (the JSON columns are rendered here); the record path does it
/// on the callers' threads, not on the mirror's.
#[derive(Clone, Debug)]
pub struct EncodedRow {
    pub(crate) hash: u64,
    pub(crate) time: EventTime,
    pub(crate) canonical_ts: bool,
    id_len: u32,
    buf: Vec<u8>,
}

impl EncodedRow {
    /// The event id.
    pub fn event_id(&self) -> &[u8] {
        self.buf.get(..self.id_len as usize).unwrap_or_default()
    }

    /// Bytes of the row's fields in row-wise form (the id not included).
    pub fn stored_len(&self) -> usize {
        self.buf.len() - self.id_len as usize
    }

    /// The row's fields in row-wise form (format 2's stored value; see
    /// [`crate::event_logs::codec`]).
    pub fn stored_bytes(&self) -> &[u8] {
        self.buf.get(self.id_len as usize..).unwrap_or_default()
    }

    pub(crate) fn id(&self) -> &str {
        std::str::from_utf8(self.event_id()).unwrap_or("")
    }

    pub(crate) fn day(&self) -> i64 {
        self.time.day()
    }

    /// A row of a format-2 store (its key's id and time, its value) as it
    /// is: the value is this type's payload already.
    pub(crate) fn from_format2(
        id: &str,
        time: EventTime,
        value: &[u8],
    ) -> Result<EncodedRow, EventLogError> {
        // Its text is checked here, once: from here on it is carried as
        // bytes (see `codec::Text`).
        let (_, timestamp) =
            codec::decode_fields::<str>(value).map_err(|source| EventLogError::Decode {
                event_id: id.to_owned(),
                source,
            })?;
        let mut buf = Vec::with_capacity(id.len() + value.len());
        buf.extend_from_slice(id.as_bytes());
        buf.extend_from_slice(value);
        Ok(EncodedRow {
            hash: block::id_hash(id),
            time,
            canonical_ts: key::render_timestamp(time) == timestamp,
            id_len: id.len() as u32,
            buf,
        })
    }

    /// The row as the block builder takes it.
    pub(crate) fn row_in(&self) -> Result<RowIn<'_>, EventLogError> {
        let value = self.buf.get(self.id_len as usize..).unwrap_or_default();
        let (f, ts) =
            codec::decode_fields::<[u8]>(value).map_err(|source| EventLogError::Decode {
                event_id: self.id().to_owned(),
                source,
            })?;
        Ok(RowIn {
            id: self.event_id(),
            time: self.time,
            ts_text: (!self.canonical_ts).then_some(ts),
            f,
        })
    }
}

/// [`super::EventLogStore::encode_event`]: the row of `event` encoded in
/// one pass (`event_logs::row_encode`), with `encode_at`'s checks.
pub(crate) fn encode_event(
    event: &Event,
    allowlisted_keys: Option<&[String]>,
    server_version: &str,
    now: UnixNanos,
) -> Result<EncodedRow, EventLogError> {
    if event.id.is_empty() {
        return Err(EventLogError::EmptyEventId { index: 0 });
    }
    let id = event.id.as_bytes();
    let mut buf = Vec::with_capacity(id.len() + 768);
    buf.extend_from_slice(id);
    let timestamp =
        row_encode::encode_event_row(event, allowlisted_keys, server_version, now, &mut buf)
            .map_err(|source| EventLogError::Encode {
                event_id: event.id.clone(),
                source,
            })?;
    let time = key::parse_timestamp(&timestamp).ok_or_else(|| EventLogError::BadTimestamp {
        event_id: event.id.clone(),
        timestamp: timestamp.clone(),
    })?;
    if buf.len() > MAX_ROW_BYTES {
        return Err(EventLogError::RowTooLarge {
            event_id: event.id.clone(),
            bytes: buf.len(),
            max: MAX_ROW_BYTES,
        });
    }
    Ok(EncodedRow {
        hash: block::id_hash(&event.id),
        time,
        canonical_ts: key::render_timestamp(time) == timestamp,
        id_len: id.len() as u32,
        buf,
    })
}

/// [`super::EventLogStore::encode_row`], naming the row's position in errors.
pub(crate) fn encode_at(index: usize, row: &EventLogRow) -> Result<EncodedRow, EventLogError> {
    if row.event_id.is_empty() {
        return Err(EventLogError::EmptyEventId { index });
    }
    let time = key::parse_timestamp(&row.timestamp).ok_or_else(|| EventLogError::BadTimestamp {
        event_id: row.event_id.clone(),
        timestamp: row.timestamp.clone(),
    })?;
    let id = row.event_id.as_bytes();
    let mut buf = Vec::with_capacity(id.len() + 768);
    buf.extend_from_slice(id);
    codec::encode(row, &mut buf).map_err(|source| EventLogError::Encode {
        event_id: row.event_id.clone(),
        source,
    })?;
    if buf.len() > MAX_ROW_BYTES {
        return Err(EventLogError::RowTooLarge {
            event_id: row.event_id.clone(),
            bytes: buf.len(),
            max: MAX_ROW_BYTES,
        });
    }
    Ok(EncodedRow {
        hash: block::id_hash(&row.event_id),
        time,
        canonical_ts: key::render_timestamp(time) == row.timestamp,
        id_len: id.len() as u32,
        buf,
    })
}
