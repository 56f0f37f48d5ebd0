//! The NATS JetStream sink against a real `nats-server -js` started by the
//! test on a free loopback port with a temporary store (Debian package
//! `nats-server`; these tests fail, not skip, when it is missing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream::StorageType};
use futures::StreamExt;
use telespool::gateway::config::SinkSpec;
use telespool::gateway::render;
use telespool::gateway::{Gateway, GatewayConfig};
use testkit::gateway::*;
use testkit::nats::NatsServer;

const STREAM: &str = "telemetry-events";

async fn start_nats_gateway(
    server: &NatsServer,
    tweak: impl FnOnce(&mut GatewayConfig),
) -> TestGateway {
    let files = tempfile::tempdir().unwrap();
    let mut config = test_config(files.path());
    config.sink = SinkSpec::Nats(server.url());
    config.nats.ack_timeout = Duration::from_secs(1);
    tweak(&mut config);
    let gateway = Gateway::open(config).await.unwrap();
    run(gateway, files).await
}

async fn jetstream(server: &NatsServer) -> jetstream::Context {
    jetstream::new(async_nats::connect(server.url()).await.unwrap())
}

async fn stored(js: &jetstream::Context) -> u64 {
    js.get_stream(STREAM)
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap()
        .state
        .messages
}

