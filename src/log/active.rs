//! The active segment as the writer thread sees it, and the I/O done to it:
//! appending a group with one `pwrite`, cutting the file back after a
//! failed write, and keeping zero-filled space ahead of the data.

use super::SyncPolicy;
use super::segment::{HEADER_LEN, Header};
use crate::clock::UnixNanos;
use crate::ids::{RecordId, SegmentId};
use crate::segment_meta::SegmentMeta;
use crate::storage::StorageFile;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Zero-filled space kept ahead of the active segment's data (at most; a
/// quarter of the segment size for small segments). `fdatasync` of a write
/// into already allocated, already durable blocks need not commit file
/// metadata, which roughly halves its cost on ext4 (measured: 0.15 ms
/// instead of 0.29 ms for 4 KiB). The file grows by one chunk at a time; the
/// sync that covers a growth pays the metadata once. Recovery trims the
/// zeros; a seal or a clean close cuts them off.
pub const PREALLOC_CHUNK: u64 = 4 * 1024 * 1024;

/// The segment appends go to.
pub(crate) struct Active {
    id: SegmentId,
    file: Arc<dyn StorageFile>,
    /// Bytes written (header included).
    len: u64,
    /// File length: data plus zero-filled space ahead of it.
    allocated: u64,
    first_id: RecordId,
    created: UnixNanos,
    /// Records written to it.
    records: u64,
}

impl Active {
    /// A segment just created with `header` (see [`super::segment::create`]).
    pub fn created(header: &Header, file: Arc<dyn StorageFile>) -> Active {
        let hl = HEADER_LEN as u64;
        Active {
            id: header.segment,
            file,
            len: hl,
            allocated: hl,
            first_id: header.first_id,
            created: header.created,
            records: 0,
        }
    }

    /// An existing segment that appends continue, as recovery left it:
    /// `meta.bytes` is where its valid records end.
    pub fn resumed(meta: &SegmentMeta, file: Arc<dyn StorageFile>) -> Active {
        Active {
            id: meta.id,
            file,
            len: meta.bytes,
            allocated: meta.bytes,
            first_id: meta.first_id,
            created: meta.created,
            records: meta.records(),
        }
    }

    /// The segment's id.
    pub fn id(&self) -> SegmentId {
        self.id
    }

    /// Its open file.
    pub fn file(&self) -> &Arc<dyn StorageFile> {
        &self.file
    }

    /// Bytes written, header included.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The id of its first record.
    pub fn first_id(&self) -> RecordId {
        self.first_id
    }

    /// Records written to it.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// How old it is at `now`.
    pub fn age(&self, now: UnixNanos) -> Duration {
        now.since(self.created)
    }

    /// Whether zero-filled space follows the data (to cut at a close).
    pub fn has_slack(&self) -> bool {
        self.allocated > self.len
    }

    /// Writes `buf` (a group of `records` frames) at the end of the data.
    /// On failure a prefix of `buf` may be on disk: the caller cuts the file
    /// back with [`Active::cut_back`].
    pub fn append(&mut self, buf: &[u8], records: u64) -> io::Result<()> {
        self.file.write_at(buf, self.len)?;
        self.len += buf.len() as u64;
        self.allocated = self.allocated.max(self.len);
        self.records += records;
        Ok(())
    }

    /// Cuts the file back to the end of the last good group (dropping the
    /// preallocated space too).
    pub fn cut_back(&mut self) -> io::Result<()> {
        self.file.set_len(self.len)?;
        self.allocated = self.len;
        Ok(())
    }

    /// Keeps zero-filled space ahead of the data once the data reaches the
    /// allocated end (see [`PREALLOC_CHUNK`]). Failure is harmless: the
    /// file just grows with each write, as without preallocation. `zeros`
    /// is the writer's reusable buffer of zero bytes.
    pub fn preallocate(&mut self, policy: SyncPolicy, segment_bytes: u64, zeros: &mut Vec<u8>) {
        if policy == SyncPolicy::Never || self.allocated > self.len {
            return;
        }
        let chunk = PREALLOC_CHUNK
            .min(segment_bytes / 4)
            .min(segment_bytes.saturating_sub(self.len)) as usize;
        if chunk == 0 {
            return;
        }
        if zeros.len() < chunk {
            zeros.resize(chunk, 0);
        }
        // In bounds: `zeros` was just grown to at least `chunk` bytes.
        let (zeros, _) = zeros.split_at(chunk);
        match self.file.write_at(zeros, self.len) {
            Ok(()) => self.allocated = self.len + chunk as u64,
            Err(e) => {
                tracing::debug!(error = %e, "preallocating segment space failed");
                self.allocated = self.file.len().unwrap_or(self.len);
            }
        }
    }
}
