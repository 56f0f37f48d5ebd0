//! Secrets in settings: read from files, kept out of logs.
//!
//! - [`read_secret_file`]: a `--*-file` setting (`--license-key-file`,
//!   `--admin-token-file`, `--nats-password-file`, …) holds one secret, so
//!   that it never shows in `ps` or in the environment. The file is read
//!   whole (at most [`MAX_SECRET_FILE_BYTES`]); one trailing line break is
//!   removed (`echo secret > file` works); an empty secret is refused with
//!   an error naming the setting and the file.
//! - [`redact_url`]: the userinfo (`user:password@`, `token@`) of a URL is
//!   removed before the URL is written to a log line, an error or a metric.
//! - [`mask_userinfo`]: the userinfo is replaced by `***`, for
//!   `telespool config check`, which shows that credentials are set
//!   without showing them.

use std::path::{Path, PathBuf};

/// Largest secret file read: a secret is a line, not a document.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// A secret file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// The file could not be read. Nothing starts; the operator fixes the
    /// path or its permissions.
    #[error("{setting}: reading {path}: {source}")]
    Read {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Nothing in the file (or only a line break). The operator writes
    /// the secret into it.
    #[error("{setting}: {path} is empty")]
    Empty {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// Larger than [`MAX_SECRET_FILE_BYTES`]: probably the wrong file. The
    /// operator points the setting at the secret's file.
    #[error("{setting}: {path} is larger than {limit} bytes; it should hold one secret")]
    TooLarge {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// Not UTF-8. The operator writes the secret as text.
    #[error("{setting}: {path} is not UTF-8 text")]
    NotText {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
    },
}

impl SecretFileError {
    /// The setting that names the file.
    pub fn setting(&self) -> &'static str {
        match self {
            SecretFileError::Read { setting, .. }
            | SecretFileError::Empty { setting, .. }
            | SecretFileError::TooLarge { setting, .. }
            | SecretFileError::NotText { setting, .. } => setting,
        }
    }
}

/// Reads the secret held by `path` for `setting` (see the module docs).
pub fn read_secret_file(setting: &'static str, path: &Path) -> Result<String, SecretFileError> {
    use std::io::Read;
    let read_error = |source| SecretFileError::Read {
        setting,
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(SecretFileError::TooLarge {
            setting,
            path: path.to_owned(),
            limit: MAX_SECRET_FILE_BYTES,
        });
    }
    let mut text = String::from_utf8(bytes).map_err(|_| SecretFileError::NotText {
        setting,
        path: path.to_owned(),
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(SecretFileError::Empty {
            setting,
            path: path.to_owned(),
        });
    }
    Ok(text)
}

/// The authority of a URL (`[userinfo@]host[:port]`) and where it starts
/// and ends in `url`, or `None` when `url` has no `scheme://`.
fn authority_span(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let rest = url.get(start..)?;
    let len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((start, start + len))
}

/// Splits a URL's authority into its userinfo (without the `@`), if any,
/// and the rest (`host[:port]`). The userinfo ends at the last `@`, so an
/// unencoded `@` in a password is still taken as part of it.
pub fn split_userinfo(authority: &str) -> (Option<&str>, &str) {
    match authority.rfind('@') {
        Some(at) => (
            authority.get(..at),
            authority.get(at + 1..).unwrap_or_default(),
        ),
        None => (None, authority),
    }
}

/// `url` without its userinfo: `nats://user:pass@host:4222/x` becomes
/// `nats://host:4222/x`. Text that is not a `scheme://` URL is returned
/// as is.
pub fn redact_url(url: &str) -> String {
    let Some((start, end)) = authority_span(url) else {
        return url.to_owned();
    };
    let authority = url.get(start..end).unwrap_or_default();
    match split_userinfo(authority) {
        (Some(_), host) => format!(
            "{}{host}{}",
            url.get(..start).unwrap_or_default(),
            url.get(end..).unwrap_or_default()
        ),
        (None, _) => url.to_owned(),
    }
}

/// `url` with its userinfo replaced by `***`:
/// `nats://user:pass@host:4222` becomes `nats://***@host:4222`. Text that
/// is not a `scheme://` URL, or has no userinfo, is returned as is.
pub fn mask_userinfo(url: &str) -> String {
    let Some((start, end)) = authority_span(url) else {
        return url.to_owned();
    };
    let authority = url.get(start..end).unwrap_or_default();
    match split_userinfo(authority) {
        (Some(_), host) => format!(
            "{}***@{host}{}",
            url.get(..start).unwrap_or_default(),
            url.get(end..).unwrap_or_default()
        ),
        (None, _) => url.to_owned(),
    }
}

/// The authority of a `scheme://` URL (`[userinfo@]host[:port]`).
pub fn url_authority(url: &str) -> Option<&str> {
    let (start, end) = authority_span(url)?;
    url.get(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn redact_url_strips_user_and_password() {
        assert_eq!(
            redact_url("nats://alice:s3cret@127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
    }

    #[test]
    fn redact_url_strips_a_token_and_keeps_path_and_query() {
        assert_eq!(
            redact_url("nats://t0ken@nats.example.com/x?y=1#z"),
            "nats://nats.example.com/x?y=1#z"
        );
        assert_eq!(
            redact_url("https://u:p@gateway:443/"),
            "https://gateway:443/"
        );
    }

    #[test]
    fn redact_url_takes_the_last_at_sign_as_the_end_of_the_userinfo() {
        assert_eq!(redact_url("nats://a:p@ss@host:1"), "nats://host:1");
        assert_eq!(redact_url("nats://a:p%40ss@host:1"), "nats://host:1");
    }

    #[test]
    fn redact_url_leaves_urls_without_userinfo_and_other_text_alone() {
        for text in [
            "nats://127.0.0.1:4222",
            "file:./events.jsonl",
            "log",
            "",
            "nats://",
            "https://host/path@not-userinfo",
        ] {
            assert_eq!(redact_url(text), text);
        }
    }

    #[test]
    fn mask_userinfo_shows_that_credentials_are_set_without_them() {
        assert_eq!(
            mask_userinfo("nats://alice:s3cret@127.0.0.1:4222/x"),
            "nats://***@127.0.0.1:4222/x"
        );
        assert_eq!(mask_userinfo("nats://a:p@ss@host:1"), "nats://***@host:1");
        for text in ["nats://127.0.0.1:4222", "log", "", "https://h/p@q"] {
            assert_eq!(mask_userinfo(text), text);
        }
    }

    #[test]
    fn redact_url_of_an_ipv6_host_keeps_the_brackets() {
        assert_eq!(redact_url("nats://u:p@[::1]:4222"), "nats://[::1]:4222");
    }

    fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn a_secret_file_loses_one_trailing_line_break_and_nothing_else() {
        let f = file(b"s3cret\n");
        assert_eq!(read_secret_file("x", f.path()).unwrap(), "s3cret");
        let f = file(b"s3cret\r\n");
        assert_eq!(read_secret_file("x", f.path()).unwrap(), "s3cret");
        let f = file(b" spaced secret ");
        assert_eq!(read_secret_file("x", f.path()).unwrap(), " spaced secret ");
    }

    #[test]
    fn an_empty_secret_file_is_refused_naming_the_setting() {
        for bytes in [&b""[..], b"\n", b"\r\n"] {
            let f = file(bytes);
            let e = read_secret_file("license_key_file", f.path()).unwrap_err();
            assert!(matches!(e, SecretFileError::Empty { .. }), "{e}");
            let text = e.to_string();
            assert!(text.contains("license_key_file"), "{text}");
            assert!(text.contains("empty"), "{text}");
        }
    }

    #[test]
    fn a_missing_or_huge_secret_file_is_refused_naming_the_setting() {
        let e = read_secret_file("admin_token_file", Path::new("/nonexistent/token")).unwrap_err();
        assert!(e.to_string().contains("admin_token_file"), "{e}");
        assert!(e.to_string().contains("/nonexistent/token"), "{e}");
        let f = file(&vec![b'a'; MAX_SECRET_FILE_BYTES as usize + 1]);
        let e = read_secret_file("x", f.path()).unwrap_err();
        assert!(matches!(e, SecretFileError::TooLarge { .. }), "{e}");
    }
}
