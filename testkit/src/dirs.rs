//! Temporary data directories, removed when dropped.

/// A fresh temporary directory in the system's temporary directory.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

/// A fresh temporary directory under the directory named by the
/// environment variable `var` when it is set (benches use this to put their
/// data on the disk being measured), else in the system's temporary
/// directory.
pub fn temp_dir_under_env(var: &str) -> tempfile::TempDir {
    match std::env::var_os(var) {
        Some(dir) => tempfile::tempdir_in(&dir)
            .unwrap_or_else(|e| panic!("create a directory under {var}={dir:?}: {e}")),
        None => temp_dir(),
    }
}
