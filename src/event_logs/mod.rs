//! The `event_logs` mirror: every recorded event, unredacted, in the row
//! shape of Sourcegraph's legacy `event_logs` table.
//!
//! Sourcegraph's tee store writes each new-style telemetry event twice: the
//! redacted copy to the export queue, and a translated copy to `event_logs`,
//! which stays on the instance and feeds its admin analytics. This module
//! holds the translation ([`row::translate`], SOURCEGRAPH.md (e)), the store
//! that keeps rows ([`store`]: sled, one row per [`EventLogRow::event_id`],
//! so a retried event never produces a second row; retention; the rows'
//! stored form is in [`codec`]) and the
//! admin-analytics queries over it ([`query`]: recent rows, counts by name
//! and day, distinct users by day).
//!
//! The rows carry private metadata as recorded: they must never be exported
//! or served to anyone but the instance's administrators.

pub mod codec;
mod key;
pub mod query;
pub mod row;
pub mod store;
#[cfg(test)]
mod store_tests;

pub use codec::CodecError;
pub use query::{DayNameCount, DayUsers, ParseCursorError, RecentCursor, RecentPage, RecentQuery};
pub use row::{EventLogRow, translate};
pub use store::{
    EncodedRow, EventLogConfig, EventLogError, EventLogStats, EventLogStore, InsertOutcome,
};
