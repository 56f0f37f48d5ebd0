//! Gateway throughput: events acknowledged per second, with a tonic client
//! in the same process on loopback, payloads of 1,000 events of about
//! 600 bytes each, several streams with several payloads in flight each.
//!
//! Scenarios (all by default; name one or more to pick):
//!
//! - `file`: the JSONL file sink in a temporary directory (fdatasync
//!   before every acknowledgement, group commit).
//! - `nats`: the NATS JetStream sink against a `nats-server -js` started
//!   here on a free loopback port with a temporary file store (skipped,
//!   with a note, when `nats-server` is not installed).
//! - `js`: a baseline, async-nats alone publishing gateway-sized messages
//!   to a JetStream file stream through `jetstream::Context` (no gRPC, no
//!   rendering). The sink publishes through the core client instead (see
//!   `src/gateway/sink/nats.rs`), which costs less per message.
//! - `render`: the per-event work alone (validate, protojson body,
//!   attributes) on one core, no I/O.
//! - `decode`: decoding one payload of 1,000 events on one core, prost's
//!   full decode (what tonic's prost codec did) against the lazy decode the
//!   servers use (count, then decode one at a time; `src/grpc_limits/`).
//!
//! The client sends **pre-encoded** payloads by default, as telespool's
//! exporter does (its queue holds encoded events): a payload is encoded
//! once, and each send copies it and writes fresh ids in place, so the
//! client costs little next to the gateway. `GATEWAY_BENCH_CLIENT=prost`
//! uses the generated client instead, building and encoding 1,000 `Event`
//! structs per payload (client and gateway then share the two cores).
//!
//! Run: `cargo bench --bench gateway` or `cargo bench --bench gateway --
//! file`. Settings from the environment: `GATEWAY_BENCH_SECS` (measured
//! seconds per scenario, default 10), `GATEWAY_BENCH_STREAMS` (default 4),
//! `GATEWAY_BENCH_IN_FLIGHT` (payloads in flight per stream, default 4),
//! `GATEWAY_BENCH_CLIENT` (`raw`, the default, or `prost`),
//! `GATEWAY_BENCH_PUBLISH_CONCURRENCY` (the gateway's, default 250).
//! Figures are recorded in `docs/gateway.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
/// The allocator of the `telespool` binary (see `src/main.rs`), so the
/// bench measures what ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use prost_types::{Struct, Timestamp, Value, value::Kind};
use telespool::gateway::config::SinkSpec;
use telespool::gateway::publish::{StreamContext, gateway_limits, prepare};
use telespool::gateway::render::PublisherSource;
use telespool::gateway::{Gateway, GatewayConfig};
use telespool::proto::telemetrygateway::v1::event_source::{Client, Server};
use telespool::proto::telemetrygateway::v1::identifier::{
    Identifier as Kind_, LicensedInstanceIdentifier,
};
use telespool::proto::telemetrygateway::v1::record_events_request::{EventsPayload, Payload};
use telespool::proto::telemetrygateway::v1::telemetery_gateway_service_client::TelemeteryGatewayServiceClient;
use telespool::proto::telemetrygateway::v1::{
    Event, EventFeatureFlags, EventParameters, EventSource, EventUser, Identifier,
    RecordEventsRequest, RecordEventsRequestMetadata, RecordEventsResponse,
};
use testkit::nats::NatsServer;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;

const PAYLOAD_EVENTS: usize = 1000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `cargo bench` passes `--bench`; `cargo test --all-targets` does not,
/// and then every scenario only runs briefly, as a smoke test (like
/// criterion's test mode).
fn test_mode() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// Measured seconds per scenario.
fn seconds() -> u64 {
    env_or("GATEWAY_BENCH_SECS", if test_mode() { 1 } else { 10 })
}

fn metadata() -> RecordEventsRequestMetadata {
    RecordEventsRequestMetadata {
        request_id: "bench".to_owned(),
        identifier: Some(Identifier {
            identifier: Some(Kind_::LicensedInstance(LicensedInstanceIdentifier {
                license_key: "bench-key".to_owned(),
                instance_id: "instance".to_owned(),
                external_url: "https://sourcegraph.example.com".to_owned(),
            })),
        }),
    }
}

