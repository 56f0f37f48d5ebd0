//! The gateway's HTTP port: `/healthz`, `/readyz` (the sink's health) and
//! `/metrics` (Prometheus text with the gateway's counters).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::atomic::Ordering;

use testkit::gateway::*;
use testkit::sinks::MemorySink;

#[tokio::test]
async fn healthz_answers_while_the_process_runs_even_if_the_sink_is_down() {
    let sink = MemorySink::new();
    sink.unhealthy.store(true, Ordering::SeqCst);
    let gateway = start(sink).await;
    assert_eq!(
        http_get(gateway.http, "/healthz").await,
        (200, "ok\n".to_owned())
    );
}

#[tokio::test]
async fn readyz_follows_the_sink_health() {
    let sink = MemorySink::new();
    let gateway = start(sink.clone()).await;
    assert_eq!(
        http_get(gateway.http, "/readyz").await,
        (200, "ok\n".to_owned())
    );
    sink.unhealthy.store(true, Ordering::SeqCst);
    let (code, body) = http_get(gateway.http, "/readyz").await;
    assert_eq!(code, 503);
    assert_eq!(
        body,
        "memory sink not ready: not connected to the NATS server at memory://test\n"
    );
}

#[tokio::test]
async fn metrics_count_events_by_result_and_payloads_by_size() {
    let gateway = start(MemorySink::new()).await;
    let mut client = gateway.client().await;
    let result = record(
        &mut client,
        vec![
            metadata_request(licensed()),
            events_request(vec![event(0), invalid_event(1), event(2)]),
        ],
    )
    .await;
    assert_eq!(result.succeeded().len(), 3);
    let (code, text) = http_get(gateway.http, "/metrics").await;
    assert_eq!(code, 200);
    for expected in [
        r#"telespool_gateway_events_total{result="published",acknowledged="true",source="licensed_instance"}"#,
        r#"telespool_gateway_events_total{result="invalid",acknowledged="true",source="licensed_instance"}"#,
        r#"telespool_gateway_events_dropped_total{reason="invalid",source="licensed_instance"}"#,
        r#"telespool_gateway_payload_events_bucket{result="success",source="licensed_instance",le="10"}"#,
        r#"telespool_gateway_publish_seconds_bucket{sink="memory",le="#,
        r#"telespool_gateway_streams_total{result="ok"}"#,
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
}
