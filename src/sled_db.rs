//! Opening a sled database the way every telespool store does: one
//! directory per database, a bounded page cache, sled's background flusher
//! at a fixed interval, and a held directory lock told apart from other
//! failures.
//!
//! sled locks its directory for the life of a [`sled::Db`], so a second
//! opener (another process, or another store in this one) fails. sled
//! reports that as a plain I/O error; [`open`] turns it into
//! [`OpenError::InUse`], which each store maps to its own `InUse` error so
//! the CLI can say "a running sidecar holds this directory; use --addr".
//!
//! sled creates its files with the process umask. [`open`] creates the
//! directory `0700` first and makes what sled created owner-only right
//! after the open (see [`crate::storage::owner_only`]).

use std::path::Path;

/// Why a sled database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another `sled::Db` (in this process or another) holds the lock.
    /// The CLI asks the running sidecar instead (`--addr`).
    #[error("{path} is in use by another process")]
    InUse {
        /// The database directory.
        path: String,
    },
    /// Any other sled failure (I/O, damage). The operator looks at the
    /// disk.
    #[error(transparent)]
    Sled(#[from] sled::Error),
}

/// Opens (or creates) the database in the directory `path` with a page
/// cache of `cache_bytes` and sled's flusher every `flush_every_ms`.
pub fn open(path: &Path, cache_bytes: u64, flush_every_ms: u64) -> Result<sled::Db, OpenError> {
    crate::storage::owner_only::create_dir_all(path).map_err(sled::Error::Io)?;
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(cache_bytes)
        .flush_every_ms(Some(flush_every_ms))
        .open()
        .map_err(|e| match e {
            // sled reports a held lock as a plain I/O error with this text.
            sled::Error::Io(ref io) if io.to_string().contains("could not acquire lock") => {
                OpenError::InUse {
                    path: path.display().to_string(),
                }
            }
            other => OpenError::Sled(other),
        })?;
    crate::storage::owner_only::tighten(path).log("sled database", false);
    Ok(db)
}
