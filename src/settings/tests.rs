//! The layering rule on a small table: precedence, provenance, errors that
//! name the setting and its origin, the file's keys and types, and the
//! TOML round trip.

use super::*;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

settings_table! {
    /// Test flags.
    pub struct TestArgs;
    /// Test settings.
    pub struct TestSettings for "test" {
        /// Config file.
        #[arg(env = "T_CONFIG", value_name = "FILE")]
        config;
        /// A size.
        #[arg(env = "T_QUOTA", value_name = "SIZE")]
        quota: ByteSize = ByteSize::gib(1);
        /// A duration.
        #[arg(env = "T_RETENTION", value_name = "DURATION")]
        retention: ReadableDuration = ReadableDuration::days(93);
        /// A number.
        #[arg(env = "T_COUNT", value_name = "N")]
        count: u64 = 10;
        /// A switch.
        #[arg(env = "T_ON", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        on: bool = false;
        /// A secret.
        #[arg(env = "T_TOKEN", value_name = "TOKEN", hide_env_values = true)]
        token: Option<Secret> = None;
        /// A path.
        #[arg(env = "T_DIR", value_name = "DIR")]
        dir: PathBuf = PathBuf::from("./d");
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: TestArgs,
}

/// Parses `argv` as clap would with the environment `env` (tests cannot
/// set the process environment: it is shared by parallel tests): a
/// variable whose flag is not on the command line becomes that flag, and
/// its origin is recorded as the variable.
fn args(argv: &[&str], env: &[(&str, &str)]) -> TestArgs {
    let names = names::<TestArgs>();
    let mut full: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
    let mut env_keys = Vec::new();
    for (var, value) in env {
        let n = names
            .iter()
            .find(|n| n.env.as_deref() == Some(*var))
            .unwrap();
        if !argv.iter().any(|a| a.starts_with(&n.flag)) {
            full.push(format!("{}={value}", n.flag));
            env_keys.push(n.key.clone());
        }
    }
    let matches = <Cli as clap::CommandFactory>::command()
        .try_get_matches_from(std::iter::once("t".to_owned()).chain(full))
        .unwrap();
    let mut cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
    let mut origins = CliOrigins::from_matches(&matches);
    for key in env_keys {
        origins.mark_env(&key);
    }
    cli.args.set_origins(origins);
    cli.args
}

fn names<A: clap::Args>() -> Vec<SettingNames> {
    layer::names::<A>()
}

fn file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

#[test]
fn nothing_set_gives_the_defaults_from_the_default_origin() {
    let r = resolve::<TestSettings>(&args(&[], &[])).unwrap();
    assert_eq!(r.settings, TestSettings::default());
    assert_eq!(r.origin("quota"), Origin::Default);
    assert_eq!(r.config_file, None);
}

#[test]
fn a_flag_wins_over_the_environment_which_wins_over_the_file() {
    let (_dir, path) = file("quota = \"2GiB\"\ncount = 7\nretention = \"1d\"\non = true\n");
    let a = args(
        &["--config", &path, "--quota", "3GiB"],
        &[("T_QUOTA", "4GiB"), ("T_COUNT", "8")],
    );
    let r = resolve::<TestSettings>(&a).unwrap();
    assert_eq!(r.settings.quota, ByteSize::gib(3));
    assert_eq!(r.origin("quota"), Origin::Flag);
    assert_eq!(r.settings.count, 8);
    assert_eq!(r.origin("count"), Origin::Env("T_COUNT".into()));
    assert_eq!(r.settings.retention, ReadableDuration::days(1));
    assert_eq!(
        r.origin("retention"),
        Origin::File {
            path: PathBuf::from(&path),
            line: 3
        }
    );
    assert!(r.settings.on);
    assert_eq!(r.settings.dir, PathBuf::from("./d"));
    assert_eq!(r.origin("dir"), Origin::Default);
    // A switch given as false on the command line beats the file's true.
    let r = resolve::<TestSettings>(&args(&["--config", &path, "--on=false"], &[])).unwrap();
    assert!(!r.settings.on);
    let r = resolve::<TestSettings>(&args(&["--on"], &[])).unwrap();
    assert!(r.settings.on);
}

#[test]
fn a_bad_value_names_its_flag_variable_origin_and_value() {
    let e = resolve::<TestSettings>(&args(&[], &[("T_QUOTA", "lots")])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid setting --quota (T_QUOTA) from environment variable T_QUOTA: \
         quota = \"lots\" is not a size: no number (examples: 1048576, 64MiB, 1GiB)"
    );
    let e = resolve::<TestSettings>(&args(&["--retention", "soon"], &[])).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("invalid setting --retention (T_RETENTION) from the command line: retention = \"soon\" is not a duration"),
        "{text}"
    );
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn a_value_of_the_wrong_toml_type_is_refused_without_being_shown() {
    let (_dir, path) = file("dir = \"/x\"\ncount = \"hunter2\"\n");
    let e = resolve::<TestSettings>(&args(&["--config", &path], &[])).unwrap_err();
    let text = e.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains(&format!(
            "from --config {path}, line 2: count: expected an integer, found a string"
        )),
        "{text}"
    );
    let (_dir, path) = file("token = 12345678\n");
    let text = resolve::<TestSettings>(&args(&["--config", &path], &[]))
        .unwrap_err()
        .to_string();
    assert!(!text.contains("12345678"), "{text}");
}

