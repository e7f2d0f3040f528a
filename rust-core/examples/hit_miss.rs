//! Get hits and misses through the C ABI on a 1M-entry map, three rounds:
//! `cargo run --release -p mapcore --example hit_miss [miss|set]` (development
//! aid for A/B runs between commits; `make bench` is the real comparison).
// SAFETY (every unsafe block in this file): it calls the C ABI with pointers
// to live local buffers and their exact lengths, as the header requires.
use mapcore::ffi::*;
use std::time::Instant;
fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    let a = i.wrapping_mul(0x9E3779B97F4A7C15) ^ 0x1234;
    let b = a.rotate_left(29).wrapping_mul(0xBF58476D1CE4E5B9);
    k[..8].copy_from_slice(&a.to_le_bytes());
    k[8..].copy_from_slice(&b.to_le_bytes());
    k
}
fn main() {
    let n = 1_000_000u64;
    let mut m = mc_map { id: 0 };
    unsafe { mc_map_new(&mut m) };
    let v = [7u8; 32];
    for i in 0..n {
        let k = key(i);
        unsafe { mc_map_set(m, k.as_ptr(), 16, v.as_ptr(), 32, std::ptr::null_mut()) };
    }
    let mut buf = [0u8; 64];
    if std::env::args().nth(1).as_deref() == Some("set") {
        let v2 = [9u8; 32];
        for round in 0..3 {
            let q = 500_000u64;
            let t = Instant::now();
            for j in 0..q {
                let k = key((j.wrapping_mul(0x5851F42D4C957F2D) >> 20) % n);
                unsafe { mc_map_set(m, k.as_ptr(), 16, v2.as_ptr(), 32, std::ptr::null_mut()) };
            }
            println!(
                "round {round} overwrite: {:.1} ns",
                t.elapsed().as_nanos() as f64 / q as f64
            );
        }
        return;
    }
    for round in 0..3 {
        let only_miss = std::env::args().nth(1).as_deref() == Some("miss");
        for (name, off) in [("hit", 0u64), ("miss", n)] {
            if only_miss && off == 0 {
                continue;
            }
            let q = if only_miss { 5_000_000u64 } else { 500_000u64 };
            let t = Instant::now();
            let mut ok = 0;
            for j in 0..q {
                let i = off + (j.wrapping_mul(0x5851F42D4C957F2D) >> 20) % n;
                let k = key(i);
                let mut l = 0;
                if unsafe { mc_map_get(m, k.as_ptr(), 16, buf.as_mut_ptr(), 64, &mut l) }
                    == mapcore::McStatus::MC_OK
                {
                    ok += 1;
                }
            }
            println!(
                "round {round} {name}: {:.1} ns ({ok})",
                t.elapsed().as_nanos() as f64 / q as f64
            );
        }
    }
}
