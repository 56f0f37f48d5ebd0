//! `verify`: a read-only CRC walk of every segment of a queue directory.
//!
//! Nothing is modified: torn tails are reported (the next open truncates
//! them), damage is reported with the ids it cost. The index, when given,
//! tells a torn tail (bytes no one acknowledged) from a damaged end (records
//! the index knew of are gone).

use crate::ids::{RecordId, SegmentId};
use crate::log::segment::{self, Damage, Header, HeaderError, Tail};
use crate::segment_meta::SegmentMeta;
use crate::storage::Storage;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What verify found in one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentCheck {
    /// The segment id (from the file name).
    pub id: SegmentId,
    /// The file.
    pub path: PathBuf,
    /// File length.
    pub bytes: u64,
    /// The header, or why it is unusable.
    pub header: Result<Header, HeaderError>,
    /// Valid records.
    pub records: u64,
    /// First and last valid record ids.
    pub first: Option<RecordId>,
    /// Last valid record id.
    pub last: Option<RecordId>,
    /// Damage followed by valid records.
    pub damage: Vec<Damage>,
    /// Undecodable bytes at the end.
    pub tail: Option<Tail>,
    /// Records the index knew of that the file does not hold (a damaged
    /// end, not a torn tail).
    pub missing: Option<(RecordId, RecordId)>,
}

impl SegmentCheck {
    /// Records lost to damage in this segment.
    pub fn lost_records(&self) -> u64 {
        let d: u64 = self
            .damage
            .iter()
            .filter_map(|d| d.lost)
            .map(|(a, b)| b.0 - a.0 + 1)
            .sum();
        d + self.missing.map_or(0, |(a, b)| b.0 - a.0 + 1)
    }

    /// Whether the segment holds damage that costs records (or is unusable).
    pub fn is_damaged(&self) -> bool {
        self.header.is_err() || self.lost_records() > 0 || !self.damage.is_empty()
    }
}

/// Walks every segment in `dir`. `index` is the index's view, if available.
pub fn verify_dir(
    storage: &dyn Storage,
    dir: &Path,
    index: &[SegmentMeta],
) -> std::io::Result<Vec<SegmentCheck>> {
    let metas: BTreeMap<SegmentId, &SegmentMeta> = index.iter().map(|m| (m.id, m)).collect();
    let mut ids: Vec<SegmentId> = storage
        .list(dir)?
        .iter()
        .filter_map(|n| segment::parse_file_name(n))
        .collect();
    ids.sort();
    let mut out = Vec::new();
    for id in ids {
        let path = dir.join(segment::file_name(id));
        let file = storage.open(&path)?;
        let map = file.map()?;
        let data: &[u8] = (*map).as_ref();
        let mut check = SegmentCheck {
            id,
            path,
            bytes: data.len() as u64,
            header: Header::decode(data),
            records: 0,
            first: None,
            last: None,
            damage: Vec::new(),
            tail: None,
            missing: None,
        };
        if let Ok(h) = check.header {
            let scan = segment::scan(data, &h);
            check.records = scan.records;
            check.first = scan.first;
            check.last = scan.last;
            check.damage = scan.damage;
            check.tail = scan.tail;
            if let Some(known) = metas.get(&id).and_then(|m| m.last_id) {
                let have = scan.last.unwrap_or(h.first_id.prev());
                if known > have {
                    check.missing = Some((have.next(), known));
                }
            }
        }
        out.push(check);
    }
    Ok(out)
}
