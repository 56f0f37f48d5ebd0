//! Helpers for the record-path tests: a sidecar started in-process on
//! port-0 listeners over a temporary data directory, clients for both
//! APIs (tonic for gRPC, hyper-util or a raw socket for HTTP), realistic
//! events, and readers for what the queue and the mirror hold.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use prost::Message;
use prost_types::value::Kind;
use prost_types::{Struct, Timestamp, Value};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use telespool::RecordId;
use telespool::app::{self, Running};
use telespool::cli::ServeArgs;
use telespool::config::ServeConfig;
use telespool::event_logs::EventLogRow;
use telespool::proto::telemetrygateway::v1 as pb;
use telespool::proto::telemetrygateway::v1::telemetery_gateway_service_client::TelemeteryGatewayServiceClient;
use telespool::queue::Queue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::Channel;

pub type GrpcClient = TelemeteryGatewayServiceClient<Channel>;

/// The configuration a test starts from: everything default except the
/// data directory and port-0 loopback listeners.
pub fn config(data_dir: &Path) -> ServeConfig {
    let mut c = ServeConfig::resolve(&ServeArgs {
        data_dir: Some(data_dir.to_path_buf()),
        ..Default::default()
    })
    .expect("default config");
    c.listen.grpc = "127.0.0.1:0".parse().unwrap();
    c.listen.http = "127.0.0.1:0".parse().unwrap();
    c
}

/// A sidecar running in this process.
pub struct Sidecar {
    pub running: Running,
    pub config: ServeConfig,
}

impl Sidecar {
    /// Starts a sidecar with `config`, on fresh port-0 listeners.
    pub async fn start(config: ServeConfig) -> Sidecar {
        let grpc = TcpListener::bind(config.listen.grpc).await.unwrap();
        let http = TcpListener::bind(config.listen.http).await.unwrap();
        let running = app::start(config.clone(), grpc, http)
            .await
            .expect("start the sidecar");
        Sidecar { running, config }
    }

    pub fn data_dir(&self) -> &PathBuf {
        &self.config.data_dir
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.running.grpc_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.running.http_addr
    }

    pub async fn grpc(&self) -> GrpcClient {
        grpc_client(self.grpc_addr()).await
    }

    /// Stops it gracefully and returns the configuration, to start again.
    pub async fn stop(self) -> ServeConfig {
        tokio::time::timeout(Duration::from_secs(30), self.running.shutdown())
            .await
            .expect("shutdown within 30s")
            .expect("clean shutdown");
        self.config
    }

    /// The redacted events in the export queue, in record order.
    pub fn queued(&self) -> Vec<pb::Event> {
        queued_events(self.running.queue())
    }

    /// The ids of the queued events, in record order.
    pub fn queued_ids(&self) -> Vec<String> {
        self.queued().into_iter().map(|e| e.id).collect()
    }

    /// The mirror's row for `id`.
    pub fn row(&self, id: &str) -> Option<EventLogRow> {
        self.running.event_logs().get(id).unwrap()
    }

    /// Rows in the mirror.
    pub fn row_count(&self) -> u64 {
        self.running.event_logs().row_count().unwrap()
    }

    /// Dead letters: (event id, reason).
    pub fn dead_letters(&self) -> Vec<(Option<String>, String)> {
        self.running
            .dead_letters()
            .list(None, 10_000)
            .unwrap()
            .into_iter()
            .map(|d| (d.entry.event_id, d.entry.reason))
            .collect()
    }

    /// Asserts that the queue and the mirror hold exactly these event ids
    /// (each queued once, each with one row).
    pub fn assert_holds_exactly(&self, ids: &[String]) {
        let mut want: Vec<String> = ids.to_vec();
        want.sort();
        let mut queued = self.queued_ids();
        queued.sort();
        assert_eq!(
            queued, want,
            "the queue must hold exactly the acknowledged events"
        );
        assert_eq!(
            self.row_count(),
            want.len() as u64,
            "the mirror must hold exactly one row per acknowledged event"
        );
        for id in &want {
            assert!(self.row(id).is_some(), "no event_logs row for {id}");
        }
    }
}

