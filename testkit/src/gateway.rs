//! The gateway in-process: started on port 0 with any sink (see
//! [`crate::sinks`]), a tonic client, events and identifiers, stream
//! drivers, and a raw HTTP GET.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prost_types::{Struct, Timestamp, Value, value::Kind};
use telespool::gateway::sink::Sink;
use telespool::gateway::{Gateway, GatewayConfig, GatewayError};
use telespool::proto::telemetrygateway::v1::event_source::{Client, Server};
use telespool::proto::telemetrygateway::v1::identifier::{
    Identifier as Kind_, LicensedInstanceIdentifier, ManagedServiceIdentifier,
    UnlicensedInstanceIdentifier,
};
use telespool::proto::telemetrygateway::v1::record_events_request::{EventsPayload, Payload};
use telespool::proto::telemetrygateway::v1::telemetery_gateway_service_client::TelemeteryGatewayServiceClient;
use telespool::proto::telemetrygateway::v1::{
    Event, EventFeatureFlags, EventParameters, EventSource, EventUser, Identifier,
    RecordEventsRequest, RecordEventsRequestMetadata, RecordEventsResponse,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status};

pub type GatewayClient = TelemeteryGatewayServiceClient<Channel>;

pub const LICENSE_KEY: &str = "test-license-key";
pub const SERVICE_ID: &str = "my-service";
pub const SERVICE_TOKEN: &str = "test-service-token";

/// A gateway running in this process on loopback port 0.
pub struct TestGateway {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<Result<(), GatewayError>>>,
    /// Holds the license-keys and service-tokens files.
    pub files: tempfile::TempDir,
}

impl TestGateway {
    /// Signals shutdown and waits for `run` to return.
    pub async fn stop(mut self) -> Result<(), GatewayError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("gateway stops within 30s")
            .expect("gateway task")
    }

    /// Fires the shutdown signal without waiting.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn client(&self) -> GatewayClient {
        client(self.grpc).await
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A config for tests: loopback port 0, license and token files written.
pub fn test_config(files: &Path) -> GatewayConfig {
    let keys = files.join("license-keys");
    std::fs::write(&keys, format!("# test keys\n{LICENSE_KEY}\n")).unwrap();
    let tokens = files.join("service-tokens");
    std::fs::write(
        &tokens,
        format!("{SERVICE_TOKEN}\nother-service bound-to-other\n"),
    )
    .unwrap();
    GatewayConfig {
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:1".parse().unwrap(),
        license_keys: Some(keys),
        service_tokens: Some(tokens),
        ..GatewayConfig::default()
    }
}

/// Starts a gateway with `sink`; `tweak` may change the test config.
pub async fn start_with(
    sink: Arc<dyn Sink>,
    tweak: impl FnOnce(&mut GatewayConfig),
) -> TestGateway {
    let files = tempfile::tempdir().unwrap();
    let mut config = test_config(files.path());
    tweak(&mut config);
    let gateway = Gateway::with_sink(config, sink).unwrap();
    run(gateway, files).await
}

/// Starts a gateway with `sink` and the test config.
pub async fn start(sink: Arc<dyn Sink>) -> TestGateway {
    start_with(sink, |_| {}).await
}

/// Runs an assembled gateway on loopback port 0.
pub async fn run(gateway: Gateway, files: tempfile::TempDir) -> TestGateway {
    let grpc_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = grpc_listener.local_addr().unwrap();
    let http = http_listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway.run(grpc_listener, http_listener, async move {
        let _ = stopped.await;
    }));
    TestGateway {
        grpc,
        http,
        stop: Some(stop),
        task: Some(task),
        files,
    }
}

pub async fn client(addr: SocketAddr) -> GatewayClient {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    TelemeteryGatewayServiceClient::new(channel)
        .max_encoding_message_size(64 * 1024 * 1024)
        .max_decoding_message_size(64 * 1024 * 1024)
}

// ---- identifiers ----

pub fn metadata(kind: Option<Kind_>) -> RecordEventsRequestMetadata {
    RecordEventsRequestMetadata {
        request_id: "request-1".to_owned(),
        identifier: Some(Identifier { identifier: kind }),
    }
}

pub fn licensed_with(key: &str) -> RecordEventsRequestMetadata {
    metadata(Some(Kind_::LicensedInstance(LicensedInstanceIdentifier {
        license_key: key.to_owned(),
        instance_id: "instance-1".to_owned(),
        external_url: "https://sourcegraph.example.com".to_owned(),
    })))
}

pub fn licensed() -> RecordEventsRequestMetadata {
    licensed_with(LICENSE_KEY)
}

pub fn unlicensed_with(instance_id: &str) -> RecordEventsRequestMetadata {
    metadata(Some(Kind_::UnlicensedInstance(
        UnlicensedInstanceIdentifier {
            instance_id: instance_id.to_owned(),
            external_url: "https://sg.example.org".to_owned(),
        },
    )))
}

pub fn unlicensed() -> RecordEventsRequestMetadata {
    unlicensed_with("instance-2")
}

pub fn managed_with(service_id: &str) -> RecordEventsRequestMetadata {
    metadata(Some(Kind_::ManagedService(ManagedServiceIdentifier {
        service_id: service_id.to_owned(),
        service_environment: Some("dev".to_owned()),
    })))
}

pub fn managed() -> RecordEventsRequestMetadata {
    managed_with(SERVICE_ID)
}

// ---- events ----

