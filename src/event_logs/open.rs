//! Opening the store: the lock, the layout (fresh, format 3, or a format-2
//! store to convert), and loading the days.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use super::block::{BlockMeta, Interner};
use super::cache::BlockCache;
use super::cuckoo::Cuckoo;
use super::dayfile::{self, DayFile};
use super::hll::UserSet;
use super::idx::{IdxError, IdxFile};
use super::legacy::{self, Detected};
use super::maintain::CUCKOO_FILE;
use super::store::{
    DayView, EventLogConfig, EventLogError, EventLogStore, FORMAT_VERSION, Inner, View,
};
use super::write::{IdMap, Loc, OpenDay, Writer, new_file_id};
use crate::clock::Clock;
use crate::storage::owner_only;
use crate::timestamp;

/// The store's lock file, in its directory.
pub(crate) const LOCK_FILE: &str = "event_logs.lock";
/// The directory of day files, in the store's directory.
pub(crate) const DAYS_DIR: &str = "days";
/// Present while a format-2 store is being converted.
pub(crate) const UPGRADING: &str = "UPGRADING";
/// The format file, in the days directory.
pub(crate) const FORMAT_FILE: &str = "FORMAT";
/// Rows per insert while converting.
const CONVERT_BATCH: usize = 4096;

fn take_lock(path: &Path) -> Result<std::fs::File, EventLogError> {
    let p = path.join(LOCK_FILE);
    let file = owner_only::file_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&p)
        .map_err(|e| EventLogError::io("opening", &p, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(EventLogError::InUse {
            path: path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(EventLogError::io("locking", &p, e)),
    }
}

fn sync_dir(dir: &Path) {
    if let Err(e) = std::fs::File::open(dir).and_then(|f| f.sync_all()) {
        tracing::debug!(dir = %dir.display(), error = %e, "directory fsync failed");
    }
}

/// Creates an empty days directory at `dir` (through a temporary one).
fn create_days(dir: &Path) -> Result<(), EventLogError> {
    let tmp = super::idx::tmp_path(dir);
    let _ = std::fs::remove_dir_all(&tmp);
    owner_only::create_dir_all(&tmp).map_err(|e| EventLogError::io("creating", &tmp, e))?;
    write_format(&tmp)?;
    std::fs::rename(&tmp, dir).map_err(|e| EventLogError::io("renaming", &tmp, e))?;
    Ok(())
}

fn write_format(dir: &Path) -> Result<(), EventLogError> {
    let p = dir.join(FORMAT_FILE);
    owner_only::write_file(&p, format!("{FORMAT_VERSION}\n").as_bytes())
        .map_err(|e| EventLogError::io("writing", &p, e))
}

/// Opens (or creates, or converts) the store in `path`.
pub(crate) fn open(
    path: &Path,
    config: EventLogConfig,
    clock: Arc<dyn Clock>,
) -> Result<Inner, EventLogError> {
    config.validate()?;
    let _span = tracing::info_span!("event_logs_open", path = %path.display()).entered();
    let started = Instant::now();
    owner_only::create_dir_all(path).map_err(|e| EventLogError::io("creating", path, e))?;
    let lock = take_lock(path)?;
    let days = path.join(DAYS_DIR);
    let upgrading = path.join(UPGRADING);
    let unsupported = |found| EventLogError::UnsupportedFormat {
        path: path.display().to_string(),
        found,
        expected: FORMAT_VERSION,
    };
    if !days.is_dir() {
        if upgrading.exists() {
            tracing::warn!("an interrupted event_logs conversion starts again");
        }
        if legacy::has_sled_files(path) {
            match legacy::detect(path)? {
                Detected::Old(found) => return Err(unsupported(found)),
                Detected::Marker(found) if found > FORMAT_VERSION => {
                    return Err(unsupported(found));
                }
                Detected::Format2(db, tree, rows) => {
                    convert(path, &days, &upgrading, &config, &clock, db, tree, rows)?;
                }
                Detected::Marker(_) | Detected::Empty => {
                    tracing::warn!(
                        "event_logs directory holds the format-3 marker but no days: starting empty"
                    );
                    create_days(&days)?;
                    legacy::remove_sled_files(path)?;
                    legacy::write_marker(path)?;
                }
            }
        } else {
            create_days(&days)?;
            sync_dir(path);
            legacy::write_marker(path)?;
        }
    } else if upgrading.exists() {
        finish_conversion(path, &upgrading)?;
    } else if !legacy::has_sled_files(path) {
        // Created, then stopped before the marker was written.
        legacy::write_marker(path)?;
    }
    // A missing FORMAT file reads as version 0 (unsupported, named in the
    // error); any other read failure is reported as itself.
    let format_path = days.join(FORMAT_FILE);
    let format = match std::fs::read_to_string(&format_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(EventLogError::io("reading", &format_path, e)),
    };
    let found: u64 = format.trim().parse().unwrap_or(0);
    if found != FORMAT_VERSION {
        return Err(unsupported(found));
    }
    let inner = load(path, &days, config, clock, Some(lock))?;
    let view = inner.view();
    tracing::info!(
        rows = view.rows,
        days = view.days.len(),
        bytes = view.bytes,
        took_ms = started.elapsed().as_millis() as u64,
        "event_logs store open"
    );
    Ok(inner)
}

/// Converts a format-2 store: rows into a new days directory (through a
/// temporary one), then the sled files are replaced by the marker. An
/// `UPGRADING` file marks the conversion: interrupted before the days
/// directory exists, it starts again from the sled files (never touched
/// before that); after, only the sled files' replacement is left to do.
#[expect(
    clippy::too_many_arguments,
    reason = "the conversion's inputs, each used once; a struct would only name them again"
)]
fn convert(
    path: &Path,
    days: &Path,
    upgrading: &Path,
    config: &EventLogConfig,
    clock: &Arc<dyn Clock>,
    db: sled::Db,
    tree: sled::Tree,
    total: u64,
) -> Result<(), EventLogError> {
    owner_only::write_file(upgrading, b"converting event_logs format 2 to format 3\n")
        .map_err(|e| EventLogError::io("writing", upgrading, e))?;
    let tmp = super::idx::tmp_path(days);
    let _ = std::fs::remove_dir_all(&tmp);
    owner_only::create_dir_all(&tmp).map_err(|e| EventLogError::io("creating", &tmp, e))?;
    write_format(&tmp)?;
    tracing::info!(
        rows = total,
        "event_logs: converting the format-2 (sled) store to format 3 (day files)"
    );
    let started = Instant::now();
    let mut last_log = Instant::now();
    let store =
        EventLogStore::without_background(load(path, &tmp, config.clone(), clock.clone(), None)?);
    let mut done = 0u64;
    let read = legacy::read_rows(&tree, CONVERT_BATCH, |rows| {
        store.insert_encoded(&rows)?;
        done += rows.len() as u64;
        if last_log.elapsed().as_secs() >= 5 {
            last_log = Instant::now();
            tracing::info!(
                converted = done,
                of = total,
                "event_logs conversion in progress"
            );
        }
        Ok(())
    })?;
    // Seal finished days (they are then compact and fsynced), save the
    // indexes and the filter. Expired rows are left to the first cleanup
    // pass.
    store.inner.seal_finished(clock.now());
    store.close();
    store.inner.sync_all_days();
    drop(store);
    drop(tree);
    drop(db);
    sync_dir(&tmp);
    std::fs::rename(&tmp, days).map_err(|e| EventLogError::io("renaming", &tmp, e))?;
    sync_dir(path);
    tracing::info!(
        rows = read,
        took_ms = started.elapsed().as_millis() as u64,
        "event_logs rows converted; replacing the sled files"
    );
    finish_conversion(path, upgrading)
}

