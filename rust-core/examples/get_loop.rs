//! Development aid for instruction-count profiling of one hot path:
//! `valgrind --tool=callgrind target/release/examples/get_loop ffi|engine`.
// SAFETY (every unsafe block in this file): it calls the C ABI with pointers
// to live local buffers and their exact lengths, as the header requires.
use mapcore::ffi::*;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let n = 100_000u64;
    let ks: Vec<[u8; 16]> = (0..n)
        .map(|i| {
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&(i.wrapping_mul(0x9E3779B97F4A7C15)).to_le_bytes());
            k
        })
        .collect();
    let val = [1u8; 32];
    let mut m = mc_map { id: 0 };
    unsafe { mc_map_new(&mut m) };
    for k in &ks {
        unsafe { mc_map_set(m, k.as_ptr(), 16, val.as_ptr(), 32, std::ptr::null_mut()) };
    }
    // The same data in an engine map called directly, to separate ABI cost.
    let em = mapcore::engine::Map::new(&Default::default()).unwrap();
    for k in &ks {
        em.insert(k, &val).unwrap();
    }
    let mut buf = [0u8; 64];
    let mut sum = 0usize;
    if mode == "scan" {
        for _ in 0..3 {
            let mut it = mc_iter { opaque: [0; 6] };
            // SAFETY: `it` is a writable mc_iter.
            unsafe { mc_iter_init(m, MC_MODE_CURSOR, &mut it) };
            let mut bb = vec![0u8; 1 << 16];
            loop {
                let (mut c, mut u) = (0, 0);
                if unsafe {
                    mc_iter_next_batch(m, &mut it, bb.as_mut_ptr(), bb.len(), 4096, &mut c, &mut u)
                } != mapcore::McStatus::MC_OK
                {
                    break;
                }
                sum += c;
            }
        }
        println!("{sum}");
        return;
    }
    for _ in 0..3 {
        for k in &ks {
            if mode == "engine" {
                sum += em
                    .get_with(k, |v| {
                        buf[..v.len()].copy_from_slice(v);
                        v.len()
                    })
                    .unwrap();
            } else {
                let mut l = 0;
                unsafe { mc_map_get(m, k.as_ptr(), 16, buf.as_mut_ptr(), 64, &mut l) };
                sum += l;
            }
        }
    }
    println!("{sum}");
}
