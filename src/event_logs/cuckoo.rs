//! The dedup filter of sealed days: a cuckoo filter over event-id hashes.
//!
//! Every id stored in a sealed day is in this one filter, so checking a new
//! id against all retained days costs one probe (two buckets of one cache
//! line each), not one per day. A hit is only a *maybe*: the store then
//! looks the hash up in the sealed days' index files and compares the real
//! ids (see [`super::dedup`]), so a false positive never drops a row.
//!
//! ```text
//! bucket   = 4 slots × u16 fingerprint (0 = empty)         8 bytes
//! hash h   → fingerprint f = bits 32..48 of h (0 → 1)
//!            bucket i1 = fastrange(low 32 bits of h, n)
//!            bucket i2 = (g(f) − i1) mod n                  an involution: i1 = (g(f) − i2) mod n
//! ```
//!
//! Any bucket count works (no power-of-two rounding, so memory follows the
//! ids: about 17 bits per id at 95% load). The false-positive rate is at
//! most 2 × 4 / 65,535 ≈ 0.012% per probe. An insert that cannot find a
//! slot after [`MAX_KICKS`] relocations parks the homeless fingerprint in a
//! small stash (checked by every probe), so nothing is ever lost; the store
//! grows the filter (rebuilds it from the index files) when it is nearly
//! full or the stash is not empty. Deleting removes one copy of a
//! fingerprint; the store deletes only ids it inserted (a day's ids when
//! the day is dropped or reopened).
//!
//! The filter is saved to `sealed.ids` (see [`Cuckoo::encode`]) with the
//! list of (day, generation) it covers, so that opening does not rebuild it.

/// Slots per bucket.
const SLOTS: usize = 4;
/// Relocations tried by one insert before it uses the stash.
pub(crate) const MAX_KICKS: usize = 500;
/// Load above which the store grows the filter.
pub(crate) const MAX_LOAD: f64 = 0.95;
/// Load a grown (rebuilt) filter starts at (it then grows by at least
/// [`GROWTH`], so that rebuilds stay rare while the store fills up).
pub(crate) const TARGET_LOAD: f64 = 0.90;
/// Least growth of a rebuilt filter's capacity.
pub(crate) const GROWTH: f64 = 1.15;
/// Fewest buckets.
const MIN_BUCKETS: usize = 1024;

const MAGIC: &[u8; 8] = b"TSEVLCKO";
const VERSION: u32 = 1;

/// The filter.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Cuckoo {
    buckets: Vec<[u16; SLOTS]>,
    len: u64,
    stash: Vec<(u32, u16)>,
    rng: u64,
}

impl std::fmt::Debug for Cuckoo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cuckoo")
            .field("buckets", &self.buckets.len())
            .field("len", &self.len)
            .field("stash", &self.stash.len())
            .finish()
    }
}

fn fingerprint(hash: u64) -> u16 {
    match (hash >> 32) as u16 {
        0 => 1,
        f => f,
    }
}

