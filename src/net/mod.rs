//! Listeners that are safe on an open network: the accept loop, the
//! connection limits and deadlines, and the HTTP/2 and HTTP/1 settings
//! shared by all four listeners (the sidecar's gRPC ingest and HTTP port,
//! the gateway's gRPC and HTTP ports). Below both the sidecar and the
//! gateway: it knows nothing of events.
//!
//! ```text
//! TcpListener ─▶ listener::Listener ─▶ Conn (slot, deadlines, TCP_NODELAY)
//!                 (max_connections,        │
//!                  accept back-off)        ├─▶ grpc::server(limits): tonic, serve_with_incoming_shutdown
//!                                          └─▶ http::serve(listener, router, limits): hyper-util auto
//! rlimit::prepare: soft RLIMIT_NOFILE raised to the hard limit at start, logged against max_connections
//! ```
//!
//! # Limits
//!
//! Every setting has the same flag on `telespool serve` and `telespool
//! gateway` (environment `TELESPOOL_<NAME>` and `TELESPOOL_GATEWAY_<NAME>`,
//! TOML key `<name>`):
//!
//! | Setting | Default | Applies to | What happens past it |
//! |---|---|---|---|
//! | `--max-connections` | gateway 20,000, sidecar 1,024 (per listener) | every listener | the listener stops accepting; new connections wait in the kernel backlog (then the client's connect times out); counted in `telespool_listener_limit_reached_total`, warned (at most every 10 s) |
//! | `--http2-max-streams` | 100 | HTTP/2 connections (gRPC; h2c on HTTP ports) | advertised as `SETTINGS_MAX_CONCURRENT_STREAMS`; clients queue, streams opened past it are refused (`REFUSED_STREAM`) |
//! | `--http2-keepalive-interval` | 60 s | HTTP/2 connections | the server pings a connection that sent nothing for this long |
//! | `--http2-keepalive-timeout` | 20 s | HTTP/2 connections | an unanswered ping closes the connection |
//! | `--max-connection-age` | 30 min | every connection | HTTP/2: `GOAWAY` (`NO_ERROR`), calls in flight finish, clients reconnect; HTTP/1: closed after its current request |
//! | `--max-connection-age-grace` | 5 min | every connection | the connection is closed at age plus grace, whatever it is doing |
//! | `--http-header-timeout` | 10 s | every connection; HTTP/1 requests | a connection that sent no byte, or (HTTP/1) no complete request head, within it is closed; on a keep-alive HTTP/1 connection the wait for the next request counts too |
//! | `--http-idle-timeout` | 60 s | HTTP ports | a connection with no byte moving either way for this long is closed (stalled uploads, clients that stop reading) |
//! | (gRPC silence) | keepalive interval + timeout (80 s) | gRPC ports | a gRPC connection silent for longer (one that never sent its preface) is closed; live ones answer pings |
//! | `--request-timeout` | 30 s | HTTP routes, unary gRPC calls | HTTP: `408` with a JSON error naming `request_timeout`; gRPC: `CANCELLED` "Timeout expired". `RecordEvents` streams and streaming HTTP routes are exempt |
//! | reset-flood guard | 20 pending-accept resets, 1,024 local-error resets | HTTP/2 connections | `GOAWAY` and close (h2's and hyper's defaults, which tonic switches off unless set) |
//! | accept back-off | 10 ms doubling to 1 s | every listener | on `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM` (and unknown errors) the accept loop sleeps instead of spinning; counted in `telespool_listener_accept_errors_total{kind}`, warned at most every 10 s |
//! | `RLIMIT_NOFILE` | soft raised to hard at start | the process | logged with `max_connections`; a warning when 2 × max_connections + 256 exceeds it |
//!
//! Streaming answers (a future `/v1/tail`, live views) must be merged into
//! the router outside [`http::timed`] and must send a heartbeat more often
//! than `--http-idle-timeout`.
//!
//! # Metrics
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `telespool_listener_open_connections` | gauge | `listener` (`sidecar_grpc`, `sidecar_http`, `gateway_grpc`, `gateway_http`) |
//! | `telespool_listener_accepted_connections_total` | counter | `listener` |
//! | `telespool_listener_limit_reached_total` | counter | `listener` |
//! | `telespool_listener_accept_errors_total` | counter | `listener`, `kind` (`emfile`, `enfile`, `enobufs`, `enomem`, `connection`, `other`) |
//! | `telespool_listener_timeouts_total` | counter | `listener`, `kind` (`first_byte`, `idle`, `lifetime`, `header`) |

pub mod grpc;
pub mod http;
pub mod limits;
pub mod listener;
pub mod rlimit;

pub use limits::{LimitError, ListenerLimits};
pub use listener::{Conn, ConnDeadlines, Listener};