/// A realistic event of about 600 bytes encoded.
fn event(id: String, i: u64) -> Event {
    let s = |v: &str| Value {
        kind: Some(Kind::StringValue(v.to_owned())),
    };
    Event {
        id,
        timestamp: Some(Timestamp {
            seconds: 1_700_000_000 + (i % 100_000) as i64,
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

fn payload(stream: usize, seq: &mut u64) -> RecordEventsRequest {
    let events = (0..PAYLOAD_EVENTS)
        .map(|_| {
            *seq += 1;
            event(format!("{stream:04}-{:015}", *seq), *seq)
        })
        .collect();
    RecordEventsRequest {
        payload: Some(Payload::Events(EventsPayload { events })),
    }
}

/// One client stream: keeps `in_flight` payloads outstanding until
/// `until`; counts acknowledged ids.
async fn drive(
    addr: SocketAddr,
    stream: usize,
    in_flight: usize,
    until: Instant,
    acked: Arc<AtomicU64>,
) {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client =
        TelemeteryGatewayServiceClient::new(channel).max_encoding_message_size(16 << 20);
    let (tx, rx) = mpsc::channel(in_flight + 1);
    tx.send(RecordEventsRequest {
        payload: Some(Payload::Metadata(metadata())),
    })
    .await
    .unwrap();
    let permits = Arc::new(Semaphore::new(in_flight));
    let sender = {
        let permits = permits.clone();
        tokio::spawn(async move {
            let mut seq = 0;
            while Instant::now() < until {
                permits.acquire().await.unwrap().forget();
                if tx.send(payload(stream, &mut seq)).await.is_err() {
                    break;
                }
            }
        })
    };
    let mut inbound = client
        .record_events(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    while let Some(response) = inbound.message().await.unwrap() {
        acked.fetch_add(response.succeeded_events.len() as u64, Ordering::Relaxed);
        permits.add_permits(1);
    }
    sender.await.unwrap();
}

/// Width of every bench event id (`SSSS-NNNNNNNNNNNNNNN`), so ids can be
/// rewritten in place in an encoded payload.
const ID_WIDTH: usize = 20;

/// An encoded `RecordEventsRequest` (1,000 events) and where each event's
/// id bytes are.
struct Template {
    bytes: Vec<u8>,
    id_offsets: Vec<usize>,
}

impl Template {
    fn new(stream: usize) -> Template {
        let mut seq = 0;
        let request = payload(stream, &mut seq);
        let bytes = request.encode_to_vec();
        let mut id_offsets = Vec::with_capacity(PAYLOAD_EVENTS);
        let mut from = 0;
        for i in 1..=PAYLOAD_EVENTS as u64 {
            let id = format!("{stream:04}-{i:015}");
            assert_eq!(id.len(), ID_WIDTH);
            let at = from
                + bytes[from..]
                    .windows(ID_WIDTH)
                    .position(|w| w == id.as_bytes())
                    .unwrap();
            id_offsets.push(at);
            from = at + ID_WIDTH;
        }
        Template { bytes, id_offsets }
    }

    /// A copy with ids `first..first + 1000` written in.
    fn with_ids(&self, first: u64) -> bytes::Bytes {
        let mut bytes = self.bytes.clone();
        for (i, at) in self.id_offsets.iter().enumerate() {
            let mut n = first + i as u64;
            // The 15-digit sequence after "SSSS-".
            for slot in bytes[at + 5..at + ID_WIDTH].iter_mut().rev() {
                *slot = b'0' + (n % 10) as u8;
                n /= 10;
            }
        }
        bytes::Bytes::from(bytes)
    }
}

/// A tonic codec that sends already-encoded messages.
#[derive(Clone, Copy, Default)]
struct RawCodec;

struct RawEncoder;
struct ResponseDecoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: bytes::Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put(dst, item);
        Ok(())
    }
}

impl tonic::codec::Decoder for ResponseDecoder {
    type Item = RecordEventsResponse;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<RecordEventsResponse>, tonic::Status> {
        RecordEventsResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = bytes::Bytes;
    type Decode = RecordEventsResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

/// [`drive`] with pre-encoded payloads through [`RawCodec`].
async fn drive_raw(
    addr: SocketAddr,
    stream: usize,
    in_flight: usize,
    until: Instant,
    acked: Arc<AtomicU64>,
) {
    let template = Template::new(stream);
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(16 << 20);
    let (tx, rx) = mpsc::channel::<bytes::Bytes>(in_flight + 1);
    tx.send(bytes::Bytes::from(
        RecordEventsRequest {
            payload: Some(Payload::Metadata(metadata())),
        }
        .encode_to_vec(),
    ))
    .await
    .unwrap();
    let permits = Arc::new(Semaphore::new(in_flight));
    let sender = {
        let permits = permits.clone();
        tokio::spawn(async move {
            let mut next = 1_000_000;
            while Instant::now() < until {
                permits.acquire().await.unwrap().forget();
                let payload = template.with_ids(next);
                next += PAYLOAD_EVENTS as u64;
                if tx.send(payload).await.is_err() {
                    break;
                }
            }
        })
    };
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/telemetrygateway.v1.TelemeteryGatewayService/RecordEvents",
    );
    let mut inbound = grpc
        .streaming(tonic::Request::new(ReceiverStream::new(rx)), path, RawCodec)
        .await
        .unwrap()
        .into_inner();
    while let Some(response) = inbound.message().await.unwrap() {
        acked.fetch_add(response.succeeded_events.len() as u64, Ordering::Relaxed);
        permits.add_permits(1);
    }
    sender.await.unwrap();
}

/// Runs the client load against a gateway and reports events/s.
async fn measure(name: &str, gateway: Gateway) -> f64 {
    let secs = seconds();
    let streams = env_or("GATEWAY_BENCH_STREAMS", 4) as usize;
    let in_flight = env_or("GATEWAY_BENCH_IN_FLIGHT", 4) as usize;
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway.run(grpc, http, async move {
        let _ = stopped.await;
    }));
    // Warm up for 1 s, then measure.
    let acked = Arc::new(AtomicU64::new(0));
    let warm_up = if test_mode() { 200 } else { 1000 };
    let warm_until = Instant::now() + Duration::from_millis(warm_up);
    let until = warm_until + Duration::from_secs(secs);
    let raw = std::env::var("GATEWAY_BENCH_CLIENT").map_or(true, |c| c != "prost");
    let clients: Vec<_> = (0..streams)
        .map(|s| {
            if raw {
                tokio::spawn(drive_raw(addr, s, in_flight, until, acked.clone()))
            } else {
                tokio::spawn(drive(addr, s, in_flight, until, acked.clone()))
            }
        })
        .collect();
    tokio::time::sleep_until(warm_until.into()).await;
    let start_count = acked.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep_until(until.into()).await;
    let count = acked.load(Ordering::Relaxed) - start_count;
    let took = started.elapsed().as_secs_f64();
    for client in clients {
        client.await.unwrap();
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let rate = count as f64 / took;
    let metrics = telespool::gateway::metrics::install().unwrap().render();
    let stat = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name) && !l.contains('{'))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .sum()
    };
    let (syncs, sync_secs) = (
        stat("telespool_gateway_file_sync_seconds_count"),
        stat("telespool_gateway_file_sync_seconds_sum"),
    );
    if syncs > 0.0 && name == "file" {
        println!(
            "        {syncs:.0} fdatasyncs in all, {:.2} ms each on average",
            sync_secs * 1000.0 / syncs
        );
    }
    let client = if raw { "pre-encoded" } else { "prost" };
    println!(
        "{name:>6}: {rate:>10.0} events/s acknowledged ({count} events in {took:.1} s; {streams} streams x {in_flight} payloads of {PAYLOAD_EVENTS} in flight; {client} client)"
    );
    rate
}

fn config(sink: SinkSpec) -> GatewayConfig {
    GatewayConfig {
        sink,
        publish_concurrency: env_or("GATEWAY_BENCH_PUBLISH_CONCURRENCY", 250) as usize,
        accept_any_license: true,
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        ..GatewayConfig::default()
    }
}

async fn file_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::open(config(SinkSpec::File(dir.path().join("events.jsonl"))))
        .await
        .unwrap();
    measure("file", gateway).await;
}

