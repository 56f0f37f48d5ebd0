//! `telespool verify` for the `event_logs` store: every frame of every day
//! file checked (CRC, then the block's summary and sections decoded), read
//! only, without the store's lock (day files are only appended to or
//! replaced whole by a rename, so a running sidecar does not disturb it).

use std::path::{Path, PathBuf};

use super::block::{self, Interner};
use super::dayfile::{self, Damage, HeaderError, Tail};
use super::store::EventLogError;
use crate::timestamp;

/// What the check of one day file found.
#[derive(Clone, Debug)]
pub struct DayCheck {
    /// The file.
    pub path: PathBuf,
    /// Its UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Bytes of the file.
    pub bytes: u64,
    /// Whether its header checks out.
    pub header: Result<(), HeaderError>,
    /// Live blocks (merged ones counted once).
    pub blocks: u64,
    /// Rows in them.
    pub rows: u64,
    /// Damaged bytes followed by good blocks: the blocks there are lost.
    pub damage: Vec<Damage>,
    /// Undecodable bytes at the end, past what the day's index describes
    /// (a torn write; the next open truncates them).
    pub tail: Option<Tail>,
}

impl DayCheck {
    /// Whether rows were lost (a torn tail loses nothing acknowledged).
    pub fn is_damaged(&self) -> bool {
        self.header.is_err() || !self.damage.is_empty()
    }
}

/// Checks every day file of the store in `store_dir` (the `event_logs`
/// directory). An empty list when the store has no days directory.
pub fn verify_store(store_dir: &Path) -> Result<Vec<DayCheck>, EventLogError> {
    let days = store_dir.join(super::open::DAYS_DIR);
    if !days.is_dir() {
        return Ok(Vec::new());
    }
    let list = dayfile::list_days(&days).map_err(|e| EventLogError::io("listing", &days, e))?;
    let mut interner = Interner::default();
    let mut out = Vec::with_capacity(list.len());
    for (day, path) in list {
        let data = std::fs::read(&path).map_err(|e| EventLogError::io("reading", &path, e))?;
        let mut check = DayCheck {
            path: path.clone(),
            day: timestamp::day_string(day),
            bytes: data.len() as u64,
            header: dayfile::check_header(&data, day),
            blocks: 0,
            rows: 0,
            damage: Vec::new(),
            tail: None,
        };
        // A header that checks out is whole, so the body exists; were it
        // not, the day is reported with a truncated header, not as empty.
        let body = data.get(dayfile::HEADER_LEN as usize..);
        debug_assert!(
            check.header.is_err() || body.is_some(),
            "a checked header is whole"
        );
        if check.header.is_ok() && body.is_none() {
            check.header = Err(HeaderError::Truncated);
        }
        if let (Ok(()), Some(body)) = (&check.header, body) {
            let scan = dayfile::scan(body, dayfile::HEADER_LEN, 0, &mut interner);
            let mut blocks = scan.blocks;
            dayfile::apply_supersedes(&mut blocks);
            check.damage = scan.damage;
            // Bad bytes at the end that the day's index describes held
            // rows that were written whole: damage, not a torn write.
            let covered =
                super::idx::IdxFile::open(&days.join(super::idx::file_name(day)), &mut interner)
                    .map(|(f, _)| f.header.covered_len)
                    .unwrap_or(0);
            match scan.tail {
                Some(t) if t.offset < covered => check.damage.push(Damage {
                    offset: t.offset,
                    len: t.len,
                    cause: format!("{} (inside what the day's index describes)", t.cause),
                }),
                t => check.tail = t,
            }
            for meta in &blocks {
                let start = meta.offset as usize + crate::log::record::FRAME_HEADER_LEN;
                // The scan found the block in `data`: it lies inside it. Were
                // it not, that is damage to report, not an empty block.
                let Some(payload) = data.get(start..meta.end() as usize) else {
                    debug_assert!(false, "a scanned block lies inside its file");
                    check.damage.push(Damage {
                        offset: meta.offset,
                        len: u64::from(meta.frame_len),
                        cause: "block extends past the end of the file".to_owned(),
                    });
                    continue;
                };
                let decoded = block::Ids::decode(payload, meta)
                    .and_then(|_| block::Head::decode(payload, meta))
                    .and_then(|_| block::Rest::decode(payload, meta).map(|_| ()));
                match decoded {
                    Ok(()) => {
                        check.blocks += 1;
                        check.rows += meta.rows();
                    }
                    Err(e) => check.damage.push(Damage {
                        offset: meta.offset,
                        len: u64::from(meta.frame_len),
                        cause: e.to_string(),
                    }),
                }
            }
        }
        out.push(check);
    }
    Ok(out)
}
