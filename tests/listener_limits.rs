//! The listener limits of both servers (src/net): slowloris and silent
//! connections are closed, HTTP/2 streams are capped, the connection limit
//! holds new connections back without hurting the server, per-request
//! timeouts spare streams, and running out of file descriptors makes the
//! accept loop back off instead of spinning. Margins are wide: the machine
//! is shared.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::gateway::{OpenStream, TestGateway, events, ids, licensed, metadata_request};
use testkit::sidecar::{self, Sidecar};
use testkit::sinks::MemorySink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The widest any deadline of these tests may take to act.
const WIDE: Duration = Duration::from_secs(10);

async fn gateway(tweak: impl FnOnce(&mut telespool::net::ListenerLimits)) -> TestGateway {
    gateway_with(MemorySink::new(), tweak).await
}

async fn gateway_with(
    sink: std::sync::Arc<MemorySink>,
    tweak: impl FnOnce(&mut telespool::net::ListenerLimits),
) -> TestGateway {
    testkit::gateway::start_with(sink, |c| tweak(&mut c.limits)).await
}

async fn sidecar(
    dir: &std::path::Path,
    tweak: impl FnOnce(&mut telespool::net::ListenerLimits),
) -> Sidecar {
    let mut config = sidecar::config(dir);
    tweak(&mut config.limits);
    Sidecar::start(config).await
}

/// Reads until the server closes the connection; how long that took, or
/// `None` if it was still open after [`WIDE`].
async fn closed_within(mut reader: impl AsyncReadExt + Unpin) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(WIDE, async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

/// A slowloris client: a partial request head, then one more header byte
/// every 200 ms (never idle, never done). How long until the server closed
/// the connection, or `None` if it was still open after [`WIDE`].
async fn slowloris(addr: SocketAddr) -> Option<Duration> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    writer
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        .await
        .unwrap();
    let drip = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let closed = closed_within(reader).await;
    drip.abort();
    closed
}

