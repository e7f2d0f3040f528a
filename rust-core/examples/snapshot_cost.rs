//! Measures what a snapshot costs through the C ABI:
//! `cargo run --release -p mapcore --example snapshot_cost [N]` (default 10M).
//! Prints the time to take a snapshot, the time and pages copied by writes
//! after it, and the time to release it.
// SAFETY (every unsafe block in this file): it calls the C ABI with pointers
// to live local buffers and their exact lengths, as the header requires.
use std::time::Instant;

use mapcore::ffi::*;

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    k[8..].copy_from_slice(&i.to_le_bytes());
    k
}

fn cow_pages(m: mc_map) -> usize {
    map_stats(m).expect("live map").cow_pages
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let mut m = mc_map { id: 0 };
    let opts = mc_options {
        flags: 0,
        reserved: 0,
        seed: 0,
        capacity: n,
    };
    assert_eq!(
        unsafe { mc_map_new_with(&opts, &mut m) },
        mapcore::McStatus::MC_OK
    );
    let val = [9u8; 32];
    let t = Instant::now();
    for i in 0..n {
        let k = key(i);
        unsafe { mc_map_set(m, k.as_ptr(), 16, val.as_ptr(), 32, std::ptr::null_mut()) };
    }
    println!("built {n} entries in {:.2?}", t.elapsed());
    let mut s = mc_snapshot { id: 0 };
    let t = Instant::now();
    // SAFETY: `s` is a writable mc_snapshot.
    let st = unsafe { mc_snapshot_new(m, &mut s) };
    assert_eq!(st, mapcore::McStatus::MC_OK);
    let take = t.elapsed();
    println!("mc_snapshot_new: {:.1} us", take.as_secs_f64() * 1e6);
    let writes = 1000u64;
    let before = cow_pages(m);
    let t = Instant::now();
    for i in 0..writes {
        let k = key(i * 7919 % n);
        unsafe { mc_map_set(m, k.as_ptr(), 16, b"x".as_ptr(), 1, std::ptr::null_mut()) };
    }
    let dt = t.elapsed();
    let copied = cow_pages(m) - before;
    println!(
        "{writes} overwrites after the snapshot: {:.2} us/write, {copied} slot pages copied ({} per write, 16 KiB each: 2048 slots)",
        dt.as_secs_f64() * 1e6 / writes as f64,
        copied as f64 / writes as f64
    );
    let t = Instant::now();
    for i in 0..writes {
        let k = key(i * 7919 % n);
        unsafe { mc_map_set(m, k.as_ptr(), 16, b"y".as_ptr(), 1, std::ptr::null_mut()) };
    }
    println!(
        "the same writes again (pages already private): {:.2} us/write",
        t.elapsed().as_secs_f64() * 1e6 / writes as f64
    );
    let t = Instant::now();
    assert_eq!(mc_snapshot_free(s), mapcore::McStatus::MC_OK);
    println!(
        "mc_snapshot_free: {:.1} us",
        t.elapsed().as_secs_f64() * 1e6
    );
    mc_map_free(m);
}
