//! The Telemetry Gateway side of telespool (`telespool gateway`): the far
//! end of the `telemetrygateway.v1` protocol. It serves
//! `TelemeteryGatewayService` the way Sourcegraph's gateway does, renders
//! one message per event (the JSON body `{"event": …, "metadata": …}` and
//! its attributes, byte for byte what Sourcegraph publishes to Pub/Sub), and
//! publishes it to a sink: a JSONL file (default), NATS JetStream, or the
//! log.
//!
//! ```text
//!  gRPC :10080                                             HTTP :10081
//!  RecordEvents ─ stream.rs ─┐                             /healthz /readyz /metrics
//!  RecordEvent ── server.rs ─┤ identity.rs (identifier       (http.rs)
//!                            │  checks, license keys,
//!                            │  service tokens)
//!                            ▼
//!                  publish.rs: validate, render.rs, ≤ 10 MB,
//!                  windows of publish_concurrency events,
//!                  acknowledgement rules
//!                            │
//!                            ▼
//!                  sink/: file.rs (JSONL, group-committed fsync, rotation)
//!                         nats.rs (JetStream, Nats-Msg-Id dedup, acks)
//!                         log.rs  (development)
//! ```
//!
//! The gRPC listener speaks TLS (and mutual TLS) when given a certificate
//! ([`crate::tls::server`]); SIGHUP reloads the certificate, the client CA,
//! the license keys and the service tokens without dropping a connection
//! ([`reload`]). The HTTP listener stays plain text (health and metrics, no
//! secrets; see `docs/gateway.md`, "TLS").
//!
//! Before any of this, every gRPC message is bounded before it is decoded
//! ([`crate::grpc_limits`], shared with the sidecar): charged to the decode
//! budget from its header on, gzip inflated with a cap, events counted
//! against `max_events` before they are decoded one at a time.
//!
//! An event id is in `succeeded_events` only when the sink confirmed it,
//! or when it can never be published and the sender is a Sourcegraph
//! instance (which would otherwise retry it forever); see [`publish`].
//! [`app::Gateway`] wires it together; `docs/gateway.md` is the operator's
//! guide.

pub mod app;
pub mod config;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod publish;
pub mod reload;
pub mod render;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod sink;
pub mod stream;

pub use app::{Gateway, GatewayError};
pub use config::GatewayConfig;
