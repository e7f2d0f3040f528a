//! Keyed hashing. Two independent keyed 64-bit hashes give every key a 128-bit
//! position `(h1, h2)`: `h1` places the key in the table (its top bits choose the
//! shard, the next bits the home slot), `h2` orders keys whose `h1` is equal.
//! `h2` is computed lazily, only when two keys share `h1` (and once per scan
//! call for the cursor).
//!
//! `h1` is foldhash (quality variant) with a per-map *secret* shared seed —
//! foldhash's public fixed seed would let anyone build keys that collide in
//! every map. `h2` is SipHash-1-3 under its own 128-bit key, so two different
//! keys with the same position need a SipHash collision; the table refuses
//! such an insert rather than let a cursor confuse the two keys.
//!
//! A fixed seed (reproducible layouts) is never used as the hash key on its
//! own: `fixed_keys` mixes it with a random secret drawn once per process.
//! Maps built with the same seed in one process lay keys out identically,
//! but knowing the seed does not tell anyone `h1`, so keys that crowd one
//! run cannot be computed offline (a linear-probing run is walked key by
//! key, so 20,000 such keys made every operation on them ~50× slower). The
//! weak test hash, which makes every run crowded by design, is refused
//! unless the process opts in through its environment (`WEAK_HASH_ENV`).
#![forbid(unsafe_code)]

use std::hash::{BuildHasher, Hash, Hasher};

use foldhash::quality::FoldHasher;
use foldhash::SharedSeed;
use siphasher::sip::SipHasher13;

/// Keeps only the top 3 bits of `h1`, so thousands of keys share an `h1`.
/// Exercises tie handling in tests; refused unless `WEAK_HASH_ENV` is set.
pub(crate) const WEAK_MASK: u64 = 0xE000_0000_0000_0000;

#[derive(Clone)]
pub struct KeyHasher {
    shared: SharedSeed,
    per_map: u64,
    h2_key: [u64; 2],
    /// Applied to every `h1`: all ones, or `WEAK_MASK` in tie tests (a mask
    /// rather than a flag: no branch on every hash).
    h1_mask: u64,
    /// Applied to every `h2`: all ones except in tests that need keys
    /// sharing a whole position.
    h2_mask: u64,
}

/// A key's place in iteration order: ordered by `h1`, then `h2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub h1: u64,
    pub h2: u64,
}

impl KeyHasher {
    /// `seed` fixes the layout (reproducible tests); `h2_key` keys the
    /// tie-breaking hash (random unless the caller fixed the seed).
    pub fn new(seed: u64, h2_key: [u64; 2], weak: bool) -> KeyHasher {
        KeyHasher {
            shared: SharedSeed::from_u64(mix(seed, 1)),
            per_map: mix(seed, 5),
            h2_key,
            h1_mask: if weak { WEAK_MASK } else { u64::MAX },
            h2_mask: u64::MAX,
        }
    }

    /// This hasher with `mask` applied to every `h1` instead: tests use it
    /// to make keys share chosen bits of their position.
    #[cfg(test)]
    pub(crate) fn with_h1_mask(mut self, mask: u64) -> KeyHasher {
        self.h1_mask = mask;
        self
    }

    /// This hasher with `mask` applied to every `h2`: with a weak `h1`,
    /// tests make different keys share a whole position.
    #[cfg(test)]
    pub(crate) fn with_h2_mask(mut self, mask: u64) -> KeyHasher {
        self.h2_mask = mask;
        self
    }

    #[inline]
    pub fn h1(&self, key: &[u8]) -> u64 {
        let mut h = FoldHasher::with_seed(self.per_map, &self.shared);
        key.hash(&mut h);
        h.finish() & self.h1_mask
    }

    #[inline]
    pub fn h2(&self, key: &[u8]) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.h2_key[0], self.h2_key[1]);
        h.write(key);
        h.finish() & self.h2_mask
    }

    pub fn pos(&self, key: &[u8]) -> Pos {
        Pos {
            h1: self.h1(key),
            h2: self.h2(key),
        }
    }
}

/// The `h1` seed and `h2` key of a map created with the fixed seed `seed`:
/// the same for every map of this process, unknown outside it.
pub fn fixed_keys(seed: u64) -> (u64, [u64; 2]) {
    static SECRET: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let secret = *SECRET.get_or_init(random_seed);
    let keyed = mix(seed, secret);
    (keyed, [mix(keyed, 2), mix(keyed, 6)])
}

/// Environment variable that must be `1` when a map asks for the weak test
/// hash: production code cannot reach that hash through options alone.
pub const WEAK_HASH_ENV: &std::ffi::CStr = c"MAPCORE_ALLOW_WEAK_HASH";

/// SplitMix64 finaliser: derives independent sub-seeds from one seed.
pub fn mix(seed: u64, lane: u64) -> u64 {
    let mut z = seed.wrapping_add(lane.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A random 64-bit value from the OS-seeded keys of std's `RandomState`
/// (a fresh `RandomState` per call, so successive calls are independent).
pub fn random_seed() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::collections::hash_map::RandomState::new().hash_one(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What someone who knows a fixed seed, but not this process, can
    /// compute: any hasher derived from the seed alone. Keys chosen to share
    /// the top bits of such a hasher's `h1` (one shard, one home run) must
    /// spread out in a map built with that seed.
    #[test]
    fn a_known_fixed_seed_does_not_let_keys_be_crowded() {
        const SEED: u64 = 0x5eed;
        const TOP: u32 = 12;
        let guess = KeyHasher::new(SEED, [mix(SEED, 2), mix(SEED, 6)], false);
        let target = guess.h1(b"anchor") >> (64 - TOP);
        let crafted: Vec<Vec<u8>> = (0u64..)
            .map(|i| format!("k{i}").into_bytes())
            .filter(|k| guess.h1(k) >> (64 - TOP) == target)
            .take(200)
            .collect();
        let (seed, h2_key) = fixed_keys(SEED);
        let real = KeyHasher::new(seed, h2_key, false);
        let homes: std::collections::HashSet<u64> =
            crafted.iter().map(|k| real.h1(k) >> (64 - TOP)).collect();
        assert!(
            homes.len() > 150,
            "200 keys crafted from the seed share {} of 4096 homes",
            homes.len()
        );
        // Within the process the layout is reproducible.
        let again = fixed_keys(SEED);
        assert_eq!(again, (seed, h2_key));
        assert_ne!(fixed_keys(SEED + 1).0, seed);
    }
}
