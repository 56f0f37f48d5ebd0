//! The gateway's settings: defaults, layering, every key of the file,
//! errors naming the setting, NATS credentials, secrets kept out of
//! errors, and the TOML round trip.

use super::*;
use crate::gateway::config::{NatsUrl, NatsUserinfo, SinkSpecError};
use crate::gateway::sink;
use crate::settings::CommandArgs;
use std::time::Duration;

/// The gateway's arguments as clap parses `argv`.
fn args(argv: &[&str]) -> GatewayArgs {
    let cli = crate::cli::parse_from(
        ["telespool", "gateway"]
            .into_iter()
            .chain(argv.iter().copied()),
    )
    .unwrap();
    match cli.command {
        crate::cli::Command::Gateway(a) => *a,
        _ => unreachable!(),
    }
}

fn resolve(argv: &[&str]) -> Result<GatewayConfig, String> {
    GatewayConfig::resolve(&args(argv)).map_err(|e| e.to_string())
}

/// Resolves the config file `text`, written as `name` in a temp dir.
fn resolve_file(text: &str, name: &str) -> Result<GatewayConfig, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    resolve(&["--config", path.to_str().unwrap()])
}

#[test]
fn defaults_are_the_documented_ones() {
    let config = GatewayConfig::from_settings(&GatewaySettings::default()).unwrap();
    assert_eq!(config, GatewayConfig::default());
    assert_eq!(resolve(&[]).unwrap(), config);
    assert_eq!(
        config.grpc_listen.to_string(),
        crate::gateway::config::DEFAULT_GRPC_LISTEN
    );
    assert_eq!(
        config.http_listen.to_string(),
        crate::gateway::config::DEFAULT_HTTP_LISTEN
    );
    assert_eq!(
        config.sink.to_string(),
        crate::gateway::config::DEFAULT_SINK
    );
    assert_eq!(config.publish_concurrency, 250);
    assert_eq!(config.file.rotate_bytes, 256 * 1024 * 1024);
    assert_eq!(config.file.keep, 10);
    assert_eq!(config.file.max_age, None);
    assert_eq!(config.publish_license_key, PublishLicenseKey::Sha256);
    assert_eq!(config.max_events, 10_000);
    assert_eq!(config.decode_budget_bytes, 256 * 1024 * 1024);
}

#[test]
fn a_higher_layer_wins_setting_by_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gw.toml");
    std::fs::write(
        &file,
        "grpc_listen = \"127.0.0.1:1\"\nhttp_listen = \"127.0.0.1:2\"\npublish_concurrency = 10",
    )
    .unwrap();
    let config = resolve(&[
        "--config",
        file.to_str().unwrap(),
        "--grpc-listen",
        "127.0.0.1:3",
    ])
    .unwrap();
    assert_eq!(config.grpc_listen.to_string(), "127.0.0.1:3");
    assert_eq!(config.http_listen.to_string(), "127.0.0.1:2");
    assert_eq!(config.publish_concurrency, 10);
}

const EVERY_KEY: &str = r#"
    grpc_listen = "127.0.0.1:1"
    http_listen = "127.0.0.1:2"
    sink = "nats://127.0.0.1:4222"
    nats_stream = "s"
    nats_subject = "a.b"
    nats_ack_timeout = "2s"
    nats_duplicate_window = "10m"
    file_rotate_bytes = 8192
    license_keys = "keys.txt"
    service_tokens = "tokens.txt"
    accept_any_license = true
    publish_concurrency = 7
    shutdown_timeout = "1m"
    file_keep = 3
    file_max_age = "7d"
    publish_license_key = "omit"
    tls_cert = "cert.pem"
    tls_key = "key.pem"
    tls_client_ca = "ca.pem"
    nats_creds = "user.creds"
    nats_tls_ca = "nats-ca.pem"
    nats_tls_cert = "nats-cert.pem"
    nats_tls_key = "nats-key.pem"
    max_events = 500
    decode_budget = "64MiB"
    max_connections = 8
    http2_max_streams = 10
    http2_keepalive_interval = "30s"
    http2_keepalive_timeout = "5s"
    max_connection_age = "10m"
    max_connection_age_grace = "1m"
    http_header_timeout = "1s"
    http_idle_timeout = "2m"
    request_timeout = "15s"
    "#;

