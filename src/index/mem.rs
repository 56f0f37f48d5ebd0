//! The in-memory index double.

use super::{Index, IndexError, SegmentMeta};
use crate::ids::SegmentId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct State {
    generation: u64,
    live: BTreeMap<SegmentId, SegmentMeta>,
    flushed: BTreeMap<SegmentId, SegmentMeta>,
    flushes: u64,
}

/// An index held in memory; clones share it. [`MemIndex::crash`] forgets
/// every update since the last flush.
#[derive(Clone, Debug, Default)]
pub struct MemIndex {
    state: Arc<Mutex<State>>,
    generation: u64,
}

impl MemIndex {
    /// An empty index.
    pub fn new() -> MemIndex {
        MemIndex::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets unflushed updates, as a crash would; returns the handle to
    /// use from now on.
    pub fn crash(&self) -> MemIndex {
        let mut st = self.state();
        st.live = st.flushed.clone();
        st.generation += 1;
        MemIndex {
            state: self.state.clone(),
            generation: st.generation,
        }
    }

    fn current(&self) -> Option<MutexGuard<'_, State>> {
        let st = self.state();
        (st.generation == self.generation).then_some(st)
    }

    /// The flushed entries, for tests.
    pub fn flushed(&self) -> Vec<SegmentMeta> {
        self.state().flushed.values().cloned().collect()
    }

    /// Number of flushes so far.
    pub fn flushes(&self) -> u64 {
        self.state().flushes
    }

    /// Replaces an entry in both images (to fabricate an index that is
    /// ahead of or behind the files).
    pub fn overwrite(&self, meta: SegmentMeta) {
        let mut st = self.state();
        st.live.insert(meta.id, meta.clone());
        st.flushed.insert(meta.id, meta);
    }

    /// Removes an entry from both images.
    pub fn forget(&self, id: SegmentId) {
        let mut st = self.state();
        st.live.remove(&id);
        st.flushed.remove(&id);
    }
}

impl Index for MemIndex {
    fn load(&mut self) -> Result<Vec<SegmentMeta>, IndexError> {
        Ok(self.state().live.values().cloned().collect())
    }

    fn put(&mut self, meta: &SegmentMeta) -> Result<(), IndexError> {
        if let Some(mut st) = self.current() {
            st.live.insert(meta.id, meta.clone());
        }
        Ok(())
    }

    fn remove(&mut self, id: SegmentId) -> Result<(), IndexError> {
        if let Some(mut st) = self.current() {
            st.live.remove(&id);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IndexError> {
        if let Some(mut st) = self.current() {
            st.flushed = st.live.clone();
            st.flushes += 1;
        }
        Ok(())
    }
}
