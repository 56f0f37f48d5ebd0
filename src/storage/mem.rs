//! An in-memory disk that can crash.
//!
//! Every file keeps two images: `live`, what reads see, and `durable`, what
//! survived its last `sync_data`. Directory entries are durable only after a
//! `sync_dir` of their directory: a file created and never made durable by a
//! directory sync disappears in a crash, and a removed file comes back.
//! [`MemStorage::crash`] replaces the live state by the durable one (plus, on
//! request, a torn prefix of the unsynced writes), as a power loss would;
//! handles opened before the crash keep pointing at the old, now unreachable
//! files, so a process "killed" by a crash cannot touch the new state.

use super::{LockGuard, Mapped, Storage, StorageFile};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// What a crash keeps of the writes that were not synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Torn {
    /// Nothing: only synced data survives (a power loss).
    Nothing,
    /// Everything written (a process crash: the page cache survives), but
    /// directory entries still follow their last directory sync.
    Everything,
    /// A random prefix of each file's unsynced tail, drawn from the seed.
    Prefix(u64),
}

#[derive(Debug, Default)]
struct FileData {
    live: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct MemFile {
    data: Mutex<FileData>,
}

impl MemFile {
    fn data(&self) -> MutexGuard<'_, FileData> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Default)]
struct State {
    generation: u64,
    live: BTreeMap<PathBuf, Arc<MemFile>>,
    durable: BTreeMap<PathBuf, Arc<MemFile>>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeMap<PathBuf, String>,
}

/// The in-memory, crashable disk. Clones share the same disk.
///
/// A handle belongs to one *generation* of the disk: after
/// [`MemStorage::crash`], handles from before fail every directory-level
/// operation (the process that held them is dead), so a queue being dropped
/// after a simulated crash cannot create, remove or unlock anything in the
/// state that survived.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    state: Arc<Mutex<State>>,
    generation: u64,
}

#[derive(Debug)]
struct MemHandle {
    file: Arc<MemFile>,
}

#[derive(Debug)]
struct MemLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
    generation: u64,
}

impl LockGuard for MemLock {}

impl Drop for MemLock {
    fn drop(&mut self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.generation == self.generation {
            st.locks.remove(&self.path);
        }
    }
}