#[test]
fn every_key_of_the_file_is_known_and_unknown_keys_are_refused() {
    let config = resolve_file(EVERY_KEY, "test.toml").unwrap();
    assert_eq!(
        config.limits,
        ListenerLimits {
            max_connections: 8,
            http2_max_streams: 10,
            http2_keepalive_interval: Duration::from_secs(30),
            http2_keepalive_timeout: Duration::from_secs(5),
            max_connection_age: Duration::from_secs(600),
            max_connection_age_grace: Duration::from_secs(60),
            http_header_timeout: Duration::from_secs(1),
            http_idle_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(15),
        }
    );
    assert_eq!(config.sink, SinkSpec::Nats("nats://127.0.0.1:4222".into()));
    assert_eq!(config.nats.ack_timeout, Duration::from_secs(2));
    assert_eq!(config.nats.duplicate_window, Duration::from_secs(600));
    assert_eq!(config.shutdown_timeout, Duration::from_secs(60));
    assert!(config.accept_any_license);
    assert_eq!(config.file.keep, 3);
    assert_eq!(config.file.max_age, Some(Duration::from_secs(7 * 86_400)));
    assert_eq!(config.publish_license_key, PublishLicenseKey::Omit);
    assert_eq!(config.max_events, 500);
    assert_eq!(config.decode_budget_bytes, 64 << 20);
    let err = resolve_file("grpc_lsten = \"x\"", "c.toml").unwrap_err();
    assert!(
        err.contains("c.toml") && err.contains("grpc_lsten"),
        "{err}"
    );
}

#[test]
fn sink_specs_parse_and_bad_ones_say_what_is_expected() {
    assert_eq!("log".parse(), Ok(SinkSpec::Log));
    assert_eq!(
        "file:/x/y.jsonl".parse(),
        Ok(SinkSpec::File(PathBuf::from("/x/y.jsonl")))
    );
    assert_eq!(
        "nats://h:1".parse(),
        Ok(SinkSpec::Nats("nats://h:1".into()))
    );
    let err = resolve(&["--sink", "kafka://x"]).unwrap_err();
    assert!(
        err.ends_with(
            "sink = \"kafka://x\" is invalid: expected file:PATH, nats://HOST:PORT or log"
        ),
        "{err}"
    );
}

#[test]
fn errors_name_the_setting() {
    let cases: [(&[&str], &str); 14] = [
        (
            &["--file-keep", "0"],
            "file_keep = 0 is outside 1..=1000000",
        ),
        (&["--file-max-age", "10ms"], "file_max_age"),
        (
            &["--publish-license-key", "md5"],
            "publish_license_key = \"md5\" is invalid: expected raw, sha256 or omit",
        ),
        (
            &["--max-events", "0"],
            "max_events = 0 is outside 1..=1000000",
        ),
        (
            &["--decode-budget", "1MiB"],
            "decode_budget = 1048576 is outside 16777216..",
        ),
        (
            &["--decode-budget", "lots"],
            "decode_budget = \"lots\" is not a size",
        ),
        (
            &["--max-connections", "0"],
            "max_connections = 0 is outside 1..=1000000",
        ),
        (&["--http-header-timeout", "0s"], "http_header_timeout"),
        (&["--grpc-listen", "nope"], "grpc_listen"),
        (
            &["--publish-concurrency", "0"],
            "publish_concurrency = 0 is outside 1..=10000",
        ),
        (&["--nats-ack-timeout", "soon"], "nats_ack_timeout"),
        (&["--nats-subject", "a.*"], "nats_subject"),
        (&["--nats-stream", "a.b"], "nats_stream"),
        (&["--file-rotate-bytes", "10"], "file_rotate_bytes"),
    ];
    for (argv, expected) in cases {
        let err = resolve(argv).unwrap_err();
        assert!(err.contains(expected), "{err} should contain {expected}");
    }
}