/// Every unresolved record of `queue`, decoded.
pub fn queued_events(queue: &Queue) -> Vec<pb::Event> {
    queue
        .read(RecordId(1), usize::MAX, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| pb::Event::decode(r.event).expect("queued bytes decode as an Event"))
        .collect()
}

pub async fn grpc_client(addr: SocketAddr) -> GrpcClient {
    TelemeteryGatewayServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect gRPC")
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20)
}

/// A fresh, unique event id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn now_ts() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

pub fn string_value(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_string())),
    }
}

pub fn private(fields: &[(&str, Value)]) -> Struct {
    Struct {
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

/// A realistic event: user, source, numeric metadata, private metadata
/// (one key the cody.completion allowlist entry keeps, one it does not),
/// feature flags, marketing tracking.
pub fn event(id: &str, feature: &str, action: &str) -> pb::Event {
    pb::Event {
        id: id.to_string(),
        timestamp: Some(now_ts()),
        feature: feature.to_string(),
        action: action.to_string(),
        source: Some(pb::EventSource {
            server: Some(pb::event_source::Server {
                version: "5.9.0".into(),
            }),
            client: Some(pb::event_source::Client {
                name: "VSCODE_CODY_EXTENSION".into(),
                version: Some("1.40.2".into()),
            }),
        }),
        parameters: Some(pb::EventParameters {
            version: 1,
            legacy_metadata: BTreeMap::new(),
            metadata: BTreeMap::from([
                ("durationMs".to_string(), 1234.0),
                ("lineCount".to_string(), 7.0),
            ]),
            private_metadata: Some(private(&[
                ("languageId", string_value("rust")),
                (
                    "filePath",
                    string_value("/home/alice/secret/project/main.rs"),
                ),
            ])),
            billing_metadata: None,
        }),
        user: Some(pb::EventUser {
            user_id: Some(42),
            anonymous_user_id: Some("anon-1234".into()),
            sams_external_id: None,
        }),
        feature_flags: Some(pb::EventFeatureFlags {
            flags: BTreeMap::from([("cody-autocomplete-tracing".to_string(), "true".into())]),
        }),
        marketing_tracking: Some(pb::EventMarketingTracking {
            url: Some("https://sourcegraph.example.com/search?q=secret".into()),
            first_source_url: Some("https://about.sourcegraph.com/".into()),
            cohort_id: Some("2024-01".into()),
            referrer: Some("https://www.google.com/".into()),
            last_source_url: None,
            device_session_id: Some("device-9".into()),
            session_referrer: None,
            session_first_url: None,
        }),
        interaction: None,
    }
}

/// A valid event with a fresh id.
pub fn valid(feature: &str, action: &str) -> pb::Event {
    event(&new_id(), feature, action)
}

pub fn unlicensed_metadata() -> pb::RecordEventsRequestMetadata {
    pb::RecordEventsRequestMetadata {
        request_id: new_id(),
        identifier: Some(pb::Identifier {
            identifier: Some(pb::identifier::Identifier::UnlicensedInstance(
                pb::identifier::UnlicensedInstanceIdentifier {
                    instance_id: "test-instance".into(),
                    external_url: "https://sourcegraph.example.com".into(),
                },
            )),
        }),
    }
}

pub fn metadata_msg(m: pb::RecordEventsRequestMetadata) -> pb::RecordEventsRequest {
    pb::RecordEventsRequest {
        payload: Some(pb::record_events_request::Payload::Metadata(m)),
    }
}

pub fn events_msg(events: Vec<pb::Event>) -> pb::RecordEventsRequest {
    pb::RecordEventsRequest {
        payload: Some(pb::record_events_request::Payload::Events(
            pb::record_events_request::EventsPayload { events },
        )),
    }
}

/// Sends `messages` on one `RecordEvents` stream, closes it, and collects
/// every answer until the stream ends; the first error status ends it.
pub async fn record_stream(
    client: &mut GrpcClient,
    messages: Vec<pb::RecordEventsRequest>,
) -> Result<Vec<pb::RecordEventsResponse>, tonic::Status> {
    let mut inbound = client
        .record_events(tokio_stream::iter(messages))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = inbound.message().await? {
        out.push(r);
    }
    Ok(out)
}

/// Records `events` in one payload on a stream with valid metadata; returns
/// the succeeded ids.
pub async fn record_payload(
    client: &mut GrpcClient,
    events: Vec<pb::Event>,
) -> Result<Vec<String>, tonic::Status> {
    let answers = record_stream(
        client,
        vec![metadata_msg(unlicensed_metadata()), events_msg(events)],
    )
    .await?;
    assert_eq!(answers.len(), 1, "one answer per events payload");
    Ok(answers.into_iter().next().unwrap().succeeded_events)
}

/// `RecordEvent` (unary).
pub async fn record_one(
    client: &mut GrpcClient,
    event: Option<pb::Event>,
) -> Result<(), tonic::Status> {
    client
        .record_event(pb::RecordEventRequest {
            metadata: Some(unlicensed_metadata()),
            event,
        })
        .await
        .map(|_| ())
}

/// An HTTP answer.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl HttpAnswer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {}", String::from_utf8_lossy(&self.body)))
            .to_string()
    }
}

