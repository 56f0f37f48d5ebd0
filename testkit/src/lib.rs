//! telespool's test kit, shared by the integration tests (`tests/`) and the
//! benches (`benches/`); the fuzz targets need none of it (they call the
//! library on raw bytes).
//!
//! | Module | What it gives |
//! |---|---|
//! | [`queue`] | a queue on the in-memory disk that can be crashed ([`queue::Harness`]), small configs, byte events and batches |
//! | [`sidecar`] | a sidecar started in-process on port-0 listeners, gRPC and HTTP clients, realistic events, readers of the queue and the mirror |
//! | [`gateway`] | a gateway started in-process with any sink, identifiers, ~600 B events, stream drivers |
//! | [`sinks`] | an in-memory gateway sink that can fail, delay or report itself unhealthy |
//! | [`fake_gateway`] | a fake Telemetry Gateway (real tonic server) whose answers follow a [`fake_gateway::Mode`] |
//! | [`events`] | the benches' realistic Cody/search event (~600 B encoded, fresh UUIDv7 id) |
//! | [`load`] | gRPC `RecordEvents` load (closed loop or paced), fresh v4/v7 ids, acks checked: the ingest bench's and `examples/grpc_load.rs`'s |
//! | [`process`] | the `telespool` binary as a child process: spawn, wait until it logs that it serves, the addresses it logged, signals, kill on drop |
//! | [`nats`] | a real `nats-server -js` on a free port with a temporary store |
//! | [`tls`] | certificates generated at test time, TLS clients, a raw handshake |
//! | [`net`] | free loopback ports and addresses, "wait until something listens" |
//! | [`dirs`] | temporary data directories (optionally under a directory named by an environment variable) |
//!
//! Everything here may panic: a helper that cannot set a test up fails the
//! test with a message saying what was missing.

pub mod alloc;
pub mod dirs;
pub mod events;
pub mod fake_gateway;
pub mod gateway;
pub mod load;
pub mod nats;
pub mod net;
pub mod process;
pub mod queue;
pub mod sidecar;
pub mod sinks;
pub mod tls;