#[test]
fn one_dedup_window_serves_both_sinks_and_its_former_name_still_works() {
    let config = resolve(&["--dedup-window", "5m"]).unwrap();
    assert_eq!(config.file.dedup_window, Duration::from_secs(300));
    assert_eq!(config.nats.duplicate_window, Duration::from_secs(300));
    let config = resolve(&["--nats-duplicate-window", "7m"]).unwrap();
    assert_eq!(config.file.dedup_window, Duration::from_secs(420));
    assert_eq!(config.nats.duplicate_window, Duration::from_secs(420));
    let config = resolve(&["--dedup-window", "7m", "--nats-duplicate-window", "7m"]).unwrap();
    assert_eq!(config.file.dedup_window, Duration::from_secs(420));
    let e = resolve(&["--dedup-window", "5m", "--nats-duplicate-window", "7m"]).unwrap_err();
    assert!(
        e.contains("nats_duplicate_window") && e.contains("dedup_window"),
        "{e}"
    );
    let e = resolve(&["--dedup-max-ids", "0"]).unwrap_err();
    assert!(e.contains("dedup_max_ids = 0 is outside 1..="), "{e}");
    assert_eq!(
        resolve(&[]).unwrap().file.dedup_max_ids,
        sink::dedup::DEFAULT_DEDUP_MAX_IDS
    );
}

#[test]
fn nats_urls_give_up_their_userinfo_percent_decoded() {
    let url = NatsUrl::parse("nats://alice:p%40ss:w@127.0.0.1:4222").unwrap();
    assert_eq!(url.address, "nats://127.0.0.1:4222");
    assert_eq!(
        url.userinfo,
        Some(NatsUserinfo::UserPassword {
            user: "alice".into(),
            password: "p@ss:w".into()
        })
    );
    let url = NatsUrl::parse("nats://s3cr3t-token@nats.example.com").unwrap();
    assert_eq!(url.address, "nats://nats.example.com");
    assert_eq!(
        url.userinfo,
        Some(NatsUserinfo::Single("s3cr3t-token".into()))
    );
    assert_eq!(NatsUrl::parse("nats://h:1").unwrap().userinfo, None);
    assert_eq!(
        NatsUrl::parse("nats://user@"),
        Err(SinkSpecError::EmptyNatsAddress)
    );
    assert_eq!(
        NatsUrl::parse("nats://%ff@h:1"),
        Err(SinkSpecError::BadNatsUserinfo)
    );
    assert!(!format!("{:?}", url_debug()).contains("hunter2"));
}

fn url_debug() -> (NatsUrl, SinkSpec, GatewayConfig) {
    let url = "nats://alice:hunter2@h:1";
    let config = resolve(&["--sink", url]).unwrap();
    (NatsUrl::parse(url).unwrap(), url.parse().unwrap(), config)
}

#[test]
fn a_nats_sink_shows_no_password_in_display_debug_or_errors() {
    let (_, spec, config) = url_debug();
    assert_eq!(spec.to_string(), "nats://h:1");
    assert!(!format!("{spec:?} {config:?}").contains("hunter2"));
    let err = resolve(&["--sink", "nats://alice:hunter2@"]).unwrap_err();
    assert!(!err.contains("hunter2") && err.contains("nats://"), "{err}");
    let shown = SettingValue::show(&spec).unwrap();
    assert_eq!(shown, "nats://***@h:1");
}

