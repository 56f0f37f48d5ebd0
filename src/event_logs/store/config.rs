//! The store's settings ([`EventLogConfig`]) and their defaults and limits.

use std::time::Duration;

use super::error::EventLogError;
use crate::event_logs::block;

/// Default [`EventLogConfig::cache_bytes`]: 2 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 2 * 1024 * 1024;
/// Smallest accepted [`EventLogConfig::cache_bytes`]: 1 MiB.
pub const MIN_CACHE_BYTES: u64 = 1024 * 1024;
/// Default [`EventLogConfig::retention`]: 93 days (Sourcegraph's
/// `event_logs` retention).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(93 * 24 * 3600);
/// Default [`EventLogConfig::quota_bytes`]: 2 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Smallest accepted [`EventLogConfig::quota_bytes`]: 1 MiB.
pub const MIN_QUOTA_BYTES: u64 = 1024 * 1024;
/// Most rows per block (an insert of more rows writes several blocks).
pub const BATCH_ROWS: usize = block::MAX_BLOCK_ROWS;
/// The format this code writes and reads (day files, `days/FORMAT`, and
/// the `mformat` key of the sled marker that older binaries read).
pub const FORMAT_VERSION: u64 = 3;
/// How often the background thread fdatasyncs the day files written since
/// its last pass (bounds what a power loss can take from the mirror).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// How often the index of each day written since is saved.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(30);
/// A day is sealed (compacted, its ids moved to the dedup filter) by the
/// first [`super::EventLogStore::expire`] this long after it ends.
pub const SEAL_AFTER: Duration = Duration::from_secs(3600);
/// The quota never evicts rows whose event time is within this of now.
pub const PROTECTED_NEWEST: Duration = Duration::from_secs(3600);
/// Largest encoded row accepted (events are at most 1 MiB by default).
pub const MAX_ROW_BYTES: usize = 16 * 1024 * 1024;

/// Settings of the `event_logs` store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLogConfig {
    /// Memory for decoded blocks kept between queries and dedup checks,
    /// in bytes. Default [`DEFAULT_CACHE_BYTES`] (2 MiB); at least
    /// [`MIN_CACHE_BYTES`].
    pub cache_bytes: u64,
    /// How long rows are kept, by event time. Default
    /// [`DEFAULT_RETENTION`] (93 days); must be positive.
    pub retention: Duration,
    /// Bytes of disk the store may use; past it the oldest rows are
    /// evicted (never those of the newest hour). Default
    /// [`DEFAULT_QUOTA_BYTES`] (2 GiB); at least [`MIN_QUOTA_BYTES`].
    pub quota_bytes: u64,
}

impl Default for EventLogConfig {
    fn default() -> EventLogConfig {
        EventLogConfig {
            cache_bytes: DEFAULT_CACHE_BYTES,
            retention: DEFAULT_RETENTION,
            quota_bytes: DEFAULT_QUOTA_BYTES,
        }
    }
}

impl EventLogConfig {
    /// Checks the settings, naming the one that is wrong.
    pub fn validate(&self) -> Result<(), EventLogError> {
        if self.cache_bytes < MIN_CACHE_BYTES {
            return Err(EventLogError::CacheTooSmall {
                cache_bytes: self.cache_bytes,
                min: MIN_CACHE_BYTES,
            });
        }
        if self.retention.is_zero() {
            return Err(EventLogError::ZeroRetention);
        }
        if self.quota_bytes < MIN_QUOTA_BYTES {
            return Err(EventLogError::QuotaTooSmall {
                quota_bytes: self.quota_bytes,
                min: MIN_QUOTA_BYTES,
            });
        }
        Ok(())
    }
}
