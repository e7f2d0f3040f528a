//! Keyed hashing. Two independent keyed 64-bit hashes give every key a 128-bit
//! position `(h1, h2)`: `h1` places the key in the table (its top bits choose the
//! shard, the next bits the home slot), `h2` orders keys whose `h1` is equal.
//! `h2` is computed lazily, only when two keys share `h1`.

use std::hash::BuildHasher;

use foldhash::quality::FixedState;

/// Keeps only the top 3 bits of `h1`, so thousands of keys share an `h1`.
/// Exercises tie handling in tests; never use it in production.
pub(crate) const WEAK_MASK: u64 = 0xE000_0000_0000_0000;

#[derive(Clone)]
pub struct KeyHasher {
    primary: FixedState,
    secondary: FixedState,
    weak: bool,
}

/// A key's place in iteration order: ordered by `h1`, then `h2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub h1: u64,
    pub h2: u64,
}

impl KeyHasher {
    pub fn new(seed: u64, weak: bool) -> KeyHasher {
        KeyHasher {
            primary: FixedState::with_seed(mix(seed, 1)),
            secondary: FixedState::with_seed(mix(seed, 2)),
            weak,
        }
    }

    #[inline]
    pub fn h1(&self, key: &[u8]) -> u64 {
        let h = self.primary.hash_one(key);
        if self.weak {
            h & WEAK_MASK
        } else {
            h
        }
    }

    #[inline]
    pub fn h2(&self, key: &[u8]) -> u64 {
        self.secondary.hash_one(key)
    }

    pub fn pos(&self, key: &[u8]) -> Pos {
        Pos {
            h1: self.h1(key),
            h2: self.h2(key),
        }
    }
}

/// SplitMix64 finaliser: derives independent sub-seeds from one seed.
pub fn mix(seed: u64, lane: u64) -> u64 {
    let mut z = seed.wrapping_add(lane.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A random 64-bit seed from the OS-seeded keys of std's `RandomState`.
pub fn random_seed() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::collections::hash_map::RandomState::new().hash_one(now)
}
