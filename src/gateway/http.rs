//! The gateway's HTTP port:
//!
//! | path | answer |
//! |---|---|
//! | `/healthz` | `200 ok` while the process runs |
//! | `/readyz` | `200 ok` when the sink can take messages, else `503` and the reason |
//! | `/metrics` | Prometheus text format (see [`super::metrics`]) |
//!
//! Served with the connection limits, deadlines and per-request timeout of
//! [`crate::net`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use super::shutdown::Shutdown;
use super::sink::Sink;
use crate::net::ListenerLimits;

/// How long `/readyz` waits for the sink's health check.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// How often histogram storage is compacted (the exporter's upkeep).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// What the routes need.
#[derive(Clone)]
pub struct HttpState {
    /// The sink, for `/readyz`.
    pub sink: Arc<dyn Sink>,
    /// The metrics recorder's handle, for `/metrics`.
    pub metrics: PrometheusHandle,
    /// The gateway's shutdown signal: `/readyz` answers 503 once it fired.
    pub stopping: Shutdown,
}

/// The routes, each answering within `request_timeout` (else `408`).
pub fn router(state: HttpState, request_timeout: Duration) -> Router {
    let timed = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(state);
    crate::net::http::timed(timed, request_timeout)
}

async fn ready(State(state): State<HttpState>) -> impl IntoResponse {
    if state.stopping.is_shutdown() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n".to_owned(),
        );
    }
    match tokio::time::timeout(READY_TIMEOUT, state.sink.health()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n".to_owned()),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} sink not ready: {e}\n", state.sink.name()),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} sink not ready: no health answer within {READY_TIMEOUT:?}\n",
                state.sink.name()
            ),
        ),
    }
}

async fn render_metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Serves the routes on `listener` until `shutdown` resolves; runs the
/// metrics upkeep meanwhile.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    limits: ListenerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    let handle = state.metrics.clone();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
    let listener = crate::net::http::listener(listener, "gateway_http", &limits);
    crate::net::http::serve(
        listener,
        router(state, limits.request_timeout),
        &limits,
        shutdown,
    )
    .await;
    upkeep.abort();
    Ok(())
}
