//! The row-wise binary form of an `event_logs` row: the value of a row in
//! format 2 (sled), and, in format 3, the form in which an
//! [`super::EncodedRow`] carries a row from the callers' threads (where
//! [`super::EventLogStore::encode_row`] runs) to the mirror's, which reads
//! its fields borrowed (`decode_fields`) into a columnar block
//! (`event_logs::block`).
//!
//! A row value is a sequence of fields without names, in this order:
//!
//! ```text
//! head (what filters and aggregates read; decoded without allocating)
//!   name                      str
//!   user_id                   i64, zigzag varint
//!   anonymous_user_id         str
//!   source                    str
//!   timestamp                 str
//! rest
//!   url, version              str, str
//!   client, cohort_id, first_source_url, last_source_url, referrer,
//!   device_id, insert_id, billing_product_category, billing_event_id
//!                             opt str each
//!   feature_flags             varint count, then count × (str key, u8 0|1)
//!   argument                  str: compact JSON text
//!   public_argument           str: compact JSON text
//!
//! str      = varint byte length, then UTF-8 bytes
//! opt str  = varint 0 for null, else varint (length + 1), then UTF-8 bytes
//! varint   = unsigned LEB128, at most 10 bytes
//! ```
//!
//! The event id is not stored in the value: it is the tail of the row's
//! key (see [`super::store`]). A value must be consumed exactly; anything
//! left over, missing, or not UTF-8 is a decoding error.
//!
//! For the benchmarks' realistic events this is 672 B per row, against
//! 1,040 B for the `serde_json` form of format 1, and it encodes about 30%
//! faster (docs/benchmarks.md, "Mirror").

use std::collections::BTreeMap;

use super::EventLogRow;

