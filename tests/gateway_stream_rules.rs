//! The `RecordEvents` stream rules of Sourcegraph's gateway, over real
//! sockets: metadata first and once, events only after it, empty messages
//! ignored, one response per payload, legacy metadata merged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;
use telespool::proto::telemetrygateway::v1::EventParameters;
use testkit::gateway::*;
use testkit::sinks::MemorySink;
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

#[tokio::test]
async fn a_payload_over_max_events_is_refused_after_the_payload_before_it_is_acknowledged() {
    let sink = MemorySink::new();
    let gateway = start_with(sink.clone(), |c| c.max_events = 5).await;
    let mut client = gateway.client().await;
    let result = record(
        &mut client,
        vec![
            metadata_request(licensed()),
            events_request(events(0..5)),
            events_request(events(5..11)),
        ],
    )
    .await;
    assert_eq!(result.responses.len(), 1, "the good payload is answered");
    assert_eq!(result.succeeded(), ids(0..5));
    let (code, message) = result.error();
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(
        message,
        "payload holds 6 events, over the limit of 5 (--max-events (TELESPOOL_GATEWAY_MAX_EVENTS))"
    );
    assert_eq!(sink.ids().into_iter().collect::<Vec<_>>(), ids(0..5));
    // The gateway keeps serving new streams.
    let again = record(
        &mut client,
        vec![metadata_request(licensed()), events_request(events(20..25))],
    )
    .await;
    again.end.as_ref().unwrap();
    assert_eq!(again.succeeded(), ids(20..25));
}

/// Events of about `bytes` encoded bytes each, ids `event-{i}`.
fn heavy_events(
    range: std::ops::Range<usize>,
    bytes: usize,
) -> Vec<telespool::proto::telemetrygateway::v1::Event> {
    range
        .map(|i| {
            let mut e = event(i);
            e.parameters = Some(EventParameters {
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
            e
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_being_published_holds_its_bytes_in_the_decode_budget_until_answered() {
    // Budget 16 MiB; a 10 MiB payload held by a slow sink leaves no room
    // for another 10 MiB message, which is refused naming the budget; once
    // the first is answered, the budget is free again.
    let sink = MemorySink::slow(Duration::from_secs(3));
    let gateway = start_with(sink.clone(), |c| c.decode_budget_bytes = 16 << 20).await;
    let mut first_client = gateway.client().await;
    let mut first = OpenStream::open(&mut first_client, None).await;
    first.send(metadata_request(licensed())).await;
    let arrived = sink.batch_arrived.notified();
    first
        .send(events_request(heavy_events(0..20, 500_000)))
        .await;
    tokio::time::timeout(Duration::from_secs(30), arrived)
        .await
        .expect("the first payload reaches the sink");

    let mut client = gateway.client().await;
    let refused = record(
        &mut client,
        vec![
            metadata_request(licensed()),
            events_request(heavy_events(100..120, 500_000)),
        ],
    )
    .await;
    let (code, message) = refused.error();
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert!(
        message.contains("decode budget")
            && message.contains("16777216")
            && message.contains("--decode-budget (TELESPOOL_GATEWAY_DECODE_BUDGET)"),
        "{message}"
    );

    let mut acked = first.response().await.succeeded_events;
    acked.sort();
    assert_eq!(acked, ids(0..20));
    drop(first);
    let again = record(
        &mut client,
        vec![
            metadata_request(licensed()),
            events_request(heavy_events(200..220, 500_000)),
        ],
    )
    .await;
    again.end.as_ref().unwrap();
    assert_eq!(again.succeeded(), ids(200..220));
    let (_, metrics) = http_get(gateway.http, "/metrics").await;
    assert!(
        metrics.contains("telespool_gateway_decode_budget_refused_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn gzip_compressed_streams_are_accepted() {
    let sink = MemorySink::new();
    let gateway = start(sink.clone()).await;
    let client = gateway.client().await;
    let mut client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let result = record(
        &mut client,
        vec![metadata_request(licensed()), events_request(events(0..50))],
    )
    .await;
    result.end.as_ref().unwrap();
    assert_eq!(result.succeeded(), ids(0..50));
}
