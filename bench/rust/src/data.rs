//! The shared benchmark data (see bench/DATA.md). Must stay in sync with
//! bench/c/data.h and bench/go/data.go.

pub const KSEED: u64 = 0x6B65_7900_0000_0000;
pub const VSEED: u64 = 0x7661_6C00_0000_0000;
pub const QSEED: u64 = 0x7175_6500_0000_0000;
pub const MSEED: u64 = 0x6D69_7300_0000_0000;
pub const XSEED: u64 = 0x6D69_7800_0000_0000;
pub const ZSEED: u64 = 0x7A69_7000_0000_0000;

pub const KLEN: usize = 16;
pub const VLEN: usize = 32;

#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn key(i: u64, out: &mut [u8]) {
    out[..8].copy_from_slice(&mix(KSEED.wrapping_add(2 * i)).to_le_bytes());
    out[8..16].copy_from_slice(&mix(KSEED.wrapping_add(2 * i + 1)).to_le_bytes());
}

pub fn value(i: u64, out: &mut [u8]) {
    for w in 0..4 {
        out[w * 8..w * 8 + 8]
            .copy_from_slice(&mix(VSEED.wrapping_add(4 * i + w as u64)).to_le_bytes());
    }
}

/// YCSB Zipfian generator (theta 0.99) over `n` items.
pub struct Zipf {
    n: f64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipf {
    pub fn new(n: u64) -> Zipf {
        let theta = 0.99f64;
        let mut zetan = 0.0f64;
        for i in 1..=n {
            zetan += 1.0 / (i as f64).powf(theta);
        }
        let zeta2 = 1.0 + 1.0 / 2f64.powf(theta);
        let nf = n as f64;
        let eta = (1.0 - (2.0 / nf).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Zipf {
            n: nf,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta,
        }
    }

    pub fn rank(&self, u: f64) -> u64 {
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        let r = (self.n * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n as u64 - 1)
    }
}

pub struct Data {
    pub n: usize,
    pub q: usize,
    /// N keys, 16 bytes each, back to back.
    pub keys: Vec<u8>,
    /// N values, 32 bytes each.
    pub vals: Vec<u8>,
    /// Q uniform hit query keys, packed.
    pub hit: Vec<u8>,
    /// Their key indices.
    pub hit_idx: Vec<u32>,
    pub zipf: Vec<u8>,
    pub miss: Vec<u8>,
    /// Mixed ops: key index, top bit set for a set.
    pub mixed: Vec<u32>,
}

pub const SET_BIT: u32 = 1 << 31;

impl Data {
    pub fn generate(n: usize, q: usize) -> Data {
        let mut keys = vec![0u8; n * KLEN];
        let mut vals = vec![0u8; n * VLEN];
        for i in 0..n {
            key(i as u64, &mut keys[i * KLEN..(i + 1) * KLEN]);
            value(i as u64, &mut vals[i * VLEN..(i + 1) * VLEN]);
        }
        let nn = n as u64;
        let mut hit = vec![0u8; q * KLEN];
        let mut hit_idx = vec![0u32; q];
        let mut miss = vec![0u8; q * KLEN];
        let mut zipf = vec![0u8; q * KLEN];
        let mut mixed = vec![0u32; q];
        let z = Zipf::new(nn);
        for j in 0..q {
            let jj = j as u64;
            let idx = mix(QSEED.wrapping_add(jj)) % nn;
            hit_idx[j] = idx as u32;
            hit[j * KLEN..(j + 1) * KLEN]
                .copy_from_slice(&keys[idx as usize * KLEN..(idx as usize + 1) * KLEN]);
            key(
                nn + mix(MSEED.wrapping_add(jj)) % nn,
                &mut miss[j * KLEN..(j + 1) * KLEN],
            );
            let u = (mix(ZSEED.wrapping_add(jj)) >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
            let r = z.rank(u);
            let zi = ((r as u128 * 2_654_435_761u128) % nn as u128) as usize;
            zipf[j * KLEN..(j + 1) * KLEN].copy_from_slice(&keys[zi * KLEN..(zi + 1) * KLEN]);
            let r = mix(XSEED.wrapping_add(jj));
            let idx = ((r >> 8) % nn) as u32;
            mixed[j] = if r.is_multiple_of(10) {
                idx | SET_BIT
            } else {
                idx
            };
        }
        Data {
            n,
            q,
            keys,
            vals,
            hit,
            hit_idx,
            zipf,
            miss,
            mixed,
        }
    }

    #[inline]
    pub fn key(&self, i: usize) -> &[u8] {
        &self.keys[i * KLEN..(i + 1) * KLEN]
    }

    #[inline]
    pub fn val(&self, i: usize) -> &[u8] {
        &self.vals[i * VLEN..(i + 1) * VLEN]
    }

    /// FNV-1a over keys, values and the hit indices (bench/DATA.md).
    pub fn checksum(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |b: &[u8]| {
            for &x in b {
                h ^= x as u64;
                h = h.wrapping_mul(0x100_0000_01b3);
            }
        };
        for i in 0..self.n {
            feed(self.key(i));
            feed(self.val(i));
        }
        for &i in &self.hit_idx {
            feed(&i.to_le_bytes());
        }
        h
    }
}