/// Why a stored value does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The value ends inside a field.
    #[error("value is truncated in field {0}")]
    Truncated(&'static str),
    /// A length or number does not fit.
    #[error("field {0} has an oversized length or number")]
    Overflow(&'static str),
    /// A string field is not UTF-8.
    #[error("field {0} is not UTF-8")]
    NotUtf8(&'static str),
    /// A feature flag value is neither 0 nor 1.
    #[error("feature flag value {0} is not 0 or 1")]
    BadFlag(u8),
    /// A JSON field does not parse.
    #[error("field {field} is not JSON: {message}")]
    Json {
        /// The field.
        field: &'static str,
        /// The parser's message.
        message: String,
    },
    /// Bytes follow the last field.
    #[error("{0} bytes follow the last field")]
    Trailing(usize),
}

/// How a decoder hands out a string field: as checked text (`str`, the
/// default) or as the bytes it holds (`[u8]`). The block builder takes
/// bytes: it only copies them, the rows it is given were encoded from
/// text, and a block's text columns are checked again when read
/// (`block::ColDec`); checking them in between cost ~8% of a write.
pub(crate) trait Text: std::fmt::Debug {
    /// The field's bytes as `Self`, or why not.
    fn from_field<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a Self, CodecError>;
    /// The field's bytes.
    fn bytes(&self) -> &[u8];
}

impl Text for str {
    fn from_field<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a str, CodecError> {
        std::str::from_utf8(bytes).map_err(|_| CodecError::NotUtf8(field))
    }

    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Text for [u8] {
    fn from_field<'a>(bytes: &'a [u8], _: &'static str) -> Result<&'a [u8], CodecError> {
        Ok(bytes)
    }

    fn bytes(&self) -> &[u8] {
        self
    }
}

/// The fields of a stored row that filters and aggregates read, borrowed
/// from the stored value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RowHead<'a, T: Text + ?Sized = str> {
    pub(crate) name: &'a T,
    pub(crate) user_id: i64,
    pub(crate) anonymous_user_id: &'a T,
    pub(crate) source: &'a T,
    pub(crate) timestamp: &'a T,
}

impl<T: Text + ?Sized> Clone for RowHead<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Text + ?Sized> Copy for RowHead<'_, T> {}

/// Every field of a row but its event id and timestamp, borrowed: the JSON
/// columns as JSON text, the feature flags in their stored form
/// (`varint count, count × (str key, u8 0|1)`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RowFields<'a, T: Text + ?Sized = str> {
    pub(crate) name: &'a T,
    pub(crate) user_id: i64,
    pub(crate) anonymous_user_id: &'a T,
    pub(crate) source: &'a T,
    pub(crate) url: &'a T,
    pub(crate) version: &'a T,
    /// client, cohort_id, first_source_url, last_source_url, referrer,
    /// device_id, insert_id, billing_product_category, billing_event_id.
    pub(crate) opts: [Option<&'a T>; 9],
    pub(crate) flags: &'a [u8],
    pub(crate) argument: &'a T,
    pub(crate) public_argument: &'a T,
}

impl<T: Text + ?Sized> Clone for RowFields<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Text + ?Sized> Copy for RowFields<'_, T> {}

impl<'a, T: Text + ?Sized> RowFields<'a, T> {
    /// The same fields as bytes.
    pub(crate) fn to_bytes(self) -> RowFields<'a, [u8]> {
        RowFields {
            name: self.name.bytes(),
            user_id: self.user_id,
            anonymous_user_id: self.anonymous_user_id.bytes(),
            source: self.source.bytes(),
            url: self.url.bytes(),
            version: self.version.bytes(),
            opts: self.opts.map(|o| o.map(T::bytes)),
            flags: self.flags,
            argument: self.argument.bytes(),
            public_argument: self.public_argument.bytes(),
        }
    }
}

/// Decodes a stored value into its fields and timestamp, borrowed as text
/// or as bytes ([`Text`]); nothing is parsed beyond the framing (the JSON
/// stays text).
pub(crate) fn decode_fields<T: Text + ?Sized>(
    value: &[u8],
) -> Result<(RowFields<'_, T>, &T), CodecError> {
    let mut r = Reader { buf: value };
    let h = head::<T>(&mut r)?;
    let url = r.text("url")?;
    let version = r.text("version")?;
    let mut opts = [None; 9];
    for (slot, field) in opts.iter_mut().zip([
        "client",
        "cohort_id",
        "first_source_url",
        "last_source_url",
        "referrer",
        "device_id",
        "insert_id",
        "billing_product_category",
        "billing_event_id",
    ]) {
        *slot = r.opt_text(field)?;
    }
    let flags_start = r.buf;
    let n = r.varint("feature_flags")?;
    for _ in 0..n {
        r.text::<T>("feature_flags")?;
        match r.byte("feature_flags")? {
            0 | 1 => {}
            other => return Err(CodecError::BadFlag(other)),
        }
    }
    // The reader only moves forward: what it left is a suffix of
    // `flags_start`, and the flags are what it consumed.
    let consumed = flags_start.len().checked_sub(r.buf.len());
    debug_assert!(consumed.is_some(), "the reader moved backwards");
    let flags = consumed
        .and_then(|n| flags_start.get(..n))
        .ok_or(CodecError::Truncated("feature_flags"))?;
    let argument = r.text("argument")?;
    let public_argument = r.text("public_argument")?;
    if !r.buf.is_empty() {
        return Err(CodecError::Trailing(r.buf.len()));
    }
    Ok((
        RowFields {
            name: h.name,
            user_id: h.user_id,
            anonymous_user_id: h.anonymous_user_id,
            source: h.source,
            url,
            version,
            opts,
            flags,
            argument,
            public_argument,
        },
        h.timestamp,
    ))
}

/// Builds the owned row from its fields: parses the feature flags and the
/// JSON columns.
pub(crate) fn row_from_fields(
    event_id: &str,
    timestamp: &str,
    f: &RowFields<'_>,
) -> Result<EventLogRow, CodecError> {
    let mut r = Reader { buf: f.flags };
    let n = r.varint("feature_flags")?;
    let mut feature_flags = BTreeMap::new();
    for _ in 0..n {
        let k = r.str("feature_flags")?;
        let v = match r.byte("feature_flags")? {
            0 => false,
            1 => true,
            other => return Err(CodecError::BadFlag(other)),
        };
        feature_flags.insert(k.to_owned(), v);
    }
    if !r.buf.is_empty() {
        return Err(CodecError::Trailing(r.buf.len()));
    }
    let json = |field: &'static str, text: &str| {
        serde_json::from_str(text).map_err(|e| CodecError::Json {
            field,
            message: e.to_string(),
        })
    };
    let owned = |s: Option<&str>| s.map(str::to_owned);
    let [
        client,
        cohort_id,
        first_source_url,
        last_source_url,
        referrer,
        device_id,
        insert_id,
        billing_product_category,
        billing_event_id,
    ] = f.opts;
    Ok(EventLogRow {
        event_id: event_id.to_owned(),
        name: f.name.to_owned(),
        url: f.url.to_owned(),
        user_id: f.user_id,
        anonymous_user_id: f.anonymous_user_id.to_owned(),
        source: f.source.to_owned(),
        argument: json("argument", f.argument)?,
        public_argument: json("public_argument", f.public_argument)?,
        version: f.version.to_owned(),
        timestamp: timestamp.to_owned(),
        feature_flags,
        cohort_id: owned(cohort_id),
        first_source_url: owned(first_source_url),
        last_source_url: owned(last_source_url),
        referrer: owned(referrer),
        device_id: owned(device_id),
        insert_id: owned(insert_id),
        billing_product_category: owned(billing_product_category),
        billing_event_id: owned(billing_event_id),
        client: owned(client),
    })
}

