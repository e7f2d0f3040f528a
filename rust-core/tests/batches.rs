//! Batch iteration through the C ABI against a model: random buffer sizes
//! (often too small for the next entry), random entry limits, short and
//! long record headers (keys of 128+ bytes, values of 256+), many shards.
//! Every entry must come back exactly once, with the reported count and
//! bytes, and MC_ERR_BUFFER_TOO_SMALL must report what the next entry needs.
mod common;

use std::collections::BTreeMap;

use common::*;
use mapcore::ffi::*;
use mapcore::McStatus::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn rand_len(r: &mut Rng, long: usize) -> usize {
    match r.below(10) {
        0 => 0,
        1..=5 => r.below(40) as usize,
        6 | 7 => 100 + r.below(200) as usize,
        _ => long + r.below(600) as usize,
    }
}

/// Every entry once, whatever the buffer and limit of each call.
#[test]
fn ffi_batches_see_every_entry_once() {
    for seed in 1..=200u64 {
        let mut r = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
        let m = M::new();
        let mut model = BTreeMap::new();
        let n = [1, 5, 40, 500, 3000][(seed % 5) as usize];
        for i in 0..n {
            let mut k: Vec<u8> = (0..rand_len(&mut r, 128)).map(|_| r.next() as u8).collect();
            k.extend_from_slice(&(i as u32).to_le_bytes());
            let v: Vec<u8> = (0..rand_len(&mut r, 256)).map(|_| r.next() as u8).collect();
            m.set(&k, &v).unwrap();
            model.insert(k, v);
        }
        let mut it = m.iter(MC_MODE_STRICT);
        let mut seen = BTreeMap::new();
        let mut cap = 1 + r.below(64) as usize;
        loop {
            let max = 1 + r.below(50) as usize;
            let mut buf = vec![0u8; cap];
            let (mut count, mut used) = (0usize, 0usize);
            // The raw call rather than `M::next_batch`: this test needs *out_used
            // on MC_ERR_BUFFER_TOO_SMALL, and parses the documented layout itself
            // instead of through mc_batch_entry.
            // SAFETY: the token, buffer and out-pointers are live locals of the sizes passed.
            let s = unsafe {
                mc_iter_next_batch(
                    m.0,
                    &mut it,
                    buf.as_mut_ptr(),
                    cap,
                    max,
                    &mut count,
                    &mut used,
                )
            };
            match s {
                MC_DONE => break,
                MC_ERR_BUFFER_TOO_SMALL => {
                    assert!(used > cap, "need {used} cap {cap}");
                    cap = used;
                    continue;
                }
                MC_OK => {
                    assert!(count >= 1 && count <= max && used <= cap);
                    let mut off = 0;
                    let mut got = 0;
                    while off < used {
                        let kl = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
                        let vl =
                            u32::from_ne_bytes(buf[off + 4..off + 8].try_into().unwrap()) as usize;
                        let k = buf[off + 8..off + 8 + kl].to_vec();
                        let v = buf[off + 8 + kl..off + 8 + kl + vl].to_vec();
                        assert!(seen.insert(k, v).is_none(), "duplicate");
                        off += 8 + kl + vl;
                        got += 1;
                    }
                    assert_eq!(off, used);
                    assert_eq!(got, count);
                }
                other => panic!("{other:?}"),
            }
            cap = 1 + r.below(3000) as usize;
        }
        assert_eq!(seen, model, "seed {seed}");
    }
}
