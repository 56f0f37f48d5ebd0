//! Ingest: the sidecar's gRPC and HTTP servers (tokio, tonic, axum) in front
//! of the tee. Errors map to gRPC statuses and HTTP answers in one place
//! ([`status`]); what browsers could do to a server on localhost is kept out
//! by [`guard`]. The admin API's routes ([`admin`]) serve the operations of
//! [`crate::admin`]; [`http`] merges them into its router without knowing
//! them.

pub mod admin;
pub mod body;
pub mod config;
pub mod grpc;
pub mod guard;
pub mod http;
pub mod reply;
pub mod status;
