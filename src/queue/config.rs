//! The queue's settings.

use super::error::ConfigError;
use crate::log::{SyncPolicy, record, segment};
use std::time::Duration;

/// Default segment size limit.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Default segment age limit.
pub const DEFAULT_SEGMENT_AGE: Duration = Duration::from_secs(3600);
/// Default queue quota.
pub const DEFAULT_QUOTA_BYTES: u64 = 1024 * 1024 * 1024;
/// Default interval between index flushes done by [`Queue::tick`](super::Queue::tick).
pub const DEFAULT_INDEX_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// What to do when an append would exceed the quota.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FullPolicy {
    /// Refuse the append with [`QueueError::Full`](super::QueueError::Full).
    #[default]
    Refuse,
    /// Resolve the oldest unresolved records as dropped (counted, logged)
    /// and purge their segments until the append fits.
    DropOldest,
}

impl std::str::FromStr for FullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<FullPolicy, String> {
        match s {
            "refuse" => Ok(FullPolicy::Refuse),
            "drop-oldest" => Ok(FullPolicy::DropOldest),
            _ => Err(format!(
                "full policy {s:?} is not one of: refuse, drop-oldest"
            )),
        }
    }
}

/// Settings of the queue.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// When appends are durable. Default `always`.
    pub sync: SyncPolicy,
    /// Roll the active segment when the next batch would take it past this
    /// many bytes. Default 64 MiB.
    pub segment_bytes: u64,
    /// Roll the active segment when it is older than this and not empty.
    /// Default 1 h.
    pub segment_age: Duration,
    /// Bytes of segment files the queue may hold. Default 1 GiB.
    pub quota_bytes: u64,
    /// What to do when full. Default `refuse`.
    pub full_policy: FullPolicy,
    /// How often [`Queue::tick`](super::Queue::tick) flushes the index. Default 1 s.
    pub index_flush_interval: Duration,
}

impl Default for QueueConfig {
    fn default() -> QueueConfig {
        QueueConfig {
            sync: SyncPolicy::Always,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_age: DEFAULT_SEGMENT_AGE,
            quota_bytes: DEFAULT_QUOTA_BYTES,
            full_policy: FullPolicy::Refuse,
            index_flush_interval: DEFAULT_INDEX_FLUSH_INTERVAL,
        }
    }
}

impl QueueConfig {
    /// Checks the settings, naming the one that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let min = (segment::HEADER_LEN + record::encoded_len(0)) as u64;
        if self.segment_bytes < min {
            return Err(ConfigError::SegmentTooSmall {
                min,
                got: self.segment_bytes,
            });
        }
        if self.quota_bytes < self.segment_bytes.min(DEFAULT_SEGMENT_BYTES) {
            return Err(ConfigError::QuotaBelowSegment {
                quota: self.quota_bytes,
                segment: self.segment_bytes,
            });
        }
        if self.segment_age.is_zero() {
            return Err(ConfigError::ZeroSegmentAge);
        }
        Ok(())
    }
}
