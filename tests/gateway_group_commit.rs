//! The file sink syncs once per batch or group of batches, never once per
//! message: counted with the gateway's own fsync histogram.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use telespool::gateway::Gateway;
use telespool::gateway::config::SinkSpec;
use testkit::gateway::*;

fn sync_count(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("telespool_gateway_file_sync_seconds_count "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_payloads_share_fsyncs_and_no_message_gets_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let mut config = test_config(files.path());
    config.sink = SinkSpec::File(dir.path().join("events.jsonl"));
    let gateway = run(Gateway::open(config).await.unwrap(), files).await;
    let before = sync_count(&http_get(gateway.http, "/metrics").await.1);

    let streams = 8;
    let payloads = 10;
    let per_payload = 100;
    let mut tasks = Vec::new();
    for s in 0..streams {
        let addr = gateway.grpc;
        tasks.push(tokio::spawn(async move {
            let mut client = client(addr).await;
            let mut requests = vec![metadata_request(licensed())];
            for p in 0..payloads {
                let first = (s * payloads + p) * per_payload;
                requests.push(events_request(events(first..first + per_payload)));
            }
            record(&mut client, requests).await.succeeded().len()
        }));
    }
    let mut acknowledged = 0;
    for task in tasks {
        acknowledged += task.await.unwrap();
    }
    let events = streams * payloads * per_payload;
    assert_eq!(acknowledged, events);
    let syncs = sync_count(&http_get(gateway.http, "/metrics").await.1) - before;
    assert!(syncs >= 1);
    assert!(
        syncs <= (streams * payloads) as u64,
        "{syncs} syncs for {} payloads of {per_payload} events",
        streams * payloads
    );
    let lines = std::fs::read_to_string(dir.path().join("events.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines, events);
    println!(
        "{events} events, {} payloads, {syncs} fsyncs",
        streams * payloads
    );
}
