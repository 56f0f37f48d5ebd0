//! Bad input over both ingest APIs. Each case gets its documented answer
//! (gRPC: the exact code and a message naming the field or limit; HTTP: the
//! status and the JSON `error`, or the per-event `failed[i].error`), the
//! sidecar stays up (a valid request over each API still succeeds), and the
//! export queue and the `event_logs` mirror hold exactly what was
//! acknowledged as valid.
//!
//! Over gRPC an invalid *event* in a stream is answered as succeeded (the
//! gateway's rule for instance sources, so senders stop retrying) and goes
//! to the dead-letter store with its reason; an event without id cannot be
//! named, so it is dead-lettered and counted but not reported. A stream or
//! payload that is malformed as a whole gets an error status.
//!
//! The admin API's answers (`/v1/status`, `/v1/event-logs/*`,
//! `/v1/dead-letter`) are checked here too: the dead letters of the gRPC
//! cases show up there with their reasons. Its loopback guard is exercised
//! from a loopback client only (one host cannot easily be a non-loopback
//! peer of itself).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use prost_types::value::Kind;
use prost_types::{Struct, Value};
use serde_json::json;
use std::time::Duration;
use telespool::config::ServeConfig;
use telespool::proto::telemetrygateway::v1 as pb;
use testkit::sidecar::*;
use tonic::Code;

async fn start() -> (tempfile::TempDir, Sidecar) {
    start_with(|_| {}).await
}

async fn start_with(f: impl FnOnce(&mut ServeConfig)) -> (tempfile::TempDir, Sidecar) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    f(&mut c);
    (dir, Sidecar::start(c).await)
}

/// After a bad case: both APIs still record, and the stores hold exactly
/// `acked` plus those two checks. Then a clean stop.
async fn finish(s: Sidecar, mut acked: Vec<String>) {
    acked.extend(assert_still_serving(&s).await);
    s.assert_holds_exactly(&acked);
    s.stop().await;
}

fn assert_status(r: Result<impl std::fmt::Debug, tonic::Status>, code: Code, names: &[&str]) {
    let st = r.expect_err("an error status");
    assert_eq!(st.code(), code, "{st:?}");
    for n in names {
        assert!(
            st.message().contains(n),
            "{:?} does not name {n:?}",
            st.message()
        );
    }
}

fn nested_struct(depth: usize) -> Struct {
    // depth 1 is a flat object; each nested object adds one.
    let mut s = Struct {
        fields: [("leaf".to_string(), string_value("x"))].into(),
    };
    for _ in 1..depth {
        s = Struct {
            fields: [(
                "n".to_string(),
                Value {
                    kind: Some(Kind::StructValue(s)),
                },
            )]
            .into(),
        };
    }
    s
}

fn with_private(mut e: pb::Event, s: Struct) -> pb::Event {
    e.parameters.as_mut().unwrap().private_metadata = Some(s);
    e
}

fn nested_json(depth: usize) -> serde_json::Value {
    let mut v = json!({"leaf": "x"});
    for _ in 1..depth {
        v = json!({ "n": v });
    }
    v
}

// ---------------------------------------------------------------- gRPC ----

