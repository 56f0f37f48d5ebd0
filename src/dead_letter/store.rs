//! The dead-letter store on sled 0.34. The layout and guarantees are in the
//! [module documentation](super).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use sled::{IVec, Tree};

use super::DeadLetterError;
use super::entry::{self, DeadLetter, DeadLetterEntry, DeadLetterSeq};

/// Default [`DeadLetterConfig::cache_bytes`]: 4 MiB (dead letters are
/// written rarely and read by an operator).
pub const DEFAULT_CACHE_BYTES: u64 = 4 * 1024 * 1024;
/// Smallest accepted [`DeadLetterConfig::cache_bytes`]: 1 MiB.
pub const MIN_CACHE_BYTES: u64 = 1024 * 1024;
/// Default [`DeadLetterConfig::max_entries`]: 1,000,000.
pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;
/// Default [`DeadLetterConfig::quota_bytes`]: 256 MiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 256 * 1024 * 1024;
/// Smallest accepted [`DeadLetterConfig::quota_bytes`]: 1 MiB.
pub const MIN_QUOTA_BYTES: u64 = 1024 * 1024;
/// Counter of entries removed by the bounds.
pub const TRIMMED_METRIC: &str = "telespool_dead_letters_trimmed_total";
/// Gauge of the bytes of stored values.
pub const BYTES_METRIC: &str = "telespool_dead_letters_bytes";
/// Largest `limit` of [`DeadLetterStore::list`], [`DeadLetterStore::peek`]
/// and [`DeadLetterStore::take`].
pub const MAX_LIST_LIMIT: usize = 10_000;
/// Event bytes after which a listing stops early (it always returns at
/// least one entry): 16 MiB.
pub const LIST_BYTE_BUDGET: usize = 16 * 1024 * 1024;
/// How often sled's background thread fsyncs, in milliseconds.
pub const FLUSH_EVERY_MS: u64 = 500;
/// The value format this code writes and reads (`meta` key `format`).
pub const FORMAT_VERSION: u64 = 1;

const ENTRIES_TREE: &str = "entries";
const META_TREE: &str = "meta";
const META_FORMAT: &[u8] = b"format";
const META_COUNT: &[u8] = b"count";
const META_TRIMMED: &[u8] = b"trimmed";
const META_BYTES: &[u8] = b"bytes";

/// Settings of the dead-letter store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterConfig {
    /// sled's page cache, in bytes. Default [`DEFAULT_CACHE_BYTES`]
    /// (4 MiB); at least [`MIN_CACHE_BYTES`].
    pub cache_bytes: u64,
    /// Most entries kept; when a batch would go past it, the oldest entries
    /// are removed, counted and logged. Default [`DEFAULT_MAX_ENTRIES`]
    /// (1,000,000); at least 1.
    pub max_entries: u64,
    /// Most bytes of stored values (headers and events); past it, the
    /// oldest entries are removed, counted and logged. Default
    /// [`DEFAULT_QUOTA_BYTES`] (256 MiB); at least [`MIN_QUOTA_BYTES`].
    pub quota_bytes: u64,
}

impl Default for DeadLetterConfig {
    fn default() -> DeadLetterConfig {
        DeadLetterConfig {
            cache_bytes: DEFAULT_CACHE_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
            quota_bytes: DEFAULT_QUOTA_BYTES,
        }
    }
}

impl DeadLetterConfig {
    /// Checks the settings, naming the one that is wrong.
    pub fn validate(&self) -> Result<(), DeadLetterError> {
        if self.cache_bytes < MIN_CACHE_BYTES {
            return Err(DeadLetterError::CacheTooSmall {
                cache_bytes: self.cache_bytes,
                min: MIN_CACHE_BYTES,
            });
        }
        if self.max_entries == 0 {
            return Err(DeadLetterError::ZeroMaxEntries);
        }
        if self.quota_bytes < MIN_QUOTA_BYTES {
            return Err(DeadLetterError::QuotaTooSmall {
                quota_bytes: self.quota_bytes,
                min: MIN_QUOTA_BYTES,
            });
        }
        Ok(())
    }
}

