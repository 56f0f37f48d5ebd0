//! The sidecar's settings: defaults, layering, errors naming the setting,
//! secrets, and the TOML round trip.

use super::*;
use crate::event::export_mode::ExportMode;
use crate::log::SyncPolicy;
use crate::settings::{ByteSize, ReadableDuration};
use clap::Parser;
use std::time::Duration;

fn resolve(args: &[&str]) -> Result<ServeConfig, ConfigError> {
    let cli = crate::cli::Cli::try_parse_from(
        std::iter::once("telespool")
            .chain(std::iter::once("serve"))
            .chain(args.iter().copied()),
    )
    .unwrap();
    match cli.command {
        crate::cli::Command::Serve(a) => ServeConfig::resolve(&a),
        _ => unreachable!(),
    }
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = resolve(&[]).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("./telespool-data"));
    assert_eq!(c.listen.grpc.to_string(), "127.0.0.1:10085");
    assert_eq!(c.listen.http.to_string(), "127.0.0.1:10086");
    assert_eq!(c.queue.sync, SyncPolicy::Always);
    assert_eq!(c.queue.quota_bytes, 1 << 30);
    assert_eq!(c.queue.segment_bytes, 64 << 20);
    assert_eq!(c.tee.export_mode, ExportMode::All);
    assert_eq!(c.export.addr, None);
    assert_eq!(c.export.interval, Duration::from_secs(300));
    assert_eq!(c.export.batch_size, 10_000);
    assert_eq!(c.cleanup.exported_retention, Duration::from_secs(86_400));
    assert_eq!(c.cleanup.interval, Duration::from_secs(1800));
    assert_eq!(c.event_logs.retention, Duration::from_secs(93 * 86_400));
    assert_eq!(c.listen.max_body_bytes, 16 << 20);
    assert_eq!(c.listen.decode_budget_bytes, 256 << 20);
    assert_eq!(c.dead_letters.quota_bytes, 256 << 20);
    assert!(!c.listen.admin_require_token);
    assert_eq!(c.listen.max_ingest_in_flight, 64 << 20);
}

#[test]
fn admin_require_token_without_a_token_is_refused_at_start() {
    let e = resolve(&["--admin-require-token"]).unwrap_err();
    assert!(
        e.to_string().contains("--admin-require-token") && e.to_string().contains("--admin-token"),
        "{e}"
    );
    let c = resolve(&["--admin-require-token", "--admin-token", "t"]).unwrap();
    assert!(c.listen.admin_require_token);
    let e = resolve(&["--max-ingest-in-flight", "0"]).unwrap_err();
    assert!(e.to_string().contains("--max-ingest-in-flight"), "{e}");
}

#[test]
fn sizes_and_durations_parse_with_units() {
    assert_eq!("64MiB".parse(), Ok(ByteSize(64 << 20)));
    assert_eq!("1GiB".parse(), Ok(ByteSize(1 << 30)));
    assert_eq!("4096".parse(), Ok(ByteSize(4096)));
    assert!("lots".parse::<ByteSize>().is_err());
    assert!("5 parsecs".parse::<ByteSize>().is_err());
    assert_eq!("5m".parse(), Ok(ReadableDuration(Duration::from_secs(300))));
    assert!("soon".parse::<ReadableDuration>().is_err());
}

