//! TLS end to end with real processes and certificates made by the test
//! (rcgen): a sidecar exporting to a TLS gateway through its
//! `--export-ca-file`, mutual TLS, and SIGHUP reloads of certificates,
//! license keys and service tokens that keep open streams working.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

use testkit::gateway::*;
use testkit::process::{self, GatewayProc, post_events};
use testkit::tls::{Leaf, Pki, server_certificate, tls_client};
use tonic::Code;

/// `telespool serve` exporting every second, as instance `tls-instance`.
fn start_sidecar(data_dir: &Path, args: &[&str]) -> process::SidecarProc {
    let mut all = vec!["--export-interval", "1s", "--instance-id", "tls-instance"];
    all.extend_from_slice(args);
    process::sidecar(data_dir, &all)
}

/// Wide: the machine is shared.
const EXPORTED_WITHIN: Duration = Duration::from_secs(60);

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A TLS gateway with a file sink in `pki.dir`, accepting any license,
/// with the certificate `leaf`.
fn tls_gateway_with(pki: &Pki, leaf: &Leaf, extra: &[&str]) -> GatewayProc {
    let (cert, key) = pki.write_leaf("server", leaf);
    let sink = format!("file:{}", pki.dir.path().join("events.jsonl").display());
    let mut args = vec![
        "--accept-any-license",
        "--sink",
        &sink,
        "--tls-cert",
        path(&cert),
        "--tls-key",
        path(&key),
    ];
    args.extend_from_slice(extra);
    process::gateway(&args, "info")
}

/// [`tls_gateway_with`] a new certificate for localhost.
fn tls_gateway(pki: &Pki, extra: &[&str]) -> GatewayProc {
    tls_gateway_with(pki, &pki.server(1), extra)
}

