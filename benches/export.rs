//! Export drain benchmark: a real `telespool serve` process with a
//! pre-filled backlog of 1,000,000 events of about 600 B exports to an
//! acknowledge-only gateway in this process, on loopback. Reports events/s
//! from the first acknowledgement to the last, and the sidecar's peak
//! anonymous resident memory (RssAnon, from /proc/PID/status) sampled every
//! 100 ms.
//!
//! The gateway is the figure's "fake that does not publish": a tonic server
//! on the real service path, TCP_NODELAY as Go sets it, that decodes each
//! payload's event ids (protobuf skips the other fields of each event) and
//! answers every id. `EXPORT_BENCH_FAKE=full` uses the test suite's fake
//! instead, which decodes every event in full (its cost shares the same two
//! cores with the sidecar, so it measures the pair, not the sidecar).
//!
//! Run: `cargo bench --bench export` (`EXPORT_BENCH_EVENTS=N` to change the
//! backlog, `EXPORT_BENCH_LOG=telespool::export=debug` for per-stream
//! timings from the sidecar, `TELESPOOL_BIN=PATH` to run another build of
//! the sidecar). Under `cargo test` it runs with 20,000 events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use testkit::fake_gateway;

/// The acknowledge-only gateway: decodes ids, answers all of them.
mod ack_only {
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};
    use telespool::proto::telemetrygateway::v1::RecordEventsResponse;
    use tokio_stream::Stream;
    use tonic::codegen::{Body, BoxFuture, StdError, http};
    use tonic::{Request, Response, Status, Streaming};

    /// `RecordEventsRequest` read for its event ids only; the field numbers
    /// are the wire contract's (payload oneof: metadata 1, events 2; events
    /// payload: events 1; event: id 1).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct IdsRequest {
        #[prost(oneof = "IdsPayload", tags = "1, 2")]
        pub payload: Option<IdsPayload>,
    }
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum IdsPayload {
        #[prost(message, tag = "1")]
        Metadata(Skipped),
        #[prost(message, tag = "2")]
        Events(IdsEvents),
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Skipped {}
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct IdsEvents {
        #[prost(message, repeated, tag = "1")]
        pub events: Vec<IdOnly>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct IdOnly {
        #[prost(string, tag = "1")]
        pub id: String,
    }

    /// Every id answered, in order; distinct ids are counted after the run
    /// so that hashing them does not load the cores during it.
    #[derive(Clone, Default)]
    pub struct AckOnly {
        pub acked: Arc<Mutex<Vec<String>>>,
    }

    type Out = Pin<Box<dyn Stream<Item = Result<RecordEventsResponse, Status>> + Send>>;

    struct Method(AckOnly);

    impl tonic::server::StreamingService<IdsRequest> for Method {
        type Response = RecordEventsResponse;
        type ResponseStream = Out;
        type Future = BoxFuture<Response<Out>, Status>;

        fn call(&mut self, req: Request<Streaming<IdsRequest>>) -> Self::Future {
            let me = self.0.clone();
            Box::pin(async move {
                let mut inbound = req.into_inner();
                let (tx, rx) = tokio::sync::mpsc::channel(16);
                tokio::spawn(async move {
                    let mut got_metadata = false;
                    while let Ok(Some(msg)) = inbound.message().await {
                        match msg.payload {
                            Some(IdsPayload::Metadata(_)) => got_metadata = true,
                            Some(IdsPayload::Events(p)) => {
                                if !got_metadata {
                                    let _ = tx
                                        .send(Err(Status::invalid_argument(
                                            "got events when metadata not yet received",
                                        )))
                                        .await;
                                    return;
                                }
                                let ids: Vec<String> = p.events.into_iter().map(|e| e.id).collect();
                                me.acked.lock().unwrap().extend(ids.iter().cloned());
                                let answer = RecordEventsResponse {
                                    succeeded_events: ids,
                                };
                                if tx.send(Ok(answer)).await.is_err() {
                                    return;
                                }
                            }
                            None => {}
                        }
                    }
                });
                let out: Out = Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx));
                Ok(Response::new(out))
            })
        }
    }

    impl<B> tower::Service<http::Request<B>> for AckOnly
    where
        B: Body + Send + 'static,
        B::Error: Into<StdError> + Send + 'static,
    {
        type Response = http::Response<tonic::body::Body>;
        type Error = std::convert::Infallible;
        type Future = BoxFuture<Self::Response, Self::Error>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<B>) -> Self::Future {
            let me = self.clone();
            Box::pin(async move {
                if req.uri().path() != "/telemetrygateway.v1.TelemeteryGatewayService/RecordEvents"
                {
                    return Ok(Status::unimplemented("ack-only fake").into_http());
                }
                let codec = tonic_prost::ProstCodec::<RecordEventsResponse, IdsRequest>::default();
                let mut grpc = tonic::server::Grpc::new(codec)
                    .apply_max_message_size_config(Some(16 << 20), None);
                Ok(grpc.streaming(Method(me), req).await)
            })
        }
    }

    impl tonic::server::NamedService for AckOnly {
        const NAME: &'static str = "telemetrygateway.v1.TelemeteryGatewayService";
    }

    /// Serves on a fresh loopback port; returns the address.
    pub async fn serve(fake: AckOnly) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .initial_stream_window_size(4 << 20)
                .initial_connection_window_size(16 << 20)
                .add_service(fake)
                .serve_with_incoming(
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                )
                .await
                .unwrap();
        });
        addr
    }
}