#[test]
fn invalid_values_are_refused_naming_the_setting() {
    let e = resolve(&["--export-batch-size", "50"]).unwrap_err();
    assert!(
        e.to_string().contains("--export-batch-size") && e.to_string().contains("at least 100"),
        "{e}"
    );
    let e = resolve(&["--export-interval", "2h"]).unwrap_err();
    assert!(
        e.to_string()
            .contains("TELEMETRY_GATEWAY_EXPORTER_EXPORT_INTERVAL"),
        "{e}"
    );
    let e = resolve(&["--grpc-listen", "nowhere"]).unwrap_err();
    assert!(e.to_string().contains("--grpc-listen"), "{e}");
    let e = resolve(&["--sync", "sometimes"]).unwrap_err();
    assert!(e.to_string().contains("--sync"), "{e}");
    let e = resolve(&["--allowed-event-types", "foo::bar"]).unwrap_err();
    assert!(e.to_string().contains("missing allowlisted fields"), "{e}");
    let e = resolve(&["--export-addr", "gateway:443"]).unwrap_err();
    assert!(e.to_string().contains("https://"), "{e}");
    let e = resolve(&["--dead-letter-quota", "64KiB"]).unwrap_err();
    assert!(
        e.to_string().contains("--dead-letter-quota") && e.to_string().contains("1048576"),
        "{e}"
    );
    let c = resolve(&["--dead-letter-quota", "8MiB"]).unwrap();
    assert_eq!(c.dead_letters.quota_bytes, 8 << 20);
    let e = resolve(&["--decode-budget", "1MiB"]).unwrap_err();
    assert!(
        e.to_string().contains("TELESPOOL_DECODE_BUDGET")
            && e.to_string().contains("at least 16777216"),
        "{e}"
    );
    assert_eq!(
        resolve(&["--decode-budget", "64MiB"])
            .unwrap()
            .listen
            .decode_budget_bytes,
        64 << 20
    );
}

#[test]
fn flags_win_over_the_file_and_the_file_over_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("telespool.toml");
    std::fs::write(
        &p,
        "data_dir = \"/from/file\"\nqueue_quota = \"2GiB\"\nexport_mode = \"cody-only\"\n",
    )
    .unwrap();
    let c = resolve(&["--config", p.to_str().unwrap(), "--data-dir", "/from/flag"]).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
    assert_eq!(c.queue.quota_bytes, 2 << 30);
    assert_eq!(c.tee.export_mode, ExportMode::CodyOnly);
}

#[test]
fn secrets_are_read_from_their_files_without_the_trailing_newline() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("license-key");
    std::fs::write(&key, "lk-123\n").unwrap();
    let token = dir.path().join("admin-token");
    std::fs::write(&token, "tok-456\n").unwrap();
    let c = resolve(&[
        "--license-key-file",
        key.to_str().unwrap(),
        "--admin-token-file",
        token.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(c.export.license_key.as_deref(), Some("lk-123"));
    assert_eq!(c.listen.admin_token.as_deref(), Some("tok-456"));
    let toml = dir.path().join("telespool.toml");
    std::fs::write(
        &toml,
        format!("license_key_file = {:?}\n", key.to_str().unwrap()),
    )
    .unwrap();
    let c = resolve(&["--config", toml.to_str().unwrap()]).unwrap();
    assert_eq!(c.export.license_key.as_deref(), Some("lk-123"));
}

#[test]
fn an_empty_or_missing_secret_file_is_refused_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let e = resolve(&["--license-key-file", empty.to_str().unwrap()]).unwrap_err();
    assert!(
        e.to_string().contains("--license-key-file") && e.to_string().contains("empty"),
        "{e}"
    );
    let e = resolve(&["--admin-token-file", "/nonexistent/token"]).unwrap_err();
    assert!(
        e.to_string().contains("--admin-token-file")
            && e.to_string().contains("/nonexistent/token"),
        "{e}"
    );
}

#[test]
fn a_secret_given_both_as_a_value_and_as_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("license-key");
    std::fs::write(&key, "from-file").unwrap();
    let e = resolve(&[
        "--license-key",
        "from-flag",
        "--license-key-file",
        key.to_str().unwrap(),
    ])
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("--license-key-file") && text.contains("--license-key "),
        "{text}"
    );
    assert!(
        !text.contains("from-flag") && !text.contains("from-file"),
        "{text}"
    );
}

#[test]
fn export_tls_files_come_in_pairs_and_only_for_https() {
    let e = resolve(&[
        "--export-addr",
        "https://gw.example.com",
        "--export-client-cert",
        "c.pem",
    ])
    .unwrap_err();
    assert!(e.to_string().contains("--export-client-key"), "{e}");
    let e = resolve(&[
        "--export-addr",
        "http://127.0.0.1:10080",
        "--export-ca-file",
        "ca.pem",
    ])
    .unwrap_err();
    assert!(
        e.to_string().contains("--export-ca-file") && e.to_string().contains("https://"),
        "{e}"
    );
    let c = resolve(&[
        "--export-addr",
        "https://gw.example.com",
        "--export-ca-file",
        "ca.pem",
        "--export-client-cert",
        "c.pem",
        "--export-client-key",
        "k.pem",
    ])
    .unwrap();
    assert_eq!(c.export.ca_file, Some(PathBuf::from("ca.pem")));
    assert_eq!(c.export.client_key, Some(PathBuf::from("k.pem")));
}

