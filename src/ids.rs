//! Identifiers of the storage core.

use std::fmt;

/// The id of one record in the queue: a u64, monotonic, never reused.
/// Ids start at 1; 0 means "before the first record".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(pub u64);

impl RecordId {
    /// The id after this one.
    pub fn next(self) -> RecordId {
        RecordId(self.0.saturating_add(1))
    }

    /// The id before this one (0 stays 0).
    pub fn prev(self) -> RecordId {
        RecordId(self.0.saturating_sub(1))
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The id of one segment file. Segment ids grow with every roll.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u64);

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
