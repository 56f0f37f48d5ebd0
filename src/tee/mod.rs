//! The tee: the sidecar's write path, one event in, two writes out.
//!
//! ```text
//!                 incoming events
//!                       │  store::Tee::prepare: validate and fill defaults,
//!                       │  translate, redact (rules in crate::event)
//!          ┌────────────┴─────────────┐
//!          ▼                          ▼
//!   event_logs mirror          export queue (exactly the bytes that will leave)
//!   (mirror: group commit      (the queue's group commit)
//!    of the rows and of
//!    ingest dead letters)
//! ```
//!
//! What an event must be and what of it may be exported (validation,
//! redaction, the allowlist, the export mode) is the event domain,
//! [`crate::event`]; this folder performs the writes:
//!
//! - [`store`]: the tee itself: prepare a request's events, submit them to
//!   the queue and the mirror, and wait until both hold them.
//! - [`mirror`]: the group commit of the `event_logs` rows (day-file
//!   blocks) and the ingest dead letters (a sled batch), on one thread.
//! - [`requeue`]: dead letters back into the export queue, in a
//!   crash-safe order.
//!
//! It does file I/O (through the queue, the `event_logs` store and the
//! dead-letter store) and runs no tokio: async callers reach it through
//! [`store::Commit`]'s future or from a blocking thread.

pub mod config;
pub mod mirror;
pub mod requeue;
pub mod store;
