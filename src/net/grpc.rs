//! The tonic server builder and listener of the gRPC servers (the
//! gateway's and the sidecar's ingest).
//!
//! tonic serves the connections (its HTTP/2 settings, per-call timeout,
//! graceful shutdown and, later, TLS); connections come from a
//! [`Listener`] through `serve_with_incoming_shutdown`, which gives the
//! accept loop its connection limit, back-off and deadlines.
//!
//! Connection age: tonic's `max_connection_age` sends `GOAWAY` (`NO_ERROR`)
//! and lets the calls in flight finish; its `max_connection_age_grace`
//! is not used, because tonic 0.14 then skips the `GOAWAY` and only cuts
//! the connection at age plus grace. The hard stop at age plus grace is
//! the listener's lifetime deadline instead.
//!
//! Per-call timeout: tonic's `timeout` bounds the time to the answer's
//! head. A unary call's head comes after its request is read and handled,
//! so the whole call is bounded; a `RecordEvents` handler answers its head
//! at once and handles the stream in a task of its own, so streams are
//! exempt and live as long as they are used (and the connection lives).

use tonic::transport::Server;

use super::limits::{
    HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS, HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS, ListenerLimits,
};
use super::listener::{ConnDeadlines, Listener};

/// The deadlines of a gRPC listener's connections: first bytes within the
/// header timeout, no silence longer than a keepalive round (the server
/// pings after `http2_keepalive_interval` of silence), closed at age plus
/// grace.
pub fn deadlines(limits: &ListenerLimits) -> ConnDeadlines {
    ConnDeadlines {
        first_read: Some(limits.http_header_timeout),
        idle: Some(limits.grpc_idle_timeout()),
        lifetime: Some(limits.lifetime()),
    }
}

/// A listener for gRPC with `limits`' connection limit and deadlines.
pub fn listener(
    inner: tokio::net::TcpListener,
    name: &'static str,
    limits: &ListenerLimits,
) -> Listener {
    Listener::new(inner, name, limits.max_connections, deadlines(limits))
}

/// A tonic server builder with `limits`' HTTP/2 settings, connection age
/// and per-call timeout, and the reset-flood guards on.
pub fn server(limits: &ListenerLimits) -> Server {
    Server::builder()
        .max_concurrent_streams(limits.http2_max_streams)
        .http2_keepalive_interval(Some(limits.http2_keepalive_interval))
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout))
        .max_connection_age(limits.max_connection_age)
        .http2_max_pending_accept_reset_streams(Some(HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS))
        .http2_max_local_error_reset_streams(Some(HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS))
        .timeout(limits.request_timeout)
}
