//! The hashes stored in blocks and index files (xxh3 of event ids, user ids
//! and anonymous ids) and the per-block user bloom filter.

use std::collections::HashSet;

use super::{BLOOM_BITS_PER_KEY, BLOOM_PROBES};
use crate::event_logs::hll::NoHash;

/// The hash of an event id (its text) used by dedup. xxh3: stable across
/// versions and platforms, since index files store it.
pub(crate) fn id_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// The hash of a user id, as distinct users and the bloom know it.
pub(crate) fn user_id_hash(user_id: i64) -> u64 {
    let mut b = [0u8; 9];
    b[0] = b'u';
    b[1..].copy_from_slice(&user_id.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&b)
}

/// The hash of an anonymous user id.
pub(crate) fn anonymous_hash(anonymous_user_id: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    h.update(b"a");
    h.update(anonymous_user_id.as_bytes());
    h.digest()
}

/// Who a row counts as for distinct users: the user id when non-zero,
/// else the anonymous id.
pub(crate) fn user_key_hash(user_id: i64, anonymous_user_id: &str) -> u64 {
    if user_id != 0 {
        user_id_hash(user_id)
    } else {
        anonymous_hash(anonymous_user_id)
    }
}

pub(super) fn bloom_positions(hash: u64, bits: u64) -> impl Iterator<Item = u64> {
    let h1 = hash & 0xffff_ffff;
    let h2 = (hash >> 32) | 1;
    (0..BLOOM_PROBES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % bits)
}

pub(super) fn bloom_build(keys: &HashSet<u64, NoHash>) -> Vec<u8> {
    let bytes = (keys.len() * BLOOM_BITS_PER_KEY).div_ceil(8).max(8);
    let mut bloom = vec![0u8; bytes];
    let bits = (bytes * 8) as u64;
    for &k in keys {
        for p in bloom_positions(k, bits) {
            if let Some(b) = bloom.get_mut((p / 8) as usize) {
                *b |= 1 << (p % 8);
            }
        }
    }
    bloom
}

/// Whether a block's bloom may hold `hash` (an empty bloom may hold anything).
pub(crate) fn bloom_may_contain(bloom: &[u8], hash: u64) -> bool {
    if bloom.is_empty() {
        return true;
    }
    let bits = (bloom.len() * 8) as u64;
    bloom_positions(hash, bits).all(|p| {
        bloom
            .get((p / 8) as usize)
            .is_some_and(|b| b & (1 << (p % 8)) != 0)
    })
}
