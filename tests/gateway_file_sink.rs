//! A tonic client streams events into a gateway whose sink is the JSONL
//! file; every valid event appears in the file exactly as rendered
//! (`render::message_body`, `render::attributes`), compared as parsed JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use telespool::gateway::config::{DEFAULT_PUBLISH_LICENSE_KEY, PublishLicenseKey, SinkSpec};
use telespool::gateway::render::{self, PublisherSource};
use telespool::gateway::{Gateway, GatewayConfig};
use telespool::proto::telemetrygateway::v1::{Event, EventParameters, RecordEventsRequestMetadata};
use testkit::gateway::*;

async fn start_file(path: &Path, tweak: impl FnOnce(&mut GatewayConfig)) -> TestGateway {
    let files = tempfile::tempdir().unwrap();
    let mut config = test_config(files.path());
    config.sink = SinkSpec::File(path.to_owned());
    tweak(&mut config);
    let gateway = Gateway::open(config).await.unwrap();
    run(gateway, files).await
}

/// Every line of the file (and of its rotated siblings, oldest first).
fn lines(path: &Path) -> Vec<Value> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            let base = path.file_name()?.to_str()?;
            if name == base {
                Some((u64::MAX, p))
            } else {
                let n = name.strip_prefix(&format!("{base}."))?.parse().ok()?;
                Some((n, p))
            }
        })
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|(_, p)| {
            let text = std::fs::read_to_string(p).unwrap();
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "{} ends mid-line",
                p.display()
            );
            text.lines()
                .map(|l| without_dedup_fields(serde_json::from_str::<Value>(l).unwrap()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A line with its `dedup_key` (32 hex digits) and `published_at_ms` (a
/// recent time) checked and taken off, to compare the rest.
fn without_dedup_fields(mut line: Value) -> Value {
    let fields = line.as_object_mut().unwrap();
    let key = fields.remove("dedup_key").unwrap();
    let key = key.as_str().unwrap();
    assert!(
        key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "{key}"
    );
    let at = fields.remove("published_at_ms").unwrap().as_u64().unwrap();
    assert!(at > 1_700_000_000_000, "{at}");
    line
}

fn by_id(lines: &[Value]) -> BTreeMap<String, Value> {
    lines
        .iter()
        .map(|l| {
            (
                l["data"]["event"]["id"].as_str().unwrap().to_owned(),
                l.clone(),
            )
        })
        .collect()
}

/// The line the gateway must write for `event` on a stream with `metadata`
/// (the license key published as by default: its SHA-256).
fn expected_line(event: Event, metadata: &RecordEventsRequestMetadata) -> Value {
    expected_line_with(event, metadata, DEFAULT_PUBLISH_LICENSE_KEY)
}

/// [`expected_line`] with the license key published as `mode` says.
fn expected_line_with(
    mut event: Event,
    metadata: &RecordEventsRequestMetadata,
    mode: PublishLicenseKey,
) -> Value {
    render::migrate_legacy_metadata(&mut event);
    let source = render::publisher_source(metadata);
    let body = render::message_body(&event, &render::published_metadata(metadata, mode)).unwrap();
    serde_json::json!({
        "attributes": render::attributes(&event, &source),
        "data": serde_json::from_slice::<Value>(&body).unwrap(),
    })
}

#[tokio::test]
async fn every_valid_event_appears_in_the_jsonl_file_exactly_as_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/events.jsonl");
    let gateway = start_file(&path, |_| {}).await;
    let mut client = gateway.client().await;
    let mut sent = events(0..300);
    // A legacy-metadata event, and one with every optional field at zero.
    sent[7].parameters = Some(EventParameters {
        legacy_metadata: [("legacy".to_owned(), 42)].into(),
        ..EventParameters::default()
    });
    sent[8].user.as_mut().unwrap().user_id = Some(0);
    let result = record(
        &mut client,
        vec![
            metadata_request(licensed()),
            events_request(sent[..100].to_vec()),
            events_request(sent[100..].to_vec()),
        ],
    )
    .await;
    result.end.as_ref().unwrap();
    assert_eq!(result.succeeded(), ids(0..300));
    let written = by_id(&lines(&path));
    assert_eq!(written.len(), 300);
    for event in sent {
        let id = event.id.clone();
        assert_eq!(written[&id], expected_line(event, &licensed()), "{id}");
    }
    assert_eq!(
        written["event-7"]["data"]["event"]["parameters"]["metadata"]["legacy"],
        42
    );
    assert_eq!(written["event-8"]["data"]["event"]["user"]["userId"], "0");
    assert_eq!(
        written["event-0"]["attributes"]["publisher.source"],
        "licensed_instance"
    );
    assert_eq!(
        written["event-0"]["data"]["metadata"]["identifier"]["licensedInstance"]["licenseKey"],
        render::license_key_hash(LICENSE_KEY)
    );
}

#[tokio::test]
async fn the_license_key_is_published_raw_hashed_or_not_at_all_as_configured() {
    for (mode, expected) in [
        (PublishLicenseKey::Raw, Some(LICENSE_KEY.to_owned())),
        (
            PublishLicenseKey::Sha256,
            Some(render::license_key_hash(LICENSE_KEY)),
        ),
        (PublishLicenseKey::Omit, None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let gateway = start_file(&path, |config| config.publish_license_key = mode).await;
        let mut client = gateway.client().await;
        let result = record(
            &mut client,
            vec![metadata_request(licensed()), events_request(events(0..3))],
        )
        .await;
        assert_eq!(result.succeeded(), ids(0..3), "{mode}");
        gateway.stop().await.unwrap();
        let written = by_id(&lines(&path));
        assert_eq!(written.len(), 3, "{mode}");
        for (i, event) in events(0..3).into_iter().enumerate() {
            let line = &written[&format!("event-{i}")];
            assert_eq!(
                line,
                &expected_line_with(event, &licensed(), mode),
                "{mode}"
            );
            let licensed = &line["data"]["metadata"]["identifier"]["licensedInstance"];
            assert_eq!(
                licensed.get("licenseKey").and_then(Value::as_str),
                expected.as_deref(),
                "{mode}"
            );
            assert_eq!(licensed["instanceId"], "instance-1", "{mode}");
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.contains(LICENSE_KEY),
            mode == PublishLicenseKey::Raw,
            "{mode}"
        );
    }
}

#[tokio::test]
async fn invalid_events_from_an_instance_are_reported_as_succeeded_and_absent_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let gateway = start_file(&path, |_| {}).await;
    let mut client = gateway.client().await;
    let result = record(
        &mut client,
        vec![
            metadata_request(unlicensed()),
            events_request(vec![event(0), invalid_event(1), event(2)]),
        ],
    )
    .await;
    assert_eq!(result.succeeded(), ids(0..3));
    let written = by_id(&lines(&path));
    assert_eq!(written.keys().collect::<Vec<_>>(), ["event-0", "event-2"]);
    assert_eq!(written["event-0"], expected_line(event(0), &unlicensed()));
    assert_eq!(
        written["event-0"]["attributes"]["publisher.source"],
        PublisherSource::UnlicensedInstance.as_str()
    );
}

#[tokio::test]
async fn invalid_events_from_a_managed_service_are_left_out_and_absent_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let gateway = start_file(&path, |_| {}).await;
    let mut client = gateway.client().await;
    let result = record_with_token(
        &mut client,
        vec![
            metadata_request(managed()),
            events_request(vec![event(0), invalid_event(1), event(2)]),
        ],
        Some(SERVICE_TOKEN),
    )
    .await;
    let mut expected = vec!["event-0".to_owned(), "event-2".to_owned()];
    expected.sort();
    assert_eq!(result.succeeded(), expected);
    let written = by_id(&lines(&path));
    assert_eq!(written.len(), 2);
    assert_eq!(written["event-2"], expected_line(event(2), &managed()));
    assert_eq!(
        written["event-2"]["attributes"]["publisher.source"],
        SERVICE_ID
    );
}

#[tokio::test]
async fn the_file_rotates_with_numeric_suffixes_and_no_line_is_lost_or_split() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let gateway = start_file(&path, |config| {
        config.file.rotate_bytes = 8192;
        config.file.keep = 1000;
        config.publish_concurrency = 3;
    })
    .await;
    let mut client = gateway.client().await;
    let mut requests = vec![metadata_request(licensed())];
    for p in 0..5 {
        requests.push(events_request(events(p * 20..p * 20 + 20)));
    }
    let result = record(&mut client, requests).await;
    assert_eq!(result.succeeded(), ids(0..100));
    let written = by_id(&lines(&path));
    assert_eq!(written.len(), 100);
    let rotated: Vec<PathBuf> = (1..)
        .map(|n| dir.path().join(format!("events.jsonl.{n}")))
        .take_while(|p| p.exists())
        .collect();
    assert!(rotated.len() >= 5, "{} rotated files", rotated.len());
    for file in &rotated {
        let len = std::fs::metadata(file).unwrap().len();
        assert!(len <= 8192, "{} is {len} bytes", file.display());
    }
}

