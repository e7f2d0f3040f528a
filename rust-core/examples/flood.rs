//! Hash flooding with a known fixed seed: crafts keys that share one home
//! run under a hasher derived from the seed alone (what someone who knows
//! the seed but not this process can compute), inserts them into a map
//! built with that seed, and prints the cost per key against ordinary keys.
//! Run: `cargo run --release -p mapcore --example flood` (crafting takes
//! ~10 s of one core). Results and history: bench/README.md.
use std::time::Instant;

use mapcore::engine::hash::{mix, KeyHasher};
use mapcore::engine::{Map, Options};

fn main() {
    const SEED: u64 = 0x5eed;
    const BITS: u32 = 14; // shard and home slot of a 5,000-entry map
    const N: usize = 5_000;
    let guess = KeyHasher::new(SEED, [mix(SEED, 2), mix(SEED, 6)], false);
    let target = guess.h1(b"anchor") >> (64 - BITS);
    let crafted: Vec<Vec<u8>> = (0u64..)
        .map(|i| format!("k{i}").into_bytes())
        .filter(|k| guess.h1(k) >> (64 - BITS) == target)
        .take(N)
        .collect();
    let plain: Vec<Vec<u8>> = (0..N).map(|i| format!("p{i}").into_bytes()).collect();
    for (name, keys) in [("crafted", &crafted), ("ordinary", &plain)] {
        let m = Map::new(&Options {
            seed: Some(SEED),
            ..Default::default()
        })
        .unwrap();
        let t = Instant::now();
        for k in keys {
            m.insert(k, b"v").unwrap();
        }
        let insert = t.elapsed().as_nanos() as f64 / N as f64;
        let t = Instant::now();
        for k in keys {
            assert!(m.get(k).is_some());
        }
        let get = t.elapsed().as_nanos() as f64 / N as f64;
        println!("{name} keys: insert {insert:.0} ns, get {get:.0} ns per key");
    }
}
