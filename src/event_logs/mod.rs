//! The `event_logs` mirror: every recorded event, unredacted, in the row
//! shape of Sourcegraph's legacy `event_logs` table.
//!
//! Sourcegraph's tee store writes each new-style telemetry event twice: the
//! redacted copy to the export queue, and a translated copy to `event_logs`,
//! which stays on the instance and feeds its admin analytics. This module
//! holds the translation ([`row::translate`], SOURCEGRAPH.md (e)); the store
//! that keeps rows (keyed by [`EventLogRow::event_id`], so a retried event
//! never produces a second row) builds on it.
//!
//! The rows carry private metadata as recorded: they must never be exported
//! or served to anyone but the instance's administrators.

pub mod row;

pub use row::{EventLogRow, translate};