#[tokio::test]
async fn rotated_files_past_the_count_are_deleted_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let gateway = start_file(&path, |config| {
        config.file.rotate_bytes = 8192;
        config.file.keep = 2;
        config.publish_concurrency = 3;
    })
    .await;
    let mut client = gateway.client().await;
    let mut requests = vec![metadata_request(licensed())];
    for p in 0..5 {
        requests.push(events_request(events(p * 20..p * 20 + 20)));
    }
    let result = record(&mut client, requests).await;
    assert_eq!(result.succeeded(), ids(0..100));
    gateway.stop().await.unwrap();
    let mut rotated: Vec<u64> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_prefix("events.jsonl.")?.parse().ok()
        })
        .collect();
    rotated.sort_unstable();
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    // The newest two: the highest numbers, consecutive.
    assert!(
        rotated[0] >= 3 && rotated[1] == rotated[0] + 1,
        "{rotated:?}"
    );
    // What is left is the newest events: the last one written is there.
    let written = by_id(&lines(&path));
    assert!(written.contains_key("event-99"), "{:?}", written.keys());
    assert!(!written.contains_key("event-0"));
}

#[tokio::test]
async fn a_restarted_gateway_appends_to_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    for round in 0..2 {
        let gateway = start_file(&path, |_| {}).await;
        let mut client = gateway.client().await;
        let result = record(
            &mut client,
            vec![
                metadata_request(licensed()),
                events_request(events(round * 10..round * 10 + 10)),
            ],
        )
        .await;
        assert_eq!(result.succeeded().len(), 10);
        gateway.stop().await.unwrap();
    }
    assert_eq!(by_id(&lines(&path)).len(), 20);
}

