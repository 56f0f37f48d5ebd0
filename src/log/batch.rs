//! A batch of events to append.

use super::record;

/// A batch of events to append, stored contiguously.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// A batch holding copies of `events`.
    pub fn from_slices<T: AsRef<[u8]>>(events: &[T]) -> Batch {
        let mut b = Batch {
            data: Vec::with_capacity(events.iter().map(|e| e.as_ref().len()).sum()),
            ends: Vec::with_capacity(events.len()),
        };
        for e in events {
            b.push(e.as_ref());
        }
        b
    }

    /// Adds one event.
    pub fn push(&mut self, event: &[u8]) {
        self.data.extend_from_slice(event);
        self.ends.push(self.data.len());
    }

    /// Adds one event written by `f` into the batch's buffer (no copy).
    pub fn push_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        f(&mut self.data);
        self.ends.push(self.data.len());
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The events.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .filter_map(|(a, b)| self.data.get(a..b))
    }

    /// Bytes the batch takes in a segment, frames included.
    pub fn encoded_len(&self) -> u64 {
        self.iter()
            .map(|e| record::encoded_len(e.len()) as u64)
            .sum()
    }

    /// The largest event, in bytes.
    pub fn max_event_len(&self) -> usize {
        self.iter().map(<[u8]>::len).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_iterates_its_events() {
        let mut b = Batch::from_slices(&[b"a".as_slice(), b"", b"ccc"]);
        b.push_with(|buf| buf.extend_from_slice(b"dd"));
        let all: Vec<&[u8]> = b.iter().collect();
        assert_eq!(all, vec![&b"a"[..], b"", b"ccc", b"dd"]);
        assert_eq!(b.max_event_len(), 3);
        assert_eq!(
            b.encoded_len(),
            [1, 0, 3, 2]
                .iter()
                .map(|&n| record::encoded_len(n) as u64)
                .sum::<u64>()
        );
    }
}
