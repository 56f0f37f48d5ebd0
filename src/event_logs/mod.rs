//! The `event_logs` mirror: every recorded event, unredacted, in the row
//! shape of Sourcegraph's legacy `event_logs` table.
//!
//! (The design is written up below once the layout settles.)

mod block;
mod cache;
pub mod codec;
mod cuckoo;
mod dayfile;
#[cfg(test)]
mod durability_tests;
pub mod erase;
#[cfg(test)]
mod erase_tests;
mod hll;
mod idx;
mod key;
mod legacy;
mod maintain;
mod open;
pub mod query;
mod rewrite;
pub mod row;
pub mod store;
#[cfg(test)]
mod store_tests;
mod write;

pub use block::{BlockError, ReadError};
pub use codec::CodecError;
pub use dayfile::{Damage, HeaderError, Tail};
pub use erase::{EraseOutcome, EraseTarget, Tombstone};
pub use hll::EXACT_USERS;
pub use query::{DayNameCount, DayUsers, ParseCursorError, RecentCursor, RecentPage, RecentQuery};
pub use row::{EventLogRow, translate};
pub use store::{
    EncodedRow, EventLogConfig, EventLogError, EventLogStats, EventLogStore, InsertOutcome,
};
