//! `telespool config check`, end to end through the binary: where each
//! setting came from (flag, environment, file, default), secrets masked,
//! invalid values refused naming the setting, for serve and gateway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;

/// Runs `telespool ARGS` with only `env` in its environment.
fn telespool(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_telespool"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The row of `key` in the JSON report.
fn row<'a>(report: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    report["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("{key} not in {report}"))
}

/// The words of the text report's line for `key`.
fn line(text: &str, key: &str) -> String {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("{key} not in\n{text}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn config_check_says_whether_each_serve_setting_came_from_a_flag_the_environment_the_file_or_the_default()
 {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("telespool.toml");
    std::fs::write(
        &file,
        "data_dir = \"/var/lib/telespool\"\nqueue_quota = \"2GiB\"\nsegment_size = 4194304\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let env = [
        ("TELESPOOL_QUEUE_QUOTA", "3GiB"),
        ("TELESPOOL_SEGMENT_SIZE", "16MiB"),
        ("TELESPOOL_EXPORT_MODE", "cody-only"),
    ];
    let args = [
        "config",
        "check",
        "serve",
        "--config",
        config,
        "--segment-size",
        "8MiB",
        "--dotcom",
    ];
    let (code, out, err) = telespool(&args, &env);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("telespool serve: the configuration is valid"),
        "{out}"
    );
    assert_eq!(line(&out, "segment_size"), "segment_size 8MiB flag");
    assert_eq!(line(&out, "dotcom"), "dotcom true flag");
    assert_eq!(
        line(&out, "queue_quota"),
        "queue_quota 3GiB env TELESPOOL_QUEUE_QUOTA"
    );
    assert_eq!(
        line(&out, "export_mode"),
        "export_mode cody-only env TELESPOOL_EXPORT_MODE"
    );
    assert_eq!(
        line(&out, "data_dir"),
        format!("data_dir /var/lib/telespool file {config}")
    );
    assert_eq!(
        line(&out, "grpc_listen"),
        "grpc_listen 127.0.0.1:10085 default"
    );
    assert_eq!(line(&out, "export_addr"), "export_addr (none) default");

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let (code, out, _) = telespool(&json_args, &env);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["config_file"], config);
    assert_eq!(row(&report, "segment_size")["source"], "flag");
    assert_eq!(row(&report, "queue_quota")["source"], "env");
    assert_eq!(
        row(&report, "queue_quota")["origin"],
        "TELESPOOL_QUEUE_QUOTA"
    );
    assert_eq!(row(&report, "data_dir")["source"], "file");
    assert_eq!(row(&report, "data_dir")["origin"]["line"], 1);
    assert_eq!(row(&report, "max_events")["source"], "default");
    assert_eq!(row(&report, "max_events")["value"], "10000");
    assert_eq!(row(&report, "max_events")["flag"], "--max-events");
    assert_eq!(row(&report, "max_events")["env"], "TELESPOOL_MAX_EVENTS");
}

#[test]
fn config_check_masks_secrets_and_shows_secret_files_by_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("telespool.toml");
    std::fs::write(&file, "admin_token = \"adm-s3cret\"\n").unwrap();
    let key_file = dir.path().join("license-key");
    std::fs::write(&key_file, "lk-s3cret\n").unwrap();
    let (code, out, err) = telespool(
        &[
            "config",
            "check",
            "serve",
            "--export-addr",
            "https://user:pw-s3cret@gw.example.com",
        ],
        &[
            ("TELESPOOL_CONFIG", file.to_str().unwrap()),
            ("TELESPOOL_LICENSE_KEY_FILE", key_file.to_str().unwrap()),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("s3cret"), "{out}");
    assert!(
        line(&out, "admin_token").starts_with("admin_token *** file "),
        "{out}"
    );
    assert_eq!(
        line(&out, "export_addr"),
        "export_addr https://***@gw.example.com flag"
    );
    assert_eq!(
        line(&out, "license_key_file"),
        format!(
            "license_key_file {} env TELESPOOL_LICENSE_KEY_FILE",
            key_file.display()
        )
    );
    assert_eq!(line(&out, "license_key"), "license_key (none) default");
}

#[test]
fn config_check_refuses_an_invalid_value_naming_the_setting_and_where_it_came_from() {
    let (code, out, err) = telespool(
        &["config", "check", "serve"],
        &[("TELESPOOL_QUEUE_QUOTA", "lots")],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        err.contains(
            "invalid setting --queue-quota (TELESPOOL_QUEUE_QUOTA) from environment variable TELESPOOL_QUEUE_QUOTA: queue_quota = \"lots\" is not a size"
        ),
        "{err}"
    );
    let (code, _, err) = telespool(
        &["config", "check", "serve", "--export-batch-size", "5"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("--export-batch-size (TELEMETRY_GATEWAY_EXPORTER_EXPORT_BATCH_SIZE) from the command line")
            && err.contains("at least 100"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, "sink = \"log\"\npublish_concurrency = 0\n").unwrap();
    let (code, out, err) = telespool(
        &[
            "config",
            "check",
            "gateway",
            "--json",
            "--config",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 2);
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["valid"], false);
    assert_eq!(answer["setting"], "publish_concurrency");
    assert!(
        err.contains(&format!("from --config {}, line 2", file.display()))
            && err.contains("publish_concurrency = 0 is outside 1..=10000"),
        "{err}"
    );
    std::fs::write(&file, "sink = \"log\"\npublish_concurency = 10\n").unwrap();
    let (code, _, err) = telespool(
        &[
            "config",
            "check",
            "gateway",
            "--config",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("line 2: unknown key `publish_concurency`"),
        "{err}"
    );
}

#[test]
fn config_check_of_the_gateway_masks_nats_credentials_and_reads_its_own_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, "file_keep = 3\n").unwrap();
    let (code, out, err) = telespool(
        &[
            "config",
            "check",
            "gateway",
            "--sink",
            "nats://alice:hunter2@nats.example.com:4222",
        ],
        &[
            ("TELESPOOL_GATEWAY_CONFIG", file.to_str().unwrap()),
            ("TELESPOOL_GATEWAY_MAX_CONNECTIONS", "500"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("hunter2") && !out.contains("alice"), "{out}");
    assert_eq!(
        line(&out, "sink"),
        "sink nats://***@nats.example.com:4222 flag"
    );
    assert_eq!(
        line(&out, "max_connections"),
        "max_connections 500 env TELESPOOL_GATEWAY_MAX_CONNECTIONS"
    );
    assert_eq!(
        line(&out, "file_keep"),
        format!("file_keep 3 file {}", file.display())
    );
    assert_eq!(
        line(&out, "file_rotate_bytes"),
        "file_rotate_bytes 256MiB default"
    );
}

#[test]
fn config_check_is_in_the_help() {
    let (code, out, _) = telespool(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("config"), "{out}");
    let (code, out, _) = telespool(&["config", "check", "--help"], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("serve") && out.contains("gateway") && out.contains("--json"),
        "{out}"
    );
}
