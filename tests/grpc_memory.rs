//! Memory bounds of both gRPC servers, on the real binary: a 16 MiB
//! `RecordEvents` message of empty events (8 M two-byte records, 5.5 GB as
//! prost `Event`s) is refused naming the event limit and costs the process
//! under 64 MiB of resident memory, plain or gzip-compressed (~16 KB on the
//! wire); 32 of them at once keep the gateway under its decode budget plus
//! 64 MiB. The messages are framed by hand and sent over raw HTTP/2, since a
//! prost client would itself build the giant `Vec`.
//!
//! Memory is read from `/proc/PID/status`: `VmHWM` (peak resident) before
//! and after, once the server has answered a normal payload (warm).
//! `TELESPOOL_TEST_BIN` runs the tests against another binary (to measure
//! an older build). Run with `--nocapture` to see the figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::net::free_addr;
use testkit::process;

use bytes::Bytes;
use prost::Message;
use telespool::proto::telemetrygateway::v1::identifier::{
    Identifier as Id, LicensedInstanceIdentifier, UnlicensedInstanceIdentifier,
};
use telespool::proto::telemetrygateway::v1::record_events_request::{EventsPayload, Payload};
use telespool::proto::telemetrygateway::v1::{
    Event, Identifier, RecordEventsRequest, RecordEventsRequestMetadata,
};

const RECORD_EVENTS: &str = "/telemetrygateway.v1.TelemeteryGatewayService/RecordEvents";
const MIB: u64 = 1024 * 1024;
/// Empty events in a 16 MiB message: `0x12, varint(len)` then `0x0a 0x00`
/// pairs, 16,777,215 bytes in all.
const EMPTY_EVENTS: usize = 8_388_605;

fn binary() -> std::path::PathBuf {
    process::bin_or_env("TELESPOOL_TEST_BIN")
}

fn wait_listening(addr: SocketAddr) {
    testkit::net::wait_listening(addr, process::START_TIMEOUT);
}

/// A server process, killed on drop.
struct Server {
    child: Child,
    grpc: SocketAddr,
    http: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn gateway(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (grpc, http) = (free_addr(), free_addr());
        let child = Command::new(binary())
            .args(["gateway", "--accept-any-license"])
            .args(["--grpc-listen", &grpc.to_string()])
            .args(["--http-listen", &http.to_string()])
            .arg("--sink")
            .arg(format!(
                "file:{}",
                dir.path().join("events.jsonl").display()
            ))
            .args(extra)
            .env("TELESPOOL_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(grpc);
        wait_listening(http);
        Server {
            child,
            grpc,
            http,
            _dir: dir,
        }
    }

    fn sidecar() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (grpc, http) = (free_addr(), free_addr());
        let child = Command::new(binary())
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--grpc-listen", &grpc.to_string()])
            .args(["--http-listen", &http.to_string()])
            .env("TELESPOOL_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(grpc);
        wait_listening(http);
        Server {
            child,
            grpc,
            http,
            _dir: dir,
        }
    }

    /// A field of `/proc/PID/status`, in KiB.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in {status}"))
    }

    fn peak_bytes(&self) -> u64 {
        self.status_kib("VmHWM") * 1024
    }