#[test]
fn an_export_address_in_an_error_loses_its_userinfo() {
    let e = resolve(&["--export-addr", "ftp://user:hunter2@gw"]).unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(e.to_string().contains("ftp://gw"), "{e}");
}

#[test]
fn listener_limits_default_to_the_sidecar_ones_and_come_from_flags_or_the_file() {
    assert_eq!(resolve(&[]).unwrap().limits, ListenerLimits::sidecar());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("telespool.toml");
    std::fs::write(
        &p,
        "max_connections = 8\nhttp_header_timeout = \"1s\"\nrequest_timeout = \"5s\"\n",
    )
    .unwrap();
    let c = resolve(&[
        "--config",
        p.to_str().unwrap(),
        "--request-timeout",
        "7s",
        "--http2-max-streams",
        "10",
    ])
    .unwrap();
    assert_eq!(c.limits.max_connections, 8);
    assert_eq!(c.limits.http_header_timeout, Duration::from_secs(1));
    assert_eq!(c.limits.request_timeout, Duration::from_secs(7));
    assert_eq!(c.limits.http2_max_streams, 10);
    assert_eq!(c.limits.max_connection_age, Duration::from_secs(1800));
}

#[test]
fn a_bad_listener_limit_names_its_flag() {
    let e = resolve(&["--max-connections", "0"]).unwrap_err();
    assert_eq!(
        e.setting().unwrap().to_string(),
        "--max-connections (TELESPOOL_MAX_CONNECTIONS)"
    );
    assert!(e.to_string().contains("outside 1..=1000000"), "{e}");
    let e = resolve(&["--http-idle-timeout", "soon"]).unwrap_err();
    assert_eq!(
        e.setting().unwrap().to_string(),
        "--http-idle-timeout (TELESPOOL_HTTP_IDLE_TIMEOUT)"
    );
}

#[test]
fn unknown_keys_in_the_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("telespool.toml");
    std::fs::write(&p, "data_dri = \"/typo\"\n").unwrap();
    let e = resolve(&["--config", p.to_str().unwrap()]).unwrap_err();
    assert!(e.to_string().contains("data_dri"), "{e}");
}