/// Appends the stored form of `row` (all but its event id) to `out`.
pub(crate) fn encode(row: &EventLogRow, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    put_str(out, &row.name);
    put_varint(out, zigzag(row.user_id));
    put_str(out, &row.anonymous_user_id);
    put_str(out, &row.source);
    put_str(out, &row.timestamp);
    put_str(out, &row.url);
    put_str(out, &row.version);
    for opt in [
        &row.client,
        &row.cohort_id,
        &row.first_source_url,
        &row.last_source_url,
        &row.referrer,
        &row.device_id,
        &row.insert_id,
        &row.billing_product_category,
        &row.billing_event_id,
    ] {
        put_opt_str(out, opt.as_deref());
    }
    put_varint(out, row.feature_flags.len() as u64);
    for (k, v) in &row.feature_flags {
        put_str(out, k);
        out.push(u8::from(*v));
    }
    put_json(out, &row.argument)?;
    put_json(out, &row.public_argument)?;
    Ok(())
}

/// Decodes the head of a stored value; the rest is not looked at.
#[cfg(test)]
pub(crate) fn decode_head(value: &[u8]) -> Result<RowHead<'_>, CodecError> {
    let mut r = Reader { buf: value };
    head(&mut r)
}

/// Decodes a whole stored value into the row of `event_id`.
#[cfg(test)]
pub(crate) fn decode(event_id: &str, value: &[u8]) -> Result<EventLogRow, CodecError> {
    let (fields, timestamp) = decode_fields(value)?;
    row_from_fields(event_id, timestamp, &fields)
}

fn head<'a, T: Text + ?Sized>(r: &mut Reader<'a>) -> Result<RowHead<'a, T>, CodecError> {
    Ok(RowHead {
        name: r.text("name")?,
        user_id: unzigzag(r.varint("user_id")?),
        anonymous_user_id: r.text("anonymous_user_id")?,
        source: r.text("source")?,
        timestamp: r.text("timestamp")?,
    })
}

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a `str` field.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends a `str` field whose text is `parts` joined.
pub(crate) fn put_str_parts(out: &mut Vec<u8>, parts: &[&str]) {
    put_varint(out, parts.iter().map(|p| p.len() as u64).sum());
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
}

/// Appends an `opt str` field.
pub(crate) fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            put_varint(out, s.len() as u64 + 1);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// Appends a JSON text field: `v` serialized compactly.
pub(crate) fn put_json<T: serde::Serialize + ?Sized>(
    out: &mut Vec<u8>,
    v: &T,
) -> Result<(), serde_json::Error> {
    // The length goes first: write the text after a reserved byte and
    // move it when its length needs more than one.
    let start = out.len();
    out.push(0);
    serde_json::to_writer(&mut *out, v)?;
    let len = (out.len() - start - 1) as u64;
    if len < 0x80 {
        out[start] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        put_varint(&mut prefix, len);
        out.splice(start..=start, prefix);
    }
    Ok(())
}

