//! A fault-injecting decorator over any [`Storage`].
//!
//! Faults come two ways, both deterministic for a given seed and sequence of
//! operations:
//! - at random, with a probability per operation ([`FaultConfig`]);
//! - on demand: [`FaultyStorage::fail_next_syncs`],
//!   [`FaultyStorage::fail_next_truncates`],
//!   [`FaultyStorage::short_next_write`], [`FaultyStorage::set_space`]
//!   (ENOSPC once the given number of further bytes has been written).
//!
//! A short write writes a prefix of the buffer and then fails, as a full
//! disk or a dying device would. A failed fsync leaves the data in the live
//! image but not in the durable one.

use super::{LockGuard, Mapped, Storage, StorageFile};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// Probabilities of random faults, per operation, in `[0, 1]`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// A write fails with EIO before writing anything.
    pub write_error: f64,
    /// A write writes a random prefix, then fails with EIO.
    pub short_write: f64,
    /// An fsync (file data or directory) fails with EIO.
    pub sync_error: f64,
}

#[derive(Debug)]
struct Faults {
    rng: StdRng,
    config: FaultConfig,
    fail_syncs: u32,
    fail_truncates: u32,
    short_writes: u32,
    space: Option<u64>,
    injected: u64,
}

/// The fault-injecting storage. Clones share the same fault state.
#[derive(Clone, Debug)]
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    faults: Arc<Mutex<Faults>>,
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn StorageFile>,
    faults: Arc<Mutex<Faults>>,
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("injected fault: {what}"))
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

impl FaultyStorage {
    /// Wraps `inner`, with random faults drawn from `seed`.
    pub fn new(inner: Arc<dyn Storage>, config: FaultConfig, seed: u64) -> FaultyStorage {
        FaultyStorage {
            inner,
            faults: Arc::new(Mutex::new(Faults {
                rng: StdRng::seed_from_u64(seed),
                config,
                fail_syncs: 0,
                fail_truncates: 0,
                short_writes: 0,
                space: None,
                injected: 0,
            })),
        }
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `n` syncs (file or directory) fail.
    pub fn fail_next_syncs(&self, n: u32) {
        self.faults().fail_syncs = n;
    }

    /// The next `n` truncations (`set_len`) fail.
    pub fn fail_next_truncates(&self, n: u32) {
        self.faults().fail_truncates = n;
    }

    /// The next write writes half its buffer, then fails.
    pub fn short_next_write(&self) {
        self.faults().short_writes = 1;
    }

    /// Limits the space left: writes fail with ENOSPC once `bytes` more have
    /// been written (the write that crosses the limit writes what fits).
    /// `None` removes the limit.
    pub fn set_space(&self, bytes: Option<u64>) {
        self.faults().space = bytes;
    }

    /// Changes the random fault probabilities.
    pub fn set_config(&self, config: FaultConfig) {
        self.faults().config = config;
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.faults().injected
    }
}

fn check_sync(faults: &Mutex<Faults>, what: &str) -> io::Result<()> {
    let mut f = faults.lock().unwrap_or_else(|e| e.into_inner());
    let p = f.config.sync_error;
    if f.fail_syncs > 0 {
        f.fail_syncs -= 1;
        f.injected += 1;
        return Err(eio(what));
    }
    if p > 0.0 && f.rng.random_bool(p.min(1.0)) {
        f.injected += 1;
        return Err(eio(what));
    }
    Ok(())
}

impl Storage for FaultyStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(FaultyFile {
            inner: self.inner.open(path)?,
            faults: self.faults.clone(),
        }))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(FaultyFile {
            inner: self.inner.create(path)?,
            faults: self.faults.clone(),
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        check_sync(&self.faults, "directory fsync failed")?;
        self.inner.sync_dir(dir)
    }

    fn lock(&self, path: &Path, owner: &str) -> io::Result<Box<dyn LockGuard>> {
        self.inner.lock(path, owner)
    }

    fn lock_owner(&self, path: &Path) -> io::Result<String> {
        self.inner.lock_owner(path)
    }
}

impl StorageFile for FaultyFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut f = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(space) = f.space {
            if (buf.len() as u64) > space {
                let n = space as usize;
                f.space = Some(0);
                f.injected += 1;
                drop(f);
                self.inner.write_at(&buf[..n], offset)?;
                return Err(enospc());
            }
            f.space = Some(space - buf.len() as u64);
        }
        if f.short_writes > 0 {
            f.short_writes -= 1;
            f.injected += 1;
            drop(f);
            self.inner.write_at(&buf[..buf.len() / 2], offset)?;
            return Err(eio("short write"));
        }
        let cfg = f.config;
        if cfg.write_error > 0.0 && f.rng.random_bool(cfg.write_error.min(1.0)) {
            f.injected += 1;
            return Err(eio("write failed"));
        }
        if cfg.short_write > 0.0 && f.rng.random_bool(cfg.short_write.min(1.0)) {
            f.injected += 1;
            let n = f.rng.random_range(0..=buf.len());
            drop(f);
            self.inner.write_at(&buf[..n], offset)?;
            return Err(eio("short write"));
        }
        drop(f);
        self.inner.write_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        check_sync(&self.faults, "fdatasync failed")?;
        self.inner.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        {
            let mut f = self.faults.lock().unwrap_or_else(|e| e.into_inner());
            if f.fail_truncates > 0 {
                f.fail_truncates -= 1;
                f.injected += 1;
                return Err(eio("truncate failed"));
            }
        }
        self.inner.set_len(len)
    }

    fn map(&self) -> io::Result<Mapped> {
        self.inner.map()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemStorage, is_disk_full};
    use std::path::PathBuf;

    fn setup() -> (MemStorage, FaultyStorage, Arc<dyn StorageFile>) {
        let mem = MemStorage::new();
        let faulty = FaultyStorage::new(Arc::new(mem.clone()), FaultConfig::default(), 7);
        faulty.create_dir_all(Path::new("/d")).unwrap();
        let f = faulty.create(Path::new("/d/f")).unwrap();
        (mem, faulty, f)
    }

    #[test]
    fn enospc_writes_what_fits_then_fails() {
        let (mem, faulty, f) = setup();
        faulty.set_space(Some(4));
        let e = f.write_at(b"abcdef", 0).unwrap_err();
        assert!(is_disk_full(&e));
        assert_eq!(mem.read_file(&PathBuf::from("/d/f")).unwrap(), b"abcd");
        assert!(is_disk_full(&f.write_at(b"x", 4).unwrap_err()));
        faulty.set_space(None);
        f.write_at(b"x", 4).unwrap();
    }

    #[test]
    fn failed_sync_leaves_data_out_of_the_durable_image() {
        let (mem, faulty, f) = setup();
        faulty.sync_dir(Path::new("/d")).unwrap();
        f.write_at(b"abc", 0).unwrap();
        faulty.fail_next_syncs(1);
        assert!(f.sync_data().is_err());
        let mem = mem.crash(crate::storage::Torn::Nothing);
        assert_eq!(mem.read_file(&PathBuf::from("/d/f")).unwrap(), b"");
    }

    #[test]
    fn short_write_writes_half() {
        let (mem, faulty, f) = setup();
        faulty.short_next_write();
        assert!(f.write_at(b"abcd", 0).is_err());
        assert_eq!(mem.read_file(&PathBuf::from("/d/f")).unwrap(), b"ab");
        assert_eq!(faulty.injected(), 1);
    }
}
