//! telespool: a durable telemetry sidecar and gateway for Sourcegraph's
//! `telemetrygateway.v1` protocol.
//!
//! # Layering of the storage core
//!
//! Dependencies point down only:
//!
//! ```text
//! queue          append, read, resolve, backlog, purge, quota; recovery on open
//!   ├── log          segment files, records, group commit, the segment table
//!   ├── index        persistence of the segment table: sled, or in memory
//!   │     └── proto, sled_db
//!   ├── segment_meta per segment: record range, size, seal, resolved watermark
//!   └── storage (real files, crashable memory disk, faults) + clock + ids
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
//!
//! Configuration, one mechanism for both commands:
//!
//! ```text
//! cli, commands          (clap: Cli; `config check`)
//!   ├── config           (the sidecar: its settings table, ServeConfig
//!   │                     composed of its components' structs)
//!   └── gateway::settings (the gateway: its settings table → GatewayConfig)
//!           │  components' config structs, next to each component:
//!           │  ingest::config, queue, tee::config, event_logs, export::config,
//!           │  dead_letter, net::limits, gateway::config, gateway::sink::spec
//!           ▼
//!        settings        (typed values, flag > env > file > default with
//!                         provenance, the TOML file, the config errors;
//!                         depends on no component) ── secret
//! ```
//! The table is the authority: a module uses (through `crate::<module>`
//! paths, outside tests) only the modules on its row. Doc links do not count.
//!
//! | module         | may use                                         |
//! |----------------|-------------------------------------------------|
//! | `queue`        | `log`, `index`, `segment_meta`, `storage`, `clock`, `ids` |
//! | `log`          | `segment_meta`, `storage`, `clock`, `ids`       |
//! | `index`        | `segment_meta`, `proto`, `sled_db`, `clock`, `ids` |
//! | `sled_db`      | `storage`                                       |
//! | `segment_meta` | `clock`, `ids`                                  |
//! | `storage`      | (none)                                          |
//! | `proto`        | (none)                                          |
//! | `clock`        | (none)                                          |
//! | `ids`          | (none)                                          |
//!
//! The layers above the core (`tee`, `event_logs`, `dead_letter`, `export`,
//! `ingest`, `gateway`, `app`, `commands`) are not in the table yet: issue 11
//! item 1 untangles their folder-level cycles first.

pub mod admin;
pub mod app;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
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
pub mod segment_meta;
pub mod settings;
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