async fn send(gateway: &TestGateway, range: std::ops::Range<usize>) -> Vec<String> {
    let mut client = gateway.client().await;
    let result = record(
        &mut client,
        vec![metadata_request(licensed()), events_request(events(range))],
    )
    .await;
    result.end.as_ref().unwrap();
    assert_eq!(result.responses.len(), 1);
    result.succeeded()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_can_be_read_back_from_the_stream_with_headers_and_msg_id() {
    let server = NatsServer::start();
    let gateway = start_nats_gateway(&server, |_| {}).await;
    assert_eq!(send(&gateway, 0..50).await, ids(0..50));

    let js = jetstream(&server).await;
    let mut stream = js.get_stream(STREAM).await.unwrap();
    let info = stream.info().await.unwrap().clone();
    assert_eq!(info.config.storage, StorageType::File);
    assert_eq!(info.config.subjects, vec!["telemetry.events".to_owned()]);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    assert_eq!(info.state.messages, 50);

    let consumer = stream
        .create_consumer(pull::Config::default())
        .await
        .unwrap();
    let mut messages = consumer.fetch().max_messages(50).messages().await.unwrap();
    let mut seen = BTreeMap::new();
    let mut msg_ids = std::collections::BTreeSet::new();
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        assert_eq!(message.subject.as_str(), "telemetry.events");
        let headers = message.headers.clone().unwrap();
        // The dedup key: a hash of the instance and the event id.
        let msg_id = headers.get("Nats-Msg-Id").unwrap().as_str().to_owned();
        assert!(
            msg_id.len() == 32 && msg_id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{msg_id}"
        );
        msg_ids.insert(msg_id);
        let body: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        let id = body["event"]["id"].as_str().unwrap().to_owned();
        seen.insert(id, (headers, message.payload.clone()));
    }
    assert_eq!(seen.len(), 50);
    assert_eq!(msg_ids.len(), 50);
    for i in 0..50 {
        let event = event(i);
        let (headers, payload) = &seen[&event.id];
        // The license key published as by default: its SHA-256.
        let published = render::published_metadata(
            &licensed(),
            telespool::gateway::config::DEFAULT_PUBLISH_LICENSE_KEY,
        );
        let body = render::message_body(&event, &published).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(payload).unwrap(),
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()
        );
        let source = render::publisher_source(&licensed());
        for (name, value) in render::attributes(&event, &source) {
            assert_eq!(
                headers.get(name.as_str()).unwrap().as_str(),
                value,
                "{name}"
            );
        }
    }
    assert_eq!(
        seen["event-0"]
            .0
            .get("event.recordsPrivateMetadataTranscript")
            .unwrap()
            .as_str(),
        "true"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_ids_are_stored_once_and_still_acknowledged() {
    let server = NatsServer::start();
    let gateway = start_nats_gateway(&server, |_| {}).await;
    let js = jetstream(&server).await;
    assert_eq!(send(&gateway, 0..40).await, ids(0..40));
    assert_eq!(stored(&js).await, 40);
    // The same ids again (a client that lost the acks), plus new ones.
    assert_eq!(send(&gateway, 0..40).await, ids(0..40));
    assert_eq!(stored(&js).await, 40, "JetStream dropped the duplicates");
    assert_eq!(send(&gateway, 20..60).await, ids(20..60));
    assert_eq!(stored(&js).await, 60);
    // The same event ids from another instance are other events.
    let mut client = gateway.client().await;
    let result = record(
        &mut client,
        vec![
            metadata_request(unlicensed()),
            events_request(events(0..10)),
        ],
    )
    .await;
    assert_eq!(result.succeeded(), ids(0..10));
    assert_eq!(
        stored(&js).await,
        70,
        "one instance suppressed another's ids"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_left_out_while_the_server_is_down_and_acknowledged_once_it_returns() {
    let mut server = NatsServer::start();
    let gateway = start_nats_gateway(&server, |_| {}).await;
    assert_eq!(send(&gateway, 0..10).await, ids(0..10));
    assert_eq!(http_get(gateway.http, "/readyz").await.0, 200);

    server.stop();
    // Not one id is acknowledged while the server is away.
    for _ in 0..3 {
        assert!(send(&gateway, 10..20).await.is_empty());
    }
    let (code, body) = http_get(gateway.http, "/readyz").await;
    assert_eq!(code, 503, "{body}");

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let succeeded = send(&gateway, 10..20).await;
        if succeeded == ids(10..20) {
            break;
        }
        assert!(
            succeeded.is_empty() || Instant::now() < deadline,
            "partial acks are fine, but all must arrive within 30s: {succeeded:?}"
        );
        assert!(Instant::now() < deadline, "the gateway did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(http_get(gateway.http, "/readyz").await.0, 200);
    let js = jetstream(&server).await;
    assert_eq!(stored(&js).await, 20, "each id once, across the outage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_stream_that_does_not_capture_the_subject_is_refused_at_start() {
    let server = NatsServer::start();
    let js = jetstream(&server).await;
    js.create_stream(jetstream::stream::Config {
        name: "other".to_owned(),
        subjects: vec!["something.else".to_owned()],
        ..Default::default()
    })
    .await
    .unwrap();
    let files = tempfile::tempdir().unwrap();
    let mut config = test_config(files.path());
    config.sink = SinkSpec::Nats(server.url());
    config.nats.stream = "other".to_owned();
    let err = Gateway::open(config).await.unwrap_err().to_string();
    assert!(
        err.contains("does not capture subject telemetry.events"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_stream_and_subject_names_are_used() {
    let server = NatsServer::start();
    let gateway = start_nats_gateway(&server, |config| {
        config.nats.stream = "custom".to_owned();
        config.nats.subject = "custom.subject".to_owned();
    })
    .await;
    assert_eq!(send(&gateway, 0..5).await, ids(0..5));
    let js = jetstream(&server).await;
    let info = js
        .get_stream("custom")
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(info.config.subjects, vec!["custom.subject".to_owned()]);
    assert_eq!(info.state.messages, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_the_stream_refuses_are_left_out_and_the_rest_acknowledged() {
    let server = NatsServer::start();
    let js = jetstream(&server).await;
    // A full stream that discards new messages answers with an error ack.
    js.create_stream(jetstream::stream::Config {
        name: STREAM.to_owned(),
        subjects: vec!["telemetry.events".to_owned()],
        max_messages: 5,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .unwrap();
    let gateway = start_nats_gateway(&server, |_| {}).await;
    // One batch, published in order on one connection: the first five fit.
    assert_eq!(send(&gateway, 0..10).await, ids(0..5));
    assert_eq!(stored(&js).await, 5);
    // Refusals are retryable: once there is room, the same ids go in.
    js.get_stream(STREAM).await.unwrap().purge().await.unwrap();
    assert_eq!(send(&gateway, 5..10).await, ids(5..10));
    assert_eq!(stored(&js).await, 5);
}