#[test]
fn a_secret_on_a_bad_line_of_the_file_is_not_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("telespool.toml");
    let secret = "adm-tok-0123456789-very-secret";
    for text in [
        // A string where a boolean belongs: serde would quote it.
        format!("data_dir = \"/d\"\ndotcom = \"{secret}\"\n"),
        // An unterminated string: toml would quote the line.
        format!("admin_token = \"{secret}\n"),
        // A number where a string belongs.
        "license_key = 1234567890123\n".to_owned(),
    ] {
        std::fs::write(&p, &text).unwrap();
        let e = resolve(&["--config", p.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(!e.contains(secret) && !e.contains("very-secret"), "{e}");
        assert!(!e.contains("1234567890123"), "{e}");
        assert!(e.contains("--config") && e.contains("line "), "{e}");
    }
}

fn args(argv: &[&str]) -> ServeArgs {
    let cli = crate::cli::Cli::try_parse_from(
        ["telespool", "serve"]
            .into_iter()
            .chain(argv.iter().copied()),
    )
    .unwrap();
    match cli.command {
        crate::cli::Command::Serve(a) => *a,
        _ => unreachable!(),
    }
}

#[test]
fn nothing_set_resolves_to_the_default_settings() {
    let (_, resolved) = ServeConfig::resolve_with_origins(&ServeArgs::default()).unwrap();
    assert_eq!(resolved.settings, ServeSettings::default());
    assert!(
        resolved
            .report()
            .rows
            .iter()
            .all(|r| r.origin == crate::settings::Origin::Default)
    );
}

#[test]
fn the_effective_settings_written_as_toml_resolve_back_to_the_same_settings() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "tok\n").unwrap();
    let token = token.to_str().unwrap();
    let changed = [
        "--data-dir",
        "/var/lib/telespool",
        "--grpc-listen",
        "0.0.0.0:1",
        "--admin-token-file",
        token,
        "--sync",
        "interval(250ms)",
        "--segment-size",
        "8MiB",
        "--segment-age",
        "1h30m",
        "--queue-quota",
        "3GiB",
        "--queue-full-policy",
        "drop-oldest",
        "--export-mode",
        "cody-only",
        "--dotcom",
        "--allowed-event-types",
        "cody.x::y::field",
        "--max-events",
        "7",
        "--event-logs-retention",
        "30d",
        "--export-addr",
        "https://user:pw@gw.example.com:443",
        "--license-key",
        "lk-1",
        "--export-gzip",
        "--max-connections",
        "8",
        "--request-timeout",
        "1s500ms",
    ];
    for argv in [&[][..], &changed[..]] {
        let (config, resolved) = ServeConfig::resolve_with_origins(&args(argv)).unwrap();
        let text = crate::settings::to_toml(&resolved.settings).unwrap();
        let file = dir.path().join("effective.toml");
        std::fs::write(&file, &text).unwrap();
        let (back_config, back) = ServeConfig::resolve_with_origins(&ServeArgs {
            config: Some(file),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(back.settings, resolved.settings, "{text}");
        assert_eq!(back_config.data_dir, config.data_dir);
        assert_eq!(back_config.queue.sync, config.queue.sync);
        assert_eq!(back_config.listen.admin_token, config.listen.admin_token);
        assert_eq!(back_config.export.addr, config.export.addr);
        assert_eq!(back_config.limits, config.limits);
    }
}

#[test]
fn every_setting_has_a_flag_an_environment_variable_and_a_row_in_the_readme() {
    let readme = include_str!("../../README.md");
    for names in crate::settings::layer::names::<ServeArgs>() {
        let env = names.env.as_deref().unwrap();
        assert_eq!(names.flag, format!("--{}", names.key.replace('_', "-")));
        assert!(
            readme.contains(&format!("| `{}", names.flag)) && readme.contains(env),
            "{names} is not in README.md's settings table"
        );
    }
}

#[test]
fn the_settings_defaults_are_the_components_defaults() {
    let c = ServeConfig::from_settings(&ServeSettings::default()).unwrap();
    let listen = ListenConfig::default();
    assert_eq!(
        (c.listen.grpc, c.listen.http, c.listen.max_body_bytes),
        (listen.grpc, listen.http, listen.max_body_bytes)
    );
    assert_eq!(
        (c.listen.max_ingest_in_flight, c.listen.decode_budget_bytes),
        (listen.max_ingest_in_flight, listen.decode_budget_bytes)
    );
    let queue = QueueConfig::default();
    assert_eq!(
        (
            c.queue.segment_bytes,
            c.queue.segment_age,
            c.queue.quota_bytes
        ),
        (queue.segment_bytes, queue.segment_age, queue.quota_bytes)
    );
    assert_eq!(c.queue.full_policy, queue.full_policy);
    let tee = TeeConfig::default();
    assert_eq!(c.tee.limits, tee.limits);
    assert_eq!(c.tee.server_version, tee.server_version);
    assert_eq!(c.event_logs, EventLogConfig::default());
    assert_eq!(c.dead_letters, DeadLetterConfig::default());
    assert_eq!(c.limits, ListenerLimits::sidecar());
    let export = ExportConfig::default();
    assert_eq!(
        (
            c.export.interval,
            c.export.batch_size,
            c.export.max_attempts
        ),
        (export.interval, export.batch_size, export.max_attempts)
    );
    let cleanup = CleanupConfig::default();
    assert_eq!(
        (c.cleanup.exported_retention, c.cleanup.interval),
        (cleanup.exported_retention, cleanup.interval)
    );
}

#[test]
fn a_blank_optional_value_unsets_it() {
    let c = resolve(&["--export-addr", "  ", "--instance-id", ""]).unwrap();
    assert_eq!(c.export.addr, None);
    assert_eq!(c.export.instance_id, None);
}