#[test]
fn nats_credentials_are_given_one_way() {
    let nats = |sink: &str, tweak: fn(&mut GatewaySettings)| {
        let mut settings = GatewaySettings {
            sink: sink.parse().unwrap(),
            ..Default::default()
        };
        tweak(&mut settings);
        GatewayConfig::from_settings(&settings).map_err(|e| e.to_string())
    };
    assert!(nats("nats://u:p@h:1", |_| {}).is_ok());
    assert!(nats("nats://u@h:1", |s| s.nats_password_file = Some("pw".into())).is_ok());
    assert!(nats("nats://h:1", |s| s.nats_token_file = Some("t".into())).is_ok());
    assert!(nats("nats://h:1", |s| s.nats_creds = Some("c".into())).is_ok());
    type Case = (&'static str, fn(&mut GatewaySettings), &'static str);
    let refused: [Case; 6] = [
        (
            "nats://h:1",
            |s| s.nats_password_file = Some("pw".into()),
            "nats_password_file needs a user in the sink URL",
        ),
        (
            "nats://u:p@h:1",
            |s| s.nats_password_file = Some("pw".into()),
            "nats_password_file and a password in the sink URL",
        ),
        (
            "nats://u@h:1",
            |s| s.nats_creds = Some("c".into()),
            "nats_creds and a user or token in the sink URL",
        ),
        (
            "nats://t@h:1",
            |s| s.nats_token_file = Some("t".into()),
            "nats_token_file and a user or token",
        ),
        (
            "nats://h:1",
            |s| {
                s.nats_token_file = Some("t".into());
                s.nats_creds = Some("c".into());
            },
            "nats_creds and nats_token_file",
        ),
        (
            "nats://h:1",
            |s| s.nats_tls_cert = Some("c.pem".into()),
            "nats_tls_cert is set but nats_tls_key is not",
        ),
    ];
    for (sink, tweak, expected) in refused {
        let err = nats(sink, tweak).unwrap_err();
        assert!(err.contains(expected), "{err} should contain {expected}");
    }
    // NATS settings do not matter to other sinks.
    assert!(nats("log", |s| s.nats_password_file = Some("pw".into())).is_ok());
}

#[test]
fn a_secret_on_a_bad_line_of_the_file_is_not_in_the_error() {
    let secret = "lk-0123456789-very-secret";
    for text in [
        format!("license_keys = \"keys.txt\"\nfile_keep = \"{secret}\"\n"),
        format!("sink = \"{secret}\n"),
        format!("accept_any_license = \"{secret}\"\n"),
    ] {
        let err = resolve_file(&text, "gw.toml").unwrap_err();
        assert!(!err.contains(secret), "{err}");
        assert!(!err.contains("very-secret"), "{err}");
        assert!(err.contains("gw.toml") && err.contains("line "), "{err}");
    }
}

#[test]
fn the_effective_settings_written_as_toml_resolve_back_to_the_same_config() {
    let dir = tempfile::tempdir().unwrap();
    let every = dir.path().join("every.toml");
    std::fs::write(&every, EVERY_KEY).unwrap();
    let every = every.to_str().unwrap();
    for argv in [&[][..], &["--config", every][..]] {
        let (config, resolved) = GatewayConfig::resolve_with_origins(&args(argv)).unwrap();
        let text = crate::settings::to_toml(&resolved.settings).unwrap();
        let file = dir.path().join("effective.toml");
        std::fs::write(&file, &text).unwrap();
        let (back_config, back) = GatewayConfig::resolve_with_origins(&GatewayArgs {
            config: Some(file),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(back.settings, resolved.settings, "{text}");
        assert_eq!(back_config, config, "{text}");
    }
    // With nothing set, the effective settings are the defaults.
    let (_, resolved) = GatewayConfig::resolve_with_origins(&GatewayArgs::default()).unwrap();
    assert_eq!(resolved.settings, GatewaySettings::default());
    assert!(GatewayArgs::default().config_file().is_none());
}

#[test]
fn every_setting_is_in_the_gateway_docs_with_its_environment_variable() {
    let docs = include_str!("../../docs/gateway.md");
    for names in crate::settings::layer::names::<GatewayArgs>() {
        let env = names.env.as_deref().unwrap();
        assert!(
            docs.contains(&names.flag) && docs.contains(env),
            "{names} is not in docs/gateway.md"
        );
    }
}
