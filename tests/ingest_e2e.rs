//! The record path end to end, on real sockets (port 0): events recorded
//! over gRPC and HTTP are acknowledged only once the export queue holds the
//! redacted copy and the `event_logs` mirror the unredacted row; both
//! survive a graceful restart, in-process and as a real process stopped
//! with SIGTERM; retries, export modes and dotcom mode do what the module
//! docs of `src/event/` and `src/tee/` say.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use serde_json::json;
use std::time::Duration;
use telespool::event::ExportMode;
use telespool::proto::telemetrygateway::v1 as pb;
use testkit::process;
use testkit::sidecar::*;

/// Checks the export copy of a `cody.completion` event made by [`event`]:
/// marketing tracking and the non-allowlisted `filePath` are gone, the
/// allowlisted string key `languageId` stays, the rest is untouched.
fn assert_redacted_allowlisted(q: &pb::Event, sent: &pb::Event) {
    assert_eq!(q.id, sent.id);
    assert!(
        q.marketing_tracking.is_none(),
        "marketing tracking exported: {q:?}"
    );
    let p = q.parameters.as_ref().unwrap();
    let private = p.private_metadata.as_ref().expect("allowlisted keys kept");
    assert_eq!(
        private.fields.keys().collect::<Vec<_>>(),
        vec!["languageId"],
        "only the allowlisted key is exported"
    );
    assert_eq!(private.fields["languageId"], string_value("rust"));
    assert_eq!(p.metadata, sent.parameters.as_ref().unwrap().metadata);
    assert_eq!(q.user, sent.user);
    assert_eq!(q.source, sent.source);
    assert_eq!(q.feature_flags, sent.feature_flags);
    assert_eq!(q.timestamp, sent.timestamp);
}

/// Checks the export copy of an event whose type is not allowlisted: no
/// private metadata at all, no marketing tracking.
fn assert_redacted_all_sensitive(q: &pb::Event) {
    assert!(
        q.marketing_tracking.is_none(),
        "marketing tracking exported: {q:?}"
    );
    let private = q
        .parameters
        .as_ref()
        .and_then(|p| p.private_metadata.as_ref());
    assert!(
        private.is_none_or(|s| s.fields.is_empty()),
        "private metadata exported: {private:?}"
    );
}