    fn anon_bytes(&self) -> u64 {
        self.status_kib("RssAnon") * 1024
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// A gRPC message frame: flag, big-endian length, message.
fn frame(compressed: bool, message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(u8::from(compressed));
    out.extend((message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    Bytes::from(out)
}

fn metadata(licensed: bool) -> Bytes {
    let identifier = if licensed {
        Id::LicensedInstance(LicensedInstanceIdentifier {
            license_key: "any-key".into(),
            ..Default::default()
        })
    } else {
        Id::UnlicensedInstance(UnlicensedInstanceIdentifier {
            instance_id: "memory-test".into(),
            external_url: String::new(),
        })
    };
    let request = RecordEventsRequest {
        payload: Some(Payload::Metadata(RecordEventsRequestMetadata {
            request_id: "memory-test".into(),
            identifier: Some(Identifier {
                identifier: Some(identifier),
            }),
        })),
    };
    frame(false, &request.encode_to_vec())
}

/// A normal payload: 100 events of ~600 bytes.
fn normal_payload(base: usize) -> Bytes {
    let events = (base..base + 100)
        .map(|i| Event {
            id: format!("memory-test-{i}"),
            feature: "search".into(),
            action: "submitted".into(),
            timestamp: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            parameters: Some(telespool::proto::telemetrygateway::v1::EventParameters {
                version: 1,
                metadata: [("padding".to_owned(), 1.0)].into(),
                private_metadata: Some(prost_types::Struct {
                    fields: [(
                        "snippet".to_owned(),
                        prost_types::Value {
                            kind: Some(prost_types::value::Kind::StringValue("x".repeat(500))),
                        },
                    )]
                    .into(),
                }),
                ..Default::default()
            }),
            ..Event::default()
        })
        .collect();
    let request = RecordEventsRequest {
        payload: Some(Payload::Events(EventsPayload { events })),
    };
    frame(false, &request.encode_to_vec())
}

/// The 16 MiB `RecordEventsRequest` of empty events.
fn empty_events_message() -> Vec<u8> {
    let mut message = Vec::with_capacity(16 << 20);
    message.push(0x12);
    prost::encoding::encode_varint((2 * EMPTY_EVENTS) as u64, &mut message);
    for _ in 0..EMPTY_EVENTS {
        message.extend_from_slice(&[0x0a, 0x00]);
    }
    assert_eq!(message.len(), (16 << 20) - 1);
    message
}

fn gzip(message: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(message).unwrap();
    encoder.finish().unwrap()
}

/// How a call ended.
#[derive(Debug)]
struct Answer {
    responses: usize,
    code: i32,
    message: String,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn grpc_status(headers: &http::HeaderMap) -> Option<(i32, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.to_str().unwrap_or("")))
        .unwrap_or_default();
    Some((code, message))
}

/// An HTTP/2 connection to a gRPC server.
async fn connect(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send
}

/// One `RecordEvents` call sending `frames` (then half-closing); counts the
/// answers and returns the final status.
async fn record_events(
    connection: &h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
    frames: &[Bytes],
    gzip: bool,
) -> Answer {
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{RECORD_EVENTS}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if gzip {
        request = request.header("grpc-encoding", "gzip");
    }
    let mut sender = connection.clone().ready().await.unwrap();
    let (response, mut stream) = sender
        .send_request(request.body(()).unwrap(), false)
        .unwrap();
    for (i, f) in frames.iter().enumerate() {
        // Queued (zero-copy), sent as the server's windows allow; an error
        // means the server already answered and reset the stream.
        if stream.send_data(f.clone(), i + 1 == frames.len()).is_err() {
            break;
        }
    }
    let response = tokio::time::timeout(Duration::from_secs(120), response)
        .await
        .expect("an answer within 120s")
        .unwrap();
    let (parts, mut body) = response.into_parts();
    if let Some((code, message)) = grpc_status(&parts.headers) {
        return Answer {
            responses: 0,
            code,
            message,
        };
    }
    let mut received = 0usize;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        received += chunk.len();
    }
    let trailers = body.trailers().await.unwrap().expect("trailers");
    let (code, message) = grpc_status(&trailers).expect("grpc-status");
    // The streams here send at most one payload: some data means it was
    // answered.
    Answer {
        responses: usize::from(received > 0),
        code,
        message,
    }
}

/// Warms the server up with a normal stream and returns its peak resident
/// bytes afterwards.
async fn warm(server: &Server, licensed: bool) -> u64 {
    let connection = connect(server.grpc).await;
    for round in 0..3 {
        let answer = record_events(
            &connection,
            server.grpc,
            &[metadata(licensed), normal_payload(round * 100)],
            false,
        )
        .await;
        assert_eq!((answer.code, answer.responses), (0, 1), "{answer:?}");
    }
    server.peak_bytes()
}

fn report(what: &str, before: u64, after: u64, anon: u64) {
    eprintln!(
        "{what}: peak resident {} MiB before, {} MiB after (+{} MiB); RssAnon after {} MiB",
        before / MIB,
        after / MIB,
        after.saturating_sub(before) / MIB,
        anon / MIB
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_mib_message_of_empty_events_costs_the_gateway_under_64_mib() {
    let mut server = Server::gateway(&[]);
    let before = warm(&server, true).await;
    let connection = connect(server.grpc).await;
    let big = frame(false, &empty_events_message());
    let answer = record_events(&connection, server.grpc, &[metadata(true), big], false).await;
    assert_eq!(
        answer.code,
        tonic::Code::InvalidArgument as i32,
        "{answer:?}"
    );
    assert!(
        answer
            .message
            .contains(&format!("payload holds {EMPTY_EVENTS} events"))
            && answer.message.contains("limit of 10000")
            && answer.message.contains("--max-events"),
        "{answer:?}"
    );
    assert!(server.is_running());
    let after = server.peak_bytes();
    report(
        "gateway, 16 MiB of empty events",
        before,
        after,
        server.anon_bytes(),
    );
    assert!(after < before + 64 * MIB, "+{} MiB", (after - before) / MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_message_gzip_compressed_costs_the_gateway_under_64_mib() {
    let mut server = Server::gateway(&[]);
    let before = warm(&server, true).await;
    let compressed = gzip(&empty_events_message());
    assert!(compressed.len() < 64 * 1024, "{} bytes", compressed.len());
    let connection = connect(server.grpc).await;
    let answer = record_events(
        &connection,
        server.grpc,
        &[metadata(true), frame(true, &compressed)],
        true,
    )
    .await;
    assert_eq!(
        answer.code,
        tonic::Code::InvalidArgument as i32,
        "{answer:?}"
    );
    assert!(
        answer
            .message
            .contains(&format!("payload holds {EMPTY_EVENTS} events")),
        "{answer:?}"
    );
    assert!(server.is_running());
    let after = server.peak_bytes();
    report(
        &format!("gateway, gzip ({} bytes on the wire)", compressed.len()),
        before,
        after,
        server.anon_bytes(),
    );
    assert!(after < before + 64 * MIB, "+{} MiB", (after - before) / MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_mib_message_of_empty_events_costs_the_sidecar_under_64_mib() {
    let mut server = Server::sidecar();
    let before = warm(&server, false).await;
    let connection = connect(server.grpc).await;
    let big = frame(false, &empty_events_message());
    let answer = record_events(&connection, server.grpc, &[metadata(false), big], false).await;
    assert_eq!(
        answer.code,
        tonic::Code::InvalidArgument as i32,
        "{answer:?}"
    );
    assert!(
        answer.message.contains(&format!("{EMPTY_EVENTS} events"))
            && answer.message.contains("limit of 10000")
            && answer.message.contains("max_events"),
        "{answer:?}"
    );
    assert!(server.is_running());
    let after = server.peak_bytes();
    report(
        "sidecar, 16 MiB of empty events",
        before,
        after,
        server.anon_bytes(),
    );
    assert!(after < before + 64 * MIB, "+{} MiB", (after - before) / MIB);
}

/// The value of an unlabelled series in a Prometheus text page.
async fn scrape(http: SocketAddr, name: &str) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(http).await.ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut page = String::new();
    stream.read_to_string(&mut page).await.ok()?;
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_such_messages_at_once_keep_the_gateway_under_its_decode_budget_plus_64_mib() {
    const BUDGET: u64 = 64 * MIB;
    let mut server = Server::gateway(&["--decode-budget", "64MiB"]);
    let before = warm(&server, true).await;
    let big = frame(false, &empty_events_message());
    let mut calls = Vec::new();
    for _ in 0..4 {
        let connection = connect(server.grpc).await;
        for _ in 0..8 {
            let (connection, big, addr) = (connection.clone(), big.clone(), server.grpc);
            calls.push(tokio::spawn(async move {
                record_events(&connection, addr, &[metadata(true), big], false).await
            }));
        }
    }
    let mut refused_by_budget = 0;
    for call in calls {
        let answer = call.await.unwrap();
        if answer.code == tonic::Code::ResourceExhausted as i32 {
            assert!(
                answer
                    .message
                    .contains("--decode-budget (TELESPOOL_GATEWAY_DECODE_BUDGET)"),
                "{answer:?}"
            );
            refused_by_budget += 1;
        } else {
            assert_eq!(
                answer.code,
                tonic::Code::InvalidArgument as i32,
                "{answer:?}"
            );
        }
    }
    assert!(server.is_running());
    let after = server.peak_bytes();
    report(
        &format!("gateway, 32 at once, budget 64 MiB ({refused_by_budget} refused by the budget)"),
        before,
        after,
        server.anon_bytes(),
    );
    assert!(
        after < before + BUDGET + 64 * MIB,
        "+{} MiB",
        (after - before) / MIB
    );
    // Every reservation was given back, and the gateway still serves.
    let start = Instant::now();
    loop {
        let in_use = scrape(server.http, "telespool_gateway_decode_budget_bytes_in_use").await;
        if in_use == Some(0.0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "budget in use: {in_use:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = scrape(server.http, "telespool_gateway_decode_budget_refused_total").await;
    assert_eq!(refused, Some(f64::from(refused_by_budget)));
    warm(&server, true).await;
}
