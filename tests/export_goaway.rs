//! The exporter against a gateway that ages its connections out: a
//! `GOAWAY` (`NO_ERROR`) from connection age is a reconnect, not a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use testkit::sidecar::{self, Sidecar, counter};
use testkit::sinks::MemorySink;

/// The process-wide metrics are shared by the tests of this file: each
/// holds this lock for its whole run, so one test's export errors are not
/// counted in the other's difference.
static METRICS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn labeled(name: &str, label: &str) -> f64 {
    let text = telespool::app::metrics_handle()
        .map(|h| h.render())
        .unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goaway_from_connection_age_is_a_reconnect_and_every_event_is_acknowledged_once() {
    let _metrics = METRICS.lock().await;
    // A backlog, recorded with export off.
    let dir = tempfile::tempdir().unwrap();
    let mut config = sidecar::config(dir.path());
    let s = Sidecar::start(config.clone()).await;
    let mut client = s.grpc().await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let events: Vec<_> = (0..500)
            .map(|_| sidecar::valid("search", "submitted"))
            .collect();
        ids.extend(events.iter().map(|e| e.id.clone()));
        let ok = sidecar::record_payload(&mut client, events).await.unwrap();
        assert_eq!(ok.len(), 500);
    }
    drop(client);
    s.stop().await;

    // A gateway that asks each connection to go away after 1 s, with a
    // sink slow enough that the drain takes several connection ages.
    let sink = MemorySink::slow(Duration::from_millis(100));
    let gateway = testkit::gateway::start_with(sink.clone(), |c| {
        c.limits.max_connection_age = Duration::from_secs(1);
        c.limits.max_connection_age_grace = Duration::from_secs(30);
    })
    .await;
    config.export.addr = Some(format!("http://{}", gateway.grpc));
    config.export.batch_size = 500;
    config.export.interval = Duration::from_secs(1);
    let errors_before = counter("telespool_export_errors_total");
    let connections_before = labeled(
        "telespool_listener_accepted_connections_total",
        "listener=\"gateway_grpc\"",
    );
    let started = Instant::now();
    let s = Sidecar::start(config).await;
    while s.running.queue().backlog().records != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the backlog drains: {} left, {} published",
            s.running.queue().backlog().records,
            sink.ids().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();

    // Every event published exactly once, none dead-lettered.
    let mut published: BTreeMap<String, usize> = BTreeMap::new();
    for m in sink.messages.lock().unwrap().iter() {
        *published.entry(m.id.clone()).or_default() += 1;
    }
    ids.sort();
    assert_eq!(published.keys().cloned().collect::<Vec<_>>(), ids);
    assert!(
        published.values().all(|n| *n == 1),
        "each event published once"
    );
    assert!(s.dead_letters().is_empty(), "{:?}", s.dead_letters());

    // The gateway did age connections out, and the exporter did not count
    // that as a failure.
    let connections = labeled(
        "telespool_listener_accepted_connections_total",
        "listener=\"gateway_grpc\"",
    ) - connections_before;
    assert!(
        connections >= 2.0,
        "the exporter reconnected after GOAWAYs ({connections} connections in {took:?})"
    );
    assert_eq!(
        counter("telespool_export_errors_total") - errors_before,
        0.0,
        "GOAWAY counted as an export error: {}",
        telespool::app::metrics_handle().unwrap().render()
    );
    s.stop().await;
    gateway.stop().await.unwrap();
}

/// A front for the gateway whose first connection speaks just enough
/// HTTP/2 to meet the exporter's first stream with a graceful `GOAWAY`
/// (`NO_ERROR`, last stream 0: the stream crossed it and was not
/// processed), then keeps the connection open as a draining server would;
/// later connections are relayed to the gateway.
async fn going_away_front(gateway: std::net::SocketAddr) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut first, _) = listener.accept().await.unwrap();
        tokio::spawn(async move {
            let mut preface = [0u8; 24];
            first.read_exact(&mut preface).await.unwrap();
            // Our SETTINGS (empty).
            first.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
            let _ = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    let mut header = [0u8; 9];
                    if first.read_exact(&mut header).await.is_err() {
                        return;
                    }
                    let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
                    let mut payload = vec![0u8; len];
                    if first.read_exact(&mut payload).await.is_err() {
                        return;
                    }
                    match (header[3], header[4]) {
                        // The client's SETTINGS: acknowledge.
                        (4, flags) if flags & 1 == 0 => {
                            first.write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0]).await.unwrap();
                        }
                        // A stream opens: go away before processing any.
                        (1, _) => {
                            let goaway = [0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                            first.write_all(&goaway).await.unwrap();
                        }
                        _ => {}
                    }
                }
            })
            .await;
        });
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut upstream = tokio::net::TcpStream::connect(gateway).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_refused_by_a_goaway_is_retried_at_once_and_not_counted_as_an_error() {
    let _metrics = METRICS.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = sidecar::config(dir.path());
    let s = Sidecar::start(config.clone()).await;
    let mut client = s.grpc().await;
    let events: Vec<_> = (0..100)
        .map(|_| sidecar::valid("search", "submitted"))
        .collect();
    let mut ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(
        sidecar::record_payload(&mut client, events)
            .await
            .unwrap()
            .len(),
        100
    );
    drop(client);
    s.stop().await;

    let sink = MemorySink::new();
    let gateway = testkit::gateway::start(sink.clone()).await;
    let front = going_away_front(gateway.grpc).await;
    config.export.addr = Some(format!("http://{front}"));
    config.export.interval = Duration::from_secs(1);
    let errors_before = counter("telespool_export_errors_total");
    let retries_before = counter("telespool_export_goaway_retries_total");
    let started = Instant::now();
    let s = Sidecar::start(config).await;
    while s.running.queue().backlog().records != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the backlog drains"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut published = sink.ids().into_iter().collect::<Vec<_>>();
    published.sort();
    ids.sort();
    assert_eq!(published, ids);
    assert_eq!(sink.messages.lock().unwrap().len(), 100, "published once");
    assert!(
        counter("telespool_export_goaway_retries_total") - retries_before >= 1.0,
        "the GOAWAY was seen and retried: {}",
        telespool::app::metrics_handle().unwrap().render()
    );
    assert_eq!(
        counter("telespool_export_errors_total") - errors_before,
        0.0,
        "a GOAWAY is not an export error"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "retried without the failure backoff"
    );
    s.stop().await;
    gateway.stop().await.unwrap();
}
