//! Owner-only files and directories, whatever the umask.
//!
//! The sidecar's data directory holds unredacted telemetry (`event_logs`
//! rows, dead letters) and the gateway's JSONL holds every published event:
//! no other local user may read them. The rules, for every place telespool
//! creates something on disk:
//!
//! - **Directories** are created with mode `0700` ([`create_dir_all`]).
//! - **Files** are created with mode `0600` and opened with `O_NOFOLLOW`
//!   ([`file_options`]): a symbolic link planted where a file is created,
//!   opened for writing or cut is not followed; the open fails with
//!   [`std::io::ErrorKind`] from `ELOOP`, which [`explain`] turns into
//!   "is a symbolic link (not followed)". `create_new` (`O_EXCL`) already
//!   refuses any existing name, links included.
//! - **Existing data** with looser modes (a data directory made by an older
//!   telespool, or copied with `cp -r` under umask 022) is tightened at
//!   start by [`tighten`]: directories to `0700`, regular files to `0600`
//!   (group and other bits removed, the owner's kept). The sidecar logs
//!   what it changed at warn; it does not refuse to start, because refusing
//!   would turn an upgrade into an outage for a condition it can fix.
//!   Entries it cannot change (owned by another user) are logged at warn.
//!   Symbolic links inside the tree are neither followed nor changed (the
//!   root itself may be a link: it is the operator's setting).
//! - **sled** creates its own files (`conf`, `db`, `snap.*`, `blobs/`)
//!   with the process umask. Its directory is created `0700` before sled
//!   opens it, and [`tighten`] runs on it right after the open
//!   ([`crate::sled_db::open`]). Blob files sled writes later (values over
//!   about 128 KiB) get the umask's mode, but inside a `0700` directory no
//!   other user can reach them, and the next start tightens them.
//!
//! Changes are made through a descriptor opened with `O_NOFOLLOW`
//! (`fchmod`), never by path, so a link swapped in between the check and
//! the change is not followed either.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every directory telespool creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file telespool creates.
pub const FILE_MODE: u32 = 0o600;
/// Permission bits that let anyone but the owner in.
const OTHERS: u32 = 0o077;

/// Creates `dir` and its missing parents with mode `0700`; directories
/// that exist are left as they are.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Open options for a file only the owner may read: mode `0600` when
/// created, and `O_NOFOLLOW`. Set read/write/create/append as needed.
pub fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE).custom_flags(libc::O_NOFOLLOW);
    options
}

/// Creates (or truncates) `path` for writing, owner-only and not through a
/// symbolic link ([`file_options`]).
pub fn create_file(path: &Path) -> io::Result<File> {
    file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// `std::fs::write`, owner-only and not through a symbolic link.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    create_file(path)?.write_all(bytes)
}

/// Whether an open failed because the last component is a symbolic link
/// that `O_NOFOLLOW` refused.
pub fn is_link_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// `e`, with a clearer message when it is an `O_NOFOLLOW` refusal or a
/// `create_new` that found a symbolic link at `path`.
pub fn explain(path: &Path, e: io::Error) -> io::Error {
    let link_in_the_way = is_link_refusal(&e)
        || (e.kind() == io::ErrorKind::AlreadyExists
            && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()));
    if link_in_the_way {
        io::Error::new(
            e.kind(),
            "is a symbolic link; telespool does not follow links where it creates or writes files (remove it)",
        )
    } else {
        e
    }
}

/// One entry [`tighten`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The path.
    pub path: PathBuf,
    /// Its mode before (permission bits).
    pub from: u32,
    /// Its mode after.
    pub to: u32,
}

/// What [`tighten`] did.
#[derive(Debug, Default)]
pub struct Tightened {
    /// Entries whose group or other bits were removed.
    pub changed: Vec<Changed>,
    /// Entries that could not be checked or changed.
    pub failed: Vec<(PathBuf, io::Error)>,
}

impl Tightened {
    /// Logs what changed and what failed: at warn when `loud` (data found
    /// with loose modes at start), else at debug (sled's fresh files).
    pub fn log(&self, what: &str, loud: bool) {
        for c in &self.changed {
            if loud {
                tracing::warn!(path = ?c.path, from = format!("{:o}", c.from), to = format!("{:o}", c.to), "{what}: removed group and other access");
            } else {
                tracing::debug!(path = ?c.path, from = format!("{:o}", c.from), to = format!("{:o}", c.to), "{what}: removed group and other access");
            }
        }
        for (path, e) in &self.failed {
            tracing::warn!(path = ?path, error = %e, "{what}: could not make it owner-only");
        }
    }
}