#[test]
fn unknown_keys_in_the_file_are_refused_with_their_line() {
    let (_dir, path) = file("quota = 1\n\nqutoa = 2\n");
    let e = resolve::<TestSettings>(&args(&["--config", &path], &[])).unwrap_err();
    assert!(
        matches!(&e, ConfigError::UnknownKey { key, line: 3, .. } if key == "qutoa"),
        "{e}"
    );
    let (_dir, path) = file("config = \"other.toml\"\n");
    assert!(matches!(
        resolve::<TestSettings>(&args(&["--config", &path], &[])),
        Err(ConfigError::UnknownKey { .. })
    ));
    let e = resolve::<TestSettings>(&args(&["--config", "/nonexistent/t.toml"], &[])).unwrap_err();
    assert!(matches!(e, ConfigError::ReadFile { .. }), "{e}");
}

#[test]
fn a_component_error_is_explained_with_the_names_and_origin_of_its_settings() {
    let r = resolve::<TestSettings>(&args(&["--count", "0"], &[])).unwrap();
    let e = r.explain(SettingError::Needs {
        key: "count",
        needs: "token",
        detail: " (or a token file)",
    });
    assert_eq!(
        e.to_string(),
        "invalid setting --count (T_COUNT) from the command line: count needs token (or a token file); see --token (T_TOKEN)"
    );
    assert_eq!(e.setting().unwrap().to_string(), "--count (T_COUNT)");
}

#[test]
fn the_report_masks_secrets_and_names_each_origin() {
    let a = args(&["--token", "hunter2"], &[("T_COUNT", "3")]);
    let report = resolve::<TestSettings>(&a).unwrap().report();
    let text = report.text();
    assert!(!text.contains("hunter2"), "{text}");
    let row = |key: &str| {
        report
            .rows
            .iter()
            .find(|r| r.names.key == key)
            .unwrap()
            .clone()
    };
    assert_eq!(row("token").value.as_deref(), Some(MASK));
    assert_eq!(row("token").origin, Origin::Flag);
    assert_eq!(row("count").origin, Origin::Env("T_COUNT".into()));
    assert_eq!(row("quota").value.as_deref(), Some("1GiB"));
    assert_eq!(report.rows.len(), 6);
}

#[test]
fn settings_written_as_toml_resolve_back_to_the_same_settings() {
    let defaults = TestSettings::default();
    let (_dir, path) = file(&to_toml(&defaults).unwrap());
    let back = resolve::<TestSettings>(&args(&["--config", &path], &[])).unwrap();
    assert_eq!(back.settings, defaults);
    let changed = TestSettings {
        quota: ByteSize(12345),
        retention: ReadableDuration(Duration::from_millis(90_061_001)),
        count: 3,
        on: true,
        token: Some(Secret::new("t0k3n")),
        dir: PathBuf::from("/var/lib/x y"),
    };
    let text = to_toml(&changed).unwrap();
    let (_dir, path) = file(&text);
    let back = resolve::<TestSettings>(&args(&["--config", &path], &[])).unwrap();
    assert_eq!(back.settings, changed, "{text}");
}
