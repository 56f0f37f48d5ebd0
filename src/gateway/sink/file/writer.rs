//! The file sink's writer thread: group commit and rotation.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::{MAX_GROUP_BYTES, Shared};
use crate::gateway::metrics;
use crate::gateway::sink::SinkError;

/// What the writer thread is asked to do.
#[derive(Debug)]
pub(super) enum Command {
    /// Append these lines; answer once they are durable.
    Write {
        /// Complete JSONL lines.
        lines: Vec<u8>,
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
pub(super) type Pending = (Vec<u8>, oneshot::Sender<Result<(), SinkError>>);

/// The open file and its rotation state. Lives on the writer thread.
pub(super) struct Writer {
    path: PathBuf,
    dir: PathBuf,
    file: File,
    len: u64,
    rotate_bytes: u64,
    next_suffix: u64,
    shared: Arc<Shared>,
}

impl Writer {
    /// Opens `path` for appending (creating its directory), cuts a partial
    /// last line, and finds the next rotation suffix.
    pub(super) fn open(
        path: &Path,
        rotate_bytes: u64,
        shared: Arc<Shared>,
    ) -> Result<Writer, SinkError> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| SinkError::io("creating directory", &dir, e))?;
        let mut file = open_append(path)?;
        let len = cut_partial_line(&mut file, path)?;
        sync_dir(&dir)?;
        let next_suffix = last_suffix(&dir, path)? + 1;
        Ok(Writer {
            path: path.to_owned(),
            dir,
            file,
            len,
            rotate_bytes,
            next_suffix,
            shared,
        })
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
                    Command::Write { lines, done } => {
                        bytes += lines.len();
                        group.push((lines, done));
                    }
                    Command::Close { done } => close = Some(done),
                }
                if close.is_none() && bytes < MAX_GROUP_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            let results = self.commit(&group);
            for ((_, done), result) in group.drain(..).zip(results) {
                let _ = done.send(result);
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
    fn commit(&mut self, group: &[Pending]) -> Vec<Result<(), SinkError>> {
        if let Some(e) = self.poisoned() {
            return vec![Err(e); group.len()];
        }
        let mut results = Vec::with_capacity(group.len());
        for (lines, _) in group {
            results.push(self.append(lines));
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
        }
        results
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
        tracing::info!(rotated = %target.display(), "rotated the events file");
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, SinkError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(|e| SinkError::io("opening for append", path, e))
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

/// The highest `N` among `PATH.N` files in `dir` (0 when none).
fn last_suffix(dir: &Path, path: &Path) -> Result<u64, SinkError> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(0);
    };
    let prefix = format!("{name}.");
    let entries = std::fs::read_dir(dir).map_err(|e| SinkError::io("listing", dir, e))?;
    Ok(entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file = entry.file_name();
            let suffix = file.to_str()?.strip_prefix(&prefix)?.to_owned();
            suffix.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(dir: &Path, rotate: u64) -> Writer {
        Writer::open(
            &dir.join("events.jsonl"),
            rotate,
            Arc::new(Shared::default()),
        )
        .unwrap()
    }

    fn group(batches: &[&str]) -> Vec<Pending> {
        batches
            .iter()
            .map(|b| (b.as_bytes().to_vec(), oneshot::channel().0))
            .collect()
    }

    #[test]
    fn a_partial_last_line_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":").unwrap();
        let w = writer(dir.path(), 1 << 20);
        assert_eq!(w.len, 8);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
        std::fs::write(&path, "no newline at all").unwrap();
        let w = writer(dir.path(), 1 << 20);
        assert_eq!(w.len, 0);
    }

    #[test]
    fn rotation_renames_with_the_next_free_number_and_never_splits_a_batch() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("events.jsonl.7"), "old\n").unwrap();
        let mut w = writer(dir.path(), 10);
        let results = w.commit(&group(&["aaaa\n", "bbbb\n", "cccccccc\n", "dd\n"]));
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("events.jsonl.8"), "aaaa\nbbbb\n");
        assert_eq!(read("events.jsonl.9"), "cccccccc\n");
        assert_eq!(read("events.jsonl"), "dd\n");
        assert_eq!(read("events.jsonl.7"), "old\n");
    }

    #[test]
    fn a_batch_larger_than_the_rotation_size_goes_whole_into_a_fresh_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path(), 4);
        let results = w.commit(&group(&["0123456789\n"]));
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(w.len, 11);
    }
}
