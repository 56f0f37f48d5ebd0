//! `telespool gateway` on the command line: every setting is listed by
//! `--help` with its environment variable, and flags win over the
//! environment, which wins over the config file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;

fn gateway(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_telespool"));
    command.arg("gateway").args(args);
    for var in [
        "TELESPOOL_GATEWAY_CONFIG",
        "TELESPOOL_GATEWAY_SINK",
        "TELEMETRY_GATEWAY_EVENTS_STREAM_PUBLISH_CONCURRENCY",
    ] {
        command.env_remove(var);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_every_setting_with_its_environment_variable() {
    let (code, out, _) = gateway(&["--help"], &[]);
    assert_eq!(code, 0);
    for (flag, env) in [
        ("--config", "TELESPOOL_GATEWAY_CONFIG"),
        ("--grpc-listen", "TELESPOOL_GATEWAY_GRPC_LISTEN"),
        ("--http-listen", "TELESPOOL_GATEWAY_HTTP_LISTEN"),
        ("--sink", "TELESPOOL_GATEWAY_SINK"),
        ("--nats-stream", "TELESPOOL_GATEWAY_NATS_STREAM"),
        ("--nats-subject", "TELESPOOL_GATEWAY_NATS_SUBJECT"),
        ("--nats-ack-timeout", "TELESPOOL_GATEWAY_NATS_ACK_TIMEOUT"),
        (
            "--nats-duplicate-window",
            "TELESPOOL_GATEWAY_NATS_DUPLICATE_WINDOW",
        ),
        ("--file-rotate-bytes", "TELESPOOL_GATEWAY_FILE_ROTATE_BYTES"),
        ("--license-keys", "TELESPOOL_GATEWAY_LICENSE_KEYS"),
        ("--service-tokens", "TELESPOOL_GATEWAY_SERVICE_TOKENS"),
        (
            "--accept-any-license",
            "TELESPOOL_GATEWAY_ACCEPT_ANY_LICENSE",
        ),
        (
            "--publish-concurrency",
            "TELEMETRY_GATEWAY_EVENTS_STREAM_PUBLISH_CONCURRENCY",
        ),
        ("--shutdown-timeout", "TELESPOOL_GATEWAY_SHUTDOWN_TIMEOUT"),
        ("--file-keep", "TELESPOOL_GATEWAY_FILE_KEEP"),
        ("--file-max-age", "TELESPOOL_GATEWAY_FILE_MAX_AGE"),
        (
            "--publish-license-key",
            "TELESPOOL_GATEWAY_PUBLISH_LICENSE_KEY",
        ),
        ("--tls-cert", "TELESPOOL_GATEWAY_TLS_CERT"),
        ("--tls-key", "TELESPOOL_GATEWAY_TLS_KEY"),
        ("--tls-client-ca", "TELESPOOL_GATEWAY_TLS_CLIENT_CA"),
        ("--nats-creds", "TELESPOOL_GATEWAY_NATS_CREDS"),
        ("--nats-tls-ca", "TELESPOOL_GATEWAY_NATS_TLS_CA"),
        ("--nats-tls-cert", "TELESPOOL_GATEWAY_NATS_TLS_CERT"),
        ("--nats-tls-key", "TELESPOOL_GATEWAY_NATS_TLS_KEY"),
        (
            "--nats-password-file",
            "TELESPOOL_GATEWAY_NATS_PASSWORD_FILE",
        ),
        ("--nats-token-file", "TELESPOOL_GATEWAY_NATS_TOKEN_FILE"),
        ("--max-connections", "TELESPOOL_GATEWAY_MAX_CONNECTIONS"),
        ("--http2-max-streams", "TELESPOOL_GATEWAY_HTTP2_MAX_STREAMS"),
        (
            "--http2-keepalive-interval",
            "TELESPOOL_GATEWAY_HTTP2_KEEPALIVE_INTERVAL",
        ),
        (
            "--http2-keepalive-timeout",
            "TELESPOOL_GATEWAY_HTTP2_KEEPALIVE_TIMEOUT",
        ),
        (
            "--max-connection-age",
            "TELESPOOL_GATEWAY_MAX_CONNECTION_AGE",
        ),
        (
            "--max-connection-age-grace",
            "TELESPOOL_GATEWAY_MAX_CONNECTION_AGE_GRACE",
        ),
        (
            "--http-header-timeout",
            "TELESPOOL_GATEWAY_HTTP_HEADER_TIMEOUT",
        ),
        ("--http-idle-timeout", "TELESPOOL_GATEWAY_HTTP_IDLE_TIMEOUT"),
        ("--request-timeout", "TELESPOOL_GATEWAY_REQUEST_TIMEOUT"),
    ] {
        assert!(out.contains(flag), "{flag} missing:\n{out}");
        assert!(out.contains(env), "{env} missing:\n{out}");
    }
    assert!(
        out.contains("0.0.0.0:10080") && out.contains("0.0.0.0:10081"),
        "{out}"
    );
    assert!(
        out.contains("file:./telespool-gateway/events.jsonl"),
        "{out}"
    );
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_config_file() {
    // Out-of-range values make the gateway say which one it took, without
    // starting.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, "publish_concurrency = 20001\n").unwrap();
    let config = file.to_str().unwrap();
    let env = [(
        "TELEMETRY_GATEWAY_EVENTS_STREAM_PUBLISH_CONCURRENCY",
        "20002",
    )];

    let (code, _, err) = gateway(&["--config", config], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("publish_concurrency = 20001 is outside 1..=10000"),
        "{err}"
    );

    let (_, _, err) = gateway(&["--config", config], &env);
    assert!(err.contains("publish_concurrency = 20002"), "{err}");

    let (_, _, err) = gateway(
        &["--config", config, "--publish-concurrency", "20003"],
        &env,
    );
    assert!(err.contains("publish_concurrency = 20003"), "{err}");

    let (_, _, err) = gateway(&[], &[("TELESPOOL_GATEWAY_CONFIG", config)]);
    assert!(err.contains("publish_concurrency = 20001"), "{err}");
}

#[test]
fn serve_and_gateway_take_the_same_listener_limit_flags() {
    let serve = Command::new(env!("CARGO_BIN_EXE_telespool"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let serve = String::from_utf8_lossy(&serve.stdout).into_owned();
    let (_, gateway_help, _) = gateway(&["--help"], &[]);
    for flag in [
        "--max-connections",
        "--http2-max-streams",
        "--http2-keepalive-interval",
        "--http2-keepalive-timeout",
        "--max-connection-age",
        "--max-connection-age-grace",
        "--http-header-timeout",
        "--http-idle-timeout",
        "--request-timeout",
    ] {
        assert!(serve.contains(flag), "serve --help lacks {flag}:\n{serve}");
        assert!(gateway_help.contains(flag), "gateway --help lacks {flag}");
    }
    assert!(serve.contains("TELESPOOL_MAX_CONNECTIONS"), "{serve}");
    let (code, _, err) = gateway(&["--max-connections", "0"], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("max_connections = 0 is outside 1..=1000000"),
        "{err}"
    );
}

#[test]
fn config_file_errors_name_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, "sink = \"kafka://x\"\n").unwrap();
    let (code, _, err) = gateway(&["--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "sink = \"kafka://x\" is invalid: expected file:PATH, nats://HOST:PORT or log"
        ),
        "{err}"
    );
    std::fs::write(&file, "sinc = \"log\"\n").unwrap();
    let (code, _, err) = gateway(&["--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("gateway.toml") && err.contains("sinc"),
        "{err}"
    );
    // A bad line holding a secret: the error names line and key, not it.
    std::fs::write(
        &file,
        "sink = \"log\"\nfile_keep = \"s3cr3t-license-key\"\n",
    )
    .unwrap();
    let (code, _, err) = gateway(&["--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("line 2") && err.contains("file_keep") && !err.contains("s3cr3t"),
        "{err}"
    );
    let (code, _, err) = gateway(&["--config", "/nonexistent/gateway.toml"], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("reading config file /nonexistent/gateway.toml"),
        "{err}"
    );
}

#[test]
fn a_sink_that_cannot_be_opened_stops_the_start_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let sink = format!("file:{}/events.jsonl", blocker.display());
    let (code, _, err) = gateway(
        &[
            "--sink",
            &sink,
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("sink: creating directory") && err.contains(&blocker.display().to_string()),
        "{err}"
    );
}

#[test]
fn tls_settings_are_checked_at_start_and_errors_name_them() {
    let (code, _, err) = gateway(&["--tls-cert", "cert.pem"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("tls_cert is set but tls_key is not"), "{err}");
    let (code, _, err) = gateway(&[], &[("TELESPOOL_GATEWAY_TLS_KEY", "key.pem")]);
    assert_eq!(code, 1);
    assert!(err.contains("tls_key is set but tls_cert is not"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate\n").unwrap();
    let (code, _, err) = gateway(
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            "/nonexistent/key.pem",
            "--sink",
            "log",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("tls_cert") && err.contains(&cert.display().to_string()),
        "{err}"
    );
}
