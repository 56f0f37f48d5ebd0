//! The `telemetrygateway.v1.TelemeteryGatewayService` server of both our
//! processes, written by hand in place of the generated one (same paths,
//! same service name, same answers to unknown paths) so that:
//!
//! - `RecordEvents` decodes with [`LazyCodec`] (the generated server
//!   hard-wires prost's codec, which decodes every event of a message
//!   before the call sees it);
//! - every request body is a [`BudgetBody`], charged to the server's
//!   [`DecodeBudget`] as it arrives, its messages' reservations in the
//!   request's extensions ([`MessageReservations`]).
//!
//! `RecordEvent` (one event) keeps prost's codec, under the same message
//! size limit and budget.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio_stream::Stream;
use tonic::codegen::{BoxFuture, Service};
use tonic::server::{Grpc, NamedService, StreamingService, UnaryService};
use tonic::{Request, Response, Status, Streaming};

use super::body::BudgetBody;
use super::budget::{DecodeBudget, MessageReservations};
use super::lazy::{LazyCodec, LazyRecordEventsRequest};
use crate::proto::telemetrygateway::v1::telemetery_gateway_service_server::SERVICE_NAME;
use crate::proto::telemetrygateway::v1::{
    RecordEventRequest, RecordEventResponse, RecordEventsResponse,
};

/// Path of `RecordEvents` (with Sourcegraph's "Telemetery").
pub const RECORD_EVENTS_PATH: &str = "/telemetrygateway.v1.TelemeteryGatewayService/RecordEvents";
/// Path of `RecordEvent`.
pub const RECORD_EVENT_PATH: &str = "/telemetrygateway.v1.TelemeteryGatewayService/RecordEvent";

/// What a server implements: the generated trait's two methods, with
/// `RecordEvents` messages decoded lazily.
#[tonic::async_trait]
pub trait TelemetryService: Send + Sync + 'static {
    /// The stream of `RecordEvents` answers.
    type RecordEventsStream: Stream<Item = Result<RecordEventsResponse, Status>> + Send + 'static;

    /// `RecordEvents`: take each message's reservation with
    /// [`MessageReservations::of`] and hold it while the message is kept.
    async fn record_events(
        &self,
        request: Request<Streaming<LazyRecordEventsRequest>>,
    ) -> Result<Response<Self::RecordEventsStream>, Status>;

    /// `RecordEvent`.
    async fn record_event(
        &self,
        request: Request<RecordEventRequest>,
    ) -> Result<Response<RecordEventResponse>, Status>;
}

/// How a server bounds what it decodes.
#[derive(Clone, Debug)]
pub struct GrpcLimits {
    /// The budget of message bytes, shared by every call.
    pub budget: Arc<DecodeBudget>,
    /// Largest message, after inflation.
    pub max_message_bytes: usize,
    /// Accept gzip-compressed requests (inflated by [`BudgetBody`]).
    pub accept_gzip: bool,
}

/// The tonic service for a [`TelemetryService`].
#[derive(Debug)]
pub struct TelemetryServer<T> {
    inner: Arc<T>,
    limits: GrpcLimits,
}

impl<T> Clone for TelemetryServer<T> {
    fn clone(&self) -> Self {
        TelemetryServer {
            inner: self.inner.clone(),
            limits: self.limits.clone(),
        }
    }
}

impl<T: TelemetryService> TelemetryServer<T> {
    /// Serves `inner` within `limits`.
    pub fn new(inner: T, limits: GrpcLimits) -> TelemetryServer<T> {
        TelemetryServer {
            inner: Arc::new(inner),
            limits,
        }
    }
}

impl<T> NamedService for TelemetryServer<T> {
    const NAME: &'static str = SERVICE_NAME;
}

struct RecordEventsSvc<T>(Arc<T>);

impl<T: TelemetryService> StreamingService<LazyRecordEventsRequest> for RecordEventsSvc<T> {
    type Response = RecordEventsResponse;
    type ResponseStream = T::RecordEventsStream;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<LazyRecordEventsRequest>>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { inner.record_events(request).await })
    }
}

struct RecordEventSvc<T>(Arc<T>);