fn one_second_header_timeout(limits: &mut telespool::net::ListenerLimits) {
    limits.http_header_timeout = Duration::from_secs(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_connection_is_closed_by_each_http_listener_within_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let sidecar = sidecar(dir.path(), one_second_header_timeout).await;
    let gateway = gateway(one_second_header_timeout).await;
    for (name, addr) in [
        ("sidecar HTTP", sidecar.http_addr()),
        ("gateway HTTP", gateway.http),
    ] {
        // Twenty at once, as an attacker would (main kept 200 of them open
        // for more than 70 s).
        let clients: Vec<_> = (0..20).map(|_| tokio::spawn(slowloris(addr))).collect();
        for client in clients {
            let took = client.await.unwrap().unwrap_or_else(|| {
                panic!("{name}: a slowloris connection still open after {WIDE:?}")
            });
            assert!(
                took >= Duration::from_millis(500),
                "{name}: closed after {took:?}, before the header timeout"
            );
        }
        let (status, _) = testkit::gateway::http_get(addr, "/healthz").await;
        assert_eq!(status, 200, "{name} still answers");
    }
    sidecar.stop().await;
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed_by_every_listener() {
    let dir = tempfile::tempdir().unwrap();
    let sidecar = sidecar(dir.path(), one_second_header_timeout).await;
    let gateway = gateway(one_second_header_timeout).await;
    for (name, addr) in [
        ("sidecar gRPC", sidecar.grpc_addr()),
        ("sidecar HTTP", sidecar.http_addr()),
        ("gateway gRPC", gateway.grpc),
        ("gateway HTTP", gateway.http),
    ] {
        let silent = TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_within(silent).await.is_some(),
            "{name}: a silent connection still open after {WIDE:?}"
        );
    }
    sidecar.stop().await;
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let gateway = gateway(one_second_header_timeout).await;
    let mut stream = TcpStream::connect(gateway.http).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    assert!(
        closed_within(stream).await.is_some(),
        "an idle keep-alive connection still open after {WIDE:?}"
    );
    gateway.stop().await.unwrap();
}

/// The `SETTINGS_MAX_CONCURRENT_STREAMS` a server advertises, read with
/// h2's client.
async fn advertised_max_streams(addr: SocketAddr) -> usize {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (_send, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let started = Instant::now();
    loop {
        let _ = tokio::time::timeout(Duration::from_millis(100), &mut connection).await;
        let max = connection.max_concurrent_send_streams();
        if max != usize::MAX || started.elapsed() > WIDE {
            return max;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_advertises_its_http2_stream_limit() {
    let dir = tempfile::tempdir().unwrap();
    let sidecar = sidecar(dir.path(), |l| l.http2_max_streams = 7).await;
    let gateway = gateway(|l| l.http2_max_streams = 7).await;
    for (name, addr) in [
        ("sidecar gRPC", sidecar.grpc_addr()),
        ("sidecar HTTP (h2c)", sidecar.http_addr()),
        ("gateway gRPC", gateway.grpc),
        ("gateway HTTP (h2c)", gateway.http),
    ] {
        assert_eq!(advertised_max_streams(addr).await, 7, "{name}");
    }
    let default = testkit::gateway::start(MemorySink::new()).await;
    assert_eq!(advertised_max_streams(default.grpc).await, 100, "default");
    default.stop().await.unwrap();
    sidecar.stop().await;
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_limit_wait_for_a_free_one_on_the_same_connection() {
    let gateway = gateway(|l| l.http2_max_streams = 2).await;
    let mut client = gateway.client().await;
    let mut first = OpenStream::open(&mut client, None).await;
    first.send(metadata_request(licensed())).await;
    assert_eq!(first.payload(events(0..1)).await, ids(0..1));
    let mut second = OpenStream::open(&mut client, None).await;
    second.send(metadata_request(licensed())).await;
    assert_eq!(second.payload(events(1..2)).await, ids(1..2));
    // A third stream on the same channel waits for a free stream...
    let mut third_client = client.clone();
    let third = tokio::spawn(async move {
        let mut third = OpenStream::open(&mut third_client, None).await;
        third.send(metadata_request(licensed())).await;
        third.payload(events(2..3)).await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "a third stream is held back");
    // ...and goes ahead once one ends.
    drop(first);
    let answered = tokio::time::timeout(WIDE, third).await;
    assert_eq!(answered.expect("the third stream ran").unwrap(), ids(2..3));
    drop(second);
    gateway.stop().await.unwrap();
}

fn counter(name: &str, labels: &str) -> f64 {
    let text = telespool::app::metrics_handle()
        .map(|h| h.render())
        .unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ninth_connection_waits_until_one_of_eight_closes_and_the_server_stays_responsive() {
    let gateway = gateway(|l| {
        l.max_connections = 8;
        // Idle sockets stay open for the whole test.
        l.http_header_timeout = Duration::from_secs(120);
        l.http_idle_timeout = Duration::from_secs(120);
    })
    .await;
    let limited_before = counter(
        "telespool_listener_limit_reached_total",
        "listener=\"gateway_http\"",
    );
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(gateway.http).await.unwrap());
    }
    // The ninth connects (the kernel queues it) but is not served.
    let mut ninth = TcpStream::connect(gateway.http).await.unwrap();
    ninth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let early = tokio::time::timeout(Duration::from_secs(1), ninth.read_to_end(&mut answer)).await;
    assert!(
        early.is_err() && answer.is_empty(),
        "the ninth connection was served while eight were open: {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        counter(
            "telespool_listener_limit_reached_total",
            "listener=\"gateway_http\""
        ) > limited_before
    );
    // One closes: the ninth is served.
    drop(idle.pop());
    tokio::time::timeout(WIDE, ninth.read_to_end(&mut answer))
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // The same on the gRPC port: eight idle sockets hold every slot, a real
    // call goes through once they close.
    let mut idle_grpc = Vec::new();
    for _ in 0..8 {
        idle_grpc.push(TcpStream::connect(gateway.grpc).await.unwrap());
    }
    let grpc = gateway.grpc;
    let call = tokio::spawn(async move {
        let mut client = testkit::gateway::client(grpc).await;
        let mut stream = OpenStream::open(&mut client, None).await;
        stream.send(metadata_request(licensed())).await;
        stream.payload(events(0..3)).await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!call.is_finished(), "the call waits for a connection slot");
    drop(idle_grpc);
    let answered = tokio::time::timeout(WIDE, call)
        .await
        .expect("the call went through once the idle sockets closed");
    assert_eq!(answered.unwrap(), ids(0..3));
    drop(idle);
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unary_call_times_out_and_a_stream_outlives_the_request_timeout() {
    // Each publish takes 2 s, twice the request timeout.
    let gateway = gateway_with(MemorySink::slow(Duration::from_secs(2)), |l| {
        l.request_timeout = Duration::from_secs(1);
    })
    .await;
    let mut client = gateway.client().await;
    let mut request =
        tonic::Request::new(telespool::proto::telemetrygateway::v1::RecordEventRequest {
            metadata: Some(testkit::gateway::managed()),
            event: Some(testkit::gateway::event(0)),
        });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", testkit::gateway::SERVICE_TOKEN)
            .parse()
            .unwrap(),
    );
    let started = Instant::now();
    let status = client.record_event(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Cancelled, "{status:?}");
    assert!(started.elapsed() < WIDE);

    let mut stream = OpenStream::open(&mut client, None).await;
    stream.send(metadata_request(licensed())).await;
    assert_eq!(stream.payload(events(1..3)).await, ids(1..3));
    assert_eq!(stream.payload(events(3..5)).await, ids(3..5));
    drop(stream);
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_http_upload_is_answered_408_after_the_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let sidecar = sidecar(dir.path(), |l| l.request_timeout = Duration::from_secs(1)).await;
    let stream = TcpStream::connect(sidecar.http_addr()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(
            b"POST /v1/events HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"events\": [",
        )
        .await
        .unwrap();
    // One byte every 100 ms: never idle, never done.
    let drip = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(WIDE, reader.read(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    drip.abort();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    sidecar.stop().await;
}

/// CPU time (user + system) of a process so far, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses): utime and
    // stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second: u64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100);
    Duration::from_millis(ticks * 1000 / per_second)
}

/// A blocking HTTP/1.1 GET; the answer, or an empty string on failure.
fn blocking_get(addr: SocketAddr, path: &str) -> String {
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn out_of_file_descriptors_the_gateway_backs_off_instead_of_spinning_and_recovers() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux's prlimit is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new("prlimit")
        .args(["--nofile=64:64", "--", env!("CARGO_BIN_EXE_telespool")])
        .args([
            "gateway",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--accept-any-license",
            // Accepted idle sockets stay open for the whole test.
            "--http-header-timeout",
            "120s",
            "--sink",
        ])
        .arg(format!(
            "file:{}",
            dir.path().join("events.jsonl").display()
        ))
        .env("TELESPOOL_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stderr = child.stderr.take().unwrap();
    let child = KillOnDrop(child);
    let mut lines = BufReader::new(stderr).lines();
    let serving = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|line| line.contains("telespool gateway serving"))
        .expect("the gateway starts");
    std::thread::spawn(move || for _ in lines {});
    let http: SocketAddr = serving
        .split_whitespace()
        .find_map(|field| field.strip_prefix("http="))
        .unwrap_or_else(|| panic!("no http= in {serving}"))
        .parse()
        .unwrap();
    assert!(blocking_get(http, "/healthz").starts_with("HTTP/1.1 200"));

    // More idle sockets than the process has descriptors: accept fails
    // with EMFILE while they are open.
    let idle: Vec<_> = (0..100)
        .map(|_| std::net::TcpStream::connect(http).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let pid = child.0.id();
    let before = cpu_time(pid);
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_time(pid).checked_sub(before).unwrap();
    eprintln!("CPU used in 3 s with accept failing: {used:?}");
    assert!(
        used < Duration::from_millis(1500),
        "the gateway used {used:?} of CPU in 3 s with accept failing: it spins"
    );

    // Once the idle sockets are gone, a real call is answered.
    drop(idle);
    let started = Instant::now();
    let answer = loop {
        let answer = blocking_get(http, "/healthz");
        if answer.starts_with("HTTP/1.1 200") || started.elapsed() > Duration::from_secs(30) {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    let metrics = blocking_get(http, "/metrics");
    let emfile = metrics
        .lines()
        .find(|l| {
            l.starts_with("telespool_listener_accept_errors_total") && l.contains("kind=\"emfile\"")
        })
        .unwrap_or_else(|| panic!("no EMFILE count in\n{metrics}"));
    assert!(!emfile.ends_with(" 0"), "{emfile}");
}