fn finish_conversion(path: &Path, upgrading: &Path) -> Result<(), EventLogError> {
    // sled may still hold its lock for a moment after its Db is dropped.
    let started = Instant::now();
    loop {
        legacy::remove_sled_files(path)?;
        match legacy::write_marker(path) {
            Err(EventLogError::InUse { .. }) if started.elapsed().as_secs() < 10 => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => {
                other?;
                break;
            }
        }
    }
    match std::fs::remove_file(upgrading) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(EventLogError::io("removing", upgrading, e)),
    }
    sync_dir(path);
    tracing::info!("event_logs conversion to format 3 done");
    Ok(())
}

/// Loads a days directory.
pub(crate) fn load(
    path: &Path,
    days_dir: &Path,
    config: EventLogConfig,
    clock: Arc<dyn Clock>,
    lock: Option<std::fs::File>,
) -> Result<Inner, EventLogError> {
    let mut interner = Interner::default();
    // Leftovers of rewrites and index saves that did not finish.
    if let Ok(entries) = std::fs::read_dir(days_dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let tombstones = super::erase::load(&days_dir.join(super::erase::FILE_NAME))?;
    let mut view = View {
        tombstones: Arc::new(tombstones),
        ..View::default()
    };
    let mut open: BTreeMap<i64, OpenDay> = BTreeMap::new();
    let mut max_commit = 0u64;
    let damaged = AtomicU64::new(0);
    let list =
        dayfile::list_days(days_dir).map_err(|e| EventLogError::io("listing", days_dir, e))?;
    for (day, file_path) in list {
        let file =
            DayFile::open(&file_path).map_err(|e| EventLogError::io("opening", &file_path, e))?;
        let len = file
            .len()
            .map_err(|e| EventLogError::io("reading", &file_path, e))?;
        let idx_path = days_dir.join(super::idx::file_name(day));
        if len < dayfile::HEADER_LEN {
            // Created, then the process stopped before its header was
            // written: it never held a row.
            let _ = std::fs::remove_file(&file_path);
            let _ = std::fs::remove_file(&idx_path);
            continue;
        }
        let header = file
            .read_region(0, dayfile::HEADER_LEN)
            .map_err(|e| EventLogError::io("reading", &file_path, e))?;
        dayfile::check_header(&header, day).map_err(|source| EventLogError::BadDayFile {
            path: file_path.display().to_string(),
            source,
        })?;
        let idx = match IdxFile::open(&idx_path, &mut interner) {
            Ok((f, meta))
                if meta.header.day == day
                    && meta.header.covered_len <= len
                    && meta.header.covered_len >= dayfile::HEADER_LEN =>
            {
                Some((f, meta))
            }
            Ok(_) | Err(IdxError::Damaged) => {
                if idx_path.exists() {
                    tracing::warn!(day = %timestamp::day_string(day), "event_logs index does not match its day file; recounting the day");
                }
                None
            }
            Err(IdxError::Io(_)) => None,
        };
        let file = Arc::new(file);
        let file_id = new_file_id();
        match idx {
            Some((f, meta)) if meta.header.sealed && meta.header.covered_len == len => {
                let users = if meta.header.sketch {
                    f.users().map(|u| u.count()).unwrap_or(0)
                } else {
                    u64::from(meta.header.users_len) / 8
                };
                max_commit = max_commit.max(meta.header.max_commit);
                let mut dv = DayView {
                    day,
                    file,
                    file_id,
                    len,
                    idx_len: f.len(),
                    blocks: meta.blocks.into_iter().map(Arc::new).collect(),
                    rows: 0,
                    names: BTreeMap::new(),
                    users,
                    users_estimated: meta.header.sketch,
                    sealed: None,
                    version: 0,
                    ids_generation: meta.header.ids_generation,
                };
                dv.sealed = Some(Arc::new(f));
                dv.recount_names();
                view.days.insert(day, Arc::new(dv));
            }
            idx => {
                let (od, dv) =
                    load_open_day(day, file, file_id, len, idx, &mut interner, &damaged)?;
                max_commit = max_commit.max(dv.max_commit());
                open.insert(day, od);
                view.days.insert(day, Arc::new(dv));
            }
        }
    }
    let sealed: BTreeMap<i64, u64> = view
        .days
        .values()
        .filter(|d| d.sealed.is_some())
        .map(|d| (d.day, d.ids_generation))
        .collect();
    let saved = std::fs::File::open(days_dir.join(CUCKOO_FILE))
        .ok()
        .and_then(Cuckoo::read_from)
        // Every sealed day's ids must be in it, as of its index's
        // generation; days it covers that are gone left stale ids behind,
        // which only cost a lookup (the next rebuild drops them).
        .filter(|(_, covered)| {
            let covered: BTreeMap<i64, u64> = covered.iter().copied().collect();
            sealed.iter().all(|(d, g)| covered.get(d) == Some(g))
        });
    let need_rebuild = saved.is_none() && !sealed.is_empty();
    let mut w = Writer::new(
        saved.map_or_else(|| Cuckoo::with_capacity(0), |(c, _)| c),
        interner,
    );
    w.covered = sealed;
    w.open = open;
    w.next_commit = max_commit + 1;
    let inner = Inner {
        path: path.to_owned(),
        days_dir: days_dir.to_owned(),
        config: config.clone(),
        clock,
        _lock: lock,
        writer: Mutex::new(w),
        maint: Mutex::new(()),
        view: RwLock::new(Arc::new(View::default())),
        cache: BlockCache::new(config.cache_bytes),
        signal: super::maintain::Signal::default(),
        background_compaction: std::sync::atomic::AtomicBool::new(true),
        damaged_blocks: damaged,
    };
    view.other_bytes = inner.other_bytes();
    view.retotal();
    if need_rebuild {
        let mut w = inner.writer();
        inner.grow_cuckoo(&mut w, &view, 0)?;
        inner.persist_cuckoo(&mut w);
    }
    inner.publish(view);
    Ok(inner)
}

/// Loads an open day: its index (if any) and the blocks written after it,
/// checked frame by frame; a torn tail is truncated, damage reported.
fn load_open_day(
    day: i64,
    file: Arc<DayFile>,
    file_id: u64,
    mut len: u64,
    idx: Option<(IdxFile, super::idx::IdxMeta)>,
    interner: &mut Interner,
    damaged: &AtomicU64,
) -> Result<(OpenDay, DayView), EventLogError> {
    let day_name = timestamp::day_string(day);
    let (mut blocks, mut entries, mut users, from, ids_generation) = match idx {
        Some((f, meta)) => match (f.entries(), f.users()) {
            (Ok(e), Ok(u)) => (
                meta.blocks,
                e,
                u,
                meta.header.covered_len,
                meta.header.ids_generation,
            ),
            _ => {
                tracing::warn!(day = %day_name, "event_logs index damaged; recounting the day");
                (
                    Vec::new(),
                    Vec::new(),
                    UserSet::default(),
                    dayfile::HEADER_LEN,
                    meta.header.ids_generation,
                )
            }
        },
        None => (
            Vec::new(),
            Vec::new(),
            UserSet::default(),
            dayfile::HEADER_LEN,
            0,
        ),
    };
    let last_seq = blocks.last().map_or(0, |b: &BlockMeta| b.summary.seq);
    let data = file
        .read_region(from, len - from)
        .map_err(|e| EventLogError::io("reading", &file.path, e))?;
    let scan = dayfile::scan(&data, from, last_seq, interner);
    for d in &scan.damage {
        damaged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("telespool_event_logs_damaged_blocks_total").increment(1);
        tracing::warn!(day = %day_name, offset = d.offset, bytes = d.len, cause = %d.cause, "event_logs day file damaged: the blocks there are lost, reading resumed at the next good block");
    }
    if let Some(t) = &scan.tail {
        tracing::warn!(day = %day_name, offset = t.offset, bytes = t.len, cause = %t.cause, "event_logs torn tail truncated");
        file.file
            .set_len(t.offset)
            .map_err(|e| EventLogError::io("truncating", &file.path, e))?;
        len = t.offset;
    }
    let new_blocks = scan.blocks;
    let superseding = new_blocks.iter().any(|b| b.summary.supersedes.is_some());
    let decode_err = |meta: &BlockMeta, e: &dyn std::fmt::Display| {
        damaged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("telespool_event_logs_damaged_blocks_total").increment(1);
        tracing::warn!(day = %day_name, offset = meta.offset, error = %e, "event_logs block unreadable at open; its rows are skipped");
    };
    // The blocks written after the index add their ids and users. Merged
    // blocks add no rows (theirs were counted in the blocks they replace,
    // before or after the index), but move ids: then every id is recomputed
    // from the live blocks.
    let mut added_ids = Vec::new();
    for meta in new_blocks.iter().filter(|b| b.summary.supersedes.is_none()) {
        match read_sections(&file, meta) {
            Ok((ids, head)) => {
                for r in 0..ids.len() {
                    added_ids.push((
                        ids.hash(r),
                        Loc {
                            seq: meta.summary.seq,
                            row: r as u16,
                        },
                    ));
                }
                for r in 0..head.len() {
                    users.insert(head.user_key(r));
                }
            }
            Err(e) => decode_err(meta, &e),
        }
    }
    let snapshot_count = blocks.len();
    blocks.extend(new_blocks);
    dayfile::apply_supersedes(&mut blocks);
    let next_seq = blocks
        .iter()
        .map(|b| b.summary.seq)
        .max()
        .map_or(1, |s| s + 1)
        .max(last_seq + 1);
    if superseding {
        entries.clear();
        for meta in &blocks {
            match read_sections(&file, meta) {
                Ok((ids, _)) => {
                    for r in 0..ids.len() {
                        entries.push((
                            ids.hash(r),
                            Loc {
                                seq: meta.summary.seq,
                                row: r as u16,
                            },
                        ));
                    }
                }
                Err(e) => decode_err(meta, &e),
            }
        }
    } else {
        entries.extend(added_ids);
    }
    let tmp_view = DayView {
        day,
        file: file.clone(),
        file_id,
        len,
        idx_len: 0,
        blocks: blocks.into_iter().map(Arc::new).collect(),
        rows: 0,
        names: BTreeMap::new(),
        users: 0,
        users_estimated: false,
        sealed: None,
        version: 0,
        ids_generation,
    };
    let mut dv = tmp_view;
    dv.recount_names();
    dv.users = users.count();
    dv.users_estimated = users.is_estimate();
    let changed = dv.blocks.len() != snapshot_count || superseding || scan.tail.is_some();
    Ok((
        OpenDay {
            ids: IdMap::from_entries(&entries),
            users,
            next_seq,
            len,
            changed,
        },
        dv,
    ))
}

fn read_sections(
    file: &DayFile,
    meta: &BlockMeta,
) -> Result<(super::block::Ids, super::block::Head), Box<dyn std::error::Error>> {
    let payload = super::block::read_payload(&file.file, meta)?;
    Ok((
        super::block::Ids::decode(&payload, meta)?,
        super::block::Head::decode(&payload, meta)?,
    ))
}

impl EventLogStore {
    /// A store without its background thread (conversion, tests).
    pub(crate) fn without_background(inner: Inner) -> EventLogStore {
        EventLogStore::from_parts(Arc::new(inner), None)
    }
}

impl Inner {
    /// fdatasyncs every day file.
    pub(crate) fn sync_all_days(&self) {
        for dv in self.view().days.values() {
            if let Err(e) = dv.file.file.sync_data() {
                tracing::warn!(path = %dv.file.path.display(), error = %e, "event_logs fdatasync failed");
            }
        }
    }
}
