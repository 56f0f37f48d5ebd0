//! Real files. `pread`/`pwrite` through `std::os::unix::fs::FileExt`,
//! `fdatasync` through `File::sync_data`, directory fsync by opening the
//! directory, advisory locks through `File::try_lock`, and `memmap2` maps.
//!
//! Directories are created `0700` and files `0600`, and no symbolic link is
//! followed where a file is created, opened for writing or locked
//! ([`super::owner_only`]).

use super::owner_only::{self, file_options};
use super::{LockGuard, Mapped, Storage, StorageFile};
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsStorage;

#[derive(Debug)]
struct FsFile {
    file: File,
}

#[derive(Debug)]
struct FsLock {
    _file: File,
}

impl LockGuard for FsLock {}

impl Storage for FsStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        owner_only::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = file_options()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| owner_only::explain(path, e))?;
        Ok(Arc::new(FsFile { file }))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = file_options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| owner_only::explain(path, e))?;
        Ok(Arc::new(FsFile { file }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock(&self, path: &Path, owner: &str) -> io::Result<Box<dyn LockGuard>> {
        let mut file = file_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| owner_only::explain(path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "locked by another process",
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(owner.as_bytes())?;
        Ok(Box::new(FsLock { _file: file }))
    }

    fn lock_owner(&self, path: &Path) -> io::Result<String> {
        let mut s = String::new();
        File::open(path)?.read_to_string(&mut s)?;
        Ok(s)
    }
}

impl StorageFile for FsFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(&self.file, buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    #[expect(
        unsafe_code,
        reason = "memmap2::Mmap::map, the crate's one unsafe call (SAFETY below)"
    )]
    fn map(&self) -> io::Result<Mapped> {
        if self.len()? == 0 {
            return Ok(Arc::new(Vec::new()));
        }
        // SAFETY: the map is read-only and only taken of files the log no
        // longer changes (sealed segments) or, during recovery, of the active
        // segment before the writer starts; the log never truncates a file
        // while a map of it is alive (recovery drops its map before
        // truncating a torn tail), and purge only unlinks files, which keeps
        // mapped pages valid. Another process truncating our files under us
        // is outside what the data directory lock allows.
        let map = unsafe { memmap2::Mmap::map(&self.file)? };
        Ok(Arc::new(map))
    }
}