async fn nats_scenario() {
    let Some(server) = start_nats() else {
        return;
    };
    let gateway = Gateway::open(config(SinkSpec::Nats(server.url())))
        .await
        .unwrap();
    measure("nats", gateway).await;
}

/// Starts `nats-server -js` on a free loopback port with a temporary file
/// store (the tests' [`NatsServer`]); `None` when it is not installed.
fn start_nats() -> Option<NatsServer> {
    if testkit::nats::find_binary().is_none() {
        println!("  nats: skipped, nats-server is not installed (apt-get install -y nats-server)");
        return None;
    }
    Some(NatsServer::start())
}

/// Baseline: async-nats alone publishing gateway-sized messages (1 KB body,
/// the gateway's headers, a message id) to a JetStream file stream with
/// `jetstream::Context::send_publish`: windows of 250, 16 windows at once,
/// acks awaited per window. No gRPC and no rendering.
async fn jetstream_baseline() {
    use async_nats::jetstream;
    let Some(server) = start_nats() else {
        return;
    };
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = jetstream::new(client);
    js.create_stream(jetstream::stream::Config {
        name: "baseline".to_owned(),
        subjects: vec!["baseline".to_owned()],
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap();
    let body = bytes::Bytes::from(vec![b'x'; 1015]);
    let secs = seconds();
    let until = Instant::now() + Duration::from_secs(secs);
    let acked = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..16u64)
        .map(|t| {
            let (js, body, acked) = (js.clone(), body.clone(), acked.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    let mut acks = Vec::with_capacity(250);
                    for _ in 0..250 {
                        n += 1;
                        let mut headers = async_nats::HeaderMap::new();
                        for (k, v) in [
                            ("event.action", "accepted"),
                            ("event.feature", "cody.completion"),
                            ("event.hasPrivateMetadata", "true"),
                            ("event.recordsPrivateMetadataTranscript", "true"),
                            ("publisher.source", "licensed_instance"),
                        ] {
                            headers.insert(k, v);
                        }
                        let publish = jetstream::message::PublishMessage::build()
                            .payload(body.clone())
                            .headers(headers)
                            .message_id(format!("{t:04}-{n:015}"));
                        acks.push(js.send_publish("baseline", publish).await.unwrap());
                    }
                    for ack in acks {
                        ack.await.unwrap();
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let took = started.elapsed().as_secs_f64();
    let count = acked.load(Ordering::Relaxed);
    println!(
        "    js: {:>10.0} messages/s acknowledged by JetStream, async-nats alone (baseline for the nats figure)",
        count as f64 / took
    );
}

fn render_scenario() {
    let ctx = StreamContext::new(metadata(), PublisherSource::LicensedInstance).unwrap();
    let limits = gateway_limits();
    let sample = event("0190b6d2-7f3a-7c55-9a1e-8f5b8e2c4d11".to_owned(), 1);
    let n = if test_mode() { 1_000 } else { 100_000 };
    let started = Instant::now();
    let mut bytes = 0;
    for i in 0..n {
        let mut e = sample.clone();
        e.timestamp = Some(Timestamp {
            seconds: 1_700_000_000 + i,
            nanos: 0,
        });
        bytes += prepare(&ctx, &mut e, &limits).unwrap().body.len();
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "render: {:>10.0} events/s on one core ({:.2} us/event; event {} B protobuf, body {} B JSON)",
        n as f64 / took,
        took * 1e6 / n as f64,
        sample.encoded_len(),
        bytes / n as usize
    );
}

fn decode_scenario() {
    use telespool::grpc_limits::{LazyPayload, LazyRecordEventsRequest};
    let events = (0..1_000u64)
        .map(|i| event(format!("0190b6d2-7f3a-7c55-9a1e-{i:012}"), i))
        .collect();
    let request = RecordEventsRequest {
        payload: Some(Payload::Events(EventsPayload { events })),
    };
    let bytes = bytes::Bytes::from(request.encode_to_vec());
    let n = if test_mode() { 10 } else { 2_000 };
    for round in 0..3 {
        let started = Instant::now();
        for _ in 0..n {
            let decoded = RecordEventsRequest::decode(bytes.clone()).unwrap();
            std::hint::black_box(decoded);
        }
        let prost = started.elapsed().as_secs_f64() / f64::from(n);
        let started = Instant::now();
        for _ in 0..n {
            let lazy = LazyRecordEventsRequest::decode(bytes.clone()).unwrap();
            let Some(LazyPayload::Events(raw)) = lazy.payload else {
                panic!("an events payload");
            };
            std::hint::black_box(raw.decode_all().unwrap());
        }
        let lazy = started.elapsed().as_secs_f64() / f64::from(n);
        println!(
            "decode: round {round}: prost {:.0} us, lazy {:.0} us per 1,000-event payload ({} B), lazy/prost {:.3}",
            prost * 1e6,
            lazy * 1e6,
            bytes.len(),
            lazy / prost
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else not starting with `-`
    // names scenarios.
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| picked.is_empty() || picked.iter().any(|p| p == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if wants("render") {
        render_scenario();
    }
    if wants("decode") {
        decode_scenario();
    }
    if wants("file") {
        runtime.block_on(file_scenario());
    }
    if wants("nats") {
        runtime.block_on(nats_scenario());
    }
    if wants("js") {
        runtime.block_on(jetstream_baseline());
    }
}