impl<T: TelemetryService> UnaryService<RecordEventRequest> for RecordEventSvc<T> {
    type Response = RecordEventResponse;
    type Future = BoxFuture<Response<RecordEventResponse>, Status>;

    fn call(&mut self, request: Request<RecordEventRequest>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { inner.record_event(request).await })
    }
}

fn configure<C: tonic::codec::Codec>(grpc: Grpc<C>, limits: &GrpcLimits) -> Grpc<C> {
    let grpc = grpc
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    if limits.accept_gzip {
        grpc.accept_compressed(tonic::codec::CompressionEncoding::Gzip)
    } else {
        grpc
    }
}

impl<T: TelemetryService> Service<http::Request<tonic::body::Body>> for TelemetryServer<T> {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let inner = self.inner.clone();
        let limits = self.limits.clone();
        Box::pin(async move {
            let path = request.uri().path();
            if path != RECORD_EVENTS_PATH && path != RECORD_EVENT_PATH {
                return Ok(Status::unimplemented("").into_http());
            }
            let unary = path == RECORD_EVENT_PATH;
            let inflate = limits.accept_gzip
                && request
                    .headers()
                    .get("grpc-encoding")
                    .is_some_and(|v| v.as_bytes() == b"gzip");
            let held = MessageReservations::default();
            let (mut parts, body) = request.into_parts();
            parts.extensions.insert(held.clone());
            let body = BudgetBody::new(
                body,
                limits.budget.clone(),
                held,
                limits.max_message_bytes,
                inflate,
            );
            let request = http::Request::from_parts(parts, tonic::body::Body::new(body));
            let response = if unary {
                let codec =
                    tonic_prost::ProstCodec::<RecordEventResponse, RecordEventRequest>::default();
                configure(Grpc::new(codec), &limits)
                    .unary(RecordEventSvc(inner), request)
                    .await
            } else {
                configure(Grpc::new(LazyCodec), &limits)
                    .streaming(RecordEventsSvc(inner), request)
                    .await
            };
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc_limits::budget::SIDECAR_BUDGET;

    #[derive(Default)]
    struct Recording(std::sync::Mutex<Vec<&'static str>>);

    #[tonic::async_trait]
    impl TelemetryService for Recording {
        type RecordEventsStream = tokio_stream::Empty<Result<RecordEventsResponse, Status>>;

        async fn record_events(
            &self,
            _: Request<Streaming<LazyRecordEventsRequest>>,
        ) -> Result<Response<Self::RecordEventsStream>, Status> {
            self.0.lock().unwrap().push("RecordEvents");
            Ok(Response::new(tokio_stream::empty()))
        }

        async fn record_event(
            &self,
            _: Request<RecordEventRequest>,
        ) -> Result<Response<RecordEventResponse>, Status> {
            self.0.lock().unwrap().push("RecordEvent");
            Ok(Response::new(RecordEventResponse {}))
        }
    }

    async fn call(server: &mut TelemetryServer<Recording>, path: &str) -> Option<String> {
        let request = http::Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(tonic::body::Body::new(String::from("\0\0\0\0\0")))
            .unwrap();
        let response = server.call(request).await.unwrap();
        assert_eq!(response.status(), http::StatusCode::OK);
        response
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn the_documented_paths_are_served_and_the_corrected_spelling_is_unimplemented() {
        assert_eq!(
            <TelemetryServer<Recording> as NamedService>::NAME,
            "telemetrygateway.v1.TelemeteryGatewayService"
        );
        let mut server = TelemetryServer::new(
            Recording::default(),
            GrpcLimits {
                budget: DecodeBudget::new(1 << 20, SIDECAR_BUDGET),
                max_message_bytes: 1 << 20,
                accept_gzip: false,
            },
        );
        assert_eq!(call(&mut server, RECORD_EVENT_PATH).await, None);
        assert_eq!(call(&mut server, RECORD_EVENTS_PATH).await, None);
        for path in [
            "/telemetrygateway.v1.TelemetryGatewayService/RecordEvent",
            "/telemetrygateway.v1.TelemetryGatewayService/RecordEvents",
        ] {
            assert_eq!(call(&mut server, path).await.as_deref(), Some("12"));
        }
        assert_eq!(
            *server.inner.0.lock().unwrap(),
            ["RecordEvent", "RecordEvents"]
        );
    }
}