/// A valid event of about 600 bytes (protobuf), id `event-{i}`.
pub fn event(i: usize) -> Event {
    let s = |v: &str| Value {
        kind: Some(Kind::StringValue(v.to_owned())),
    };
    Event {
        id: format!("event-{i}"),
        timestamp: Some(Timestamp {
            seconds: 1_700_000_000 + i as i64,
            nanos: 123_000_000,
        }),
        feature: "cody.completion".to_owned(),
        action: "accepted".to_owned(),
        source: Some(EventSource {
            server: Some(Server {
                version: "5.3.0".to_owned(),
            }),
            client: Some(Client {
                name: "VSCODE_CODY_EXTENSION".to_owned(),
                version: Some("1.20.3".to_owned()),
            }),
        }),
        parameters: Some(EventParameters {
            version: 1,
            metadata: BTreeMap::from([
                ("latency".to_owned(), 123.5),
                ("accepted".to_owned(), 1.0),
                ("recordsPrivateMetadataTranscript".to_owned(), 1.0),
            ]),
            private_metadata: Some(Struct {
                fields: BTreeMap::from([
                    ("languageId".to_owned(), s("typescript")),
                    ("model".to_owned(), s("anthropic/claude-3-sonnet")),
                    ("snippet".to_owned(), s(&"x".repeat(240))),
                ]),
            }),
            ..EventParameters::default()
        }),
        user: Some(EventUser {
            user_id: Some(1234),
            anonymous_user_id: Some("c0ffee00-0000-4000-8000-000000000000".to_owned()),
            sams_external_id: None,
        }),
        feature_flags: Some(EventFeatureFlags {
            flags: BTreeMap::from([
                ("cody-autocomplete-tracing".to_owned(), "true".to_owned()),
                ("search-ranking".to_owned(), "false".to_owned()),
            ]),
        }),
        ..Event::default()
    }
}

pub fn events(range: std::ops::Range<usize>) -> Vec<Event> {
    range.map(event).collect()
}

/// An event that fails validation (feature starts with an upper-case
/// letter).
pub fn invalid_event(i: usize) -> Event {
    Event {
        feature: "CodeSearch".to_owned(),
        ..event(i)
    }
}

// ---- requests ----

pub fn metadata_request(metadata: RecordEventsRequestMetadata) -> RecordEventsRequest {
    RecordEventsRequest {
        payload: Some(Payload::Metadata(metadata)),
    }
}

pub fn events_request(events: Vec<Event>) -> RecordEventsRequest {
    RecordEventsRequest {
        payload: Some(Payload::Events(EventsPayload { events })),
    }
}

pub fn empty_request() -> RecordEventsRequest {
    RecordEventsRequest { payload: None }
}

/// What a finished stream produced.
#[derive(Debug)]
pub struct StreamResult {
    pub responses: Vec<RecordEventsResponse>,
    pub end: Result<(), Status>,
}

impl StreamResult {
    pub fn succeeded(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .responses
            .iter()
            .flat_map(|r| r.succeeded_events.clone())
            .collect();
        ids.sort();
        ids
    }

    pub fn error(&self) -> (Code, String) {
        let status = self.end.as_ref().expect_err("the stream should fail");
        (status.code(), status.message().to_owned())
    }
}

/// Sends every request, half-closes, and collects the responses until the
/// stream ends.
pub async fn record(
    client: &mut GatewayClient,
    requests: Vec<RecordEventsRequest>,
) -> StreamResult {
    record_with_token(client, requests, None).await
}

/// [`record`] with an `authorization: Bearer TOKEN` header.
pub async fn record_with_token(
    client: &mut GatewayClient,
    requests: Vec<RecordEventsRequest>,
    token: Option<&str>,
) -> StreamResult {
    let mut request = tonic::Request::new(tokio_stream::iter(requests));
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let mut responses = Vec::new();
    let end = match client.record_events(request).await {
        Err(status) => Err(status),
        Ok(response) => {
            let mut inbound = response.into_inner();
            loop {
                match inbound.message().await {
                    Ok(Some(r)) => responses.push(r),
                    Ok(None) => break Ok(()),
                    Err(status) => break Err(status),
                }
            }
        }
    };
    StreamResult { responses, end }
}

/// An open stream driven step by step.
pub struct OpenStream {
    pub tx: mpsc::Sender<RecordEventsRequest>,
    pub inbound: tonic::Streaming<RecordEventsResponse>,
}

impl OpenStream {
    pub async fn open(client: &mut GatewayClient, token: Option<&str>) -> OpenStream {
        let (tx, rx) = mpsc::channel(16);
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let inbound = client.record_events(request).await.unwrap().into_inner();
        OpenStream { tx, inbound }
    }

    pub async fn send(&self, request: RecordEventsRequest) {
        self.tx.send(request).await.unwrap();
    }

    /// The next response (panics on end or error).
    pub async fn response(&mut self) -> RecordEventsResponse {
        tokio::time::timeout(Duration::from_secs(30), self.inbound.message())
            .await
            .expect("a response within 30s")
            .expect("no error")
            .expect("a response, not the end")
    }

    /// Sends one payload and returns its response's ids, sorted.
    pub async fn payload(&mut self, events: Vec<Event>) -> Vec<String> {
        self.send(events_request(events)).await;
        let mut ids = self.response().await.succeeded_events;
        ids.sort();
        ids
    }
}

pub fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    let mut ids: Vec<String> = range.map(|i| format!("event-{i}")).collect();
    ids.sort();
    ids
}

/// A plain HTTP/1.1 GET; returns (status code, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}
