//! Export: the tokio task that drains the queue to a Telemetry Gateway
//! ([`exporter`]), the group commit of its acknowledgements
//! ([`ack_flush`]), the long-lived channel ([`channel`]), who we export as
//! ([`identity`]), backoff, and reading event ids from queued bytes
//! ([`wire`]). Cleanup and queue metrics run whether or not export is on:
//! see [`crate::tasks`].

pub mod ack_flush;
pub mod backoff;
pub mod channel;
pub mod config;
pub mod exporter;
pub mod identity;
mod round_error;
pub mod wire;
