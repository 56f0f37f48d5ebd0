//! The sled formats this store replaced, and the marker that keeps older
//! binaries away from the new one.
//!
//! Format 2 (the last sled one) kept one sled database in the store's
//! directory, one tree `event_logs` with key spaces told apart by their
//! first byte:
//!
//! ```text
//! 'r' [seconds: i64 BE, sign flipped][nanos: u32 BE][event id]  →  row (super::codec)
//! 'i' [event id]  →  the time part of the row's key
//! 'm' "format" → u64 BE (2);  'm' "rows" → u64 BE
//! ```
//!
//! Format 1 had three trees (`rows`, `ids`, `meta`) and JSON rows; it is
//! refused, as format 2 refused it. Format 2 is converted by
//! [`super::open`]: its rows are read here in key order, already encoded
//! (the row bytes are the [`EncodedRow`] payload as they are).
//!
//! The **marker**: a format-3 store keeps, in its directory, a small sled
//! database whose `event_logs` tree holds `'m' "format"` = 3. A format-2
//! binary opens the directory with sled, finds format 3 and refuses with
//! "has format 3, this build reads only format 2" instead of starting an
//! empty mirror beside the day files.

use std::path::Path;

use sled::{IVec, Tree};

use super::key;
use super::store::{EncodedRow, EventLogError, FORMAT_VERSION};

/// The tree of format 2.
const TREE: &str = "event_logs";
/// Trees of format 1, whose `meta` tree held the format.
const V1_TREES: [&str; 3] = ["rows", "ids", "meta"];
const V1_META_TREE: &str = "meta";
const META_FORMAT: &[u8] = b"mformat";
const META_ROWS: &[u8] = b"mrows";
/// sled's page cache while converting or writing the marker.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// sled's flusher interval, as the format-2 store had it.
const FLUSH_EVERY_MS: u64 = 500;

/// What a sled database in the store's directory is.
pub(crate) enum Detected {
    /// Format 1 (or anything older): refused.
    Old(u64),
    /// Format 2: rows to convert (the open database, its tree, its row
    /// count).
    Format2(sled::Db, Tree, u64),
    /// The marker of a format-3 store (or a newer one's).
    Marker(u64),
    /// An empty database.
    Empty,
}

/// Whether the directory holds sled's files.
pub(crate) fn has_sled_files(path: &Path) -> bool {
    path.join("conf").exists() || path.join("db").exists()
}

/// Opens the sled database in `path` and says what it is. Looks at the
/// tree names before opening any tree (opening one creates it).
pub(crate) fn detect(path: &Path) -> Result<Detected, EventLogError> {
    let db = crate::sled_db::open(path, CACHE_BYTES, FLUSH_EVERY_MS)?;
    let names = db.tree_names();
    if names
        .iter()
        .any(|n| V1_TREES.iter().any(|t| n == t.as_bytes()))
    {
        let found = if names.iter().any(|n| n == V1_META_TREE.as_bytes()) {
            let meta = db.open_tree(V1_META_TREE)?;
            decode_u64("meta", b"format", meta.get(b"format")?)?.max(1)
        } else {
            1
        };
        return Ok(Detected::Old(found));
    }
    if !names.iter().any(|n| n == TREE.as_bytes()) {
        return Ok(Detected::Empty);
    }
    let tree = db.open_tree(TREE)?;
    match tree.get(META_FORMAT)? {
        Some(v) => {
            let found = decode_u64("meta", META_FORMAT, Some(v))?;
            match found {
                2 => {
                    let rows = decode_u64("meta", META_ROWS, tree.get(META_ROWS)?)?;
                    Ok(Detected::Format2(db, tree, rows))
                }
                f if f >= FORMAT_VERSION => Ok(Detected::Marker(f)),
                f => Ok(Detected::Old(f)),
            }
        }
        None if tree.is_empty() => Ok(Detected::Empty),
        None => Ok(Detected::Old(0)),
    }
}