/// Polls the gateway's `/metrics` until it holds `line`.
async fn wait_for_metric(gateway: &GatewayProc, line: &str) {
    let start = Instant::now();
    loop {
        let (_, body) = http_get(gateway.http, "/metrics").await;
        if body.lines().any(|l| l == line) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no {line:?} in /metrics:\n{body}\nlog:\n{}",
            gateway.proc.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the sidecar's `src_telemetrygatewayexporter_queue_size`
/// (updated every second) is `expected`.
async fn wait_for_queue_size(http: std::net::SocketAddr, expected: u64) {
    let start = Instant::now();
    loop {
        let (_, body) = http_get(http, "/metrics").await;
        let size = body
            .lines()
            .find_map(|l| l.strip_prefix("src_telemetrygatewayexporter_queue_size "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if size == Some(expected as f64) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "queue size {size:?}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_exports_to_a_tls_gateway_it_trusts_through_its_ca_file() {
    let pki = Pki::new("private ca");
    let gateway = tls_gateway(&pki, &[]);
    assert!(gateway.proc.stderr().contains("gRPC listener: TLS"));
    let ca = pki.write_ca("ca.pem");
    let data = tempfile::tempdir().unwrap();
    let addr = format!("https://localhost:{}", gateway.grpc.port());
    let sidecar = start_sidecar(
        data.path(),
        &["--export-addr", &addr, "--export-ca-file", path(&ca)],
    );
    post_events(sidecar.http, &["tls-1", "tls-2"]).await;
    process::wait_for_ids(
        &pki.dir.path().join("events.jsonl"),
        &["tls-1", "tls-2"],
        EXPORTED_WITHIN,
        || sidecar.proc.stderr(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_file_the_exporter_refuses_the_certificate_and_keeps_the_events() {
    let pki = Pki::new("private ca");
    let gateway = tls_gateway(&pki, &[]);
    let data = tempfile::tempdir().unwrap();
    let addr = format!("https://localhost:{}", gateway.grpc.port());
    let mut sidecar = start_sidecar(data.path(), &["--export-addr", &addr]);
    post_events(sidecar.http, &["kept-1", "kept-2"]).await;
    let line = sidecar
        .proc
        .wait_for_line("export round failed", EXPORTED_WITHIN);
    assert!(
        line.contains("certificate") && line.contains("UnknownIssuer"),
        "the log says why: {line}"
    );
    // Nothing is lost: both stay queued.
    wait_for_queue_size(sidecar.http, 2).await;
    let sink = pki.dir.path().join("events.jsonl");
    assert!(
        !std::fs::read_to_string(&sink)
            .unwrap_or_default()
            .contains("kept-1"),
        "nothing reached the gateway"
    );
    // Given the CA, the same sidecar exports what it kept.
    sidecar.proc.stop();
    let ca = pki.write_ca("ca.pem");
    let sidecar = start_sidecar(
        data.path(),
        &["--export-addr", &addr, "--export-ca-file", path(&ca)],
    );
    process::wait_for_ids(&sink, &["kept-1", "kept-2"], EXPORTED_WITHIN, || {
        sidecar.proc.stderr()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_a_client_without_a_certificate_and_takes_the_sidecars() {
    let pki = Pki::new("private ca");
    let ca = pki.write_ca("ca.pem");
    let gateway = tls_gateway(&pki, &["--tls-client-ca", path(&ca)]);

    let mut anonymous = tls_client(gateway.grpc, &pki.ca_pem(), None);
    let refused = record(
        &mut anonymous,
        vec![metadata_request(unlicensed()), events_request(events(0..1))],
    )
    .await;
    let status = refused
        .end
        .expect_err("a client without a certificate is refused");
    // The handshake fails (with TLS 1.3, when the client first reads), so
    // the call ends in a transport error, never an answer.
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::Cancelled | Code::Unknown
        ),
        "{status:?}"
    );
    assert!(refused.responses.is_empty());

    let stranger = Pki::new("another ca").leaf(&["intruder"], 7);
    let mut stranger = tls_client(gateway.grpc, &pki.ca_pem(), Some(&stranger));
    let refused = record(
        &mut stranger,
        vec![metadata_request(unlicensed()), events_request(events(0..1))],
    )
    .await;
    assert!(
        refused.end.is_err(),
        "a certificate from another CA is refused"
    );

    let client = pki.leaf(&["sidecar.example.com"], 42);
    let (cert, key) = pki.write_leaf("client", &client);
    let data = tempfile::tempdir().unwrap();
    let addr = format!("https://localhost:{}", gateway.grpc.port());
    let sidecar = start_sidecar(
        data.path(),
        &[
            "--export-addr",
            &addr,
            "--export-ca-file",
            path(&ca),
            "--export-client-cert",
            path(&cert),
            "--export-client-key",
            path(&key),
        ],
    );
    post_events(sidecar.http, &["mtls-1"]).await;
    process::wait_for_ids(
        &pki.dir.path().join("events.jsonl"),
        &["mtls-1"],
        EXPORTED_WITHIN,
        || sidecar.proc.stderr(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_shows_new_connections_the_new_certificate_and_keeps_open_streams() {
    let pki = Pki::new("private ca");
    let first = pki.server(1);
    let mut gateway = tls_gateway_with(&pki, &first, &[]);
    assert_eq!(
        server_certificate(gateway.grpc, &pki.ca_pem()).await,
        first.der()
    );
    // A stream opened before the reload.
    let mut client = tls_client(gateway.grpc, &pki.ca_pem(), None);
    let mut open = OpenStream::open(&mut client, None).await;
    open.send(metadata_request(unlicensed())).await;
    assert_eq!(open.payload(events(0..2)).await, ids(0..2));

    // Same CA, new serial.
    let second = pki.server(2);
    pki.write_leaf("server", &second);
    gateway.proc.signal("HUP");
    wait_for_metric(&gateway, "telespool_gateway_reloads_total{result=\"ok\"} 1").await;
    assert_eq!(
        server_certificate(gateway.grpc, &pki.ca_pem()).await,
        second.der(),
        "a new connection sees the new certificate"
    );
    assert_eq!(
        open.payload(events(2..4)).await,
        ids(2..4),
        "the stream opened before the reload still works"
    );

    // A bad PEM keeps the current certificate.
    let bad = pki.write("server.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n");
    gateway.proc.signal("HUP");
    wait_for_metric(
        &gateway,
        "telespool_gateway_reloads_total{result=\"error\"} 1",
    )
    .await;
    // The log line comes before the metric, but the pipe's reader thread
    // may not have read it yet.
    let error = gateway
        .proc
        .wait_for_line("reloading the TLS files failed", EXPORTED_WITHIN);
    assert!(
        error.contains("tls_cert") && error.contains(path(&bad)),
        "the error names the setting and the file: {error}"
    );
    assert_eq!(
        server_certificate(gateway.grpc, &pki.ca_pem()).await,
        second.der(),
        "the previous certificate stays"
    );
    assert_eq!(open.payload(events(4..5)).await, ids(4..5));

    // A new CA: clients that trust it see the new certificate.
    let other = Pki::new("rotated ca");
    let third = other.server(3);
    pki.write_leaf("server", &third);
    gateway.proc.signal("HUP");
    wait_for_metric(&gateway, "telespool_gateway_reloads_total{result=\"ok\"} 2").await;
    assert_eq!(
        server_certificate(gateway.grpc, &other.ca_pem()).await,
        third.der()
    );
    assert_eq!(open.payload(events(5..6)).await, ids(5..6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_license_keys_and_service_tokens_and_a_bad_file_keeps_them() {
    let files = tempfile::tempdir().unwrap();
    let keys = files.path().join("license-keys");
    std::fs::write(&keys, "key-one\n").unwrap();
    let tokens = files.path().join("service-tokens");
    std::fs::write(&tokens, "token-one\n").unwrap();
    let mut gateway = process::gateway(
        &[
            "--sink",
            "log",
            "--license-keys",
            path(&keys),
            "--service-tokens",
            path(&tokens),
        ],
        "info",
    );
    let mut client = client(gateway.grpc).await;
    let stream = |key: &'static str| {
        vec![
            metadata_request(licensed_with(key)),
            events_request(events(0..1)),
        ]
    };
    let managed_stream = || vec![metadata_request(managed()), events_request(events(0..1))];

    assert!(record(&mut client, stream("key-one")).await.end.is_ok());
    let (code, _) = record(&mut client, stream("key-two")).await.error();
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        record_with_token(&mut client, managed_stream(), Some("token-one"))
            .await
            .end
            .is_ok()
    );

    std::fs::write(&keys, "key-two\n").unwrap();
    std::fs::write(&tokens, "token-two\n").unwrap();
    gateway.proc.signal("HUP");
    wait_for_metric(&gateway, "telespool_gateway_reloads_total{result=\"ok\"} 1").await;
    assert!(record(&mut client, stream("key-two")).await.end.is_ok());
    let (code, _) = record(&mut client, stream("key-one")).await.error();
    assert_eq!(code, Code::InvalidArgument, "a removed key is refused");
    let (code, _) = record_with_token(&mut client, managed_stream(), Some("token-one"))
        .await
        .error();
    assert_eq!(code, Code::PermissionDenied, "a removed token is refused");
    assert!(
        record_with_token(&mut client, managed_stream(), Some("token-two"))
            .await
            .end
            .is_ok()
    );

    std::fs::write(&keys, "key-three extra-field\n").unwrap();
    gateway.proc.signal("HUP");
    wait_for_metric(
        &gateway,
        "telespool_gateway_reloads_total{result=\"error\"} 1",
    )
    .await;
    assert!(
        record(&mut client, stream("key-two")).await.end.is_ok(),
        "the previous keys stay in force"
    );
    let error = gateway
        .proc
        .wait_for_line("reloading the identity files failed", EXPORTED_WITHIN);
    assert!(
        error.contains(path(&keys)),
        "the error names the file: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_reloads_its_ca_file_on_sighup_and_its_next_connection_uses_it() {
    let pki = Pki::new("private ca");
    let gateway = tls_gateway(&pki, &[]);
    let wrong = Pki::new("wrong ca");
    let ca = pki.write("export-ca.pem", &wrong.ca_pem());
    let data = tempfile::tempdir().unwrap();
    let addr = format!("https://localhost:{}", gateway.grpc.port());
    let mut sidecar = start_sidecar(
        data.path(),
        &["--export-addr", &addr, "--export-ca-file", path(&ca)],
    );
    post_events(sidecar.http, &["hup-1"]).await;
    sidecar
        .proc
        .wait_for_line("export round failed", EXPORTED_WITHIN);

    // A bad file keeps the previous config (and says so).
    std::fs::write(&ca, "garbage").unwrap();
    sidecar.proc.signal("HUP");
    let line = sidecar
        .proc
        .wait_for_line("reloading the export TLS files failed", EXPORTED_WITHIN);
    assert!(line.contains("--export-ca-file"), "{line}");

    std::fs::write(&ca, pki.ca_pem()).unwrap();
    sidecar.proc.signal("HUP");
    sidecar
        .proc
        .wait_for_line("export TLS files reloaded", EXPORTED_WITHIN);
    process::wait_for_ids(
        &pki.dir.path().join("events.jsonl"),
        &["hup-1"],
        EXPORTED_WITHIN,
        || sidecar.proc.stderr(),
    );
    let (_, metrics) = http_get(sidecar.http, "/metrics").await;
    for line in [
        "telespool_export_tls_reloads_total{result=\"ok\"} 1",
        "telespool_export_tls_reloads_total{result=\"error\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
}