/// What [`DeadLetterStore::put_batch`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutOutcome {
    /// The seq given to each entry, in batch order.
    pub seqs: Vec<DeadLetterSeq>,
    /// Entries removed to stay within `max_entries` and `quota_bytes`: the
    /// oldest first, and then, when the batch alone is over a bound, the
    /// batch's own first entries (their seqs are in `seqs` but they are not
    /// stored).
    pub trimmed: u64,
    /// Bytes of the values those entries held.
    pub trimmed_bytes: u64,
}

/// Which entries [`DeadLetterStore::take`] removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection<'a> {
    /// The oldest entries.
    All,
    /// These entries (in seq order; seqs not stored are skipped).
    Seqs(&'a [DeadLetterSeq]),
}

/// The dead-letter store.
#[derive(Debug)]
pub struct DeadLetterStore {
    db: sled::Db,
    pub(super) entries: Tree,
    meta: Tree,
    config: DeadLetterConfig,
    path: PathBuf,
    /// Serialises the operations that read before they write (the bound,
    /// `take`), so the count they read is the count they update.
    writes: Mutex<()>,
}

impl DeadLetterStore {
    /// Opens (or creates) the store in the directory `path`.
    ///
    /// Fails with [`DeadLetterError::InUse`] when another process (or
    /// another store in this one) has it open.
    pub fn open(path: &Path, config: DeadLetterConfig) -> Result<DeadLetterStore, DeadLetterError> {
        config.validate()?;
        let _span = tracing::info_span!("dead_letter_open", path = %path.display()).entered();
        let db = crate::sled_db::open(path, config.cache_bytes, FLUSH_EVERY_MS)?;
        let entries = db.open_tree(ENTRIES_TREE)?;
        let meta = db.open_tree(META_TREE)?;
        match meta.get(META_FORMAT)? {
            None => {
                meta.insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes())?;
            }
            Some(v) => {
                let found = decode_u64(META_FORMAT, Some(v))?;
                if found != FORMAT_VERSION {
                    return Err(DeadLetterError::UnsupportedFormat {
                        path: path.display().to_string(),
                        found,
                        expected: FORMAT_VERSION,
                    });
                }
            }
        }
        if meta.get(META_COUNT)?.is_none() {
            let n = entries.len() as u64;
            meta.insert(META_COUNT, &n.to_be_bytes())?;
        }
        if meta.get(META_BYTES)?.is_none() {
            // A store from before the byte quota: count once.
            let mut bytes = 0u64;
            for kv in &entries {
                let (_, v) = kv?;
                bytes = bytes.saturating_add(v.len() as u64);
            }
            meta.insert(META_BYTES, &bytes.to_be_bytes())?;
        }
        let store = DeadLetterStore {
            db,
            entries,
            meta,
            config,
            path: path.to_owned(),
            writes: Mutex::new(()),
        };
        let count = store.count()?;
        store.publish_bytes();
        if count > 0 {
            tracing::warn!(
                count,
                bytes = store.bytes()?,
                "dead-letter store holds entries"
            );
        } else {
            tracing::info!("dead-letter store open");
        }
        Ok(store)
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &DeadLetterConfig {
        &self.config
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The mutex guards no data, so a panic elsewhere leaves nothing torn.
        self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `batch` in one transaction, giving each entry the next seq,
    /// and removes the oldest entries past `max_entries` in the same
    /// transaction (counted in [`PutOutcome::trimmed`] and
    /// [`DeadLetterStore::trimmed_total`], and logged). Call
    /// [`DeadLetterStore::flush`] before relying on the entries.
    pub fn put_batch(&self, batch: &[DeadLetterEntry]) -> Result<PutOutcome, DeadLetterError> {
        if batch.is_empty() {
            return Ok(PutOutcome::default());
        }
        let _guard = self.lock();
        let mut seqs = Vec::with_capacity(batch.len());
        let mut writes = Vec::with_capacity(batch.len());
        for (index, e) in batch.iter().enumerate() {
            let value =
                entry::encode(e).map_err(|source| DeadLetterError::Encode { index, source })?;
            let seq = DeadLetterSeq(self.db.generate_id()?);
            seqs.push(seq);
            writes.push((IVec::from(&seq.key()), IVec::from(value)));
        }
        let added = batch.len() as u64;
        let added_bytes: u64 = writes.iter().map(|(_, v)| v.len() as u64).sum();
        let (max_entries, quota) = (self.config.max_entries, self.config.quota_bytes);
        // What is left after removing victims, and whether it fits.
        let mut count = self.count()?.saturating_add(added);
        let mut bytes = self.bytes()?.saturating_add(added_bytes);
        let fits = |count: u64, bytes: u64| count <= max_entries && bytes <= quota;
        let mut old_victims = Vec::new();
        for kv in &self.entries {
            if fits(count, bytes) {
                break;
            }
            let (k, v) = kv?;
            count = count.saturating_sub(1);
            bytes = bytes.saturating_sub(v.len() as u64);
            old_victims.push(k);
        }
        let mut own_victims = 0;
        for (_, v) in &writes {
            if fits(count, bytes) {
                break;
            }
            count = count.saturating_sub(1);
            bytes = bytes.saturating_sub(v.len() as u64);
            own_victims += 1;
        }
        let (trimmed, trimmed_bytes) = (&self.entries, &self.meta)
            .transaction(|(entries, meta)| {
                let mut removed = 0u64;
                let mut removed_bytes = 0u64;
                for (k, v) in &writes {
                    entries.insert(k.clone(), v.clone())?;
                }
                for k in &old_victims {
                    if let Some(old) = entries.remove(k.clone())? {
                        removed += 1;
                        removed_bytes += old.len() as u64;
                    }
                }
                for (k, v) in writes.iter().take(own_victims) {
                    entries.remove(k.clone())?;
                    removed += 1;
                    removed_bytes += v.len() as u64;
                }
                let count = tx_u64(meta, META_COUNT)?;
                meta.insert(
                    META_COUNT,
                    &count
                        .saturating_add(added)
                        .saturating_sub(removed)
                        .to_be_bytes(),
                )?;
                let bytes = tx_u64(meta, META_BYTES)?;
                meta.insert(
                    META_BYTES,
                    &bytes
                        .saturating_add(added_bytes)
                        .saturating_sub(removed_bytes)
                        .to_be_bytes(),
                )?;
                if removed > 0 {
                    let total = tx_u64(meta, META_TRIMMED)?;
                    meta.insert(META_TRIMMED, &total.saturating_add(removed).to_be_bytes())?;
                }
                Ok((removed, removed_bytes))
            })
            .map_err(from_tx)?;
        if trimmed > 0 {
            metrics::counter!(TRIMMED_METRIC).increment(trimmed);
            tracing::warn!(
                trimmed,
                trimmed_bytes,
                max_entries,
                quota_bytes = quota,
                "dead-letter store full: removed the oldest entries"
            );
        }
        self.publish_bytes();
        Ok(PutOutcome {
            seqs,
            trimmed,
            trimmed_bytes,
        })
    }

    /// Writes every earlier change out of sled's buffers
    /// (`sync_file_range`): it survives a process crash. Not an fsync: a
    /// power loss may lose the last half second (sled's background fsync).
    pub fn flush(&self) -> Result<(), DeadLetterError> {
        self.db.flush()?;
        Ok(())
    }

    /// Entries after `after` (from the oldest when `None`), oldest first:
    /// at most `limit` (1 to [`MAX_LIST_LIMIT`]), and fewer once their event
    /// bytes reach [`LIST_BYTE_BUDGET`] (always at least one). Page with the
    /// last seq returned.
    pub fn list(
        &self,
        after: Option<DeadLetterSeq>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, DeadLetterError> {
        check_limit(limit)?;
        let start = match after {
            None => 0,
            Some(DeadLetterSeq(u64::MAX)) => return Ok(Vec::new()),
            Some(DeadLetterSeq(s)) => s + 1,
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for kv in self.entries.range(DeadLetterSeq(start).key()..) {
            let (k, v) = kv?;
            let letter = decode_kv(&k, &v)?;
            bytes = bytes.saturating_add(letter.entry.event.len());
            out.push(letter);
            if out.len() >= limit || bytes >= LIST_BYTE_BUDGET {
                break;
            }
        }
        Ok(out)
    }

    /// The oldest entries, without removing them: [`DeadLetterStore::list`]
    /// from the start. Requeue with `peek`, append to the queue durably,
    /// then [`DeadLetterStore::remove`] (see the module documentation).
    pub fn peek(&self, limit: usize) -> Result<Vec<DeadLetter>, DeadLetterError> {
        self.list(None, limit)
    }

    /// The entry at `seq`, if stored.
    pub fn get(&self, seq: DeadLetterSeq) -> Result<Option<DeadLetter>, DeadLetterError> {
        self.entries
            .get(seq.key())?
            .map(|v| decode_kv(&seq.key(), &v))
            .transpose()
    }

    /// Removes the entries at `seqs` (seqs not stored are skipped) in one
    /// transaction; returns how many were removed.
    pub fn remove(&self, seqs: &[DeadLetterSeq]) -> Result<u64, DeadLetterError> {
        let _guard = self.lock();
        let keys: Vec<IVec> = seqs.iter().map(|s| IVec::from(&s.key())).collect();
        let removed = (&self.entries, &self.meta)
            .transaction(|(entries, meta)| {
                let mut removed = 0u64;
                let mut removed_bytes = 0u64;
                for k in &keys {
                    if let Some(old) = entries.remove(k.clone())? {
                        removed += 1;
                        removed_bytes += old.len() as u64;
                    }
                }
                if removed > 0 {
                    let count = tx_u64(meta, META_COUNT)?;
                    meta.insert(META_COUNT, &count.saturating_sub(removed).to_be_bytes())?;
                    let bytes = tx_u64(meta, META_BYTES)?;
                    meta.insert(
                        META_BYTES,
                        &bytes.saturating_sub(removed_bytes).to_be_bytes(),
                    )?;
                }
                Ok(removed)
            })
            .map_err(from_tx);
        self.publish_bytes();
        removed
    }

    /// Removes and returns entries in one transaction: the oldest
    /// ([`Selection::All`]) or the given seqs, at most `limit` (1 to
    /// [`MAX_LIST_LIMIT`]) and fewer once their event bytes reach
    /// [`LIST_BYTE_BUDGET`] (always at least one).
    ///
    /// The entries exist only in the returned value until the caller stores
    /// them elsewhere: a crash in between loses them. Prefer
    /// [`DeadLetterStore::peek`] + [`DeadLetterStore::remove`] after a
    /// durable append.
    pub fn take(
        &self,
        selection: Selection<'_>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, DeadLetterError> {
        check_limit(limit)?;
        let _guard = self.lock();
        let keys: Vec<IVec> = match selection {
            Selection::All => self
                .entries
                .iter()
                .keys()
                .take(limit)
                .collect::<Result<_, sled::Error>>()?,
            Selection::Seqs(seqs) => {
                let mut seqs = seqs.to_vec();
                seqs.sort_unstable();
                seqs.dedup();
                seqs.iter().map(|s| IVec::from(&s.key())).collect()
            }
        };
        let taken = (&self.entries, &self.meta)
            .transaction(|(entries, meta)| {
                let mut out = Vec::new();
                let mut bytes = 0usize;
                let mut removed_bytes = 0u64;
                for k in &keys {
                    let Some(v) = entries.remove(k.clone())? else {
                        continue;
                    };
                    removed_bytes += v.len() as u64;
                    let letter = decode_kv(k, &v).map_err(ConflictableTransactionError::Abort)?;
                    bytes = bytes.saturating_add(letter.entry.event.len());
                    out.push(letter);
                    if out.len() >= limit || bytes >= LIST_BYTE_BUDGET {
                        break;
                    }
                }
                if !out.is_empty() {
                    let count = tx_u64(meta, META_COUNT)?;
                    meta.insert(
                        META_COUNT,
                        &count.saturating_sub(out.len() as u64).to_be_bytes(),
                    )?;
                    let stored = tx_u64(meta, META_BYTES)?;
                    meta.insert(
                        META_BYTES,
                        &stored.saturating_sub(removed_bytes).to_be_bytes(),
                    )?;
                }
                Ok(out)
            })
            .map_err(from_tx);
        self.publish_bytes();
        taken
    }

    /// Entries stored (a counter kept with the entries: O(1)).
    pub fn count(&self) -> Result<u64, DeadLetterError> {
        decode_u64(META_COUNT, self.meta.get(META_COUNT)?)
    }

    /// Bytes of the stored values (headers and events), as counted against
    /// `quota_bytes` (O(1)).
    pub fn bytes(&self) -> Result<u64, DeadLetterError> {
        decode_u64(META_BYTES, self.meta.get(META_BYTES)?)
    }

    /// Entries removed by the `max_entries` and `quota_bytes` bounds since
    /// the store was created.
    pub fn trimmed_total(&self) -> Result<u64, DeadLetterError> {
        decode_u64(META_TRIMMED, self.meta.get(META_TRIMMED)?)
    }

    /// Sets the bytes gauge to the stored count.
    fn publish_bytes(&self) {
        if let Ok(bytes) = self.bytes() {
            metrics::gauge!(BYTES_METRIC).set(bytes as f64);
        }
    }
}

fn check_limit(limit: usize) -> Result<(), DeadLetterError> {
    if limit == 0 || limit > MAX_LIST_LIMIT {
        return Err(DeadLetterError::LimitOutOfRange {
            limit,
            max: MAX_LIST_LIMIT,
        });
    }
    Ok(())
}

fn decode_kv(k: &[u8], v: &[u8]) -> Result<DeadLetter, DeadLetterError> {
    let seq = DeadLetterSeq::from_key(k).ok_or_else(|| DeadLetterError::BadEntry {
        tree: ENTRIES_TREE,
        key: k.to_vec(),
        len: k.len(),
    })?;
    Ok(DeadLetter {
        seq,
        entry: entry::decode(seq, v)?,
    })
}

/// A counter in `meta`: absent is 0, anything but 8 bytes is malformed.
fn decode_u64(k: &[u8], v: Option<IVec>) -> Result<u64, DeadLetterError> {
    let Some(v) = v else { return Ok(0) };
    let bytes: [u8; 8] = v
        .as_ref()
        .try_into()
        .map_err(|_| DeadLetterError::BadEntry {
            tree: META_TREE,
            key: k.to_vec(),
            len: v.len(),
        })?;
    Ok(u64::from_be_bytes(bytes))
}

/// [`decode_u64`] inside a transaction.
fn tx_u64(
    meta: &sled::transaction::TransactionalTree,
    k: &[u8],
) -> Result<u64, ConflictableTransactionError<DeadLetterError>> {
    decode_u64(k, meta.get(k)?).map_err(ConflictableTransactionError::Abort)
}

fn from_tx(e: TransactionError<DeadLetterError>) -> DeadLetterError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => DeadLetterError::Sled(e),
    }
}
