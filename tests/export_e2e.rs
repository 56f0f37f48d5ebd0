//! `telespool serve` with `--export-addr`: events recorded over HTTP reach
//! the gateway exactly as queued (redacted), and the queue drains.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::{Duration, Instant};
use telespool::cli::ServeArgs;
use telespool::config::ServeConfig;
#[allow(dead_code)]
use testkit::fake_gateway::{Fake, Mode};

async fn post(addr: std::net::SocketAddr, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_events_are_exported_redacted_and_the_queue_drains() {
    let fake = Fake::new(Mode::AckAll);
    let gw = fake.clone().serve().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::resolve(&ServeArgs {
        data_dir: Some(dir.path().to_path_buf()),
        export_addr: Some(format!("http://{gw}")),
        export_interval: Some("1s".into()),
        instance_id: Some("instance-1".into()),
        ..Default::default()
    })
    .unwrap();
    config.listen.grpc = "127.0.0.1:0".parse().unwrap();
    config.listen.http = "127.0.0.1:0".parse().unwrap();
    let (g, h) = telespool::app::bind(&config).await.unwrap();
    let running = telespool::app::start(config, g, h).await.unwrap();
    let body = r#"{"events":[
        {"id":"e1","feature":"cody.completion","action":"accepted","parameters":{"privateMetadata":{"languageId":"go","prompt":"secret"}},"marketingTracking":{"url":"https://x"}},
        {"id":"e2","feature":"search","action":"query","parameters":{"privateMetadata":{"query":"secret"}}}
    ]}"#;
    let resp = post(running.http_addr, body).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let start = Instant::now();
    loop {
        if fake.seen.lock().unwrap().acked.len() == 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "events not exported: {:?}",
            fake.seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        let seen = fake.seen.lock().unwrap();
        let e1 = seen.events.iter().find(|e| e.id == "e1").unwrap();
        assert!(
            e1.marketing_tracking.is_none(),
            "marketing tracking never leaves the machine"
        );
        let pm = e1
            .parameters
            .as_ref()
            .unwrap()
            .private_metadata
            .as_ref()
            .unwrap();
        assert!(pm.fields.contains_key("languageId") && !pm.fields.contains_key("prompt"));
        let e2 = seen.events.iter().find(|e| e.id == "e2").unwrap();
        assert!(
            e2.parameters
                .as_ref()
                .and_then(|p| p.private_metadata.as_ref())
                .is_none()
        );
    }
    // The queue drains (resolved in the index) shortly after the acks.
    let start = Instant::now();
    while running.queue().backlog().records != 0 {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.shutdown().await.unwrap();
}
