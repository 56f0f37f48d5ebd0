//! The production index on sled 0.34.

use super::{Index, IndexError, SegmentMeta, codec};
use std::path::Path;

/// sled's page cache for the index: the table is small (one entry per
/// segment), so a few MiB is plenty and keeps resident memory low.
pub const CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// The index in a sled database.
#[derive(Debug)]
pub struct SledIndex {
    db: sled::Db,
    segments: sled::Tree,
    path: std::path::PathBuf,
}

impl SledIndex {
    /// Opens (or creates) the index database at `path`.
    pub fn open(path: &Path) -> Result<SledIndex, IndexError> {
        let db = crate::sled_db::open(path, CACHE_BYTES, 500)?;
        let segments = db.open_tree("segments")?;
        Ok(SledIndex {
            db,
            segments,
            path: path.to_path_buf(),
        })
    }
}

impl Index for SledIndex {
    fn load(&mut self) -> Result<Vec<SegmentMeta>, IndexError> {
        let mut out = Vec::new();
        for kv in &self.segments {
            let (k, v) = kv?;
            let id = codec::parse_key(&k)?;
            out.push(codec::decode(id, &v)?);
        }
        Ok(out)
    }

    fn put(&mut self, meta: &SegmentMeta) -> Result<(), IndexError> {
        self.segments
            .insert(codec::key(meta.id), codec::encode(meta))?;
        Ok(())
    }

    fn remove(&mut self, id: crate::ids::SegmentId) -> Result<(), IndexError> {
        self.segments.remove(codec::key(id))?;
        Ok(())
    }

    /// sled's own flush writes its buffers out with `sync_file_range`,
    /// which survives a process crash but not a power loss; it fsyncs only
    /// from a background thread every 500 ms. The purge order needs the
    /// index durable before a file is deleted, so after sled's flush the
    /// database file is fsynced here too.
    fn flush(&mut self) -> Result<(), IndexError> {
        self.db.flush()?;
        let db_file = self.path.join("db");
        let sync = |source| IndexError::Sync {
            path: db_file.clone(),
            source,
        };
        match std::fs::File::open(&db_file) {
            Ok(f) => f.sync_all().map_err(sync)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(sync(e)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::UnixNanos;
    use crate::ids::{RecordId, SegmentId};

    #[test]
    fn sled_index_keeps_entries_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        {
            let mut idx = SledIndex::open(&path).unwrap();
            let mut m = SegmentMeta::new(SegmentId(2), RecordId(1), UnixNanos(3), 48);
            m.last_id = Some(RecordId(9));
            idx.put(&m).unwrap();
            idx.put(&SegmentMeta::new(
                SegmentId(1),
                RecordId(1),
                UnixNanos(3),
                48,
            ))
            .unwrap();
            idx.remove(SegmentId(1)).unwrap();
            idx.flush().unwrap();
        }
        // A sled Db dropped a moment ago can hold its lock while its
        // flusher thread winds down: retry while it says InUse.
        let started = std::time::Instant::now();
        let mut idx = loop {
            match SledIndex::open(&path) {
                Err(IndexError::InUse { .. })
                    if started.elapsed() < std::time::Duration::from_secs(5) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other.unwrap(),
            }
        };
        let all = idx.load().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].last_id, Some(RecordId(9)));
    }

    #[test]
    fn a_second_open_of_the_same_index_says_it_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let _first = SledIndex::open(&path).unwrap();
        let e = SledIndex::open(&path).unwrap_err();
        assert!(matches!(e, IndexError::InUse { .. }), "{e}");
    }
}