fn stale() -> io::Error {
    io::Error::other("stale handle: the in-memory disk crashed since it was taken")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

impl MemStorage {
    /// An empty disk.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(&self) -> io::Result<MutexGuard<'_, State>> {
        let st = self.state();
        if st.generation != self.generation {
            return Err(stale());
        }
        Ok(st)
    }

    /// Simulates a power loss: the live state becomes the durable state, plus
    /// what `torn` keeps of unsynced writes. Locks are released (the process
    /// that held them is gone). Returns the handle to the disk that
    /// survived; every older handle is stale from now on.
    pub fn crash(&self, torn: Torn) -> MemStorage {
        let mut st = self.state();
        st.generation += 1;
        let generation = st.generation;
        let mut rng = match torn {
            Torn::Prefix(seed) => Some(StdRng::seed_from_u64(seed)),
            _ => None,
        };
        let mut fresh = BTreeMap::new();
        for (path, file) in &st.durable {
            let d = file.data();
            let mut kept = d.durable.clone();
            let extends = d.live.len() > d.durable.len() && d.live.starts_with(&d.durable);
            if extends {
                let tail = &d.live[d.durable.len()..];
                let n = match (torn, rng.as_mut()) {
                    (Torn::Everything, _) => tail.len(),
                    (Torn::Prefix(_), Some(r)) => r.random_range(0..=tail.len()),
                    _ => 0,
                };
                kept.extend_from_slice(&tail[..n]);
            } else if torn == Torn::Everything {
                kept = d.live.clone();
            }
            let f = MemFile {
                data: Mutex::new(FileData {
                    live: kept.clone(),
                    durable: kept,
                }),
            };
            fresh.insert(path.clone(), Arc::new(f));
        }
        st.live = fresh.clone();
        st.durable = fresh;
        st.locks.clear();
        MemStorage {
            state: self.state.clone(),
            generation,
        }
    }

    /// The live length of a file, for tests.
    pub fn file_len(&self, path: &Path) -> Option<u64> {
        self.state()
            .live
            .get(path)
            .map(|f| f.data().live.len() as u64)
    }

    /// Overwrites bytes of a file in both images, as a bit rot would.
    pub fn corrupt(&self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let st = self.state();
        let f = st.live.get(path).ok_or_else(|| not_found(path))?;
        let mut d = f.data();
        let d = &mut *d;
        for img in [&mut d.live, &mut d.durable] {
            let start = offset as usize;
            let end = start + bytes.len();
            if img.len() < end {
                img.resize(end, 0);
            }
            img[start..end].copy_from_slice(bytes);
        }
        Ok(())
    }

    /// Creates (or replaces) a durable file with the given contents.
    pub fn put_file(&self, path: &Path, bytes: &[u8]) {
        let mut st = self.state();
        let f = Arc::new(MemFile {
            data: Mutex::new(FileData {
                live: bytes.to_vec(),
                durable: bytes.to_vec(),
            }),
        });
        st.live.insert(path.to_path_buf(), f.clone());
        st.durable.insert(path.to_path_buf(), f);
    }

    /// Appends bytes to a file in both images.
    pub fn append(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let len = self.file_len(path).ok_or_else(|| not_found(path))?;
        self.corrupt(path, len, bytes)
    }

    /// Removes a file from both images.
    pub fn delete(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state();
        st.durable.remove(path);
        st.live
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    /// Truncates a file in both images.
    pub fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let st = self.state();
        let f = st.live.get(path).ok_or_else(|| not_found(path))?;
        let mut d = f.data();
        d.live.truncate(len as usize);
        d.durable.truncate(len as usize);
        Ok(())
    }

    /// A copy of a file's live contents.
    pub fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let st = self.state();
        let f = st.live.get(path).ok_or_else(|| not_found(path))?;
        Ok(f.data().live.clone())
    }
}

impl Storage for MemStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.current()?;
        for a in dir.ancestors() {
            st.dirs.insert(a.to_path_buf());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.current()?;
        if !st.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(st
            .live
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let st = self.current()?;
        let file = st.live.get(path).ok_or_else(|| not_found(path))?;
        Ok(Arc::new(MemHandle { file: file.clone() }))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let mut st = self.current()?;
        if st.live.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: file exists", path.display()),
            ));
        }
        match path.parent() {
            Some(dir) if st.dirs.contains(dir) => {}
            _ => return Err(not_found(path)),
        }
        let file = Arc::new(MemFile::default());
        st.live.insert(path.to_path_buf(), file.clone());
        Ok(Arc::new(MemHandle { file }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.current()?;
        st.live
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.current()?;
        let st = &mut *st;
        st.durable.retain(|p, _| p.parent() != Some(dir));
        for (p, f) in &st.live {
            if p.parent() == Some(dir) {
                st.durable.insert(p.clone(), f.clone());
            }
        }
        Ok(())
    }

    fn lock(&self, path: &Path, owner: &str) -> io::Result<Box<dyn LockGuard>> {
        let mut st = self.current()?;
        if st.locks.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "locked by another process",
            ));
        }
        st.locks.insert(path.to_path_buf(), owner.to_string());
        Ok(Box::new(MemLock {
            state: self.state.clone(),
            path: path.to_path_buf(),
            generation: self.generation,
        }))
    }

    fn lock_owner(&self, path: &Path) -> io::Result<String> {
        self.state()
            .locks
            .get(path)
            .cloned()
            .ok_or_else(|| not_found(path))
    }
}