/// Zigzag-encodes a signed integer.
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Reads fields off the front of a stored value.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self, field: &'static str) -> Result<u8, CodecError> {
        let (&b, rest) = self.buf.split_first().ok_or(CodecError::Truncated(field))?;
        self.buf = rest;
        Ok(b)
    }

    fn varint(&mut self, field: &'static str) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte(field)?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(CodecError::Overflow(field));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Overflow(field))
    }

    fn bytes(&mut self, field: &'static str, len: u64) -> Result<&'a [u8], CodecError> {
        let len = usize::try_from(len).map_err(|_| CodecError::Overflow(field))?;
        if len > self.buf.len() {
            return Err(CodecError::Truncated(field));
        }
        let (b, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(b)
    }

    fn str(&mut self, field: &'static str) -> Result<&'a str, CodecError> {
        let len = self.varint(field)?;
        let b = self.bytes(field, len)?;
        std::str::from_utf8(b).map_err(|_| CodecError::NotUtf8(field))
    }

    fn text<T: Text + ?Sized>(&mut self, field: &'static str) -> Result<&'a T, CodecError> {
        let len = self.varint(field)?;
        T::from_field(self.bytes(field, len)?, field)
    }

    fn opt_text<T: Text + ?Sized>(
        &mut self,
        field: &'static str,
    ) -> Result<Option<&'a T>, CodecError> {
        match self.varint(field)? {
            0 => Ok(None),
            n => T::from_field(self.bytes(field, n - 1)?, field).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full_row() -> EventLogRow {
        EventLogRow {
            event_id: "e1".into(),
            name: "cody.completion.suggested".into(),
            url: "https://example.com/a?b=c".into(),
            user_id: -42,
            anonymous_user_id: "anon".into(),
            source: "VSCODE".into(),
            argument: json!({"private": "ünïcode ✓", "nested": {"a": [1, 2.5, null, true]},
                "long": "x".repeat(300)}),
            public_argument: json!({"n": 1.0e300, "m": -7, "telemetry.event.exportable": true}),
            version: "6.0.0".into(),
            timestamp: "2024-03-01T10:00:00.25Z".into(),
            feature_flags: [("a".to_owned(), true), ("b".to_owned(), false)].into(),
            cohort_id: Some("2024-01-01".into()),
            first_source_url: Some(String::new()),
            last_source_url: None,
            referrer: Some("r".into()),
            device_id: None,
            insert_id: Some("i".into()),
            billing_product_category: Some("CORE".into()),
            billing_event_id: None,
            client: Some("VSCODE:1.2.3".into()),
        }
    }

    fn enc(row: &EventLogRow) -> Vec<u8> {
        let mut v = Vec::new();
        encode(row, &mut v).unwrap();
        v
    }

    #[test]
    fn rows_round_trip_with_every_column() {
        let row = full_row();
        let v = enc(&row);
        assert_eq!(decode("e1", &v).unwrap(), row);
        let head = decode_head(&v).unwrap();
        assert_eq!(head.name, row.name);
        assert_eq!(head.user_id, -42);
        assert_eq!(head.anonymous_user_id, "anon");
        assert_eq!(head.source, "VSCODE");
        assert_eq!(head.timestamp, row.timestamp);
        let empty = EventLogRow {
            argument: json!({}),
            public_argument: json!({}),
            feature_flags: BTreeMap::new(),
            user_id: i64::MIN,
            ..full_row()
        };
        assert_eq!(decode("e1", &enc(&empty)).unwrap(), empty);
        let max = EventLogRow {
            user_id: i64::MAX,
            ..full_row()
        };
        assert_eq!(decode("e1", &enc(&max)).unwrap(), max);
    }

    #[test]
    fn the_stored_form_is_smaller_than_the_json_one() {
        let row = full_row();
        assert!(enc(&row).len() < serde_json::to_vec(&row).unwrap().len());
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut r = Reader { buf: &b };
            assert_eq!(r.varint("v").unwrap(), v);
            assert!(r.buf.is_empty());
        }
        let mut r = Reader { buf: &[0xff; 11] };
        assert_eq!(r.varint("v"), Err(CodecError::Overflow("v")));
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let v = enc(&full_row());
        for cut in 0..v.len() {
            assert!(decode("e1", &v[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = v.clone();
        longer.push(0);
        assert_eq!(decode("e1", &longer), Err(CodecError::Trailing(1)));
        let mut bad_utf8 = v.clone();
        // The first byte of the name.
        bad_utf8[1] = 0xff;
        assert_eq!(decode("e1", &bad_utf8), Err(CodecError::NotUtf8("name")));
        assert!(decode_head(&[]).is_err());
        assert!(decode("e1", &[0xff; 64]).is_err());
    }
}
