//! A queue on the in-memory disk ([`telespool::storage::MemStorage`],
//! [`telespool::index::MemIndex`]) with a manual clock, and handles to crash
//! it; small configs, byte events and batches for the queue-level tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use telespool::index::MemIndex;
use telespool::storage::MemStorage;
use telespool::{Batch, ManualClock, Queue, QueueConfig, SyncPolicy, UnixNanos};

/// A queue on the in-memory disk, with handles to crash it.
pub struct Harness {
    pub disk: MemStorage,
    pub index: MemIndex,
    pub clock: ManualClock,
    pub config: QueueConfig,
    pub dir: PathBuf,
}

pub const START: UnixNanos = UnixNanos(1_700_000_000_000_000_000);

impl Harness {
    pub fn new(config: QueueConfig) -> Harness {
        Harness {
            disk: MemStorage::new(),
            index: MemIndex::new(),
            clock: ManualClock::new(START),
            config,
            dir: PathBuf::from("/data/queue"),
        }
    }

    pub fn small() -> Harness {
        Harness::new(small_config())
    }

    pub fn open(&self) -> (Queue, telespool::queue::OpenReport) {
        Queue::open(
            Arc::new(self.disk.clone()),
            &self.dir,
            Box::new(self.index.clone()),
            Arc::new(self.clock.clone()),
            self.config.clone(),
        )
        .expect("open")
    }

    /// Power loss: the disk keeps what was synced (plus `torn`), the index
    /// what was flushed; handles from before are dead.
    pub fn crash(&mut self, torn: telespool::storage::Torn) {
        self.disk = self.disk.crash(torn);
        self.index = self.index.crash();
    }

    pub fn segment_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:020}.seg"))
    }
}

pub fn small_config() -> QueueConfig {
    QueueConfig {
        sync: SyncPolicy::Always,
        segment_bytes: 4096,
        segment_age: Duration::from_secs(3600),
        quota_bytes: 1 << 30,
        ..QueueConfig::default()
    }
}

pub fn event(i: u64, len: usize) -> Vec<u8> {
    let mut v = format!("event-{i}-").into_bytes();
    v.resize(len.max(v.len()), b'x');
    v
}

pub fn batch(range: std::ops::Range<u64>, len: usize) -> Batch {
    let events: Vec<Vec<u8>> = range.map(|i| event(i, len)).collect();
    Batch::from_slices(&events)
}

pub fn file_exists(disk: &MemStorage, p: &Path) -> bool {
    disk.file_len(p).is_some()
}
