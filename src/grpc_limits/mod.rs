//! What both gRPC servers (the sidecar's ingest and the gateway) do before
//! they decode anything from the network: count and size before allocating.
//! Shared code below `ingest/` and `gateway/`; neither imports the other.
//!
//! ```text
//! HTTP/2 DATA ─→ body.rs: BudgetBody ──────────────→ tonic Streaming ─→ lazy.rs: LazyCodec ─→ the call
//!                 reads each message header;           buffers one          metadata decoded,     checks metadata and
//!                 reserves its length from the         message (≤ 16 MiB)   events counted, kept  identity, then the
//!                 server's DecodeBudget first          plain frames only    as bytes (zero-copy)  event count, then
//!                 (RESOURCE_EXHAUSTED past it);                                                   decodes events one
//!                 inflates gzip itself, capped                                                    at a time
//! ```
//!
//! Why: prost decodes a `RecordEventsRequest` into `Vec<Event>` in one go.
//! An empty event is two bytes on the wire and ~664 bytes as a prost
//! `Event`, so a 16 MiB message of them asked for 2.7 GB before any limit
//! was checked, and with gzip a 16 KB message did the same.
//!
//! The limits, each refused with a status that names it:
//!
//! | limit | default | sidecar setting | gateway setting | refusal |
//! |---|---|---|---|---|
//! | message size, after inflation | 16 MiB | fixed | fixed | `OUT_OF_RANGE` (tonic, at the header), `RESOURCE_EXHAUSTED` (gzip inflating past it) |
//! | events per payload | 10,000 | `--max-events` | `--max-events` | `INVALID_ARGUMENT`, counted before any event is decoded |
//! | decode budget | 256 MiB | `--decode-budget` | `--decode-budget` | `RESOURCE_EXHAUSTED` naming the budget |
//!
//! **The decode budget** ([`budget`]) counts the bytes of messages being
//! received, decoded or held, per server: a message's length is reserved
//! when its header arrives (before tonic buffers it), and the reservation
//! moves with the message to the call, which holds it until the payload is
//! answered. Compressed messages count their compressed bytes while they
//! arrive and their inflated bytes after. What is not counted: HTTP/2's own
//! receive windows (bounded per stream and connection by the servers'
//! window settings) and the decoded events' overhead beyond their encoded
//! size (bounded by the event-count limit). A message is reserved at its
//! declared length when its header arrives, so refusals are clean (nothing
//! of a refused message is buffered); the flip side is that a client that
//! declares a large message and sends it slowly holds that much of the
//! budget meanwhile, for as long as the listener's limits (stream and
//! connection timeouts) let it. The gauge of bytes in use and
//! the counter of refusals are `telespool_grpc_decode_budget_bytes_in_use`
//! and `telespool_grpc_decode_budget_refused_total` on the sidecar,
//! `telespool_gateway_decode_budget_bytes_in_use` and
//! `telespool_gateway_decode_budget_refused_total` on the gateway.
//!
//! **The server** ([`server`]) is written by hand in place of the generated
//! one (same service name and paths): tonic 0.14's generated server
//! hard-wires prost's codec, and a hand-written `tower::Service` is the one
//! place that can both choose the codec and wrap the request body. Both
//! processes implement [`TelemetryService`] and serve it with
//! [`TelemetryServer`].
//!
//! **Order of checks** on `RecordEvents`: metadata first (decoded, small),
//! then the identifier, then per payload the event count (known from the
//! walk, nothing decoded), then the events, decoded one at a time; a bad
//! event fails the stream with `INTERNAL` and prost's message, as the prost
//! codec did. The payloads a stream received before a refused one are
//! answered, and nothing acknowledged is touched.

/// Largest gRPC message both servers and the exporter accept (after
/// inflation): 16 MiB, so that the event-count and size limits, not the
/// transport, answer oversized payloads.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// HTTP/2 stream receive window of our gRPC servers and clients. The
/// default 64 KiB would make a 1 MiB payload wait for sixteen window
/// updates.
pub const STREAM_WINDOW_BYTES: u32 = 4 * 1024 * 1024;
/// HTTP/2 connection receive window of our gRPC servers and clients.
pub const CONNECTION_WINDOW_BYTES: u32 = 16 * 1024 * 1024;

pub mod body;
pub mod budget;
pub mod lazy;
pub mod server;

pub use budget::{
    BudgetExceeded, BudgetNames, DEFAULT_DECODE_BUDGET_BYTES, DecodeBudget, MessageReservations,
    Reservation,
};
pub use lazy::{LazyCodec, LazyPayload, LazyRecordEventsRequest, RawEvents};
pub use server::{GrpcLimits, TelemetryServer, TelemetryService};

/// The refusal of a payload over the event-count limit, before any of its
/// events is decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("payload holds {count} events, over the limit of {limit} ({setting})")]
pub struct TooManyEvents {
    /// Events in the payload.
    pub count: usize,
    /// The limit.
    pub limit: usize,
    /// The setting that sets it.
    pub setting: &'static str,
}

impl TooManyEvents {
    /// `INVALID_ARGUMENT` with this message.
    pub fn to_status(&self) -> tonic::Status {
        tonic::Status::invalid_argument(self.to_string())
    }
}