/// Checks the mirror row of an event made by [`event`]: unredacted.
fn assert_unredacted_row(s: &Sidecar, sent: &pb::Event) {
    let row = s
        .row(&sent.id)
        .unwrap_or_else(|| panic!("no row for {}", sent.id));
    assert_eq!(row.name, format!("{}.{}", sent.feature, sent.action));
    assert_eq!(
        row.argument["filePath"],
        json!("/home/alice/secret/project/main.rs")
    );
    assert_eq!(row.argument["languageId"], json!("rust"));
    assert_eq!(row.public_argument["durationMs"], json!(1234));
    assert_eq!(
        row.public_argument["telemetry.event.exportable"],
        json!(true)
    );
    assert_eq!(row.url, "https://sourcegraph.example.com/search?q=secret");
    assert_eq!(row.cohort_id.as_deref(), Some("2024-01"));
    assert_eq!(row.user_id, 42);
    assert_eq!(row.anonymous_user_id, "anon-1234");
    assert_eq!(row.source, "VSCODE_CODY_EXTENSION");
    assert_eq!(row.client.as_deref(), Some("VSCODE_CODY_EXTENSION:1.40.2"));
    assert_eq!(row.version, "5.9.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recorded_over_grpc_are_queued_redacted_and_mirrored_unredacted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Sidecar::start(config(dir.path())).await;
    let mut client = s.grpc().await;

    // One stream: metadata, then two payloads, each answered on its own.
    let first = vec![
        valid("cody.completion", "accepted"),
        valid("search", "submitted"),
    ];
    let second = vec![valid("cody.completion", "suggested")];
    let answers = record_stream(
        &mut client,
        vec![
            metadata_msg(unlicensed_metadata()),
            events_msg(first.clone()),
            events_msg(second.clone()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(answers.len(), 2, "one answer per payload");
    let ids = |es: &[pb::Event]| es.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(answers[0].succeeded_events, ids(&first));
    assert_eq!(answers[1].succeeded_events, ids(&second));

    // Unary RecordEvent, from any identifier.
    let unary = valid("cody.completion", "accepted");
    record_one(&mut client, Some(unary.clone())).await.unwrap();

    let queued = s.queued();
    assert_eq!(queued.len(), 4);
    assert_redacted_allowlisted(&queued[0], &first[0]);
    assert_eq!(queued[1].id, first[1].id);
    assert_redacted_all_sensitive(&queued[1]);
    assert_redacted_allowlisted(&queued[2], &second[0]);
    assert_redacted_allowlisted(&queued[3], &unary);

    for e in first.iter().chain(&second).chain([&unary]) {
        assert_unredacted_row(&s, e);
    }
    assert_eq!(s.row_count(), 4);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recorded_over_http_are_queued_redacted_and_mirrored_unredacted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Sidecar::start(config(dir.path())).await;

    let cody = valid("cody.completion", "accepted");
    let search = valid("search", "submitted");
    // An event without id and timestamp gets a UUID v7 and now.
    let bare = json!({"feature": "search", "action": "viewed",
        "parameters": {"privateMetadata": {"query": "secret"}}});
    let before = std::time::SystemTime::now();
    let a = post_json_events(
        s.http_addr(),
        &[event_json(&cody), event_json(&search), bare],
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let v = a.json();
    assert_eq!(v["failed"], json!([]));
    let generated = v["ids"][2].as_str().unwrap().to_string();
    let uuid = uuid::Uuid::parse_str(&generated).unwrap();
    assert_eq!(uuid.get_version_num(), 7, "generated ids are UUID v7");
    assert_eq!(v["ids"], json!([cody.id, search.id, generated]));
    assert_eq!(v["succeeded"], v["ids"]);

    let queued = s.queued();
    assert_eq!(queued.len(), 3);
    assert_redacted_allowlisted(&queued[0], &cody);
    assert_redacted_all_sensitive(&queued[1]);
    assert_redacted_all_sensitive(&queued[2]);
    assert_eq!(queued[2].id, generated);
    let ts = queued[2].timestamp.expect("a timestamp was filled");
    let filled = std::time::UNIX_EPOCH + Duration::new(ts.seconds as u64, ts.nanos as u32);
    assert!(
        filled >= before - Duration::from_secs(1),
        "timestamp is now"
    );

    assert_unredacted_row(&s, &cody);
    assert_unredacted_row(&s, &search);
    let row = s.row(&generated).unwrap();
    assert_eq!(row.name, "search.viewed");
    assert_eq!(row.argument["query"], json!("secret"));
    assert_eq!(row.anonymous_user_id, "unknown");
    assert_eq!(row.source, "BACKEND");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_sidecar_finds_the_queue_and_event_logs_intact() {
    let dir = tempfile::tempdir().unwrap();
    let s = Sidecar::start(config(dir.path())).await;
    let mut client = s.grpc().await;
    let over_grpc: Vec<pb::Event> = (0..50)
        .map(|_| valid("cody.completion", "accepted"))
        .collect();
    let ok = record_payload(&mut client, over_grpc.clone())
        .await
        .unwrap();
    assert_eq!(ok.len(), 50);
    let over_http = valid("cody.completion", "accepted");
    let a = post_json_events(s.http_addr(), &[event_json(&over_http)]).await;
    assert_eq!(a.status, 200);
    let before_ids = s.queued_ids();
    let before_queue = s.queued();
    drop(client);
    let cfg = s.stop().await;

    let s = Sidecar::start(cfg).await;
    assert_eq!(
        s.queued(),
        before_queue,
        "the queue holds the same bytes after a restart"
    );
    assert_eq!(s.row_count(), 51);
    for e in over_grpc.iter().chain([&over_http]) {
        assert_unredacted_row(&s, e);
    }
    // And it keeps recording, after what was there.
    let more = assert_still_serving(&s).await;
    let mut all = before_ids;
    all.extend(more);
    assert_eq!(s.queued_ids(), all);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_event_id_gives_one_event_logs_row_and_is_queued_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = Sidecar::start(config(dir.path())).await;
    let mut client = s.grpc().await;
    let e = valid("cody.completion", "accepted");
    // A client that did not see the answer retries: same payload, new stream.
    for _ in 0..2 {
        let ok = record_payload(&mut client, vec![e.clone()]).await.unwrap();
        assert_eq!(ok, vec![e.id.clone()]);
    }
    // And once more over HTTP and the unary call.
    let a = post_json_events(s.http_addr(), &[event_json(&e)]).await;
    assert_eq!(a.json()["succeeded"], json!([e.id]));
    record_one(&mut client, Some(e.clone())).await.unwrap();

    assert_eq!(s.row_count(), 1, "one event_logs row per event id");
    assert_unredacted_row(&s, &e);
    // The queue is at-least-once: the gateway acknowledges by id, so each
    // retry is queued again and one ack resolves them all.
    assert_eq!(s.queued_ids(), vec![e.id.clone(); 4]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_mode_disabled_keeps_events_out_of_the_queue_but_in_event_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.tee.export_mode = ExportMode::Disabled;
    let s = Sidecar::start(c).await;
    let mut client = s.grpc().await;
    let es = vec![
        valid("cody.completion", "accepted"),
        valid("search", "submitted"),
    ];
    let ok = record_payload(&mut client, es.clone()).await.unwrap();
    assert_eq!(ok.len(), 2, "recorded events are acknowledged");
    let h = valid("cody.chat", "submitted");
    let a = post_json_events(s.http_addr(), &[event_json(&h)]).await;
    assert_eq!(a.json()["succeeded"], json!([h.id]));

    assert!(s.queued().is_empty(), "nothing is queued for export");
    assert_eq!(s.row_count(), 3);
    for e in es.iter().chain([&h]) {
        assert_unredacted_row(&s, e);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_mode_cody_only_queues_only_cody_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.tee.export_mode = ExportMode::CodyOnly;
    let s = Sidecar::start(c).await;
    let mut client = s.grpc().await;
    let es = vec![
        valid("cody", "installed"),
        valid("search", "submitted"),
        valid("cody.completion", "accepted"),
        valid("codyish", "viewed"),
    ];
    let ok = record_payload(&mut client, es.clone()).await.unwrap();
    assert_eq!(ok.len(), 4, "all are recorded");
    let h = [valid("blob", "viewed"), valid("cody.chat", "submitted")];
    let a = post_json_events(s.http_addr(), &h.iter().map(event_json).collect::<Vec<_>>()).await;
    assert_eq!(a.json()["failed"], json!([]));

    assert_eq!(
        s.queued_ids(),
        vec![es[0].id.clone(), es[2].id.clone(), h[1].id.clone()],
        "only cody and cody.* events are queued"
    );
    assert_eq!(s.row_count(), 6, "every event is mirrored");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotcom_mode_exports_private_metadata_and_marketing_unredacted() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.tee.dotcom = true;
    let s = Sidecar::start(c).await;
    let mut client = s.grpc().await;
    let e = valid("search", "submitted");
    record_one(&mut client, Some(e.clone())).await.unwrap();
    assert_eq!(s.queued(), vec![e], "dotcom exports the event as sent");
    s.stop().await;
}

// ---- the real binary ----

/// `telespool serve` over `data_dir`, on port-0 listeners.
fn spawn_serve(data_dir: &std::path::Path) -> process::SidecarProc {
    process::sidecar(data_dir, &[])
}

/// SIGTERM, then the exit code (within 30 s).
fn terminate(mut p: process::SidecarProc) -> Option<i32> {
    p.proc.terminate(Duration::from_secs(30)).code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binary_exits_zero_on_sigterm_and_keeps_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn_serve(dir.path());
    let mut client = grpc_client(p.grpc).await;
    let es: Vec<pb::Event> = (0..20)
        .map(|_| valid("cody.completion", "accepted"))
        .collect();
    let ok = record_payload(&mut client, es.clone()).await.unwrap();
    assert_eq!(ok.len(), 20);
    let h = valid("search", "submitted");
    let a = post_json_events(p.http, &[event_json(&h)]).await;
    assert_eq!(a.json()["succeeded"], json!([h.id]));
    drop(client);
    assert_eq!(terminate(p), Some(0), "SIGTERM is a clean stop");

    // Started again on the same directory, it holds all of it.
    let p = spawn_serve(dir.path());
    let status = get(p.http, "/v1/status").await;
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["records"], json!(21));
    let recent = get(p.http, "/v1/event-logs/recent?limit=100").await.json();
    let mut rows: Vec<String> = recent["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_id"].as_str().unwrap().to_string())
        .collect();
    rows.sort();
    let mut want: Vec<String> = es.iter().chain([&h]).map(|e| e.id.clone()).collect();
    want.sort();
    assert_eq!(rows, want);
    assert_eq!(terminate(p), Some(0));

    // Offline, the stores agree: the queue holds the redacted events.
    let (q, _) = telespool::Queue::open_dir(dir.path(), telespool::QueueConfig::default()).unwrap();
    let queued = queued_events(&q);
    assert_eq!(queued.len(), 21);
    for (got, sent) in queued.iter().zip(&es) {
        assert_redacted_allowlisted(got, sent);
    }
    assert_redacted_all_sensitive(&queued[20]);
    q.close().unwrap();
}

/// `/metrics` carries Sourcegraph's exporter series and ours from the
/// start, histograms with buckets, and counts what was recorded.
#[tokio::test]
async fn metrics_show_sourcegraph_and_queue_series_as_prometheus_text() {
    let dir = tempfile::tempdir().unwrap();
    let s = Sidecar::start(config(dir.path())).await;
    let e = valid("search", "view");
    let a = post_json_events(s.http_addr(), &[event_json(&e)]).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let m = get(s.http_addr(), "/metrics").await;
    assert_eq!(m.status, 200);
    let text = String::from_utf8_lossy(&m.body).to_string();
    for name in [
        "src_telemetrygatewayexporter_queue_size",
        "src_telemetrygatewayexporter_oldest_unexported_event",
        "src_telemetrygatewayexporter_exported_events",
        "src_telemetrygatewayexporter_events_pruned",
        "telespool_queue_disk_bytes",
        "telespool_queue_segments",
        "telespool_queue_dropped_total",
        "telespool_export_dead_lettered_total",
        "# TYPE src_telemetrygatewayexporter_batch_size histogram",
        "telespool_queue_fsync_seconds_bucket{le=\"0.001\"}",
        "telespool_mirror_commit_seconds_bucket{le=\"0.01\"}",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    assert!(counter("telespool_queue_appended_records_total") >= 1.0);
    s.stop().await;
}
