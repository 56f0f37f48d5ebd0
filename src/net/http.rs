//! Serving an axum [`Router`] on a [`Listener`] with hyper-util's
//! HTTP/1-or-HTTP/2 connection builder, which `axum::serve` does not let
//! us configure: without a timer hyper silently drops the header-read
//! timeout.
//!
//! Each connection runs with the header-read timeout (HTTP/1), the HTTP/2
//! settings of [`super::grpc`] (prior-knowledge HTTP/2 is accepted as
//! before), the listener's first-byte, idle and lifetime deadlines, and is
//! asked to close at `max_connection_age` (HTTP/1: after its current
//! request; HTTP/2: `GOAWAY`). The peer address reaches handlers as
//! `ConnectInfo<SocketAddr>`, as with `axum::serve`.
//!
//! Shutdown, as `axum::serve`'s graceful shutdown: stop accepting (the
//! listening socket is closed), ask every connection to close after its
//! in-flight requests, and return once all are closed.
//!
//! Routes come in two sets: [`timed`] wraps ordinary routes in the
//! per-request timeout (`408` with a JSON error naming `request_timeout`);
//! a streaming route (a tail, a live view) is merged in without it, and
//! must send something (a heartbeat) more often than `http_idle_timeout`
//! or the idle deadline closes its connection.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tower::ServiceExt as _;

use super::limits::{
    HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS, HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS, ListenerLimits,
};
use super::listener::{ConnDeadlines, Listener, TIMEOUTS};

/// The deadlines of an HTTP listener's connections: first bytes within
/// the header timeout, no silence longer than the idle timeout, closed at
/// age plus grace.
pub fn deadlines(limits: &ListenerLimits) -> ConnDeadlines {
    ConnDeadlines {
        first_read: Some(limits.http_header_timeout),
        idle: Some(limits.http_idle_timeout),
        lifetime: Some(limits.lifetime()),
    }
}

/// A listener for HTTP with `limits`' connection limit and deadlines.
pub fn listener(
    inner: tokio::net::TcpListener,
    name: &'static str,
    limits: &ListenerLimits,
) -> Listener {
    Listener::new(inner, name, limits.max_connections, deadlines(limits))
}

/// `router`'s routes answer `408` with a JSON error when a request is not
/// answered within `timeout` (reading its body included). Merge streaming
/// routes after this, not before.
pub fn timed(router: Router, timeout: Duration) -> Router {
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| async move {
            match tokio::time::timeout(timeout, next.run(request)).await {
                Ok(response) => response,
                Err(_) => timed_out(timeout),
            }
        },
    ))
}

fn timed_out(timeout: Duration) -> Response {
    (
        StatusCode::REQUEST_TIMEOUT,
        axum::Json(serde_json::json!({
            "error": format!(
                "the request was not answered within {} (request_timeout)",
                humantime::format_duration(timeout)
            ),
        })),
    )
        .into_response()
}

fn builder(limits: &ListenerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.http_header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams)
        .keep_alive_interval(limits.http2_keepalive_interval)
        .keep_alive_timeout(limits.http2_keepalive_timeout)
        .max_pending_accept_reset_streams(HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS);
    builder
}

/// Serves `app` on `listener` until `shutdown` resolves, then shuts down
/// gracefully (see the module docs).
pub async fn serve(
    mut listener: Listener,
    app: Router,
    limits: &ListenerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let builder = builder(limits);
    let name = listener.name();
    let age = limits.max_connection_age;
    // Every connection task holds a receiver: once all are dropped, every
    // connection is closed.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (conn, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: axum::http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut connection =
                pin!(builder.serve_connection_with_upgrades(TokioIo::new(conn), service));
            let mut aged = pin!(tokio::time::sleep(age));
            let mut closing = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            if e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout) {
                                metrics::counter!(TIMEOUTS, "listener" => name, "kind" => "header").increment(1);
                            }
                            tracing::debug!(listener = name, error = %e, "HTTP connection ended with an error");
                        }
                        break;
                    }
                    () = &mut aged, if !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    _ = stop.wait_for(|stop| *stop), if !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(stop);
        });
    }
    // Stop accepting: the listening socket closes here.
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
}