/// Sends one HTTP/1.1 request with hyper-util's client.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: impl Into<Bytes>,
) -> HttpAnswer {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body.into()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .expect("an answer within 30s")
        .expect("an HTTP answer");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    HttpAnswer {
        status,
        headers,
        body,
    }
}

pub async fn post_events(addr: SocketAddr, body: impl Into<Bytes>) -> HttpAnswer {
    http(addr, "POST", "/v1/events", body).await
}

pub async fn get(addr: SocketAddr, path: &str) -> HttpAnswer {
    http(addr, "GET", path, Bytes::new()).await
}

/// Posts `{"events": [...]}` built from protojson values.
pub async fn post_json_events(addr: SocketAddr, events: &[serde_json::Value]) -> HttpAnswer {
    post_events(addr, json!({ "events": events }).to_string()).await
}

/// An event as protojson (what HTTP clients send).
pub fn event_json(e: &pb::Event) -> serde_json::Value {
    telespool::protojson::render_event(e).unwrap()
}

/// Writes `raw` on a fresh connection, optionally closes the write side,
/// and reads until the server closes or `wait` passes. Returns what was read.
pub async fn raw_http(addr: SocketAddr, raw: &[u8], close_write: bool, wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    if close_write {
        s.shutdown().await.unwrap();
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// Asserts that both APIs still record: one valid event over gRPC and one
/// over HTTP. Returns their ids (to add to what the stores must hold).
pub async fn assert_still_serving(s: &Sidecar) -> Vec<String> {
    let mut client = s.grpc().await;
    let e = valid("search", "submitted");
    let id = e.id.clone();
    let ok = record_payload(&mut client, vec![e]).await.unwrap();
    assert_eq!(ok, vec![id.clone()], "gRPC still records");
    let e = valid("search", "submitted");
    let a = post_json_events(s.http_addr(), &[event_json(&e)]).await;
    assert_eq!(a.status, 200, "HTTP still records: {:?}", a.body);
    assert_eq!(a.json()["succeeded"], json!([e.id]));
    vec![id, e.id]
}

/// The value of a Prometheus counter in the process-wide registry (0 when
/// not yet registered).
pub fn counter(name: &str) -> f64 {
    let text = app::metrics_handle()
        .map(|h| h.render())
        .unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