#[tokio::test]
async fn an_unwritable_sink_directory_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, "a file where the directory should be").unwrap();
    let files = tempfile::tempdir().unwrap();
    let mut config = test_config(files.path());
    config.sink = SinkSpec::File(blocker.join("events.jsonl"));
    let err = Gateway::open(config).await.unwrap_err().to_string();
    assert!(
        err.starts_with("sink: creating directory") && err.contains("not-a-directory"),
        "{err}"
    );
}

#[tokio::test]
async fn a_repeat_is_written_once_even_across_a_restart_and_another_instance_is_not_suppressed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let gateway = start_file(&path, |_| {}).await;
    let mut client = gateway.client().await;
    for _ in 0..2 {
        // The second time on a new stream, as a sender that lost its answer.
        let result = record(
            &mut client,
            vec![metadata_request(licensed()), events_request(events(0..5))],
        )
        .await;
        assert_eq!(result.succeeded(), ids(0..5));
    }
    gateway.stop().await.unwrap();
    // A restarted gateway remembers what it wrote.
    let gateway = start_file(&path, |_| {}).await;
    let mut client = gateway.client().await;
    let result = record(
        &mut client,
        vec![metadata_request(licensed()), events_request(events(3..8))],
    )
    .await;
    assert_eq!(result.succeeded(), ids(3..8));
    // The same event ids from another instance are its own events.
    let result = record(
        &mut client,
        vec![metadata_request(unlicensed()), events_request(events(0..2))],
    )
    .await;
    assert_eq!(result.succeeded(), ids(0..2));
    gateway.stop().await.unwrap();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for line in lines(&path) {
        *count
            .entry(line["data"]["event"]["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = ids(0..8)
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, if i < 2 { 2 } else { 1 }))
        .collect();
    assert_eq!(count, expected);
}
