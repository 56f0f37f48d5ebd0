//! Acknowledgement rules, with a test sink that fails chosen ids: an id is
//! in `succeeded_events` only when its publish was confirmed, except events
//! that can never be published, which Sourcegraph instances get reported
//! as succeeded (and the gateway drops) and managed services do not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::atomic::Ordering;

use telespool::proto::telemetrygateway::v1::{Event, EventParameters, RecordEventsRequestMetadata};
use testkit::gateway::*;
use testkit::sinks::{Failure, MemorySink};

async fn send(
    gateway: &TestGateway,
    metadata: RecordEventsRequestMetadata,
    events: Vec<Event>,
) -> Vec<String> {
    let token = matches!(
        metadata
            .identifier
            .as_ref()
            .and_then(|i| i.identifier.as_ref()),
        Some(telespool::proto::telemetrygateway::v1::identifier::Identifier::ManagedService(_))
    )
    .then_some(SERVICE_TOKEN);
    let mut client = gateway.client().await;
    let result = record_with_token(
        &mut client,
        vec![metadata_request(metadata), events_request(events)],
        token,
    )
    .await;
    result.end.as_ref().unwrap();
    assert_eq!(result.responses.len(), 1);
    result.succeeded()
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn failed_publishes_are_left_out_of_succeeded_events_for_every_identifier() {
    for metadata in [licensed(), unlicensed(), managed()] {
        let sink = MemorySink::failing(&[
            ("event-1", Failure::Retryable),
            ("event-3", Failure::Retryable),
        ]);
        let gateway = start(sink.clone()).await;
        let succeeded = send(&gateway, metadata, events(0..5)).await;
        assert_eq!(succeeded, sorted(&["event-0", "event-2", "event-4"]));
        assert_eq!(sink.ids().len(), 3);
    }
}

#[tokio::test]
async fn a_sink_that_fails_everything_gets_an_empty_response_not_an_error() {
    let sink = MemorySink::new();
    sink.fail_all.store(true, Ordering::SeqCst);
    let gateway = start(sink.clone()).await;
    assert!(send(&gateway, licensed(), events(0..10)).await.is_empty());
    // The next payload on a recovered sink goes through.
    sink.fail_all.store(false, Ordering::SeqCst);
    assert_eq!(send(&gateway, licensed(), events(0..10)).await, ids(0..10));
}

#[tokio::test]
async fn invalid_events_from_instances_are_acknowledged_and_dropped() {
    for metadata in [licensed(), unlicensed()] {
        let sink = MemorySink::new();
        let gateway = start(sink.clone()).await;
        let mut no_timestamp = event(3);
        no_timestamp.timestamp = None;
        let batch = vec![event(0), invalid_event(1), event(2), no_timestamp];
        assert_eq!(send(&gateway, metadata, batch).await, ids(0..4));
        assert_eq!(sink.ids(), ["event-0", "event-2"].map(String::from).into());
    }
}

#[tokio::test]
async fn invalid_events_from_a_managed_service_are_left_out() {
    let sink = MemorySink::new();
    let gateway = start(sink.clone()).await;
    let batch = vec![event(0), invalid_event(1), event(2)];
    assert_eq!(
        send(&gateway, managed(), batch).await,
        sorted(&["event-0", "event-2"])
    );
    assert_eq!(sink.ids().len(), 2);
}

#[tokio::test]
async fn permanent_sink_failures_follow_the_invalid_event_rule() {
    let failing = [("event-1", Failure::Permanent)];
    let sink = MemorySink::failing(&failing);
    let gateway = start(sink.clone()).await;
    assert_eq!(send(&gateway, licensed(), events(0..3)).await, ids(0..3));
    let sink = MemorySink::failing(&failing);
    let gateway = start(sink.clone()).await;
    assert_eq!(
        send(&gateway, managed(), events(0..3)).await,
        sorted(&["event-0", "event-2"])
    );
}

fn huge(id: &str, bytes: usize) -> Event {
    let mut event = event(0);
    event.id = id.to_owned();
    event.parameters = Some(EventParameters {
        private_metadata: Some(prost_types::Struct {
            fields: [(
                "blob".to_owned(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::StringValue("z".repeat(bytes))),
                },
            )]
            .into(),
        }),
        ..EventParameters::default()
    });
    event
}

#[tokio::test]
async fn a_body_of_ten_megabytes_is_dropped_as_succeeded_for_instances_and_left_out_for_services() {
    // 10,000,000 bytes of body or more: not published. Just under: published.
    let sink = MemorySink::new();
    let gateway = start(sink.clone()).await;
    let batch = vec![
        huge("too-big", 10_000_000),
        huge("fits", 5_000_000),
        event(0),
    ];
    assert_eq!(
        send(&gateway, licensed(), batch.clone()).await,
        sorted(&["too-big", "fits", "event-0"])
    );
    assert_eq!(sink.ids(), ["fits", "event-0"].map(String::from).into());
    assert_eq!(
        send(&gateway, managed(), batch).await,
        sorted(&["fits", "event-0"])
    );
}

#[tokio::test]
async fn a_payload_is_published_in_windows_of_at_most_the_publish_concurrency() {
    let sink = MemorySink::new();
    let gateway = start_with(sink.clone(), |config| config.publish_concurrency = 7).await;
    assert_eq!(send(&gateway, licensed(), events(0..50)).await, ids(0..50));
    assert_eq!(sink.max_batch.load(Ordering::SeqCst), 7);
    assert_eq!(
        sink.batches.load(Ordering::SeqCst),
        8,
        "ceil(50 / 7) windows"
    );
}

#[tokio::test]
async fn the_default_concurrency_publishes_250_events_at_a_time() {
    let sink = MemorySink::new();
    let gateway = start(sink.clone()).await;
    assert_eq!(
        send(&gateway, licensed(), events(0..1000)).await,
        ids(0..1000)
    );
    assert_eq!(sink.max_batch.load(Ordering::SeqCst), 250);
}

#[tokio::test]
async fn events_without_an_id_are_never_in_succeeded_events() {
    let sink = MemorySink::new();
    let gateway = start(sink.clone()).await;
    let mut no_id = event(1);
    no_id.id = String::new();
    assert_eq!(
        send(&gateway, licensed(), vec![event(0), no_id]).await,
        ids(0..1)
    );
}
