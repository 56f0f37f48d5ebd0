//! The `RecordEvents` stream rules of Sourcegraph's gateway, over real
//! sockets: metadata first and once, events only after it, empty messages
//! ignored, one response per payload, legacy metadata merged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod gateway_support;

use gateway_support::sinks::MemorySink;
use gateway_support::*;
use telespool::proto::telemetrygateway::v1::EventParameters;
use tonic::Code;

#[tokio::test]
async fn metadata_sent_twice_ends_the_stream_with_invalid_argument() {
    let gateway = start(MemorySink::new()).await;
    let mut client = gateway.client().await;
    let result = record(
        &mut client,
        vec![metadata_request(licensed()), metadata_request(licensed())],
    )
    .await;
    assert_eq!(
        result.error(),
        (
            Code::InvalidArgument,
            "received metadata more than once".to_owned()
        )
    );
}

#[tokio::test]
async fn events_before_metadata_end_the_stream_with_invalid_argument() {
    let sink = MemorySink::new();
    let gateway = start(sink.clone()).await;
    let mut client = gateway.client().await;
    let result = record(&mut client, vec![events_request(events(0..3))]).await;
    assert_eq!(
        result.error(),
        (
            Code::InvalidArgument,
            "got events when metadata not yet received".to_owned()
        )
    );
    assert!(result.responses.is_empty());
    assert!(sink.ids().is_empty(), "nothing is published");
}

#[tokio::test]
async fn messages_without_a_payload_are_ignored_before_and_after_metadata() {
    let sink = MemorySink::new();
    let gateway = start(sink.clone()).await;
    let mut client = gateway.client().await;
    let result = record(
        &mut client,
        vec![
            empty_request(),
            metadata_request(licensed()),
            empty_request(),
            events_request(events(0..2)),
            empty_request(),
        ],
    )
    .await;
    result.end.as_ref().unwrap();
    assert_eq!(result.responses.len(), 1);
    assert_eq!(result.succeeded(), ids(0..2));
}

#[tokio::test]
async fn every_events_payload_gets_exactly_one_response_even_an_empty_one() {
    let gateway = start(MemorySink::new()).await;
    let mut client = gateway.client().await;
    let result = record(
        &mut client,
        vec![
            metadata_request(unlicensed()),
            events_request(events(0..5)),
            events_request(vec![]),
            events_request(events(5..6)),
        ],
    )
    .await;
    result.end.as_ref().unwrap();
    let per_payload: Vec<usize> = result
        .responses
        .iter()
        .map(|r| r.succeeded_events.len())
        .collect();
    assert_eq!(per_payload, vec![5, 0, 1], "in the order sent");
    assert_eq!(result.succeeded(), ids(0..6));
}

#[tokio::test]
async fn metadata_alone_then_eof_ends_the_stream_ok_without_responses() {
    let gateway = start(MemorySink::new()).await;
    let mut client = gateway.client().await;
    let result = record(&mut client, vec![metadata_request(licensed())]).await;
    result.end.as_ref().unwrap();
    assert!(result.responses.is_empty());
}

#[tokio::test]
async fn many_payloads_on_one_stream_are_answered_in_the_order_they_were_sent() {
    let gateway = start(MemorySink::new()).await;
    let mut client = gateway.client().await;
    let mut requests = vec![metadata_request(licensed())];
    for p in 0..20 {
        requests.push(events_request(events(p * 10..p * 10 + 10)));
    }
    let result = record(&mut client, requests).await;
    result.end.as_ref().unwrap();
    assert_eq!(result.responses.len(), 20);
    for (p, response) in result.responses.iter().enumerate() {
        let mut got = response.succeeded_events.clone();
        got.sort();
        assert_eq!(got, ids(p * 10..p * 10 + 10), "payload {p}");
    }
}

#[tokio::test]
async fn payloads_received_before_a_rule_violation_are_answered_before_the_error() {
    let gateway = start(MemorySink::new()).await;
    let mut client = gateway.client().await;
    let result = record(
        &mut client,
        vec![
            metadata_request(licensed()),
            events_request(events(0..3)),
            metadata_request(licensed()),
            events_request(events(3..6)),
        ],
    )
    .await;
    assert_eq!(result.error().0, Code::InvalidArgument);
    assert_eq!(result.responses.len(), 1);
    assert_eq!(result.succeeded(), ids(0..3));
}

#[tokio::test]
async fn legacy_int64_metadata_is_published_merged_into_the_double_metadata() {
    let sink = MemorySink::new();
    let gateway = start(sink.clone()).await;
    let mut client = gateway.client().await;
    let mut legacy = event(0);
    legacy.parameters = Some(EventParameters {
        legacy_metadata: [("foo".to_owned(), 123)].into(),
        metadata: [("bar".to_owned(), 456.5)].into(),
        ..EventParameters::default()
    });
    let result = record(
        &mut client,
        vec![metadata_request(licensed()), events_request(vec![legacy])],
    )
    .await;
    assert_eq!(result.succeeded(), ids(0..1));
    let body: serde_json::Value =
        serde_json::from_slice(&sink.message("event-0").unwrap().body).unwrap();
    assert_eq!(
        body["event"]["parameters"],
        serde_json::json!({"metadata": {"foo": 123, "bar": 456.5}})
    );
}

#[tokio::test]
async fn an_event_of_twelve_megabytes_fits_in_one_grpc_message() {
    // 16 MiB messages are accepted; the 10 MB body limit then answers
    // (acknowledged and dropped for an instance).
    let sink = MemorySink::new();
    let gateway = start(sink.clone()).await;
    let mut client = gateway.client().await;
    let mut big = event(0);
    big.id = "big".to_owned();
    big.parameters = Some(EventParameters {
        private_metadata: Some(prost_types::Struct {
            fields: [(
                "blob".to_owned(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::StringValue(
                        "y".repeat(12_000_000),
                    )),
                },
            )]
            .into(),
        }),
        ..EventParameters::default()
    });
    let result = record(
        &mut client,
        vec![metadata_request(licensed()), events_request(vec![big])],
    )
    .await;
    result.end.as_ref().unwrap();
    assert_eq!(result.succeeded(), vec!["big".to_owned()]);
    assert!(sink.ids().is_empty(), "dropped, not published");
}
