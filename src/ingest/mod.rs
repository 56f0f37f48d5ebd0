//! Ingest: the sidecar's gRPC and HTTP servers (tokio, tonic, axum) in front
//! of the tee. Errors map to gRPC statuses and HTTP answers in one place
//! ([`status`]).

pub mod admin;
pub mod grpc;
pub mod http;
pub mod queries;
pub mod status;