impl StorageFile for MemHandle {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.data().live.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let d = self.file.data();
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        if start >= d.live.len() {
            return Ok(0);
        }
        let n = buf.len().min(d.live.len() - start);
        buf[..n].copy_from_slice(&d.live[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut d = self.file.data();
        let start = usize::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        let end = start + buf.len();
        if d.live.len() < end {
            d.live.resize(end, 0);
        }
        d.live[start..end].copy_from_slice(buf);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut d = self.file.data();
        let d = &mut *d;
        if d.live.len() >= d.durable.len() && d.live.starts_with(&d.durable) {
            let n = d.durable.len();
            d.durable.extend_from_slice(&d.live[n..]);
        } else {
            d.durable = d.live.clone();
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length too large"))?;
        self.file.data().live.resize(len, 0);
        Ok(())
    }

    fn map(&self) -> io::Result<Mapped> {
        Ok(Arc::new(self.file.data().live.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (MemStorage, PathBuf) {
        let s = MemStorage::new();
        let dir = PathBuf::from("/d");
        s.create_dir_all(&dir).unwrap();
        (s, dir)
    }

    #[test]
    fn crash_keeps_synced_data_and_drops_unsynced_writes() {
        let (s, dir) = setup();
        let p = dir.join("f");
        let f = s.create(&p).unwrap();
        s.sync_dir(&dir).unwrap();
        f.write_at(b"hello", 0).unwrap();
        f.sync_data().unwrap();
        f.write_at(b" world", 5).unwrap();
        let s = s.crash(Torn::Nothing);
        assert_eq!(s.read_file(&p).unwrap(), b"hello");
    }

    #[test]
    fn crash_forgets_files_whose_directory_was_not_synced() {
        let (s, dir) = setup();
        let p = dir.join("f");
        let f = s.create(&p).unwrap();
        f.write_at(b"x", 0).unwrap();
        f.sync_data().unwrap();
        let s = s.crash(Torn::Everything);
        assert!(s.open(&p).is_err());
    }

    #[test]
    fn crash_brings_back_removed_files_until_the_directory_is_synced() {
        let (s, dir) = setup();
        let p = dir.join("f");
        s.create(&p).unwrap();
        s.sync_dir(&dir).unwrap();
        s.remove(&p).unwrap();
        let s = s.crash(Torn::Nothing);
        assert!(s.open(&p).is_ok());
        s.remove(&p).unwrap();
        s.sync_dir(&dir).unwrap();
        let s = s.crash(Torn::Nothing);
        assert!(s.open(&p).is_err());
    }

    #[test]
    fn torn_prefix_keeps_a_prefix_of_the_unsynced_tail() {
        for seed in 0..20 {
            let (s, dir) = setup();
            let p = dir.join("f");
            let f = s.create(&p).unwrap();
            s.sync_dir(&dir).unwrap();
            f.write_at(b"abc", 0).unwrap();
            f.sync_data().unwrap();
            f.write_at(b"defgh", 3).unwrap();
            let s = s.crash(Torn::Prefix(seed));
            let got = s.read_file(&p).unwrap();
            assert!(b"abcdefgh".starts_with(&got) && got.len() >= 3, "{got:?}");
        }
    }

    #[test]
    fn handles_from_before_a_crash_cannot_touch_the_new_state() {
        let (s, dir) = setup();
        let p = dir.join("f");
        let f = s.create(&p).unwrap();
        s.sync_dir(&dir).unwrap();
        f.sync_data().unwrap();
        let old = s.clone();
        let s = s.crash(Torn::Nothing);
        f.write_at(b"zombie", 0).unwrap();
        f.sync_data().unwrap();
        assert_eq!(s.read_file(&p).unwrap(), b"");
        assert!(old.create(&dir.join("g")).is_err());
        assert!(old.remove(&p).is_err());
    }

    #[test]
    fn a_second_lock_on_the_same_path_would_block() {
        let (s, dir) = setup();
        let p = dir.join("LOCK");
        let g = s.lock(&p, "pid 1").unwrap();
        let e = s.lock(&p, "pid 2").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(s.lock_owner(&p).unwrap(), "pid 1");
        drop(g);
        assert!(s.lock(&p, "pid 2").is_ok());
    }
}