/// Sends one payload holding `bad` between two valid events. Checks the
/// answer names the valid ones (and `bad` if it has an id), and that `bad`
/// is dead-lettered with a reason containing every `reason` part. Returns
/// the valid ids.
async fn stream_dead_letters(s: &Sidecar, bad: pb::Event, reason: &[&str]) -> Vec<String> {
    let mut client = s.grpc().await;
    let (a, b) = (
        valid("search", "submitted"),
        valid("cody.completion", "accepted"),
    );
    let ok = record_payload(&mut client, vec![a.clone(), bad.clone(), b.clone()])
        .await
        .unwrap();
    let mut want = vec![a.id.clone()];
    if !bad.id.is_empty() {
        want.push(bad.id.clone());
    }
    want.push(b.id.clone());
    assert_eq!(
        ok, want,
        "invalid events are reported succeeded, valid ones too"
    );
    let dead = s.dead_letters();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let (id, why) = &dead[0];
    assert_eq!(
        id.as_deref(),
        (!bad.id.is_empty()).then_some(bad.id.as_str())
    );
    for r in reason {
        assert!(
            why.contains(r),
            "dead-letter reason {why:?} does not name {r:?}"
        );
    }
    vec![a.id, b.id]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_events_before_metadata_fail_the_stream_with_invalid_argument() {
    let (_d, s) = start().await;
    let mut client = s.grpc().await;
    let r = record_stream(
        &mut client,
        vec![events_msg(vec![valid("search", "submitted")])],
    )
    .await;
    assert_status(r, Code::InvalidArgument, &["metadata not yet received"]);
    finish(s, vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_metadata_sent_twice_fails_the_stream_with_invalid_argument() {
    let (_d, s) = start().await;
    let mut client = s.grpc().await;
    let first = valid("search", "submitted");
    let mut inbound = client
        .record_events(tokio_stream::iter(vec![
            metadata_msg(unlicensed_metadata()),
            events_msg(vec![first.clone()]),
            metadata_msg(unlicensed_metadata()),
            events_msg(vec![valid("search", "submitted")]),
        ]))
        .await
        .unwrap()
        .into_inner();
    // The payload before the second metadata was answered (and is durable);
    // the second metadata ends the stream; the payload after it is not
    // recorded.
    let answer = inbound.message().await.unwrap().unwrap();
    assert_eq!(answer.succeeded_events, vec![first.id.clone()]);
    assert_status(
        inbound.message().await,
        Code::InvalidArgument,
        &["metadata more than once"],
    );
    finish(s, vec![first.id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_metadata_without_identifier_fails_with_unimplemented() {
    let (_d, s) = start().await;
    let mut client = s.grpc().await;
    for identifier in [None, Some(pb::Identifier { identifier: None })] {
        let m = pb::RecordEventsRequestMetadata {
            request_id: new_id(),
            identifier,
        };
        let r = record_stream(
            &mut client,
            vec![
                metadata_msg(m),
                events_msg(vec![valid("search", "submitted")]),
            ],
        )
        .await;
        assert_status(r, Code::Unimplemented, &["identifier"]);
    }
    finish(s, vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_identifiers_missing_their_required_field_fail_with_invalid_argument() {
    use pb::identifier::{
        Identifier as Id, LicensedInstanceIdentifier, ManagedServiceIdentifier,
        UnlicensedInstanceIdentifier,
    };
    let (_d, s) = start().await;
    let mut client = s.grpc().await;
    let cases = [
        (
            Id::UnlicensedInstance(UnlicensedInstanceIdentifier {
                instance_id: String::new(),
                external_url: "https://x".into(),
            }),
            "instance_id",
        ),
        (
            Id::LicensedInstance(LicensedInstanceIdentifier {
                license_key: String::new(),
                instance_id: "i".into(),
                external_url: "https://x".into(),
            }),
            "license_key",
        ),
        (
            Id::ManagedService(ManagedServiceIdentifier {
                service_id: String::new(),
                service_environment: None,
            }),
            "service_id",
        ),
    ];
    for (id, field) in cases {
        let m = pb::RecordEventsRequestMetadata {
            request_id: new_id(),
            identifier: Some(pb::Identifier {
                identifier: Some(id),
            }),
        };
        let r = record_stream(
            &mut client,
            vec![
                metadata_msg(m),
                events_msg(vec![valid("search", "submitted")]),
            ],
        )
        .await;
        assert_status(r, Code::InvalidArgument, &[field]);
    }
    finish(s, vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_event_without_id_is_dead_lettered_counted_and_not_reported() {
    let (_d, s) = start().await;
    let before = counter("telespool_ingest_invalid_events_total");
    let ok = stream_dead_letters(&s, event("", "search", "submitted"), &["id is required"]).await;
    assert!(
        counter("telespool_ingest_invalid_events_total") >= before + 1.0,
        "the invalid event is counted"
    );
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_feature_starting_with_an_uppercase_letter_is_dead_lettered_with_the_reason() {
    let (_d, s) = start().await;
    let bad = valid("Search", "submitted");
    let ok = stream_dead_letters(&s, bad, &["feature", "\"Search\"", "lowercase letter"]).await;
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_feature_with_digits_is_dead_lettered_with_the_reason() {
    let (_d, s) = start().await;
    let bad = valid("search2", "submitted");
    let ok = stream_dead_letters(&s, bad, &["feature", "'2' at byte 6"]).await;
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_action_with_an_underscore_is_dead_lettered_with_the_reason() {
    let (_d, s) = start().await;
    let bad = valid("search", "submit_query");
    let ok = stream_dead_letters(&s, bad, &["action", "'_' at byte 6"]).await;
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_feature_of_65_bytes_is_dead_lettered_naming_the_64_byte_limit() {
    let (_d, s) = start().await;
    let bad = valid(&"a".repeat(65), "submitted");
    let ok = stream_dead_letters(&s, bad, &["feature is 65 bytes", "limit of 64 bytes"]).await;
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_empty_action_is_dead_lettered_with_the_reason() {
    let (_d, s) = start().await;
    let bad = valid("search", "");
    let ok = stream_dead_letters(&s, bad, &["action is required"]).await;
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_timestamp_out_of_range_is_dead_lettered_with_the_reason() {
    let (_d, s) = start().await;
    let mut bad = valid("search", "submitted");
    bad.timestamp = Some(prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 1_000_000_000,
    });
    let ok = stream_dead_letters(&s, bad, &["timestamp", "nanos"]).await;
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_event_over_max_event_bytes_is_dead_lettered_naming_the_limit() {
    let (_d, s) = start_with(|c| c.tee.limits.max_event_bytes = 2048).await;
    let big = with_private(
        valid("search", "submitted"),
        private(&[("blob", string_value(&"x".repeat(4096)))]),
    );
    let ok = stream_dead_letters(
        &s,
        big,
        &["over the limit of 2048 bytes", "max_event_bytes"],
    )
    .await;
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_private_metadata_deeper_than_max_depth_is_dead_lettered_naming_the_limit() {
    let (_d, s) = start_with(|c| c.tee.limits.max_depth = 4).await;
    let deep = with_private(valid("search", "submitted"), nested_struct(6));
    let ok = stream_dead_letters(
        &s,
        deep,
        &["nested 6 levels deep", "limit of 4", "max_depth"],
    )
    .await;
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_payload_over_max_events_fails_the_stream_with_invalid_argument_and_records_nothing() {
    let (_d, s) = start_with(|c| c.tee.limits.max_events = 10).await;
    let mut client = s.grpc().await;
    let ten: Vec<pb::Event> = (0..10).map(|_| valid("search", "submitted")).collect();
    let ok = record_payload(&mut client, ten.clone()).await.unwrap();
    assert_eq!(ok.len(), 10, "the limit itself is allowed");
    let eleven: Vec<pb::Event> = (0..11).map(|_| valid("search", "submitted")).collect();
    let r = record_payload(&mut client, eleven).await;
    assert_status(
        r,
        Code::InvalidArgument,
        &["11 events", "limit of 10", "max_events"],
    );
    assert!(
        s.dead_letters().is_empty(),
        "a refused payload is not dead-lettered"
    );
    finish(s, ten.into_iter().map(|e| e.id).collect()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_payload_nested_past_the_protobuf_recursion_limit_fails_the_stream_with_internal() {
    // prost refuses to decode more than 100 nested messages (each Struct
    // level is two: Struct and Value), so this payload cannot be read at
    // all: the stream must end with an error status (gRPC maps protobuf
    // parse errors to INTERNAL), not silently.
    let (_d, s) = start().await;
    let mut client = s.grpc().await;
    let deep = with_private(valid("search", "submitted"), nested_struct(60));
    let r = record_payload(&mut client, vec![deep]).await;
    assert_status(r, Code::Internal, &["decode"]);
    finish(s, vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_message_over_16_mib_is_refused_with_out_of_range_naming_the_limit() {
    let (_d, s) = start().await;
    let mut client = s.grpc().await;
    let huge = with_private(
        valid("search", "submitted"),
        private(&[("blob", string_value(&"x".repeat(17 << 20)))]),
    );
    let r = record_payload(&mut client, vec![huge]).await;
    assert_status(r, Code::OutOfRange, &["16777216"]);
    finish(s, vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_record_event_without_an_event_is_invalid_argument() {
    let (_d, s) = start().await;
    let mut client = s.grpc().await;
    assert_status(
        record_one(&mut client, None).await,
        Code::InvalidArgument,
        &["event is required"],
    );
    finish(s, vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_record_event_with_an_invalid_event_is_invalid_argument_with_the_reason() {
    let (_d, s) = start_with(|c| c.tee.limits.max_event_bytes = 2048).await;
    let mut client = s.grpc().await;
    let cases = [
        (
            valid("Search", "submitted"),
            vec!["invalid event", "feature", "lowercase"],
        ),
        (
            event("", "search", "submitted"),
            vec!["invalid event", "id is required"],
        ),
        (
            valid("search", "a"),
            vec!["invalid event", "action", "at least 2 characters"],
        ),
        (
            with_private(
                valid("search", "submitted"),
                private(&[("blob", string_value(&"x".repeat(4096)))]),
            ),
            vec!["invalid event", "limit of 2048 bytes", "max_event_bytes"],
        ),
    ];
    for (e, names) in cases {
        assert_status(
            record_one(&mut client, Some(e)).await,
            Code::InvalidArgument,
            &names,
        );
    }
    assert!(
        s.dead_letters().is_empty(),
        "a unary refusal is reported, not dead-lettered"
    );
    finish(s, vec![]).await;
}

/// A queue that fits a few small events: 4 KiB segments, 8 KiB quota.
fn tiny_queue(c: &mut ServeConfig) {
    c.queue.segment_bytes = 4096;
    c.queue.quota_bytes = 8192;
}

/// Records events one by one over gRPC until the queue refuses; returns
/// the acknowledged ids and the refusal.
async fn fill_over_grpc(s: &Sidecar) -> (Vec<String>, tonic::Status) {
    let mut client = s.grpc().await;
    let mut acked = Vec::new();
    for _ in 0..1000 {
        let e = valid("search", "submitted");
        match record_payload(&mut client, vec![e.clone()]).await {
            Ok(ok) => {
                assert_eq!(ok, vec![e.id.clone()]);
                acked.push(e.id);
            }
            Err(st) => return (acked, st),
        }
    }
    panic!("the queue never filled up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_full_queue_answers_resource_exhausted_and_keeps_what_it_acknowledged() {
    let (_d, s) = start_with(tiny_queue).await;
    let (acked, st) = fill_over_grpc(&s).await;
    assert!(!acked.is_empty());
    assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
    assert!(st.message().contains("queue is full"), "{st:?}");
    // Still up: it answers, and keeps refusing the same way (unary too).
    let mut client = s.grpc().await;
    let r = record_one(&mut client, Some(valid("search", "submitted"))).await;
    assert_status(r, Code::ResourceExhausted, &["queue is full"]);
    assert_eq!(get(s.http_addr(), "/healthz").await.status, 200);
    s.assert_holds_exactly(&acked);
    s.stop().await;
}

// ---------------------------------------------------------------- HTTP ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_malformed_json_is_400_with_the_line_and_column() {
    let (_d, s) = start().await;
    let a = post_events(
        s.http_addr(),
        "{\"events\": [\n  {\"feature\": \"search\",,}\n]}",
    )
    .await;
    assert_eq!(a.status, 400);
    let e = a.error();
    assert!(e.contains("malformed JSON at line 2 column"), "{e}");
    finish(s, vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_empty_body_is_400_malformed_json() {
    let (_d, s) = start().await;
    let a = post_events(s.http_addr(), "").await;
    assert_eq!(a.status, 400);
    assert!(
        a.error().contains("malformed JSON at line 1 column 0"),
        "{}",
        a.error()
    );
    finish(s, vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_body_that_is_not_an_object_is_400() {
    let (_d, s) = start().await;
    for body in [
        "[{\"feature\": \"search\", \"action\": \"submitted\"}]",
        "\"events\"",
        "42",
        "{}",
    ] {
        let a = post_events(s.http_addr(), body).await;
        assert_eq!(a.status, 400, "{body}");
        assert!(
            a.error().contains("JSON object with an \"events\" array"),
            "{body}: {}",
            a.error()
        );
    }
    finish(s, vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_events_that_is_not_an_array_is_400() {
    let (_d, s) = start().await;
    for body in [
        r#"{"events": {"feature": "search"}}"#,
        r#"{"events": null}"#,
        r#"{"events": "x"}"#,
    ] {
        let a = post_events(s.http_addr(), body).await;
        assert_eq!(a.status, 400, "{body}");
        assert!(
            a.error().contains("\"events\" must be an array"),
            "{body}: {}",
            a.error()
        );
    }
    finish(s, vec![]).await;
}

/// Posts `[good, bad, good]`; checks 200, that only `bad` failed with an
/// error naming each of `names`, and that the good ones were recorded.
/// Returns the good ids.
async fn http_one_bad_event(s: &Sidecar, bad: serde_json::Value, names: &[&str]) -> Vec<String> {
    let (a, b) = (
        valid("search", "submitted"),
        valid("cody.completion", "accepted"),
    );
    let bad_id = bad.get("id").and_then(|v| v.as_str()).map(str::to_string);
    let r = post_json_events(s.http_addr(), &[event_json(&a), bad, event_json(&b)]).await;
    assert_eq!(
        r.status, 200,
        "a well-formed request is answered 200: {:?}",
        r.body
    );
    let v = r.json();
    assert_eq!(v["succeeded"], json!([a.id, b.id]));
    let failed = v["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{v}");
    assert_eq!(failed[0]["index"], json!(1));
    assert_eq!(failed[0]["id"], json!(bad_id));
    let err = failed[0]["error"].as_str().unwrap();
    for n in names {
        assert!(
            err.contains(n),
            "failed[1].error {err:?} does not name {n:?}"
        );
    }
    assert_eq!(v["ids"][0], json!(a.id));
    assert_eq!(v["ids"][2], json!(b.id));
    assert!(
        s.dead_letters().is_empty(),
        "HTTP reports invalid events, it does not dead-letter them"
    );
    vec![a.id, b.id]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_wrong_json_types_in_an_event_fail_that_event_only() {
    let (_d, s) = start().await;
    let mut ok = Vec::new();
    let cases = [
        (
            json!({"id": new_id(), "feature": 5, "action": "submitted"}),
            "feature",
        ),
        (
            json!({"id": new_id(), "feature": "search", "action": "submitted", "user": {"userId": "not a number"}}),
            "userId",
        ),
        (
            json!({"id": new_id(), "feature": "search", "action": "submitted", "parameters": {"metadata": {"n": "three"}}}),
            "metadata",
        ),
        (
            json!({"id": new_id(), "feature": "search", "action": "submitted", "parameters": {"privateMetadata": [1, 2]}}),
            "privateMetadata",
        ),
    ];
    for (bad, name) in cases {
        ok.extend(http_one_bad_event(&s, bad, &["event 1", name]).await);
    }
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_event_that_is_not_an_object_fails_that_event_only() {
    let (_d, s) = start().await;
    let mut ok = Vec::new();
    for bad in [json!(5), json!("search.submitted"), json!(null), json!([])] {
        ok.extend(http_one_bad_event(&s, bad, &["event 1"]).await);
    }
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_unknown_field_in_an_event_fails_that_event_naming_the_field() {
    let (_d, s) = start().await;
    let bad =
        json!({"id": new_id(), "feature": "search", "action": "submitted", "featureFlag": {}});
    let ok = http_one_bad_event(&s, bad, &["featureFlag"]).await;
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_invalid_timestamp_string_fails_that_event() {
    let (_d, s) = start().await;
    let mut ok = Vec::new();
    for ts in ["yesterday", "2024-13-01T00:00:00Z", "2024-01-01 00:00:00"] {
        let bad =
            json!({"id": new_id(), "feature": "search", "action": "submitted", "timestamp": ts});
        ok.extend(http_one_bad_event(&s, bad, &["timestamp"]).await);
    }
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_bad_feature_and_action_names_fail_that_event_with_the_reason() {
    let (_d, s) = start().await;
    let mut ok = Vec::new();
    let cases: [(&str, &str, &[&str]); 5] = [
        ("Search", "submitted", &["feature", "lowercase letter"]),
        ("search2", "submitted", &["feature", "'2'"]),
        ("search", "sub_mitted", &["action", "'_'"]),
        (
            &"a".repeat(65),
            "submitted",
            &["feature is 65 bytes", "limit of 64"],
        ),
        ("search", "", &["action is required"]),
    ];
    for (feature, action, names) in cases {
        let bad = event_json(&valid(feature, action));
        ok.extend(http_one_bad_event(&s, bad, names).await);
    }
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_event_over_max_event_bytes_fails_that_event_naming_the_limit() {
    let (_d, s) = start_with(|c| c.tee.limits.max_event_bytes = 2048).await;
    let big = with_private(
        valid("search", "submitted"),
        private(&[("blob", string_value(&"x".repeat(4096)))]),
    );
    let ok = http_one_bad_event(
        &s,
        event_json(&big),
        &["limit of 2048 bytes", "max_event_bytes"],
    )
    .await;
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_private_metadata_deeper_than_max_depth_fails_that_event_naming_the_limit() {
    let (_d, s) = start_with(|c| c.tee.limits.max_depth = 4).await;
    let bad = json!({"id": new_id(), "feature": "search", "action": "submitted",
        "parameters": {"privateMetadata": nested_json(6)}});
    let ok = http_one_bad_event(
        &s,
        bad,
        &["nested 6 levels deep", "limit of 4", "max_depth"],
    )
    .await;
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_private_metadata_nested_past_what_protobuf_can_hold_fails_that_event() {
    // Valid JSON, under serde_json's 128 levels, but deeper than a protobuf
    // Struct can be decoded (about 33 objects): refused per event.
    let (_d, s) = start().await;
    let bad = json!({"id": new_id(), "feature": "search", "action": "submitted",
        "parameters": {"privateMetadata": nested_json(50)}});
    let ok = http_one_bad_event(
        &s,
        bad,
        &["event 1", "private_metadata", "recursion limit reached"],
    )
    .await;
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_nested_500_deep_fails_that_event_naming_the_nesting_limit() {
    // Deeper than serde_json's own 128 levels: the walk over the body keeps
    // the event as raw text, and the event parser refuses it at protobuf's
    // nesting limit, before serde_json's, so only that event fails (until
    // 2026-12 the whole request was a 400, as it still is for the walk's
    // own syntax errors).
    let (_d, s) = start().await;
    let mut deep = json!([]);
    for _ in 1..500 {
        deep = json!([deep]);
    }
    let bad = json!({"id": new_id(), "feature": "search", "action": "submitted",
        "parameters": {"privateMetadata": {"a": deep}}});
    let ok = http_one_bad_event(
        &s,
        bad,
        &["event 1", "private_metadata", "recursion limit reached"],
    )
    .await;
    finish(s, ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_invalid_utf8_is_400_with_the_byte_offset() {
    let (_d, s) = start().await;
    let mut body = br#"{"events": [{"feature": "search", "action": "submitted", "parameters": {"privateMetadata": {"q": ""#.to_vec();
    let at = body.len();
    body.extend_from_slice(b"\xff\xfe\"}}}]}");
    let a = post_events(s.http_addr(), body).await;
    assert_eq!(a.status, 400);
    assert!(
        a.error()
            .contains(&format!("not valid UTF-8 (at byte {at})")),
        "{}",
        a.error()
    );
    finish(s, vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_body_cut_short_is_answered_400_and_records_nothing() {
    // Content-Length promises more than is sent, then the client closes its
    // write side. hyper reports the body as incomplete; the handler answers
    // 400 on the still-open read side, then the connection is closed.
    let (_d, s) = start().await;
    let e = event_json(&valid("search", "submitted"));
    let full = json!({"events": [e]}).to_string();
    let sent = &full[..full.len() / 2];
    let raw = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{sent}",
        full.len()
    );
    let answer = raw_http(s.http_addr(), raw.as_bytes(), true, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(
        answer.contains("could not be read (cut short?)"),
        "{answer:?}"
    );
    finish(s, vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_body_over_max_body_bytes_is_413_naming_the_limit() {
    let (_d, s) = start_with(|c| c.listen.max_body_bytes = 4096).await;
    let big = with_private(
        valid("search", "submitted"),
        private(&[("blob", string_value(&"x".repeat(5000)))]),
    );
    let a = post_json_events(s.http_addr(), &[event_json(&big)]).await;
    assert_eq!(a.status, 413);
    assert!(
        a.error().contains("limit of 4096 bytes (--max-body-size)"),
        "{}",
        a.error()
    );
    // Chunked, without a Content-Length, is cut off at the limit too.
    let body = json!({"events": [event_json(&big)]}).to_string();
    let raw = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let answer = raw_http(
        s.http_addr(),
        raw.as_bytes(),
        false,
        Duration::from_secs(10),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    finish(s, vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_too_many_events_is_413_naming_the_limit_and_records_nothing() {
    let (_d, s) = start_with(|c| c.tee.limits.max_events = 10).await;
    let eleven: Vec<serde_json::Value> = (0..11)
        .map(|_| event_json(&valid("search", "submitted")))
        .collect();
    let a = post_json_events(s.http_addr(), &eleven).await;
    assert_eq!(a.status, 413);
    assert!(
        a.error().contains("11 events exceed the limit of 10"),
        "{}",
        a.error()
    );
    assert!(a.error().contains("--max-events"), "{}", a.error());
    let ten: Vec<pb::Event> = (0..10).map(|_| valid("search", "submitted")).collect();
    let a = post_json_events(
        s.http_addr(),
        &ten.iter().map(event_json).collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(a.status, 200, "the limit itself is allowed");
    finish(s, ten.into_iter().map(|e| e.id).collect()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_full_queue_is_507_with_retry_after_and_keeps_what_it_acknowledged() {
    let (_d, s) = start_with(tiny_queue).await;
    let mut acked = Vec::new();
    let refused = loop {
        assert!(acked.len() < 1000, "the queue never filled up");
        let e = valid("search", "submitted");
        let a = post_json_events(s.http_addr(), &[event_json(&e)]).await;
        if a.status != 200 {
            break a;
        }
        assert_eq!(a.json()["succeeded"], json!([e.id]));
        acked.push(e.id);
    };
    assert!(!acked.is_empty());
    assert_eq!(refused.status, 507);
    assert_eq!(refused.headers.get("retry-after").unwrap(), "30");
    assert!(
        refused.error().contains("queue is full"),
        "{}",
        refused.error()
    );
    // Still up, still refusing the same way; nothing half-recorded.
    let a = post_json_events(s.http_addr(), &[event_json(&valid("search", "submitted"))]).await;
    assert_eq!(a.status, 507);
    assert_eq!(get(s.http_addr(), "/healthz").await.status, 200);
    assert_eq!(
        get(s.http_addr(), "/readyz").await.status,
        200,
        "full is not poisoned"
    );
    s.assert_holds_exactly(&acked);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_wrong_method_and_path_get_405_and_404() {
    let (_d, s) = start().await;
    assert_eq!(get(s.http_addr(), "/v1/events").await.status, 405);
    assert_eq!(post_events(s.http_addr(), "{}").await.status, 400);
    assert_eq!(
        http(s.http_addr(), "POST", "/v1/event", "{\"events\": []}")
            .await
            .status,
        404
    );
    finish(s, vec![]).await;
}

// ----------------------------------------------------------- admin API ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_answers_loopback_clients_with_status_event_logs_and_dead_letters() {
    let (_d, s) = start().await;
    assert!(s.http_addr().ip().is_loopback());
    // Two valid events and three invalid ones over gRPC, two valid over HTTP.
    let mut client = s.grpc().await;
    let good = [
        valid("cody.completion", "accepted"),
        valid("search", "submitted"),
    ];
    let bad = [
        valid("Search", "submitted"),
        valid("search", "x_y"),
        event("", "search", "submitted"),
    ];
    let mut payload = good.to_vec();
    payload.extend(bad.iter().cloned());
    let ok = record_payload(&mut client, payload).await.unwrap();
    assert_eq!(ok.len(), 4, "the event without id is not reported");
    let over_http = assert_still_serving(&s).await;

    let st = get(s.http_addr(), "/v1/status").await;
    assert_eq!(st.status, 200);
    let st = st.json();
    assert_eq!(st["records"], json!(4));
    assert_eq!(st["backlog"]["records"], json!(4));
    assert_eq!(st["poisoned"], json!(null));

    let recent = get(s.http_addr(), "/v1/event-logs/recent").await.json();
    let rows = recent["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let row = rows
        .iter()
        .find(|r| r["event_id"] == json!(good[0].id))
        .unwrap();
    assert_eq!(
        row["argument"]["filePath"],
        json!("/home/alice/secret/project/main.rs"),
        "unredacted"
    );
    let filtered = get(
        s.http_addr(),
        "/v1/event-logs/recent?name=cody.completion.accepted",
    )
    .await
    .json();
    assert_eq!(filtered["rows"].as_array().unwrap().len(), 1);

    let counts = get(s.http_addr(), "/v1/event-logs/counts").await.json();
    let total: u64 = counts["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 4);
    assert!(
        counts["counts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == json!("search.submitted") && c["count"] == json!(3))
    );
    let users = get(s.http_addr(), "/v1/event-logs/users").await.json();
    assert_eq!(users["users"].as_array().unwrap().len(), 1);
    assert_eq!(users["users"][0]["users"], json!(1), "user 42 only");

    let dl = get(s.http_addr(), "/v1/dead-letter").await;
    assert_eq!(dl.status, 200);
    let dl = dl.json();
    assert_eq!(dl["count"], json!(3));
    let list = dl["dead_letters"].as_array().unwrap();
    let reason_of = |id: Option<&str>| -> String {
        list.iter()
            .find(|d| d["event_id"] == json!(id))
            .unwrap_or_else(|| panic!("no dead letter for {id:?}: {dl}"))["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(reason_of(Some(&bad[0].id)).contains("lowercase letter"));
    assert!(reason_of(Some(&bad[1].id)).contains("'_'"));
    assert!(reason_of(None).contains("id is required"));
    assert!(
        list.iter()
            .all(|d| d["source"].is_string() && d["event"].is_object())
    );

    let mut acked: Vec<String> = good.iter().map(|e| e.id.clone()).collect();
    acked.extend(over_http);
    finish(s, acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_refuses_bad_query_parameters_with_400() {
    let (_d, s) = start().await;
    for path in [
        "/v1/event-logs/recent?from=yesterday",
        "/v1/event-logs/recent?limit=0",
        "/v1/event-logs/recent?limit=10001",
        "/v1/event-logs/recent?before=zz",
        "/v1/event-logs/counts?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
        "/v1/event-logs/users?to=never",
        "/v1/dead-letter?limit=0",
    ] {
        let a = get(s.http_addr(), path).await;
        assert_eq!(a.status, 400, "{path}: {:?}", a.body);
        assert!(!a.error().is_empty());
    }
    finish(s, vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_erases_one_users_event_logs_rows_and_refuses_bad_parameters() {
    let (_d, s) = start().await;
    let mut client = s.grpc().await;
    let mut other = valid("search", "submitted");
    other.user = Some(pb::EventUser {
        user_id: Some(7),
        anonymous_user_id: None,
        sams_external_id: None,
    });
    let mut payload = vec![
        valid("search", "submitted"),
        valid("cody.completion", "accepted"),
    ];
    payload.push(other.clone());
    assert_eq!(record_payload(&mut client, payload).await.unwrap().len(), 3);
    for path in [
        "/v1/event-logs/erase",
        "/v1/event-logs/erase?user_id=0",
        "/v1/event-logs/erase?user_id=42&anonymous_user_id=x",
        "/v1/event-logs/erase?anonymous_user_id=",
        "/v1/event-logs/erase?user_id=x",
    ] {
        let a = http(s.http_addr(), "POST", path, bytes::Bytes::new()).await;
        assert_eq!(a.status, 400, "{path}: {:?}", a.body);
    }
    assert_eq!(
        get(s.http_addr(), "/v1/event-logs/erase?user_id=42")
            .await
            .status,
        405
    );
    let a = http(
        s.http_addr(),
        "POST",
        "/v1/event-logs/erase?user_id=42",
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.json()["rows"], json!(2));
    // Gone from every query at once.
    let recent = get(s.http_addr(), "/v1/event-logs/recent").await.json();
    let ids: Vec<&str> = recent["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [other.id.as_str()]);
    let users = get(s.http_addr(), "/v1/event-logs/users").await.json();
    assert_eq!(users["users"][0]["users"], json!(1), "user 7 only");
    s.stop().await;
}
