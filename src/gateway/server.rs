//! The gRPC service `telemetrygateway.v1.TelemeteryGatewayService`:
//! `RecordEvents` (bidirectional stream, see [`super::stream`]) and the
//! unary `RecordEvent` for managed services:
//!
//! ```text
//! identifier not a managed service   → Unimplemented "unsupported identifier type"
//! (and the managed-service checks of super::identity)
//! no event                           → InvalidArgument "event is required"
//! any publish failure                → Internal "failed to publish event: …"
//! ```
//!
//! [`serve`] runs the service on a listener until a shutdown signal (bind
//! port 0 in tests), accepting messages up to 16 MiB (inflated: gzip is
//! accepted), within the gateway's decode budget (`--decode-budget`), with
//! `RecordEvents` messages decoded lazily (see [`crate::grpc_limits`]), with
//! the connection limits, deadlines and HTTP/2 settings of [`crate::net`],
//! over TLS when the gateway has a certificate (`tls_cert`, `tls_key`; see
//! [`crate::tls`]).

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::config::MAX_MESSAGE_BYTES;
use super::identity::Identity;
use super::metrics;
use super::publish::Publisher;
use super::shutdown::Shutdown;
use super::stream::{PAYLOADS_IN_FLIGHT, StreamTask};
use crate::grpc_limits::{
    DecodeBudget, GrpcLimits, LazyRecordEventsRequest, MessageReservations, TelemetryServer,
    TelemetryService,
};
use crate::net::ListenerLimits;
use crate::proto::telemetrygateway::v1::{
    RecordEventRequest, RecordEventResponse, RecordEventsResponse,
};
use crate::tls::server::ServerTls;

/// HTTP/2 receive window per stream: one ~1 MiB payload (Sourcegraph's
/// chunk size) plus room for the next arrives without waiting for window
/// updates. Bounds what one stream buffers while its payloads publish.
pub const STREAM_WINDOW_BYTES: u32 = 2 * 1024 * 1024;
/// HTTP/2 receive window per connection (several streams).
pub const CONNECTION_WINDOW_BYTES: u32 = 8 * 1024 * 1024;

/// Message when `RecordEvent` has no event.
pub const EVENT_REQUIRED: &str = "event is required";

/// The service implementation.
#[derive(Clone, Debug)]
pub struct GatewayService {
    identity: Arc<Identity>,
    publisher: Publisher,
    shutdown: Shutdown,
    max_events: usize,
    budget: Arc<DecodeBudget>,
}

impl GatewayService {
    /// A service checking identifiers with `identity` and publishing with
    /// `publisher`; open streams end when `shutdown` fires. Payloads of
    /// more than `max_events` events are refused; messages are charged to
    /// `budget`.
    pub fn new(
        identity: Arc<Identity>,
        publisher: Publisher,
        shutdown: Shutdown,
        max_events: usize,
        budget: Arc<DecodeBudget>,
    ) -> Self {
        GatewayService {
            identity,
            publisher,
            shutdown,
            max_events,
            budget,
        }
    }

    /// The tonic server for this service: gzip accepted, messages up to
    /// [`MAX_MESSAGE_BYTES`] once inflated, within the decode budget.
    pub fn into_server(self) -> TelemetryServer<GatewayService> {
        let limits = GrpcLimits {
            budget: self.budget.clone(),
            max_message_bytes: MAX_MESSAGE_BYTES,
            accept_gzip: true,
        };
        TelemetryServer::new(self, limits)
    }

    async fn record_event_inner(
        &self,
        authorization: Option<&str>,
        request: RecordEventRequest,
    ) -> Result<(), Status> {
        let metadata = request.metadata.unwrap_or_default();
        let source = self
            .identity
            .check_managed_service(&metadata, authorization)
            .map_err(|e| e.to_status())?;
        let event = request
            .event
            .ok_or_else(|| Status::invalid_argument(EVENT_REQUIRED))?;
        let ctx = self
            .publisher
            .context(metadata, source)
            .map_err(|e| Status::internal(format!("failed to publish event: {e}")))?;
        self.publisher
            .publish_event(&ctx, event)
            .await
            .map_err(|e| Status::internal(format!("failed to publish event: {e}")))
    }
}

/// The `authorization` gRPC metadata of a call, if it is text.
fn authorization<T>(request: &Request<T>) -> Option<String> {
    request
        .metadata()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

#[tonic::async_trait]
impl TelemetryService for GatewayService {
    type RecordEventsStream = ReceiverStream<Result<RecordEventsResponse, Status>>;

    async fn record_events(
        &self,
        request: Request<Streaming<LazyRecordEventsRequest>>,
    ) -> Result<Response<Self::RecordEventsStream>, Status> {
        let authorization = authorization(&request);
        let reservations = MessageReservations::of(&request);
        let (responses, rx) = mpsc::channel(PAYLOADS_IN_FLIGHT + 1);
        let task = StreamTask {
            identity: self.identity.clone(),
            publisher: self.publisher.clone(),
            authorization,
            shutdown: self.shutdown.clone(),
            responses,
            max_events: self.max_events,
            reservations,
        };
        tokio::spawn(task.run(request.into_inner()));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn record_event(
        &self,
        request: Request<RecordEventRequest>,
    ) -> Result<Response<RecordEventResponse>, Status> {
        let authorization = authorization(&request);
        // The message stays counted in the budget until it is published.
        let _reservation = MessageReservations::of(&request).next();
        let result = self
            .record_event_inner(authorization.as_deref(), request.into_inner())
            .await;
        let code = result.as_ref().err().map_or(tonic::Code::Ok, Status::code);
        metrics::record_call(metrics::RECORD_EVENT, code);
        result.map(|()| Response::new(RecordEventResponse {}))
    }
}

/// Why the gRPC server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The gRPC transport failed while serving. The gateway stops; the
    /// operator restarts it.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The HTTP server failed while serving. The gateway stops; the
    /// operator restarts it.
    #[error("HTTP server: {0}")]
    Http(#[source] std::io::Error),
}

/// Serves the gateway on `listener` until `shutdown` resolves, then stops
/// accepting and waits for open calls to end (streams end on the same
/// signal, after answering the payloads they hold). With `tls`, every
/// connection is TLS ([`crate::tls::server::incoming`]).
pub async fn serve(
    listener: TcpListener,
    service: GatewayService,
    tls: Option<Arc<ServerTls>>,
    limits: ListenerLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let incoming = crate::net::grpc::listener(listener, "gateway_grpc", &limits).into_stream();
    let router = crate::net::grpc::server(&limits)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .add_service(service.into_server());
    match tls {
        Some(tls) => {
            router
                .serve_with_incoming_shutdown(crate::tls::server::incoming(incoming, tls), shutdown)
                .await?;
        }
        None => {
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?;
        }
    }
    Ok(())
}
