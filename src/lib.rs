//! telespool: a durable telemetry sidecar and gateway for Sourcegraph's
//! `telemetrygateway.v1` protocol.
//!
//! # Glossary
//!
//! One word per concept, in code, metrics, CLI and docs:
//!
//! - **event**: a `telemetrygateway.v1.Event` as a service sends it; its
//!   **event id** is its own string (a UUID). **record**: one event as the
//!   queue holds it, framed with a CRC in a segment; its **record id** is a
//!   `u64`, monotonic, never reused. A **batch** ([`Batch`]) is the events
//!   of one append; the export **batch size** is Sourcegraph's setting:
//!   events per stream.
//! - **segment**: one queue file of records. The active segment is
//!   **rolled** (a new one started) and the old one **sealed** (no more
//!   appends) at a size or an age.
//! - **resolve**: a record is resolved when the gateway **acked** it, it was
//!   **dead-lettered**, it was **lost** to damage, or the quota **dropped**
//!   it. The **watermark** of a segment is its *resolved* watermark: every
//!   record up to it is resolved, by any of the four (not only exported).
//!   A segment whose records are all resolved is **fully resolved** (status
//!   output keeps Sourcegraph's "fully exported").
//! - Deleting data, one word per store: the queue **purges** fully resolved
//!   segments after the exported-events retention (Sourcegraph's metric
//!   counts them as `events_pruned`), **drops** its oldest records when full
//!   under the drop-oldest policy, and **truncates** a torn tail on open;
//!   the event_logs mirror **expires** UTC days past its retention and
//!   **evicts** its oldest rows past its quota; the dead-letter store
//!   **trims** its oldest entries past its bound or quota. **Erase** is a
//!   privacy request: one user's event_logs rows. **Cleanup** is the task
//!   that runs purge and expiry.
//! - **poisoned**: a writer (the queue's, the gateway's file sink) that saw
//!   a failed fsync and refuses writes until restart. An event the gateway
//!   keeps leaving unacknowledged is a **refused** event (a "poison" event
//!   in older text); after the attempts allowed it becomes a **dead
//!   letter**.
//! - **dead letter**: an event kept aside with its reason, from ingest
//!   (invalid) or export (refused). Spelled `dead_letter` in code,
//!   `dead-letter` in CLI commands, URLs and settings, "dead letter" in
//!   prose.
//! - **tee**: the write path: one record call in, two writes out (the export
//!   queue, redacted, and the mirror, unredacted). **mirror**: the
//!   `event_logs` store, Sourcegraph's legacy row shape, for admin
//!   analytics.
//! - **export**: sending queued records to a gateway. A **round** is one
//!   `RecordEvents` stream; a **payload** is one message of it (at most
//!   1 MiB of events); an **attempt** counts only when a healthy stream
//!   answered a payload without the record's id. **export mode** (all,
//!   cody-only, disabled) decides what is queued; **redaction** what of an
//!   event is exported.
//! - **backlog**: the unresolved records. **quota**: a store's byte bound.
//!
//! # Layering
//!
//! Dependencies point down only. The sidecar, top to bottom:
//!
//! ```text
//! commands, cli       the subcommands and their clap definitions
//! app                 wiring: open the stores, spawn servers and tasks, shut down
//! tasks, config       maintenance, cleanup, metrics; ServeConfig from the components' configs
//! ingest ── admin     gRPC and HTTP servers; the admin API's operations and types
//! export              the exporter task, its channel and identity
//! tee                 the write path: store, mirror, requeue
//! event_logs  dead_letter  queue       the three stores (event_logs and
//!                       │              dead_letter on sled_db or files)
//!                       ├── log          segment files, records, group commit
//!                       ├── index        the segment table's persistence
//!                       ├── segment_meta per segment: range, size, seal, watermark
//!                       └── storage + clock + ids
//! event               the pure event domain: validate, json, redact, allowlist, export mode
//! timestamp           the protobuf timestamp range, the UTC calendar, RFC 3339;
//!                     usable from every layer
//! ```
//!
//! The gateway (`gateway`) sits beside `app`, on the same edge: `net`
//! (accept loop, limits, deadlines), `tls`, `grpc_limits` (decode budget,
//! message limits), `protojson`, `prometheus` (the recorder). `settings`
//! (typed values, flag > env > file > default) depends on no component;
//! each component's config struct sits next to it and uses `settings`.
//! `event_logs` shares the log's record frame codec (`log::record`).
//!
//! The table is the authority: a module uses (through `crate::<module>`
//! paths, outside tests) only the modules on its row. Doc links do not
//! count. `scripts/check-layering.py` (run by `.ci/run`) checks every path
//! against it, and that it has no cycle.
//!
//! | module         | may use                                         |
//! |----------------|-------------------------------------------------|
//! | `commands`     | `app`, `admin`, `cli`, `config`, `gateway`, `queue`, `index`, `event_logs`, `dead_letter`, `settings`, `storage`, `clock` |
//! | `cli`          | `admin`, `config`, `gateway`, `settings`        |
//! | `app`          | `config`, `tasks`, `ingest`, `export`, `tee`, `queue`, `log`, `event`, `event_logs`, `dead_letter`, `net`, `tls`, `grpc_limits`, `prometheus`, `storage`, `clock` |
//! | `tasks`        | `config`, `export`, `queue`, `event_logs`, `clock` |
//! | `config`       | `ingest`, `export`, `tee`, `queue`, `event`, `event_logs`, `dead_letter`, `net`, `grpc_limits`, `settings`, `secret` |
//! | `gateway`      | `event`, `net`, `tls`, `grpc_limits`, `protojson`, `proto`, `prometheus`, `settings`, `secret`, `storage`, `untrusted`, `timestamp` |
//! | `ingest`       | `admin`, `tee`, `queue`, `event`, `event_logs`, `dead_letter`, `net`, `grpc_limits`, `protojson`, `proto`, `settings`, `clock`, `untrusted` |
//! | `admin`        | `tee`, `queue`, `event_logs`, `dead_letter`, `protojson`, `proto`, `clock` |
//! | `export`       | `queue`, `dead_letter`, `tls`, `grpc_limits`, `proto`, `settings`, `secret`, `storage`, `clock`, `ids`, `untrusted` |
//! | `tee`          | `queue`, `event`, `event_logs`, `dead_letter`, `grpc_limits`, `proto`, `settings`, `clock`, `untrusted` |
//! | `event_logs`   | `event`, `log`, `proto`, `sled_db`, `storage`, `clock`, `timestamp` |
//! | `dead_letter`  | `sled_db`, `clock`                              |
//! | `queue`        | `log`, `index`, `segment_meta`, `storage`, `clock`, `ids` |
//! | `log`          | `segment_meta`, `storage`, `clock`, `ids`       |
//! | `index`        | `segment_meta`, `proto`, `sled_db`, `clock`, `ids` |
//! | `segment_meta` | `clock`, `ids`                                  |
//! | `sled_db`      | `storage`                                       |
//! | `event`        | `proto`, `clock`, `timestamp`                   |
//! | `net`          | `settings`                                      |
//! | `settings`     | `secret`                                        |
//! | `grpc_limits`  | `proto`                                         |
//! | `protojson`    | `proto`, `timestamp`                            |
//! | `tls`          | (none)                                          |
//! | `prometheus`   | (none)                                          |
//! | `storage`      | (none)                                          |
//! | `proto`        | (none)                                          |
//! | `clock`        | (none)                                          |
//! | `ids`          | (none)                                          |
//! | `secret`       | (none)                                          |
//! | `untrusted`    | (none)                                          |
//! | `timestamp`    | (none)                                          |

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
pub mod timestamp;
pub mod tls;
pub mod untrusted;

pub use clock::{Clock, ManualClock, SystemClock, UnixNanos};
pub use ids::{RecordId, SegmentId};
pub use log::{AppendAck, AppendError, Batch, Record, SyncPolicy};
pub use queue::{FullPolicy, Queue, QueueConfig, QueueError};
