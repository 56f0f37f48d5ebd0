//! The gateway's NATS credentials and TLS against a real `nats-server`
//! (started by the test on a free port; fails, not skips, when it is
//! missing): a user and password or a token, from the sink URL or from a
//! file, TLS with a private CA and mutual TLS. The gateway runs as a
//! process with its log captured: the secret never appears in it, even at
//! debug level, and a wrong one fails the start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::time::Duration;

use testkit::gateway::*;
use testkit::nats::NatsServer;
use testkit::process::{self, Proc};
use testkit::tls::Pki;

const PASSWORD: &str = "pa55-w0rd-xyzzy";
const TOKEN: &str = "t0ken-plugh-4242";

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Starts a gateway publishing to `sink` (debug logging, so that anything
/// a client library logs is captured too) and checks that a payload is
/// published: its ids come back only once JetStream acknowledged them.
async fn publishes(sink: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "--accept-any-license",
        "--sink",
        sink,
        "--nats-ack-timeout",
        "10s",
    ];
    args.extend_from_slice(extra);
    let mut gateway = process::gateway(&args, "debug");
    let mut client = client(gateway.grpc).await;
    let result = record(
        &mut client,
        vec![metadata_request(unlicensed()), events_request(events(0..3))],
    )
    .await;
    assert!(
        result.end.is_ok(),
        "{:?}\n{}",
        result.end,
        gateway.proc.stderr()
    );
    assert_eq!(
        result.succeeded(),
        ids(0..3),
        "published:\n{}",
        gateway.proc.stderr()
    );
    let (code, body) = http_get(gateway.http, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    gateway.proc.stop();
    gateway.proc.stderr()
}

/// Runs a gateway that should fail to start; returns its log.
fn fails_to_start(sink: &str, extra: &[&str]) -> String {
    let mut command = std::process::Command::new(process::bin());
    command
        .arg("gateway")
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(["--accept-any-license", "--sink", sink])
        .args(extra)
        .env("TELESPOOL_LOG", "debug")
        .env_remove("TELESPOOL_GATEWAY_SINK");
    let mut gateway = Proc::spawn(command);
    let status = gateway
        .wait_exit(Duration::from_secs(60))
        .expect("the gateway exits");
    assert_eq!(status.code(), Some(1), "{}", gateway.stderr());
    gateway.stderr()
}

fn assert_secret_kept_out(log: &str, secret: &str) {
    assert!(
        !log.contains(secret),
        "the secret {secret:?} was logged:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_and_password_in_the_sink_url_publish_and_are_never_logged() {
    let server = NatsServer::start_with(&["--user", "alice", "--pass", PASSWORD]);
    let sink = format!("nats://alice:{PASSWORD}@127.0.0.1:{}", server.port);
    let log = publishes(&sink, &[]).await;
    assert_secret_kept_out(&log, PASSWORD);
    assert!(
        log.contains(&format!("sink=nats://127.0.0.1:{}", server.port)),
        "the sink is logged without its userinfo:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_the_start_without_logging_it() {
    let server = NatsServer::start_with(&["--user", "alice", "--pass", PASSWORD]);
    let wrong = "wr0ng-pa55-quux";
    let sink = format!("nats://alice:{wrong}@127.0.0.1:{}", server.port);
    let log = fails_to_start(&sink, &[]);
    assert!(log.contains("NATS connect"), "{log}");
    assert_secret_kept_out(&log, wrong);
    assert_secret_kept_out(&log, PASSWORD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_file_goes_with_the_user_in_the_url() {
    let server = NatsServer::start_with(&["--user", "alice", "--pass", PASSWORD]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nats-password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let sink = format!("nats://alice@127.0.0.1:{}", server.port);
    let log = publishes(&sink, &["--nats-password-file", path(&file)]).await;
    assert_secret_kept_out(&log, PASSWORD);

    std::fs::write(&file, "").unwrap();
    let log = fails_to_start(&sink, &["--nats-password-file", path(&file)]);
    assert!(
        log.contains("nats_password_file") && log.contains("empty"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_the_url_or_from_a_file_publishes_and_is_never_logged() {
    let server = NatsServer::start_with(&["--auth", TOKEN]);
    let log = publishes(&format!("nats://{TOKEN}@127.0.0.1:{}", server.port), &[]).await;
    assert_secret_kept_out(&log, TOKEN);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nats-token");
    std::fs::write(&file, TOKEN).unwrap();
    let sink = format!("nats://127.0.0.1:{}", server.port);
    let log = publishes(&sink, &["--nats-token-file", path(&file)]).await;
    assert_secret_kept_out(&log, TOKEN);

    let log = fails_to_start(&sink, &[]);
    assert!(log.contains("NATS connect"), "no token, no start: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_nats_with_a_private_ca_and_mutual_tls() {
    let pki = Pki::new("nats ca");
    let ca = pki.write_ca("ca.pem");
    let (cert, key) = pki.write_leaf("nats-server", &pki.server(1));
    let sink = |server: &NatsServer| format!("nats://localhost:{}", server.port);

    let server =
        NatsServer::start_with(&["--tls", "--tlscert", path(&cert), "--tlskey", path(&key)]);
    publishes(&sink(&server), &["--nats-tls-ca", path(&ca)]).await;
    let other = Pki::new("other ca");
    let other_ca = other.write_ca("other-ca.pem");
    let log = fails_to_start(&sink(&server), &["--nats-tls-ca", path(&other_ca)]);
    assert!(
        log.contains("NATS connect"),
        "an untrusted server is refused: {log}"
    );
    drop(server);

    let server = NatsServer::start_with(&[
        "--tlsverify",
        "--tlscert",
        path(&cert),
        "--tlskey",
        path(&key),
        "--tlscacert",
        path(&ca),
    ]);
    let (client_cert, client_key) = pki.write_leaf("gateway", &pki.leaf(&["gateway"], 2));
    publishes(
        &sink(&server),
        &[
            "--nats-tls-ca",
            path(&ca),
            "--nats-tls-cert",
            path(&client_cert),
            "--nats-tls-key",
            path(&client_key),
        ],
    )
    .await;
    let log = fails_to_start(&sink(&server), &["--nats-tls-ca", path(&ca)]);
    assert!(
        log.contains("NATS connect"),
        "no client certificate, no start: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_nats_credential_files_fail_the_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.creds");
    let sink = "nats://127.0.0.1:1";
    let log = fails_to_start(sink, &["--nats-creds", path(&missing)]);
    assert!(
        log.contains("nats_creds") && log.contains("missing.creds"),
        "{log}"
    );
    let garbage = dir.path().join("ca.pem");
    std::fs::write(&garbage, "not pem").unwrap();
    let log = fails_to_start(sink, &["--nats-tls-ca", path(&garbage)]);
    assert!(
        log.contains("nats_tls_ca") && log.contains("ca.pem"),
        "{log}"
    );
}
