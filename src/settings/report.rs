//! What `telespool config check` prints: every effective setting, its
//! value (secrets masked) and its origin, as a table for people or as
//! JSON for machines.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::layer::{Origin, SettingNames};

/// One setting of a [`Report`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The setting's key, flag and environment variable.
    pub names: SettingNames,
    /// The value, secrets masked; `None` when unset.
    pub value: Option<String>,
    /// Where the value came from.
    pub origin: Origin,
}

/// The effective settings of a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// `serve` or `gateway`.
    pub command: &'static str,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// Every setting, in the order of `--help`.
    pub rows: Vec<Row>,
}

/// The source column: `flag`, `env NAME`, `file PATH` or `default`.
fn source(origin: &Origin) -> String {
    match origin {
        Origin::Flag => "flag".to_owned(),
        Origin::Env(var) => format!("env {var}"),
        Origin::File { path, .. } => format!("file {}", path.display()),
        Origin::Default => "default".to_owned(),
    }
}

impl Report {
    /// A table: key, value and source of each setting.
    pub fn text(&self) -> String {
        let mut out = format!("telespool {}: the configuration is valid", self.command);
        if let Some(file) = &self.config_file {
            let _ = write!(out, " (config file {})", file.display());
        }
        out.push_str("\n\n");
        let value = |row: &Row| match row.value.as_deref() {
            None => "(none)".to_owned(),
            Some("") => "\"\"".to_owned(),
            Some(v) => v.to_owned(),
        };
        let key_width = self
            .rows
            .iter()
            .map(|r| r.names.key.len())
            .max()
            .unwrap_or(0)
            .max(3);
        let value_width = self
            .rows
            .iter()
            .map(|r| value(r).chars().count())
            .max()
            .unwrap_or(0)
            .clamp(5, 48);
        let _ = writeln!(
            out,
            "{:key_width$}  {:value_width$}  SOURCE",
            "KEY", "VALUE"
        );
        for row in &self.rows {
            let _ = writeln!(
                out,
                "{:key_width$}  {:value_width$}  {}",
                row.names.key,
                value(row),
                source(&row.origin)
            );
        }
        out
    }

    /// JSON: `{"command", "valid", "config_file", "settings": [{"key",
    /// "flag", "env", "value", "source", "origin"}]}`; `source` is `flag`,
    /// `env`, `file` or `default`, `origin` the variable or the file.
    pub fn json(&self) -> serde_json::Value {
        let settings: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|row| {
                let origin = match &row.origin {
                    Origin::Env(var) => serde_json::json!(var),
                    Origin::File { path, line } => {
                        serde_json::json!({"path": path.display().to_string(), "line": line})
                    }
                    Origin::Flag | Origin::Default => serde_json::Value::Null,
                };
                serde_json::json!({
                    "key": row.names.key,
                    "flag": row.names.flag,
                    "env": row.names.env,
                    "value": row.value,
                    "source": row.origin.kind(),
                    "origin": origin,
                })
            })
            .collect();
        serde_json::json!({
            "command": self.command,
            "valid": true,
            "config_file": self.config_file.as_ref().map(|p| p.display().to_string()),
            "settings": settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let names = |key: &str, env: &str| SettingNames {
            key: key.to_owned(),
            flag: format!("--{}", key.replace('_', "-")),
            env: Some(env.to_owned()),
        };
        Report {
            command: "serve",
            config_file: Some(PathBuf::from("/etc/t.toml")),
            rows: vec![
                Row {
                    names: names("queue_quota", "Q"),
                    value: Some("2GiB".into()),
                    origin: Origin::Flag,
                },
                Row {
                    names: names("admin_token", "T"),
                    value: Some("***".into()),
                    origin: Origin::Env("T".into()),
                },
                Row {
                    names: names("data_dir", "D"),
                    value: Some("/d".into()),
                    origin: Origin::File {
                        path: "/etc/t.toml".into(),
                        line: 3,
                    },
                },
                Row {
                    names: names("export_addr", "E"),
                    value: None,
                    origin: Origin::Default,
                },
            ],
        }
    }

    #[test]
    fn the_table_shows_each_value_with_its_source() {
        let text = report().text();
        assert!(
            text.starts_with(
                "telespool serve: the configuration is valid (config file /etc/t.toml)"
            ),
            "{text}"
        );
        for line in [
            "queue_quota  2GiB   flag",
            "admin_token  ***    env T",
            "data_dir     /d     file /etc/t.toml",
            "export_addr  (none)  default",
        ] {
            let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let wanted: String = line.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(collapsed.contains(&wanted), "{wanted} not in\n{text}");
        }
    }

    #[test]
    fn the_json_names_the_source_and_its_origin() {
        let json = report().json();
        assert_eq!(json["valid"], true);
        assert_eq!(json["settings"][1]["source"], "env");
        assert_eq!(json["settings"][1]["origin"], "T");
        assert_eq!(json["settings"][2]["origin"]["line"], 3);
        assert_eq!(json["settings"][3]["value"], serde_json::Value::Null);
        assert_eq!(json["settings"][0]["flag"], "--queue-quota");
    }
}
