//! Reading TOML config files without echoing their values: the file
//! layer of [`super::layer`].
//!
//! [`FileLayer::read`] parses a file into its top-level keys, each with
//! its TOML value and line; the layering code checks the keys against the
//! command's settings and reads each value with its setting's type.
//!
//! A config file can hold secrets (`admin_token`, `license_key`). The
//! `toml` crate's error message quotes the offending line, and serde's
//! "invalid type" messages quote the value itself, so an error about a
//! mistyped secret would print the secret to the terminal and the logs.
//! [`parse`] reports the line, the column, the key when the line names one,
//! and the reason, never the value: serde's `invalid type: string "…"` and
//! `invalid value: …` keep only the kind of value, and any text of the
//! offending line's value left in the reason is replaced by `<redacted>`.

use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// A parsed config file: its top-level keys, values and their lines.
#[derive(Clone, Debug)]
pub struct FileLayer {
    path: PathBuf,
    /// Each key's value and line (from 1).
    values: BTreeMap<String, (toml::Value, usize)>,
}

impl FileLayer {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<FileLayer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        FileLayer::parse(&text, path)
    }

    /// Parses `text`; `path` names the file in errors and provenance.
    pub fn parse(text: &str, path: &Path) -> Result<FileLayer, ConfigError> {
        let spanned: BTreeMap<String, toml::Spanned<toml::Value>> =
            parse(text).map_err(|source| ConfigError::ParseFile {
                path: path.to_owned(),
                source,
            })?;
        let values = spanned
            .into_iter()
            .map(|(key, value)| {
                let line = line_of(text, value.span().start);
                (key, (value.into_inner(), line))
            })
            .collect();
        Ok(FileLayer {
            path: path.to_owned(),
            values,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value of `key` and its line, when the file sets it.
    pub fn get(&self, key: &str) -> Option<(&toml::Value, usize)> {
        self.values.get(key).map(|(value, line)| (value, *line))
    }

    /// Every key with its line.
    pub fn keys(&self) -> impl Iterator<Item = (&str, usize)> {
        self.values
            .iter()
            .map(|(key, (_, line))| (key.as_str(), *line))
    }
}

/// The line (from 1) of byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .unwrap_or_default()
        .matches('\n')
        .count()
        + 1
}

/// Why a TOML file did not parse, without any of its values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TomlError {
    /// Line of the problem, from 1 (when the parser located it).
    pub line: Option<usize>,
    /// Column of the problem, from 1, in characters.
    pub column: Option<usize>,
    /// The key of the offending line, when it has one.
    pub key: Option<String>,
    /// What is wrong (the parser's reason, values removed).
    pub reason: String,
}

impl fmt::Display for TomlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "line {line}, column {column}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// Parses `text` as TOML into `T`; the error names where, never what.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, TomlError> {
    toml::from_str(text).map_err(|e| describe(text, &e))
}

/// The value-free description of a parse error of `text`.
fn describe(text: &str, e: &toml::de::Error) -> TomlError {
    let (line, column, line_text) = match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let before = text.get(..start).unwrap_or_default();
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let line_end = text
                .get(start..)
                .and_then(|rest| rest.find('\n'))
                .map_or(text.len(), |i| start + i);
            let column = text.get(line_start..start).map_or(0, |s| s.chars().count()) + 1;
            (
                Some(before.matches('\n').count() + 1),
                Some(column),
                text.get(line_start..line_end).unwrap_or_default(),
            )
        }
        None => (None, None, ""),
    };
    let (key, value) = match line_text.split_once('=') {
        Some((k, v)) => (Some(k.trim()), v.trim()),
        None => (None, ""),
    };
    let key = key
        .filter(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        })
        .map(str::to_owned);
    TomlError {
        line,
        column,
        key,
        reason: redact(e.message().trim(), value),
    }
}

/// `message` without the values serde or the parser put into it.
fn redact(message: &str, value: &str) -> String {
    let mut reason = message.to_owned();
    // serde: "invalid type: string \"hunter2\", expected u64" (and
    // "invalid value: ..."): keep the kind of value ("string"), not the value.
    for prefix in ["invalid type: ", "invalid value: ", "invalid length: "] {
        if let Some(rest) = reason.strip_prefix(prefix)
            && let Some(expected_at) = rest.rfind(", expected ")
        {
            let found = rest.get(..expected_at).unwrap_or_default();
            let kind = found.split_whitespace().next().unwrap_or("value");
            let kind = if kind.contains(['"', '`', '\'']) {
                "value"
            } else {
                kind
            };
            let expected = rest.get(expected_at..).unwrap_or_default();
            reason = format!("{prefix}{kind}{expected}");
            break;
        }
    }
    // Whatever of the line's value is left, in any of its spellings.
    let unquoted = value.trim_matches(|c| c == '"' || c == '\'');
    let escaped = format!("{unquoted:?}");
    let escaped = escaped.trim_matches('"');
    for secret in [value, unquoted, escaped] {
        if secret.chars().count() >= 3 && reason.contains(secret) {
            reason = reason.replace(secret, "<redacted>");
        }
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields exist to be deserialized, never read")]
    struct Settings {
        token: Option<String>,
        size: Option<u64>,
        on: Option<bool>,
    }

    const SECRET: &str = "hunter2-s3cr3t";

    fn error(text: &str) -> TomlError {
        parse::<Settings>(text).unwrap_err()
    }

    #[test]
    fn a_secret_on_a_bad_line_is_never_in_the_error() {
        let cases = [
            // A secret where a number belongs: serde quotes the value.
            format!("token = \"ok\"\nsize = \"{SECRET}\"\n"),
            // An unterminated string: toml quotes the line.
            format!("token = \"{SECRET}\n"),
            // An unquoted value.
            format!("token = {SECRET}\n"),
            // A secret where a boolean belongs.
            format!("on = \"{SECRET}\"\n"),
            // A second definition of a key.
            format!("token = \"{SECRET}\"\ntoken = \"{SECRET}\"\n"),
        ];
        for text in &cases {
            let e = error(text);
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(e.line.is_some(), "{shown}");
        }
    }

    #[test]
    fn a_file_layer_knows_each_key_and_its_line() {
        let text = "# comment\na = 1\n\nb = \"x\"\n";
        let file = FileLayer::parse(text, Path::new("t.toml")).unwrap();
        assert_eq!(file.get("a"), Some((&toml::Value::Integer(1), 2)));
        assert_eq!(file.get("b").map(|(_, line)| line), Some(4));
        assert_eq!(file.get("c"), None);
        let keys: Vec<_> = file.keys().collect();
        assert_eq!(keys, [("a", 2), ("b", 4)]);
        let err = FileLayer::parse(&format!("a = \"{SECRET}\n"), Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.toml") && err.contains("line 1"), "{err}");
        assert!(!err.contains(SECRET), "{err}");
    }

    #[test]
    fn the_error_names_the_line_column_key_and_reason() {
        let e = error(&format!("token = \"ok\"\nsize = \"{SECRET}\"\n"));
        assert_eq!(e.line, Some(2));
        assert_eq!(e.key.as_deref(), Some("size"));
        assert_eq!(e.reason, "invalid type: string, expected u64");
        assert_eq!(
            e.to_string(),
            format!(
                "line 2, column {}: key `size`: invalid type: string, expected u64",
                e.column.unwrap()
            )
        );
        let e = error("tokn = \"x\"\n");
        assert_eq!(e.line, Some(1));
        assert!(e.to_string().contains("unknown field `tokn`"), "{e}");
    }
}
