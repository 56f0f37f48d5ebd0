//! The file sink's writer thread: group commit, rotation and retention of
//! rotated files.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

use super::super::dedup::{self, Window};
use super::{MAX_GROUP_BYTES, Shared};
use crate::gateway::config::FileConfig;
use crate::gateway::metrics;
use crate::gateway::sink::SinkError;
use crate::storage::owner_only;

/// While events are written, rotated files past `file_max_age` are looked
/// for at most this often (besides at start and after each rotation).
pub(super) const AGE_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// What the writer thread is asked to do.
#[derive(Debug)]
pub(super) enum Command {
    /// Append these lines; answer once they are durable.
    Write {
        /// Complete JSONL lines.
        lines: Vec<u8>,
        /// Each line's dedup key and where it ends in `lines`, in order
        /// (empty: write every line).
        keys: Vec<(u128, usize)>,
        /// The answer.
        done: oneshot::Sender<Result<(), SinkError>>,
    },
    /// Finish what is queued before this, then stop.
    Close {
        /// Answered after the last sync.
        done: oneshot::Sender<Result<(), SinkError>>,
    },
}

/// A batch of lines waiting in a group, and where its answer goes.
pub(super) struct WaitingBatch {
    lines: Vec<u8>,
    keys: Vec<(u128, usize)>,
    done: oneshot::Sender<Result<(), SinkError>>,
}

/// The open file and its rotation state. Lives on the writer thread.
pub(super) struct Writer {
    path: PathBuf,
    dir: PathBuf,
    file: File,
    len: u64,
    rotate_bytes: u64,
    next_suffix: u64,
    shared: Arc<Shared>,
    /// Rotated files kept, at most.
    keep: u64,
    /// Rotated files older than this are deleted.
    max_age: Option<Duration>,
    /// When rotated files were last looked at for age.
    last_age_check: Instant,
    /// The keys written in the last `dedup_window` ([`super::super::dedup`]).
    window: Window,
}