/// Makes `root` and everything under it owner-only: directories `0700`,
/// regular files `0600` at most (the owner's bits are kept, group and
/// other bits removed). Symbolic links below the root are not followed
/// or changed; other kinds of files (sockets, FIFOs) are left alone.
pub fn tighten(root: &Path) -> Tightened {
    let mut out = Tightened::default();
    let mut dirs = Vec::new();
    match tighten_one(root, true, false) {
        Ok(Some(c)) => out.changed.push(c),
        Ok(None) => {}
        Err(e) => {
            out.failed.push((root.to_owned(), e));
            return out;
        }
    }
    dirs.push(root.to_owned());
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                out.failed.push((dir, e));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    out.failed.push((dir.clone(), e));
                    continue;
                }
            };
            let path = entry.path();
            // The entry's own type, links not followed.
            let kind = match entry.file_type() {
                Ok(kind) => kind,
                Err(e) => {
                    out.failed.push((path, e));
                    continue;
                }
            };
            if !(kind.is_dir() || kind.is_file()) {
                continue;
            }
            match tighten_one(&path, kind.is_dir(), true) {
                Ok(Some(c)) => out.changed.push(c),
                Ok(None) => {}
                // Replaced by a link since it was listed: not ours to touch.
                Err(e) if is_link_refusal(&e) => {}
                Err(e) => out.failed.push((path.clone(), e)),
            }
            if kind.is_dir() {
                dirs.push(path);
            }
        }
    }
    out
}

/// Removes group and other bits from one file or directory, through a
/// descriptor (`fchmod`). Returns what changed, if anything.
fn tighten_one(path: &Path, dir: bool, no_follow: bool) -> io::Result<Option<Changed>> {
    let mut flags = libc::O_NONBLOCK;
    if no_follow {
        flags |= libc::O_NOFOLLOW;
    }
    if dir {
        flags |= libc::O_DIRECTORY;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    tighten_open(&file, path)
}

/// Removes group and other bits from one regular file (not followed if it
/// is a link: that fails with `ELOOP`). Returns what changed, if anything.
pub fn tighten_file(path: &Path) -> io::Result<Option<Changed>> {
    tighten_one(path, false, true)
}

/// Removes group and other bits from a file already open (`fchmod`).
pub fn tighten_open(file: &File, path: &Path) -> io::Result<Option<Changed>> {
    let mode = file.metadata()?.permissions().mode() & 0o7777;
    if mode & OTHERS == 0 {
        return Ok(None);
    }
    let to = mode & !OTHERS;
    file.set_permissions(Permissions::from_mode(to))?;
    Ok(Some(Changed {
        path: path.to_owned(),
        from: mode,
        to,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::symlink;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn created_directories_and_files_are_owner_only_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/c");
        create_dir_all(&nested).unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode(&dir.path().join(d)), 0o700, "{d}");
        }
        let file = nested.join("f");
        file_options()
            .write(true)
            .create_new(true)
            .open(&file)
            .unwrap()
            .write_all(b"x")
            .unwrap();
        assert_eq!(mode(&file), 0o600);
    }

    #[test]
    fn a_symbolic_link_is_not_followed_and_the_error_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = dir.path().join("link");
        symlink(&victim, &link).unwrap();
        let e = file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&link)
            .unwrap_err();
        assert!(is_link_refusal(&e), "{e}");
        assert!(explain(&link, e).to_string().contains("symbolic link"));
        let e = file_options()
            .write(true)
            .create_new(true)
            .open(&link)
            .unwrap_err();
        assert!(explain(&link, e).to_string().contains("symbolic link"));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }

    #[test]
    fn tighten_removes_group_and_other_bits_and_leaves_links_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/f"), "x").unwrap();
        std::fs::write(root.join("ro"), "x").unwrap();
        std::fs::set_permissions(&root, Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(root.join("sub"), Permissions::from_mode(0o775)).unwrap();
        std::fs::set_permissions(root.join("sub/f"), Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(root.join("ro"), Permissions::from_mode(0o444)).unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "x").unwrap();
        std::fs::set_permissions(&outside, Permissions::from_mode(0o644)).unwrap();
        symlink(&outside, root.join("link")).unwrap();

        let t = tighten(&root);
        assert!(t.failed.is_empty(), "{:?}", t.failed);
        assert_eq!(t.changed.len(), 4, "{:?}", t.changed);
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("sub")), 0o700);
        assert_eq!(mode(&root.join("sub/f")), 0o600);
        assert_eq!(mode(&root.join("ro")), 0o400);
        assert_eq!(mode(&outside), 0o644, "the link's target is not touched");
        assert!(
            tighten(&root).changed.is_empty(),
            "a second pass changes nothing"
        );
    }
}
