//! An in-process fake Telemetry Gateway for exporter tests and benches:
//! a real tonic server on a loopback port whose answers follow a mode.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use telespool::proto::telemetrygateway::v1::record_events_request::Payload;
use telespool::proto::telemetrygateway::v1::telemetery_gateway_service_server::{
    TelemeteryGatewayService, TelemeteryGatewayServiceServer,
};
use telespool::proto::telemetrygateway::v1::{
    Event, RecordEventRequest, RecordEventResponse, RecordEventsRequest, RecordEventsResponse,
};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

/// How the fake answers.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Acknowledge every event.
    AckAll,
    /// Acknowledge each event with probability `percent`/100 (seeded by
    /// the event id, so a retry may succeed).
    AckSome { percent: u64 },
    /// Acknowledge everything, ids in reverse order.
    AckReversed,
    /// Acknowledge everything, plus ids that were never sent.
    AckWithUnknown,
    /// Never answer.
    Stall,
    /// Answer the first `n` payloads of each stream, then break the stream.
    DropAfter { n: usize },
    /// Refuse the metadata (InvalidArgument, as a bad license would).
    RefuseMetadata,
    /// Fail every stream with Unavailable.
    Unavailable,
    /// Answer every payload with no ids (its sink is down).
    AckNothing,
    /// Never acknowledge these ids; acknowledge everything else.
    Poison(Vec<String>),
}

/// What the fake saw.
#[derive(Default, Debug)]
pub struct Seen {
    /// Every event received, in order (duplicates included).
    pub events: Vec<Event>,
    /// Acknowledgements per event id.
    pub acked: HashMap<String, u64>,
    /// Streams opened.
    pub streams: u64,
    /// Payloads received.
    pub payloads: u64,
}

#[derive(Clone)]
pub struct Fake {
    pub mode: Arc<Mutex<Mode>>,
    pub seen: Arc<Mutex<Seen>>,
    /// Decode events (turn off for benchmarks: ids are read from raw bytes).
    pub decode: bool,
    counter: Arc<AtomicU64>,
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

impl Fake {
    pub fn new(mode: Mode) -> Fake {
        Fake {
            mode: Arc::new(Mutex::new(mode)),
            seen: Arc::new(Mutex::new(Seen::default())),
            decode: true,
            counter: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    /// Serves on a fresh loopback port; returns the address.
    pub async fn serve(self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .initial_stream_window_size(4 << 20)
                .initial_connection_window_size(16 << 20)
                .add_service(
                    TelemeteryGatewayServiceServer::new(self).max_decoding_message_size(16 << 20),
                )
                .serve_with_incoming(
                    // Go's net package (the real gateway) sets TCP_NODELAY on
                    // every connection; without it small answers wait for
                    // the peer's delayed ACK (40 ms).
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                )
                .await
                .unwrap();
        });
        addr
    }
}

type Out = Pin<Box<dyn Stream<Item = Result<RecordEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TelemeteryGatewayService for Fake {
    type RecordEventsStream = Out;

    async fn record_events(
        &self,
        req: Request<Streaming<RecordEventsRequest>>,
    ) -> Result<Response<Out>, Status> {
        let mode = self.mode.lock().unwrap().clone();
        if let Mode::Unavailable = mode {
            return Err(Status::unavailable("fake gateway is down"));
        }
        self.seen.lock().unwrap().streams += 1;
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let me = self.clone();
        tokio::spawn(async move {
            let mut answered = 0usize;
            let mut got_metadata = false;
            while let Ok(Some(msg)) = inbound.message().await {
                let mode = me.mode.lock().unwrap().clone();
                match msg.payload {
                    Some(Payload::Metadata(_)) => {
                        if let Mode::RefuseMetadata = mode {
                            let _ = tx
                                .send(Err(Status::invalid_argument(
                                    "invalid license_key: refused by the fake",
                                )))
                                .await;
                            return;
                        }
                        got_metadata = true;
                    }
                    Some(Payload::Events(p)) => {
                        if !got_metadata {
                            let _ = tx
                                .send(Err(Status::invalid_argument(
                                    "got events when metadata not yet received",
                                )))
                                .await;
                            return;
                        }
                        let ids: Vec<String> = p.events.iter().map(|e| e.id.clone()).collect();
                        {
                            let mut seen = me.seen.lock().unwrap();
                            seen.payloads += 1;
                            if me.decode {
                                seen.events.extend(p.events);
                            }
                        }
                        let mut ack: Vec<String> = match &mode {
                            Mode::Stall => {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                vec![]
                            }
                            Mode::DropAfter { n } if answered >= *n => return,
                            Mode::AckNothing => vec![],
                            Mode::AckSome { percent } => {
                                let round = me.counter.fetch_add(1, Ordering::Relaxed);
                                ids.iter()
                                    .filter(|id| {
                                        (hash(id) ^ round.wrapping_mul(0x9e3779b97f4a7c15)) % 100
                                            < *percent
                                    })
                                    .cloned()
                                    .collect()
                            }
                            Mode::Poison(bad) => {
                                ids.iter().filter(|id| !bad.contains(id)).cloned().collect()
                            }
                            _ => ids.clone(),
                        };
                        match &mode {
                            Mode::AckReversed => ack.reverse(),
                            Mode::AckWithUnknown => ack.push(format!(
                                "unknown-{}",
                                me.counter.fetch_add(1, Ordering::Relaxed)
                            )),
                            _ => {}
                        }
                        {
                            let mut seen = me.seen.lock().unwrap();
                            for id in &ack {
                                *seen.acked.entry(id.clone()).or_default() += 1;
                            }
                        }
                        answered += 1;
                        if tx
                            .send(Ok(RecordEventsResponse {
                                succeeded_events: ack,
                            }))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    None => {}
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn record_event(
        &self,
        _req: Request<RecordEventRequest>,
    ) -> Result<Response<RecordEventResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
}