impl Writer {
    /// Opens `path` for appending (creating its directory `0700` if
    /// missing; the file `0600`, tightened if it was looser), cuts a partial
    /// last line, finds the next rotation suffix, and applies the retention
    /// of rotated files.
    pub(super) fn open(
        path: &Path,
        config: &FileConfig,
        shared: Arc<Shared>,
    ) -> Result<Writer, SinkError> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        owner_only::create_dir_all(&dir)
            .map_err(|e| SinkError::io("creating directory", &dir, e))?;
        let mut file = open_append(path)?;
        match owner_only::tighten_open(&file, path) {
            Ok(Some(c)) => {
                tracing::warn!(path = ?c.path, from = format!("{:o}", c.from), to = format!("{:o}", c.to), "events file had group or other access; tightened");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(path = ?path, error = %e, "could not make the events file owner-only");
            }
        }
        let len = cut_partial_line(&mut file, path)?;
        sync_dir(&dir)?;
        let rotated = rotated_files(&dir, path)?;
        for (_, old) in &rotated {
            match owner_only::tighten_file(old) {
                Ok(Some(c)) => {
                    tracing::warn!(path = ?c.path, from = format!("{:o}", c.from), to = format!("{:o}", c.to), "rotated events file had group or other access; tightened");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(path = ?old, error = %e, "could not make a rotated events file owner-only");
                }
            }
        }
        let next_suffix = rotated.last().map_or(0, |(n, _)| *n) + 1;
        let mut writer = Writer {
            path: path.to_owned(),
            dir,
            file,
            len,
            rotate_bytes: config.rotate_bytes,
            next_suffix,
            shared,
            keep: config.keep,
            max_age: config.max_age,
            last_age_check: Instant::now(),
            window: Window::new(config.dedup_window, config.dedup_max_ids),
        };
        writer.apply_retention(rotated);
        writer.rebuild_window();
        Ok(writer)
    }

    /// Fills the window from the tail of the file and of the rotated files
    /// (newest first), back to the first line older than the window, the
    /// first line without a key (written by an older gateway), or
    /// `dedup_max_ids` keys.
    fn rebuild_window(&mut self) {
        let now = unix_ms();
        let oldest = now.saturating_sub(self.window.window_ms());
        let mut files = vec![self.path.clone()];
        match rotated_files(&self.dir, &self.path) {
            Ok(rotated) => files.extend(rotated.into_iter().rev().map(|(_, p)| p)),
            Err(e) => tracing::warn!(error = %e, "listing rotated events files failed"),
        }
        let mut found: Vec<(u128, u64)> = Vec::new();
        let cap = self.window.max_ids();
        let mut done = false;
        for file in files {
            if done {
                break;
            }
            let scanned = dedup::scan_tail(&file, |key, at| {
                if at < oldest || found.len() >= cap {
                    done = true;
                    return false;
                }
                found.push((key, at));
                true
            });
            if let Err(e) = scanned {
                tracing::warn!(path = ?file, error = %e, "reading the tail of an events file for dedup keys failed; repeats of its events may be written again");
                break;
            }
        }
        // Oldest first, as they were written.
        for (key, at) in found.iter().rev() {
            self.window.insert(*key, *at);
        }
        self.window.expire(now);
        if !found.is_empty() {
            tracing::info!(keys = self.window.len(), window = ?Duration::from_millis(self.window.window_ms()), "dedup window rebuilt from the events files");
        }
    }

    /// Deletes rotated files past `keep` (the oldest, by suffix, first) and
    /// those older than `max_age`; counts and logs each. Returns how many
    /// were deleted. A file that cannot be deleted is logged and kept.
    fn apply_retention(&self, rotated: Vec<(u64, PathBuf)>) -> usize {
        let over = rotated
            .len()
            .saturating_sub(usize::try_from(self.keep).unwrap_or(usize::MAX));
        let cutoff = self
            .max_age
            .and_then(|age| SystemTime::now().checked_sub(age));
        let mut deleted = 0;
        for (i, (_, old)) in rotated.iter().enumerate() {
            let reason = if i < over {
                "count"
            } else {
                let modified = std::fs::symlink_metadata(old).and_then(|m| m.modified());
                match (cutoff, modified) {
                    (Some(cutoff), Ok(modified)) if modified < cutoff => "age",
                    _ => continue,
                }
            };
            match std::fs::remove_file(old) {
                Ok(()) => {
                    deleted += 1;
                    metrics::record_file_deleted(reason);
                    tracing::info!(path = ?old, reason, keep = self.keep, max_age = ?self.max_age, "deleted a rotated events file");
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = ?old, error = %e, "could not delete a rotated events file");
                }
            }
        }
        if deleted > 0
            && let Err(e) = sync_dir(&self.dir)
        {
            tracing::warn!(error = %e, "syncing the directory after deleting rotated files failed");
        }
        deleted
    }

    /// Applies the retention to the rotated files on disk now.
    fn prune(&mut self) {
        self.last_age_check = Instant::now();
        match rotated_files(&self.dir, &self.path) {
            Ok(rotated) => {
                self.apply_retention(rotated);
            }
            Err(e) => tracing::warn!(error = %e, "listing rotated events files failed"),
        }
    }

    /// Serves commands until `Close` or until every sender is gone.
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut group = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            let mut close = None;
            let mut bytes = 0;
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Write { lines, keys, done } => {
                        bytes += lines.len();
                        group.push(WaitingBatch { lines, keys, done });
                    }
                    Command::Close { done } => close = Some(done),
                }
                if close.is_none() && bytes < MAX_GROUP_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            let results = self.commit(&group);
            for (batch, result) in group.drain(..).zip(results) {
                let _ = batch.done.send(result);
            }
            if let Some(done) = close {
                rx.close();
                while let Ok(command) = rx.try_recv() {
                    let (Command::Write { done, .. } | Command::Close { done }) = command;
                    let _ = done.send(Err(SinkError::Closed { sink: "file" }));
                }
                let _ = done.send(self.poisoned().map_or(Ok(()), Err));
                return;
            }
        }
    }

    fn poisoned(&self) -> Option<SinkError> {
        self.shared.poisoned.lock().ok().and_then(|p| p.clone())
    }

    fn poison(&self) -> SinkError {
        let e = SinkError::Poisoned {
            path: self.path.clone(),
        };
        if let Ok(mut poisoned) = self.shared.poisoned.lock() {
            *poisoned = Some(e.clone());
        }
        e
    }

    /// Writes each batch (rotating between batches when needed), then syncs
    /// once; one result per batch.
    fn commit(&mut self, group: &[WaitingBatch]) -> Vec<Result<(), SinkError>> {
        if let Some(e) = self.poisoned() {
            return vec![Err(e); group.len()];
        }
        if self.max_age.is_some() && self.last_age_check.elapsed() >= AGE_CHECK_INTERVAL {
            self.prune();
        }
        let now = unix_ms();
        self.window.expire(now);
        let mut results = Vec::with_capacity(group.len());
        // Keys written by this group so far (by batches whose write
        // succeeded): a repeat later in the group is skipped too.
        let mut written = dedup::KeySet::default();
        let mut skipped = 0u64;
        for batch in group {
            let (lines, new_keys) = self.fresh_lines(batch, now, &written, &mut skipped);
            let result = if lines.is_empty() {
                Ok(())
            } else {
                self.append(&lines)
            };
            if result.is_ok() {
                written.extend(new_keys);
            }
            results.push(result);
            if self.poisoned().is_some() {
                break;
            }
        }
        let started = Instant::now();
        let synced = self.file.sync_data();
        metrics::record_file_sync(started.elapsed());
        let failure = match synced {
            Ok(()) => self.poisoned(),
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "fdatasync failed; the file sink stops");
                Some(self.poison())
            }
        };
        if let Some(e) = failure {
            results.resize(group.len(), Err(e.clone()));
            for result in results.iter_mut().filter(|r| r.is_ok()) {
                *result = Err(e.clone());
            }
            return results;
        }
        // Durable: remembered from now on.
        let mut evicted = 0;
        for key in written {
            evicted += self.window.insert(key, now);
        }
        ::metrics::counter!(dedup::SKIPPED).increment(skipped);
        ::metrics::counter!(dedup::EVICTED).increment(evicted);
        results
    }

    /// The lines of `batch` to write: all but those whose key is in the
    /// window, was written earlier in the group, or earlier in the batch;
    /// and the keys of the lines kept. Borrowed when nothing is skipped.
    fn fresh_lines<'a>(
        &self,
        batch: &'a WaitingBatch,
        now: u64,
        written: &dedup::KeySet,
        skipped: &mut u64,
    ) -> (Cow<'a, [u8]>, Vec<u128>) {
        let mut keep = Vec::with_capacity(batch.keys.len());
        let mut in_batch =
            dedup::KeySet::with_capacity_and_hasher(batch.keys.len(), dedup::KeyHasher::default());
        let mut out: Option<Vec<u8>> = None;
        let mut start = 0;
        for (i, &(key, end)) in batch.keys.iter().enumerate() {
            let repeat =
                self.window.contains(key, now) || written.contains(&key) || !in_batch.insert(key);
            if repeat {
                *skipped += 1;
                if out.is_none() {
                    let mut o = Vec::with_capacity(batch.lines.len());
                    let kept_until = batch
                        .keys
                        .get(..i)
                        .map_or(0, |k| k.last().map_or(0, |k| k.1));
                    o.extend_from_slice(batch.lines.get(..kept_until).unwrap_or_default());
                    out = Some(o);
                }
            } else {
                keep.push(key);
                if let Some(o) = out.as_mut() {
                    o.extend_from_slice(batch.lines.get(start..end).unwrap_or_default());
                }
            }
            start = end;
        }
        match out {
            Some(o) => (Cow::Owned(o), keep),
            None => (Cow::Borrowed(&batch.lines), keep),
        }
    }

    /// Appends one batch, rotating first if it would not fit. A failed
    /// write is cut off again; if that fails too, the sink is poisoned.
    fn append(&mut self, lines: &[u8]) -> Result<(), SinkError> {
        let incoming = lines.len() as u64;
        if self.len > 0 && self.len.saturating_add(incoming) > self.rotate_bytes {
            self.rotate()?;
        }
        if let Err(e) = self.file.write_all(lines) {
            if self.file.set_len(self.len).is_err() {
                self.poison();
            }
            return Err(SinkError::io("writing", &self.path, e));
        }
        self.len += incoming;
        Ok(())
    }

    /// Syncs the file, renames it `PATH.N`, and starts a new one.
    fn rotate(&mut self) -> Result<(), SinkError> {
        if let Err(e) = self.file.sync_data() {
            tracing::error!(path = %self.path.display(), error = %e, "fdatasync before rotation failed; the file sink stops");
            return Err(self.poison());
        }
        let mut target = self.path.clone().into_os_string();
        target.push(format!(".{}", self.next_suffix));
        let target = PathBuf::from(target);
        std::fs::rename(&self.path, &target)
            .map_err(|e| SinkError::io("rotating (rename)", &self.path, e))?;
        self.next_suffix += 1;
        // From here on the old handle points at the renamed file: a new one
        // must open, or nothing more can be written.
        match open_append(&self.path) {
            Ok(file) => self.file = file,
            Err(e) => {
                self.poison();
                return Err(e);
            }
        }
        self.len = 0;
        sync_dir(&self.dir)?;
        tracing::info!(rotated = ?target, "rotated the events file");
        self.prune();
        Ok(())
    }
}