/// Reads every row of a format-2 tree in key (time) order, handing them
/// to `sink` in batches of `batch` rows. Returns the rows read.
pub(crate) fn read_rows(
    tree: &Tree,
    batch: usize,
    mut sink: impl FnMut(Vec<EncodedRow>) -> Result<(), EventLogError>,
) -> Result<u64, EventLogError> {
    let mut n = 0u64;
    let mut rows = Vec::with_capacity(batch);
    for kv in tree.range([b'r'].as_slice()..[b's'].as_slice()) {
        let (k, v) = kv?;
        // Keys in this range start with b'r'; an empty rest is not a row
        // key and is refused just below (BadEntry).
        let row_key = k.get(1..).unwrap_or_default();
        let (time, id) = key::split_row_key(row_key).ok_or_else(|| EventLogError::BadEntry {
            tree: "rows",
            key_hex: key::hex(&k),
            len: k.len(),
        })?;
        let id = std::str::from_utf8(id).map_err(|_| EventLogError::BadEntry {
            tree: "rows",
            key_hex: key::hex(&k),
            len: k.len(),
        })?;
        rows.push(EncodedRow::from_format2(id, time, &v)?);
        n += 1;
        if rows.len() == batch {
            sink(std::mem::replace(&mut rows, Vec::with_capacity(batch)))?;
        }
    }
    if !rows.is_empty() {
        sink(rows)?;
    }
    Ok(n)
}

/// Writes the marker database (the directory must hold no sled files).
pub(crate) fn write_marker(path: &Path) -> Result<(), EventLogError> {
    let db = crate::sled_db::open(path, 1024 * 1024, FLUSH_EVERY_MS)?;
    let tree = db.open_tree(TREE)?;
    let mut b = sled::Batch::default();
    b.insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes());
    b.insert(META_ROWS, &0u64.to_be_bytes());
    tree.apply_batch(b)?;
    db.flush()?;
    Ok(())
}

/// Removes sled's files from the directory (after a conversion, or to
/// replace them with the marker).
pub(crate) fn remove_sled_files(path: &Path) -> Result<(), EventLogError> {
    let entries = std::fs::read_dir(path).map_err(|e| EventLogError::io("listing", path, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EventLogError::io("listing", path, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let p = entry.path();
        let r = if name == "blobs" {
            std::fs::remove_dir_all(&p)
        } else if name == "conf" || name == "db" || name.starts_with("snap.") {
            std::fs::remove_file(&p)
        } else {
            continue;
        };
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(EventLogError::io("removing", &p, e)),
        }
    }
    Ok(())
}

/// A counter or format: absent is 0, anything but 8 bytes is malformed.
fn decode_u64(tree: &'static str, k: &[u8], v: Option<IVec>) -> Result<u64, EventLogError> {
    let Some(v) = v else { return Ok(0) };
    let bytes: [u8; 8] = v.as_ref().try_into().map_err(|_| EventLogError::BadEntry {
        tree,
        key_hex: key::hex(k),
        len: v.len(),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

impl From<crate::sled_db::OpenError> for EventLogError {
    fn from(e: crate::sled_db::OpenError) -> Self {
        match e {
            crate::sled_db::OpenError::InUse { path } => EventLogError::InUse { path },
            crate::sled_db::OpenError::Sled(e) => EventLogError::Sled(e),
        }
    }
}

/// Builds a format-2 database with `rows` (for tests of the conversion).
#[cfg(test)]
pub(crate) fn write_format2(path: &Path, rows: &[crate::event_logs::EventLogRow]) {
    let db = sled::open(path).unwrap();
    let tree = db.open_tree(TREE).unwrap();
    let mut b = sled::Batch::default();
    b.insert(META_FORMAT, &2u64.to_be_bytes());
    b.insert(META_ROWS, &(rows.len() as u64).to_be_bytes());
    for r in rows {
        let time = key::parse_timestamp(&r.timestamp).unwrap();
        let mut k = vec![b'r'];
        k.extend_from_slice(&key::row_key(time, &r.event_id));
        let mut v = Vec::new();
        super::codec::encode(r, &mut v).unwrap();
        b.insert(k, v);
        let mut ik = vec![b'i'];
        ik.extend_from_slice(r.event_id.as_bytes());
        b.insert(ik, &time.prefix());
    }
    tree.apply_batch(b).unwrap();
    db.flush().unwrap();
}
