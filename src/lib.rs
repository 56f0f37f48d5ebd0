//! telespool: a durable telemetry sidecar and gateway for Sourcegraph's
//! `telemetrygateway.v1` protocol.
//!
//! Layering (dependencies point down only):
//!
//! ```text
//! queue   (append, read, resolve, backlog, purge, quota)
//!   ├── log     (segments, records, group commit, recovery walk)
//!   ├── index   (segment table and watermarks: sled, or in memory)
//!   └── storage (real files, crashable memory disk, fault injection) + clock
//! ```
//!
//! The servers sit on one shared edge:
//!
//! ```text
//! app (sidecar: ingest, export)      gateway (gRPC, HTTP, sinks)
//!   └──────────────┬───────────────────────┘
//!                 net   (accept loop, connection limits and deadlines,
//!                        HTTP/2 and HTTP/1 settings, RLIMIT_NOFILE)
//! ```

pub mod app;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod config_file;
pub mod dead_letter;
pub mod event;
pub mod event_logs;
pub mod export;
pub mod gateway;
pub mod grpc_limits;
pub mod ids;
pub mod index;
pub mod ingest;
pub mod log;
pub mod net;
pub mod prometheus;
pub mod proto;
pub mod protojson;
pub mod queue;
pub mod secret;
pub mod sled_db;
pub mod storage;
pub mod tasks;
pub mod tee;
pub mod tls;
pub mod untrusted;

pub use clock::{Clock, ManualClock, SystemClock, UnixNanos};
pub use ids::{RecordId, SegmentId};
pub use log::{AppendAck, AppendError, Batch, Record, SyncPolicy};
pub use queue::{FullPolicy, Queue, QueueConfig, QueueError};