/// Opens the events file for appending: created `0600`, and a symbolic
/// link at its path is refused, not followed.
/// Now, in ms since the Unix epoch (0 before it).
pub(super) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn open_append(path: &Path) -> Result<File, SinkError> {
    owner_only::file_options()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(|e| SinkError::io("opening for append", path, owner_only::explain(path, e)))
}

fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SinkError::io("syncing directory", dir, e))
}

/// Cuts everything after the last `\n` (a line a crash cut short; it was
/// never confirmed). Returns the resulting length.
fn cut_partial_line(file: &mut File, path: &Path) -> Result<u64, SinkError> {
    let io = |e| SinkError::io("repairing the end of", path, e);
    let len = file.metadata().map_err(io)?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let n = usize::try_from(end - start).unwrap_or(chunk.len());
        let buf = chunk.get_mut(..n).unwrap_or_default();
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        file.read_exact(buf).map_err(io)?;
        if let Some(i) = buf.iter().rposition(|b| *b == b'\n') {
            let keep = start + i as u64 + 1;
            if keep == len {
                return Ok(len);
            }
            end = keep;
            break;
        }
        end = start;
    }
    if end == len {
        // An empty file: nothing to cut.
        return Ok(len);
    }
    tracing::warn!(path = %path.display(), cut = len - end, "cut a partial last line (never confirmed)");
    file.set_len(end).map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok(end)
}

/// The rotated files `PATH.N` in `dir`, oldest (lowest `N`) first.
fn rotated_files(dir: &Path, path: &Path) -> Result<Vec<(u64, PathBuf)>, SinkError> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.");
    let entries = std::fs::read_dir(dir).map_err(|e| SinkError::io("listing", dir, e))?;
    let mut rotated: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file = entry.file_name();
            let suffix = file.to_str()?.strip_prefix(&prefix)?.parse::<u64>().ok()?;
            Some((suffix, entry.path()))
        })
        .collect();
    rotated.sort_unstable();
    Ok(rotated)
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
