//! The `event_logs` mirror: every recorded event, unredacted, in the row
//! shape of Sourcegraph's legacy `event_logs` table.
//!
//! Sourcegraph's tee store writes each new-style telemetry event twice: the
//! redacted copy to the export queue, and a translated copy to `event_logs`,
//! which stays on the instance and feeds its admin analytics. This module
//! holds the translation ([`row::translate`], the mapping of Sourcegraph's
//! tee store, `internal/telemetry/teestore` in its public repository), the store
//! that keeps rows (one row per [`EventLogRow::event_id`], so a retried
//! event never produces a second row), retention, erasure, and the
//! admin-analytics queries over it ([`query`]: recent rows, counts by name
//! and day, distinct users by day). The rows carry private metadata as
//! recorded: they must never be exported or served to anyone but the
//! instance's administrators.
//!
//! # Why this shape (format 3)
//!
//! The data is append-only, time-ordered and queried and expired by UTC
//! day, so rows go to **one file per UTC day** of their event time, in
//! **compressed columnar blocks**, one per commit and day. The sled store
//! this replaces (format 2, one B-tree entry per row plus one per id) cost
//! ~1,370 bytes and ~4 KB of page rewrites per ~600-byte event, slowed down
//! as random (UUID v4) ids spread over the id tree, scanned rows for every
//! aggregate and deleted rows one by one. Measured against the leanest
//! sled layout in `benches/mirror.rs`; the figures are in
//! docs/benchmarks.md ("Mirror").
//!
//! # Layout
//!
//! ```text
//! <data dir>/event_logs/
//!   event_logs.lock          flock held while a store is open (InUse otherwise)
//!   conf, db, blobs/, snap.* a tiny sled database: the marker (below)
//!   days/
//!     FORMAT                 "3"
//!     YYYY-MM-DD.evl         day file: header, then block frames   (dayfile)
//!     YYYY-MM-DD.idx         day index: blocks, users, id entries   (idx)
//!     sealed.ids             dedup filter of the sealed days        (cuckoo)
//!     tombstones             pending erasures                       (erase)
//!
//! day file  = header (32 B: "TSEVLDAY", version 3, day, CRC) | frame*
//! frame     = len u32 LE | crc32 u32 LE (over len and payload) | payload   (the queue's framing)
//! payload   = kind 1 | summary_len u32 | summary | ids | head | rest
//! summary   = seq, rows, commit, min/max event time, supersedes,
//!             section codecs and sizes, names with row counts, sources,
//!             bloom of user ids and anonymous ids          (uncompressed, in memory)
//! ids       = canonical UUIDs as 16 bytes, other ids as text
//! head      = event times (delta varints), name, user_id, anonymous_user_id, source
//! rest      = url, version, client, marketing, billing, feature flags, argument, public_argument
//!             each column a per-block dictionary + indexes (or plain when mostly distinct),
//!             each section compressed on its own with zstd level 1          (block)
//! ```
//!
//! A block holds up to 4,096 rows (or ~1 MiB before compression). The
//! three sections are compressed separately so that dedup checks decode
//! only ids and filters and aggregates only the head. The directory of a
//! day (every block's offset and summary) lives in memory, so queries skip
//! blocks by time, name, source and user without reading them.
//!
//! # Writes
//!
//! [`EventLogStore::encode_row`] runs on the callers' threads
//! (`Tee::prepare`): it renders the JSON columns and parses the timestamp.
//! The mirror thread's [`EventLogStore::insert_encoded_groups`] takes one
//! group commit (every submitter's rows), under the writer mutex:
//!
//! 1. **Dedup** each event id against every retained day: an exact
//!    in-memory map (xxh3 id hash → block and row) for each *open* day, and
//!    one cuckoo filter (16-bit fingerprints, ≤0.012% false positives, ~17
//!    bits per id) over the ids of all *sealed* days; a hit of either is
//!    confirmed by decoding that block's ids and comparing (a sealed day's
//!    hit is first looked up in its index's sorted entries). A false
//!    positive never drops a row; an unreadable block cannot confirm, so
//!    the row is stored (a duplicate rather than a loss). The first row
//!    stored for an id wins. An event retried without a timestamp gets
//!    "now" again and may land in another day: that is why every day is
//!    checked, not only the row's.
//! 2. The new rows are grouped by UTC day and written as one block per
//!    day (more past 4,096 rows), with one `write` per day file. Nothing is
//!    fsynced per commit: the rows survive a process crash once the call
//!    returns; a background thread fdatasyncs the written files every
//!    second (the mirror is best-effort against power loss by design; the
//!    export queue is the durable copy).
//! 3. The day's aggregates follow: rows by name are the sum of its blocks'
//!    summaries; distinct users are kept per open day, exact up to 100,000
//!    ([`EXACT_USERS`]) and then a HyperLogLog estimate (standard error
//!    0.81%).
//! 4. At low load, commits write small blocks; once the last 16 blocks of a
//!    day are each under 1,024 rows they are merged into one block that
//!    names the range it **supersedes** (the old frames stay, dead, until
//!    the day is sealed).
//! 5. Past the quota, the oldest rows are evicted (below).
//!
//! A commit that spans several days is not atomic across them: a crash
//! may keep the blocks of some days. Nothing of it was acknowledged, and
//! its retry finds those rows as duplicates.
//!
//! # Sealing
//!
//! [`EventLogStore::expire`] (the cleanup task) seals every day that ended
//! more than an hour ago: the day file is rewritten (`.evl.tmp`, fsync,
//! rename) with its rows in full blocks sorted by event time, its index is
//! written and fsynced, and its ids move from the in-memory map into the
//! cuckoo filter. A late event for a sealed day reopens it: its ids come
//! back from the index into a map and leave the filter, and the day is
//! sealed again later.
//!
//! # Reads
//!
//! Readers never take the writer's lock: they take a snapshot of the
//! per-day views (copy-on-write, `Arc`s), each holding its open file. A day
//! dropped or rewritten while a query reads it is unlinked or renamed over,
//! and the query keeps reading the old inode through its handle. Costs of
//! each query are in [`query`].
//!
//! # Opening and crashes
//!
//! Each day's index records how many bytes of the day file it describes
//! (`covered_len`). Opening reads, per day, the index's header and block
//! directory (not its rows); a sealed day whose index covers the whole
//! file is done. For other days the bytes after `covered_len` are read
//! frame by frame (CRC checked; ids and users of new blocks added); a torn
//! tail (bytes that end inside a frame, or bad bytes that no good frame
//! follows) is truncated; damage followed by good frames costs the blocks
//! there, is logged, counted (`telespool_event_logs_damaged_blocks_total`,
//! [`EventLogStore::damaged_blocks`]) and shown by `telespool verify`, and
//! the walk resynchronises on the next frame that is intact and plausible
//! (its `seq` within what the damaged span could hold). An index that
//! claims more than the file holds (power loss took the file's tail), does
//! not check out, or is missing is ignored and the day recounted from its
//! blocks. Sealed days are trusted at open and checked when read: a
//! damaged block is skipped by queries and reported. Indexes of open days
//! are saved every 30 s and at close; a crash costs at most re-reading
//! what was written since. The cuckoo filter is saved with the list of
//! (sealed day, ids generation) it holds; if a sealed day is missing from
//! it (a crash before it was saved), it is rebuilt from the indexes.
//!
//! A rewrite (sealing, trimming, eviction, erasure) writes the new file
//! beside the old, fsyncs it, removes the day's index, renames the new file
//! over the old and writes the new index: a crash leaves either the old
//! file or the new one without an index (recounted at open).
//!
//! # Retention and quota
//!
//! Days that ended before `now - retention` are dropped whole: their two
//! files are removed (O(1) per day); their ids leave the cuckoo filter
//! later, in the background (a stale fingerprint only costs a lookup).
//! The day holding `now - retention` is trimmed: rewritten without its rows
//! before that instant (blocks entirely before it are dropped, blocks after
//! it copied as they are, only the straddling ones decoded), so retention is
//! exact to the row, as the sled store's was. Past
//! [`EventLogConfig::quota_bytes`] (counted over every file of the store),
//! each commit evicts down to 95% of the quota: whole oldest days first,
//! then blocks of the oldest day, oldest first; never a block holding a
//! row of the newest hour (if only those are left, the quota is exceeded
//! and a warning logged). Evicted rows are counted in
//! `telespool_event_logs_evicted_rows_total`. Rows past retention or
//! evicted have their ids forgotten: a late retry is stored again.
//!
//! # Erasure
//!
//! See [`erase`]: a fsynced tombstone hides a user's rows from every query
//! at once; a compaction rewrites the affected days without them, after
//! which the tombstone goes. `telespool event-logs erase` and
//! `POST /v1/event-logs/erase`.
//!
//! # Memory
//!
//! Per retained row: ~17 bits of cuckoo filter (sealed days) or ~20 bytes
//! of id map (open days: today, and yesterday until it is sealed). Per
//! block: its summary (~1 KB with a bloom of its users). Per open day: its
//! distinct users (8 bytes each, up to 100,000, then 16 KiB). Decoded
//! blocks kept between queries are bounded by
//! [`EventLogConfig::cache_bytes`]. At 93 days of 100,000 rows that is
//! ~20 MiB of filter plus a few MiB (docs/benchmarks.md has the measured
//! RssAnon).
//!
//! # Formats before this one
//!
//! Format 2 (sled: one tree, rows keyed by time and id, an id index) is
//! converted on first open, with progress lines in the log: its rows are
//! written into `days.tmp/` (an `UPGRADING` file marks the conversion),
//! finished days sealed, then `days.tmp/` is renamed to `days/` and only
//! then are the sled files replaced by the marker. A conversion interrupted
//! before the rename starts again from the untouched sled files; after it,
//! only the replacement is left to do. Format 1 is refused, as format 2
//! refused it. The **marker** is a sled database whose `event_logs` tree
//! says format 3: a format-2 binary opening the directory refuses with
//! "has format 3, this build reads only format 2" instead of starting an
//! empty sled mirror beside the day files.
//!
//! # Deviations from the plan in issue 12
//!
//! - The day files live in `days/`, not beside the sled marker, so that a
//!   conversion commits with one rename.
//! - One index file per day carries the block directory, the distinct
//!   users and the sorted id entries; rows by name come from the block
//!   summaries. No separate aggregates file.
//! - One cuckoo filter for all sealed days instead of one filter per day:
//!   probing 93 per-day filters for every new row cost more than the
//!   whole insert; one probe touches two cache lines.
//! - Retention stays exact to the row (the day on the boundary is
//!   trimmed), as the existing tests and the sled store had it.

mod block;
mod cache;
pub mod codec;
mod cuckoo;
mod dayfile;
pub mod erase;
mod hll;
mod idx;
mod key;
mod legacy;
mod maintain;
mod open;
pub mod query;
mod rewrite;
pub mod row;
mod row_encode;
pub mod store;
pub mod verify;
mod write;

#[cfg(test)]
mod durability_tests;
#[cfg(test)]
mod erase_tests;
#[cfg(test)]
mod store_tests;

#[doc(hidden)]
pub use block::probe_codec;
pub use block::{BlockError, ReadError};
pub use codec::CodecError;
pub use dayfile::{Damage, HeaderError, Tail};
pub use erase::{EraseOutcome, EraseTarget, Tombstone};
pub use hll::EXACT_USERS;
pub use maintain::MemoryReport;
pub use query::{DayNameCount, DayUsers, ParseCursorError, RecentCursor, RecentPage, RecentQuery};
pub use row::{EventLogRow, translate};
pub use store::{
    EncodedRow, EventLogConfig, EventLogError, EventLogStats, EventLogStore, InsertOutcome,
};
