//! Graceful shutdown: stop accepting, answer the payloads in flight, end
//! open streams with `Unavailable`, close the sink, return; and the real
//! process exits 0 on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use testkit::gateway::*;
use testkit::process::{self, Proc};
use testkit::sinks::MemorySink;
use tonic::Code;

#[tokio::test]
async fn an_in_flight_payload_is_answered_and_then_the_server_exits() {
    let sink = MemorySink::slow(Duration::from_millis(500));
    let mut gateway = start(sink.clone()).await;
    let mut client = gateway.client().await;
    let mut stream = OpenStream::open(&mut client, None).await;
    stream.send(metadata_request(licensed())).await;
    let arrived = sink.batch_arrived.notified();
    stream.send(events_request(events(0..20))).await;
    arrived.await;

    // The payload is in the sink (for 500 ms) when the signal comes.
    gateway.signal_stop();
    let mut answered = stream.response().await.succeeded_events;
    answered.sort();
    assert_eq!(answered, ids(0..20), "the in-flight payload is answered");
    let end = stream.inbound.message().await.unwrap_err();
    assert_eq!(end.code(), Code::Unavailable);
    assert_eq!(end.message(), "the gateway is shutting down");

    gateway.stop().await.unwrap();
    assert!(
        sink.closed.load(Ordering::SeqCst),
        "the sink was flushed and closed"
    );
    assert_eq!(sink.ids().len(), 20);
}

#[tokio::test]
async fn an_idle_open_stream_ends_with_unavailable_on_shutdown() {
    let mut gateway = start(MemorySink::new()).await;
    let grpc = gateway.grpc;
    let mut client = gateway.client().await;
    let mut stream = OpenStream::open(&mut client, None).await;
    stream.send(metadata_request(licensed())).await;
    assert_eq!(stream.payload(events(0..3)).await, ids(0..3));
    gateway.signal_stop();
    let end = stream.inbound.message().await.unwrap_err();
    assert_eq!(end.code(), Code::Unavailable);
    drop(stream);
    gateway.stop().await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(grpc).await.is_err(),
        "the listener is closed"
    );
}

#[test]
fn sigterm_makes_the_process_exit_zero_after_flushing_the_file_sink() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let mut command = Command::new(process::bin());
    command
        .args([
            "gateway",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--accept-any-license",
            "--sink",
        ])
        .arg(format!("file:{}", events.display()))
        .env("TELESPOOL_LOG", "info");
    let mut child = Proc::spawn(command);
    let serving = child.wait_for_line("telespool gateway serving", process::START_TIMEOUT);
    assert!(serving.contains("grpc=127.0.0.1:"), "{serving}");
    assert!(events.exists(), "the sink file is opened at start");
    let exit = child.terminate(Duration::from_secs(60));
    let log = child.stderr();
    assert_eq!(exit.code(), Some(0), "{log}");
    let after_term = log
        .split_once(&serving)
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    assert!(after_term.contains("gateway stopped"), "{log}");
}
