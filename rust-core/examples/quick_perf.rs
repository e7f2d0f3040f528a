//! Quick engine timings through the C ABI vs std HashMap (development aid;
//! `make bench` is the real comparison). `cargo run --release --example quick_perf [N]`
// SAFETY (every unsafe block in this file): it calls the C ABI with pointers
// to live local buffers and their exact lengths, as the header requires.
use std::collections::HashMap;
use std::time::Instant;

use mapcore::ffi::*;

fn keys(n: usize, seed: u64) -> Vec<[u8; 16]> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            let mut k = [0u8; 16];
            for c in k.chunks_mut(8) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                c.copy_from_slice(&(x ^ (x >> 29)).to_le_bytes());
            }
            k
        })
        .collect()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let ks = keys(n, 1);
    let val = [7u8; 32];
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = 99u64;
    for i in (1..n).rev() {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        order.swap(i, (x >> 33) as usize % (i + 1));
    }
    let mut m = mc_map { id: 0 };
    unsafe { mc_map_new(&mut m) };
    let t = Instant::now();
    for k in &ks {
        unsafe { mc_map_set(m, k.as_ptr(), 16, val.as_ptr(), 32, std::ptr::null_mut()) };
    }
    let ins = t.elapsed().as_nanos() as f64 / n as f64;
    let mut buf = [0u8; 64];
    let t = Instant::now();
    let mut sum = 0usize;
    for &i in &order {
        let mut l = 0;
        unsafe { mc_map_get(m, ks[i].as_ptr(), 16, buf.as_mut_ptr(), 64, &mut l) };
        sum += l;
    }
    let get = t.elapsed().as_nanos() as f64 / n as f64;
    let t = Instant::now();
    let mut it = mc_iter { opaque: [0; 6] };
    // SAFETY: `it` is a writable mc_iter.
    unsafe { mc_iter_init(m, MC_MODE_CURSOR, &mut it) };
    let mut bb = vec![0u8; 1 << 16];
    let mut cnt = 0;
    loop {
        let (mut c, mut u) = (0, 0);
        if unsafe {
            mc_iter_next_batch(m, &mut it, bb.as_mut_ptr(), bb.len(), 4096, &mut c, &mut u)
        } != mapcore::McStatus::MC_OK
        {
            break;
        }
        cnt += c;
    }
    let iter = t.elapsed().as_nanos() as f64 / n as f64;
    assert_eq!(cnt, n);
    let mem = map_stats(m).map(|st| st.memory_bytes());

    let t = Instant::now();
    let mut hm: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for k in &ks {
        hm.insert(k.to_vec(), val.to_vec());
    }
    let hins = t.elapsed().as_nanos() as f64 / n as f64;
    let t = Instant::now();
    for &i in &order {
        sum += hm.get(&ks[i][..]).map(|v| v.len()).unwrap_or(0);
    }
    let hget = t.elapsed().as_nanos() as f64 / n as f64;
    let mut fm: HashMap<[u8; 16], [u8; 32]> = HashMap::new();
    for k in &ks {
        fm.insert(*k, val);
    }
    let t = Instant::now();
    for &i in &order {
        sum += fm.get(&ks[i]).map(|v| v.len()).unwrap_or(0);
    }
    let fget = t.elapsed().as_nanos() as f64 / n as f64;
    engine_direct(&ks, &order);
    println!(
        "n={n} mapcore: insert {ins:.1} get {get:.1} iter {iter:.1} ns/op, {:.1} B/entry",
        mem.unwrap_or(0) as f64 / n as f64
    );
    println!("std HashMap<Vec,Vec>: insert {hins:.1} get {hget:.1}; HashMap<[u8;16],[u8;32]> get {fget:.1}  ({sum})");
}

#[allow(dead_code)]
fn engine_direct(ks: &[[u8; 16]], order: &[usize]) {
    let m = mapcore::engine::Map::new(&Default::default()).unwrap();
    let val = [7u8; 32];
    for k in ks {
        m.insert(k, &val).unwrap();
    }
    let t = Instant::now();
    let mut sum = 0;
    for &i in order {
        sum += m.get_with(&ks[i], |v| v.len()).unwrap_or(0);
    }
    let n = ks.len();
    println!(
        "engine direct get {:.1} ns ({sum})",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let t = Instant::now();
    let h = m.hasher().clone();
    for &i in order {
        sum += h.h1(&ks[i]) as usize & 1;
    }
    println!(
        "hash only {:.1} ns ({sum})",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let t = Instant::now();
    let mut cur = mapcore::engine::Cursor::default();
    let mut cnt = 0usize;
    while let Ok(mapcore::engine::Scan::Entries(c)) = m.scan(&mut cur, None, 4096, &mut |_| true) {
        cnt += c;
    }
    println!(
        "engine scan {:.1} ns/entry ({cnt})",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}
