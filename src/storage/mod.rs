//! The storage seam: everything the log does to a disk goes through
//! [`Storage`] and [`StorageFile`].
//!
//! Three implementations:
//! - [`FsStorage`]: real files (`pread`/`pwrite`, `fdatasync`, directory
//!   fsync, `flock`) and `memmap2` for sealed segments. The only `unsafe` of the
//!   crate lives there.
//! - [`MemStorage`]: an in-memory disk that keeps a *live* image (what a
//!   process sees) and a *durable* image (what survives power loss: file
//!   contents as of their last `sync_data`, directory entries as of their
//!   directory's last `sync_dir`). [`MemStorage::crash`] throws the live image
//!   away and keeps the durable one, optionally plus a torn prefix of what was
//!   written but not synced.
//! - [`FaultyStorage`]: a seeded decorator over any storage that injects
//!   failed writes, short writes, failed fsyncs and ENOSPC, either at random
//!   (a probability per operation) or on demand ("fail the next fsync").
//!
//! [`owner_only`] holds the file-mode rules every file telespool creates
//! follows (directories `0700`, files `0600`, no symbolic link followed).
//!
//! The traits are object safe and small on purpose: a new backend (or a new
//! fault) is a few dozen lines.

mod faulty;
mod fs;
mod mem;
pub mod owner_only;

pub use faulty::{FaultConfig, FaultyStorage};
pub use fs::FsStorage;
pub use mem::{MemStorage, Torn};

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A read-only view of a whole file, as it was when mapped: a memory map on
/// real files, a snapshot on the in-memory disk.
pub type Mapped = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A held exclusive lock on a path; released when dropped.
pub trait LockGuard: Send + Sync + fmt::Debug {}

/// A file system, as the log needs it.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the regular files directly inside `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// Creates a new, empty file; fails if it exists.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (created if missing), writing
    /// `owner` into it; fails with `WouldBlock` if another holder has it.
    fn lock(&self, path: &Path, owner: &str) -> io::Result<Box<dyn LockGuard>>;
    /// Reads what the current holder of the lock at `path` wrote into it.
    fn lock_owner(&self, path: &Path) -> io::Result<String>;
}

/// An open file.
#[expect(
    clippy::len_without_is_empty,
    reason = "a file's length; no caller asks whether a file is empty"
)]
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Reads at `offset` into `buf`; returns the bytes read (0 at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`. On error a prefix may have been
    /// written (a short write).
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Maps the whole file read-only. Only for files that no longer change
    /// (sealed segments) or for a one-off scan.
    fn map(&self) -> io::Result<Mapped>;
}

/// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
pub fn read_exact_at(
    file: &dyn StorageFile,
    mut buf: &mut [u8],
    mut offset: u64,
) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file ended before the expected length",
                ));
            }
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether an I/O error means the disk is full.
pub fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}