use prost::Message;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use telespool::proto::telemetrygateway::v1::{
    Event, EventParameters, EventSource, EventUser, event_source,
};
use telespool::{Batch, Queue, QueueConfig, SyncPolicy};

fn event(i: u64) -> Vec<u8> {
    let mut metadata = std::collections::BTreeMap::new();
    for k in 0..24 {
        metadata.insert(
            format!("metric{k:02}"),
            (i % 97) as f64 + f64::from(k) / 3.0,
        );
    }
    Event {
        id: uuid::Uuid::now_v7().to_string(),
        timestamp: Some(prost_types::Timestamp {
            seconds: 1_764_000_000 + (i as i64 % 86_400),
            nanos: 0,
        }),
        feature: "cody.completion".into(),
        action: "accepted".into(),
        source: Some(EventSource {
            server: Some(event_source::Server {
                version: "5.9.0".into(),
            }),
            client: Some(event_source::Client {
                name: "VSCODE".into(),
                version: Some("1.2.3".into()),
            }),
        }),
        parameters: Some(EventParameters {
            version: 1,
            metadata,
            ..Default::default()
        }),
        user: Some(EventUser {
            user_id: Some(i as i64 % 5000),
            anonymous_user_id: Some(format!("anon-{:032}", i % 5000)),
            sams_external_id: None,
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn rss_anon_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::var("EXPORT_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench_mode { 1_000_000 } else { 20_000 });
    let dir = tempfile::tempdir().unwrap();
    let sample = event(0);
    {
        let (q, _) = Queue::open_dir(
            dir.path(),
            QueueConfig {
                sync: SyncPolicy::Never,
                quota_bytes: 16 << 30,
                ..QueueConfig::default()
            },
        )
        .unwrap();
        let mut i = 0;
        while i < n {
            let k = 1000.min(n - i);
            let events: Vec<Vec<u8>> = (i..i + k).map(event).collect();
            q.append(Batch::from_slices(&events)).unwrap();
            i += k;
        }
        q.close().unwrap();
    }
    println!("backlog: {n} events of {} bytes", sample.len());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let full = std::env::var("EXPORT_BENCH_FAKE").is_ok_and(|v| v == "full");
    let fake = fake_gateway::Fake::new(fake_gateway::Mode::AckAll);
    let light = ack_only::AckOnly::default();
    let addr = if full {
        let mut fake_nodecode = fake.clone();
        fake_nodecode.decode = false;
        rt.block_on(fake_nodecode.serve())
    } else {
        rt.block_on(ack_only::serve(light.clone()))
    };
    println!(
        "gateway: {}",
        if full {
            "the tests' fake, decoding every event"
        } else {
            "acknowledge-only, decoding ids"
        }
    );

    // TELESPOOL_BIN: another build of the sidecar, for before/after runs.
    let bin =
        std::env::var("TELESPOOL_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_telespool").into());
    let mut child = Command::new(bin)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--queue-quota",
            "16GiB",
        ])
        .args(["--export-addr", &format!("http://{addr}")])
        .env(
            "TELESPOOL_LOG",
            std::env::var("EXPORT_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Acknowledgements sent so far (distinct ids are checked at the end).
    let acked = || {
        if full {
            fake.seen.lock().unwrap().acked.len() as u64
        } else {
            light.acked.lock().unwrap().len() as u64
        }
    };
    let mut peak_rss = 0u64;
    let mut first: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(r) = rss_anon_kib(pid) {
            peak_rss = peak_rss.max(r);
        }
        let a = acked();
        if a > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if a >= n || Instant::now() > deadline {
            break;
        }
    }
    let elapsed = first.map(|f| f.elapsed()).unwrap_or_default();
    let a = acked();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let status = child.wait().unwrap();
    println!(
        "export drain: {a} of {n} events acknowledged in {:.2}s from the first ack: {:.0} events/s; sidecar peak RssAnon {:.1} MiB; sidecar exit {status}",
        elapsed.as_secs_f64(),
        a as f64 / elapsed.as_secs_f64().max(1e-9),
        peak_rss as f64 / 1024.0
    );
    let distinct = if full {
        a
    } else {
        let mut ids = std::mem::take(&mut *light.acked.lock().unwrap());
        ids.sort_unstable();
        ids.dedup();
        ids.len() as u64
    };
    println!(
        "distinct ids acknowledged: {distinct}; answered more than once: {}",
        a - distinct
    );
    assert_eq!(distinct, n, "every event must be acknowledged");
}
