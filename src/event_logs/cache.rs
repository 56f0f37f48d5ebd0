//! A small cache of decoded block sections (ids for dedup checks, heads for
//! queries), bounded by [`super::EventLogConfig::cache_bytes`].
//!
//! Keys are (file id, block offset): a rewritten day file gets a new file
//! id, so nothing stale is ever returned. Eviction is first in, first out,
//! which is what the access pattern needs (the newest blocks are the ones
//! asked for again: retries, the next page of recent rows).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::block::{Head, Ids};

#[derive(Clone)]
enum Entry {
    Ids(Arc<Ids>),
    Head(Arc<Head>),
}

impl Entry {
    fn bytes(&self) -> usize {
        match self {
            Entry::Ids(i) => 64 + i.len() * 28,
            Entry::Head(h) => 64 + h.bytes.len() + h.len() * 40,
        }
    }
}

#[derive(Default)]
struct State {
    map: HashMap<(u64, u64, u8), Entry>,
    order: VecDeque<(u64, u64, u8)>,
    bytes: usize,
}

/// The cache.
pub(crate) struct BlockCache {
    state: Mutex<State>,
    capacity: usize,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl BlockCache {
    pub(crate) fn new(capacity: u64) -> BlockCache {
        BlockCache {
            state: Mutex::new(State::default()),
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
        }
    }

    fn get(&self, key: (u64, u64, u8)) -> Option<Entry> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .get(&key)
            .cloned()
    }

    fn put(&self, key: (u64, u64, u8), e: Entry) {
        let bytes = e.bytes();
        if bytes > self.capacity / 2 {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = s.map.insert(key, e) {
            s.bytes -= old.bytes();
        } else {
            s.order.push_back(key);
        }
        s.bytes += bytes;
        while s.bytes > self.capacity {
            let Some(k) = s.order.pop_front() else { break };
            if let Some(old) = s.map.remove(&k) {
                s.bytes -= old.bytes();
            }
        }
    }

    pub(crate) fn ids(&self, file: u64, offset: u64) -> Option<Arc<Ids>> {
        match self.get((file, offset, 0))? {
            Entry::Ids(i) => Some(i),
            Entry::Head(_) => None,
        }
    }

    pub(crate) fn put_ids(&self, file: u64, offset: u64, ids: Arc<Ids>) {
        self.put((file, offset, 0), Entry::Ids(ids));
    }

    pub(crate) fn head(&self, file: u64, offset: u64) -> Option<Arc<Head>> {
        match self.get((file, offset, 1))? {
            Entry::Head(h) => Some(h),
            Entry::Ids(_) => None,
        }
    }

    pub(crate) fn put_head(&self, file: u64, offset: u64, head: Arc<Head>) {
        self.put((file, offset, 1), Entry::Head(head));
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }

    /// Forgets everything (after erasures: nothing of an erased user stays
    /// in memory).
    pub(crate) fn clear(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *s = State::default();
    }
}