impl Cuckoo {
    /// A filter sized for `ids` at [`TARGET_LOAD`].
    pub(crate) fn with_capacity(ids: u64) -> Cuckoo {
        let buckets = ((ids as f64 / TARGET_LOAD / SLOTS as f64).ceil() as usize).max(MIN_BUCKETS);
        Cuckoo {
            buckets: vec![[0; SLOTS]; buckets],
            len: 0,
            stash: Vec::new(),
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Ids inserted (and not deleted).
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Slots.
    pub(crate) fn capacity(&self) -> u64 {
        (self.buckets.len() * SLOTS) as u64
    }

    /// Bytes of memory held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.buckets.len() * SLOTS * 2 + self.stash.len() * 8
    }

    /// Whether the filter should be grown before more inserts.
    #[cfg(test)]
    pub(crate) fn needs_growth(&self) -> bool {
        !self.stash.is_empty() || self.len as f64 > MAX_LOAD * (self.buckets.len() * SLOTS) as f64
    }

    /// Whether room for `more` ids remains below [`MAX_LOAD`].
    pub(crate) fn has_room_for(&self, more: u64) -> bool {
        self.stash.is_empty()
            && (self.len + more) as f64 <= MAX_LOAD * (self.buckets.len() * SLOTS) as f64
    }

    fn n(&self) -> u64 {
        self.buckets.len() as u64
    }

    fn index(&self, hash: u64) -> usize {
        (((hash & 0xffff_ffff) * self.n()) >> 32) as usize
    }

    fn alternate(&self, index: usize, fp: u16) -> usize {
        let n = self.n();
        let g = (u64::from(fp).wrapping_mul(0x5bd1_e995_9e37_79b9) >> 17) % n;
        ((g + n - index as u64 % n) % n) as usize
    }

    /// Whether `hash` may have been inserted.
    pub(crate) fn contains(&self, hash: u64) -> bool {
        let fp = fingerprint(hash);
        let i1 = self.index(hash);
        let i2 = self.alternate(i1, fp);
        let has = |i: usize| self.buckets.get(i).is_some_and(|b| b.contains(&fp));
        has(i1)
            || has(i2)
            || self
                .stash
                .iter()
                .any(|&(i, f)| f == fp && (i as usize == i1 || i as usize == i2))
    }

    fn place(&mut self, i: usize, fp: u16) -> bool {
        if let Some(bucket) = self.buckets.get_mut(i)
            && let Some(slot) = bucket.iter_mut().find(|s| **s == 0)
        {
            *slot = fp;
            return true;
        }
        false
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic, good enough to pick victims.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Inserts `hash` (a second insert of the same hash takes a second
    /// slot). Never fails: a fingerprint with no room goes to the stash.
    pub(crate) fn insert(&mut self, hash: u64) {
        let fp = fingerprint(hash);
        let i1 = self.index(hash);
        let i2 = self.alternate(i1, fp);
        self.len += 1;
        if self.place(i1, fp) || self.place(i2, fp) {
            return;
        }
        let mut i = if self.next_random() & 1 == 0 { i1 } else { i2 };
        let mut fp = fp;
        for _ in 0..MAX_KICKS {
            let slot = (self.next_random() % SLOTS as u64) as usize;
            if let Some(s) = self.buckets.get_mut(i).and_then(|b| b.get_mut(slot)) {
                std::mem::swap(s, &mut fp);
            }
            i = self.alternate(i, fp);
            if self.place(i, fp) {
                return;
            }
        }
        self.stash.push((i as u32, fp));
    }

    /// Removes one copy of `hash`'s fingerprint; false if none was found.
    pub(crate) fn delete(&mut self, hash: u64) -> bool {
        let fp = fingerprint(hash);
        let i1 = self.index(hash);
        let i2 = self.alternate(i1, fp);
        if let Some(pos) = self
            .stash
            .iter()
            .position(|&(i, f)| f == fp && (i as usize == i1 || i as usize == i2))
        {
            self.stash.swap_remove(pos);
            self.len = self.len.saturating_sub(1);
            return true;
        }
        for i in [i1, i2] {
            if let Some(slot) = self
                .buckets
                .get_mut(i)
                .and_then(|b| b.iter_mut().find(|s| **s == fp))
            {
                *slot = 0;
                self.len = self.len.saturating_sub(1);
                return true;
            }
        }
        false
    }

    /// Writes the filter as stored: header, covered (day, generation)
    /// pairs, buckets, stash, CRC of everything before it; streamed, so
    /// that saving does not double the filter's memory.
    ///
    /// ```text
    /// "TSEVLCKO" | version u32 | buckets u32 | len u64 | stash u32 | covered u32
    /// | covered × (day i64, generation u64) | buckets × 4 × u16 | stash × (u32, u16)
    /// | crc32 u32          (all little-endian)
    /// ```
    pub(crate) fn write_to(
        &self,
        covered: &[(i64, u64)],
        w: impl std::io::Write,
    ) -> std::io::Result<()> {
        let mut w = CrcWriter {
            inner: std::io::BufWriter::with_capacity(64 * 1024, w),
            crc: crc32fast::Hasher::new(),
        };
        let mut head = Vec::with_capacity(32 + covered.len() * 16);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&(self.buckets.len() as u32).to_le_bytes());
        head.extend_from_slice(&self.len.to_le_bytes());
        head.extend_from_slice(&(self.stash.len() as u32).to_le_bytes());
        head.extend_from_slice(&(covered.len() as u32).to_le_bytes());
        for (day, generation) in covered {
            head.extend_from_slice(&day.to_le_bytes());
            head.extend_from_slice(&generation.to_le_bytes());
        }
        w.put(&head)?;
        let mut chunk = Vec::with_capacity(64 * 1024);
        for b in &self.buckets {
            for s in b {
                chunk.extend_from_slice(&s.to_le_bytes());
            }
            if chunk.len() >= 64 * 1024 - 8 {
                w.put(&chunk)?;
                chunk.clear();
            }
        }
        for (i, f) in &self.stash {
            chunk.extend_from_slice(&i.to_le_bytes());
            chunk.extend_from_slice(&f.to_le_bytes());
        }
        w.put(&chunk)?;
        let crc = w.crc.clone().finalize();
        std::io::Write::write_all(&mut w.inner, &crc.to_le_bytes())?;
        std::io::Write::flush(&mut w.inner)
    }

    /// [`Cuckoo::write_to`] into a vector (tests).
    #[cfg(test)]
    pub(crate) fn encode(&self, covered: &[(i64, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.write_to(covered, &mut out);
        out
    }

    /// Reads what [`Cuckoo::write_to`] wrote, streamed (the filter's memory
    /// is allocated once); `None` when it is not a whole, intact filter.
    pub(crate) fn read_from(r: impl std::io::Read) -> Option<(Cuckoo, Vec<(i64, u64)>)> {
        let mut r = CrcReader {
            inner: std::io::BufReader::with_capacity(64 * 1024, r),
            crc: crc32fast::Hasher::new(),
        };
        let mut head = [0u8; 32];
        r.get(&mut head)?;
        let mut c = super::block::Cursor::new(&head);
        if c.take(8)? != MAGIC || c.u32()? != VERSION {
            return None;
        }
        let buckets = c.u32()? as usize;
        let len = c.u64()?;
        let stash = c.u32()? as usize;
        let covered_n = c.u32()? as usize;
        if buckets == 0 || covered_n > 1 << 24 || stash > 1 << 20 {
            return None;
        }
        let mut covered = Vec::with_capacity(covered_n);
        for _ in 0..covered_n {
            let mut e = [0u8; 16];
            r.get(&mut e)?;
            let mut c = super::block::Cursor::new(&e);
            covered.push((c.i64()?, c.u64()?));
        }
        let mut table: Vec<[u16; SLOTS]> = Vec::new();
        table.try_reserve_exact(buckets).ok()?;
        let mut chunk = vec![0u8; 64 * 1024];
        let mut left = buckets;
        while left > 0 {
            let n = left.min(chunk.len() / 8);
            let bytes = chunk.get_mut(..n * 8)?;
            r.get(bytes)?;
            for b in bytes.chunks_exact(8) {
                let u = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
                table.push([u(0), u(2), u(4), u(6)]);
            }
            left -= n;
        }
        let mut stash_v = Vec::with_capacity(stash);
        for _ in 0..stash {
            let mut e = [0u8; 6];
            r.get(&mut e)?;
            let i = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
            if i as usize >= buckets {
                return None;
            }
            stash_v.push((i, u16::from_le_bytes([e[4], e[5]])));
        }
        let computed = r.crc.clone().finalize();
        let mut crc = [0u8; 4];
        std::io::Read::read_exact(&mut r.inner, &mut crc).ok()?;
        let mut rest = [0u8; 1];
        if u32::from_le_bytes(crc) != computed
            || std::io::Read::read(&mut r.inner, &mut rest).ok()? != 0
        {
            return None;
        }
        Some((
            Cuckoo {
                buckets: table,
                len,
                stash: stash_v,
                rng: 0x9e37_79b9_7f4a_7c15,
            },
            covered,
        ))
    }

    /// [`Cuckoo::read_from`] over bytes (tests).
    #[cfg(test)]
    pub(crate) fn decode(bytes: &[u8]) -> Option<(Cuckoo, Vec<(i64, u64)>)> {
        Cuckoo::read_from(bytes)
    }
}

struct CrcWriter<W: std::io::Write> {
    inner: std::io::BufWriter<W>,
    crc: crc32fast::Hasher,
}

impl<W: std::io::Write> CrcWriter<W> {
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.crc.update(b);
        std::io::Write::write_all(&mut self.inner, b)
    }
}

struct CrcReader<R: std::io::Read> {
    inner: std::io::BufReader<R>,
    crc: crc32fast::Hasher,
}

impl<R: std::io::Read> CrcReader<R> {
    fn get(&mut self, b: &mut [u8]) -> Option<()> {
        std::io::Read::read_exact(&mut self.inner, b).ok()?;
        self.crc.update(b);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(i: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())
    }

    #[test]
    fn every_inserted_hash_is_found_even_past_full() {
        let mut c = Cuckoo::with_capacity(10_000);
        // Far past its capacity: the stash keeps what does not fit.
        for i in 0..20_000 {
            c.insert(h(i));
        }
        assert!(c.needs_growth());
        for i in 0..20_000 {
            assert!(c.contains(h(i)), "{i}");
        }
    }

    #[test]
    fn the_false_positive_rate_is_near_a_hundredth_of_a_percent() {
        let mut c = Cuckoo::with_capacity(100_000);
        for i in 0..100_000 {
            c.insert(h(i));
        }
        assert!(!c.needs_growth());
        let fp = (1_000_000..2_000_000).filter(|&i| c.contains(h(i))).count();
        // Expected at most 0.012% (120 of 1,000,000) at full load; wide margin.
        assert!(fp < 400, "{fp} false positives");
    }

    #[test]
    fn deleting_removes_one_copy() {
        let mut c = Cuckoo::with_capacity(100);
        c.insert(h(1));
        c.insert(h(1));
        assert!(c.delete(h(1)));
        assert!(c.contains(h(1)));
        assert!(c.delete(h(1)));
        assert!(!c.contains(h(1)));
        assert!(!c.delete(h(1)));
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn a_stored_filter_round_trips_and_damage_is_refused() {
        let mut c = Cuckoo::with_capacity(5_000);
        for i in 0..5_000 {
            c.insert(h(i));
        }
        let bytes = c.encode(&[(19_000, 2), (19_001, 1)]);
        let (back, covered) = Cuckoo::decode(&bytes).unwrap();
        assert_eq!(covered, [(19_000, 2), (19_001, 1)]);
        assert_eq!(back.len(), 5_000);
        for i in 0..5_000 {
            assert!(back.contains(h(i)));
        }
        let mut bad = bytes.clone();
        bad[50] ^= 1;
        assert!(Cuckoo::decode(&bad).is_none());
        assert!(Cuckoo::decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(Cuckoo::decode(&[]).is_none());
    }

    proptest! {
        #[test]
        fn no_false_negatives_after_inserts_and_deletes(keys in proptest::collection::vec(any::<u64>(), 0..3000), drop_every in 2usize..7) {
            let mut c = Cuckoo::with_capacity(keys.len() as u64);
            for &k in &keys {
                c.insert(k);
            }
            for (i, &k) in keys.iter().enumerate() {
                if i % drop_every == 0 {
                    prop_assert!(c.delete(k));
                }
            }
            for (i, &k) in keys.iter().enumerate() {
                if i % drop_every != 0 {
                    prop_assert!(c.contains(k));
                }
            }
        }
    }
}
