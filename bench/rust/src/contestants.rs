//! The Rust-side contestants behind one trait. Every contestant copies keys and
//! values in on insert and copies the value out into the caller's buffer on
//! get, like mapcore's C ABI does.

use dashmap::DashMap;
use hashbrown::{DefaultHashBuilder, HashMap};

use crate::data::{KLEN, VLEN};
use crate::mc::{
    self, mc_iter, mc_map, mc_options, MC_ABSENT, MC_DONE, MC_ERR_NOT_FOUND, MC_MODE_STRICT, MC_OK,
};

pub trait Bench: Sync + Sized {
    /// Creates an empty map; `cap` > 0 presizes it for that many entries.
    fn new(cap: usize) -> Self;
    fn insert(&mut self, k: &[u8], v: &[u8]);
    /// Inserts `n` packed 16-byte keys with packed 32-byte values in one batch
    /// where the API has one (mapcore's set-many); a loop otherwise.
    fn insert_batch(&mut self, keys: &[u8], vals: &[u8], n: usize) {
        for i in 0..n {
            self.insert(
                &keys[i * KLEN..(i + 1) * KLEN],
                &vals[i * VLEN..(i + 1) * VLEN],
            );
        }
    }
    /// Copies the value of `k` into `out`; false when absent.
    fn get(&self, k: &[u8], out: &mut [u8]) -> bool;
    /// Looks up `n` packed 16-byte keys; values are packed into `out` and
    /// `lens[i]` is the length or u32::MAX. Returns the number of hits.
    fn get_batch(&self, keys: &[u8], n: usize, out: &mut [u8], lens: &mut [u32]) -> usize {
        let mut off = 0;
        let mut hits = 0;
        for i in 0..n {
            if self.get(&keys[i * KLEN..(i + 1) * KLEN], &mut out[off..off + VLEN]) {
                lens[i] = VLEN as u32;
                off += VLEN;
                hits += 1;
            } else {
                lens[i] = u32::MAX;
            }
        }
        hits
    }
    /// Overwrites the value of an existing key.
    fn set(&mut self, k: &[u8], v: &[u8]);
    fn remove(&mut self, k: &[u8]) -> bool;
    /// Visits every entry; returns (count, checksum).
    fn iterate(&self) -> (usize, u64);
    fn len(&self) -> usize;
    /// True for maps usable from several threads at once (`cget`/`cset`).
    const CONCURRENT: bool = false;
    const HAS_BATCH: bool = false;
    fn cget(&self, k: &[u8], out: &mut [u8]) -> bool {
        self.get(k, out)
    }
    fn cset(&self, _k: &[u8], _v: &[u8]) {
        unreachable!("not a concurrent map")
    }
}

#[inline]
fn visit(acc: &mut u64, k: &[u8], v: &[u8]) {
    *acc = acc.wrapping_add((k.len() + v.len()) as u64 + k[0] as u64 + v[v.len() - 1] as u64);
}

// ---------------------------------------------------------------------------
// mapcore through its C ABI
// ---------------------------------------------------------------------------

pub struct Mapcore {
    m: mc_map,
}

// SAFETY: a mapcore handle is a plain id; every function is thread-safe.
unsafe impl Sync for Mapcore {}
unsafe impl Send for Mapcore {}

impl Drop for Mapcore {
    fn drop(&mut self) {
        // SAFETY: FFI call with a handle we own.
        unsafe { mc::check(mc::mc_map_free(self.m)) };
    }
}

static LENS16: [u32; 4096] = [KLEN as u32; 4096];
static LENS32: [u32; 4096] = [VLEN as u32; 4096];

impl Mapcore {
    #[inline]
    fn raw_get(&self, k: &[u8], out: &mut [u8]) -> bool {
        let mut len = 0usize;
        // SAFETY: valid buffers for the call.
        let st = unsafe {
            mc::mc_map_get(
                self.m,
                k.as_ptr(),
                k.len(),
                out.as_mut_ptr(),
                out.len(),
                &mut len,
            )
        };
        match st {
            MC_OK => true,
            MC_ERR_NOT_FOUND => false,
            e => panic!("mc_map_get: {}", mc::status_name(e)),
        }
    }

    #[inline]
    fn raw_set(&self, k: &[u8], v: &[u8]) {
        // SAFETY: valid buffers for the call.
        let st = unsafe {
            mc::mc_map_set(
                self.m,
                k.as_ptr(),
                k.len(),
                v.as_ptr(),
                v.len(),
                std::ptr::null_mut(),
            )
        };
        debug_assert_eq!(st, MC_OK);
        if st != MC_OK {
            panic!("mc_map_set: {}", mc::status_name(st));
        }
    }
}

impl Bench for Mapcore {
    const CONCURRENT: bool = true;
    const HAS_BATCH: bool = true;

    fn new(cap: usize) -> Self {
        let mut m = mc_map { id: 0 };
        let opts = mc_options {
            capacity: cap as u64,
            ..Default::default()
        };
        // SAFETY: valid out-pointers.
        unsafe { mc::check(mc::mc_map_new_with(&opts, &mut m)) };
        Mapcore { m }
    }

    #[inline]
    fn insert(&mut self, k: &[u8], v: &[u8]) {
        self.raw_set(k, v)
    }

    fn insert_batch(&mut self, keys: &[u8], vals: &[u8], n: usize) {
        // SAFETY: n packed keys and values with their lengths.
        let st = unsafe {
            mc::mc_map_set_many(
                self.m,
                n,
                keys.as_ptr(),
                LENS16.as_ptr(),
                vals.as_ptr(),
                LENS32.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        mc::check(st);
    }

    #[inline]
    fn get(&self, k: &[u8], out: &mut [u8]) -> bool {
        self.raw_get(k, out)
    }

    fn get_batch(&self, keys: &[u8], n: usize, out: &mut [u8], lens: &mut [u32]) -> usize {
        let mut used = 0usize;
        // SAFETY: n packed keys, an output buffer and n length slots.
        let st = unsafe {
            mc::mc_map_get_many(
                self.m,
                n,
                keys.as_ptr(),
                LENS16.as_ptr(),
                out.as_mut_ptr(),
                out.len(),
                lens.as_mut_ptr(),
                &mut used,
            )
        };
        mc::check(st);
        lens[..n].iter().filter(|&&l| l != MC_ABSENT).count()
    }

    #[inline]
    fn set(&mut self, k: &[u8], v: &[u8]) {
        self.raw_set(k, v)
    }

    fn remove(&mut self, k: &[u8]) -> bool {
        // SAFETY: valid key buffer.
        match unsafe { mc::mc_map_delete(self.m, k.as_ptr(), k.len()) } {
            MC_OK => true,
            MC_ERR_NOT_FOUND => false,
            e => panic!("mc_map_delete: {}", mc::status_name(e)),
        }
    }

    fn iterate(&self) -> (usize, u64) {
        const CAP: usize = 64 * 1024;
        let mut buf = vec![0u8; CAP];
        let mut it = mc_iter::default();
        // SAFETY: valid out-pointer.
        unsafe { mc::check(mc::mc_iter_init(self.m, MC_MODE_STRICT, &mut it)) };
        let (mut count, mut acc) = (0usize, 0u64);
        loop {
            let (mut n, mut used) = (0usize, 0usize);
            // SAFETY: valid token and buffer.
            let st = unsafe {
                mc::mc_iter_next_batch(
                    self.m,
                    &mut it,
                    buf.as_mut_ptr(),
                    CAP,
                    1024,
                    &mut n,
                    &mut used,
                )
            };
            if st == MC_DONE {
                break;
            }
            mc::check(st);
            // Walk the documented layout: u32 klen, u32 vlen, key, value.
            let mut off = 0;
            for _ in 0..n {
                let kl = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
                let vl = u32::from_ne_bytes(buf[off + 4..off + 8].try_into().unwrap()) as usize;
                let k = &buf[off + 8..off + 8 + kl];
                let v = &buf[off + 8 + kl..off + 8 + kl + vl];
                visit(&mut acc, k, v);
                off += 8 + kl + vl;
            }
            count += n;
        }
        (count, acc)
    }

    fn len(&self) -> usize {
        let mut n = 0;
        // SAFETY: valid out-pointer.
        unsafe { mc::check(mc::mc_map_len(self.m, &mut n)) };
        n
    }

    #[inline]
    fn cget(&self, k: &[u8], out: &mut [u8]) -> bool {
        self.raw_get(k, out)
    }

    #[inline]
    fn cset(&self, k: &[u8], v: &[u8]) {
        self.raw_set(k, v)
    }
}

// ---------------------------------------------------------------------------
// hashbrown::HashMap<Vec<u8>, Vec<u8>>: the general byte-string map
// ---------------------------------------------------------------------------

pub struct HbVec {
    m: HashMap<Vec<u8>, Vec<u8>>,
}

impl Bench for HbVec {
    fn new(cap: usize) -> Self {
        HbVec {
            m: if cap > 0 {
                HashMap::with_capacity(cap)
            } else {
                HashMap::new()
            },
        }
    }
    #[inline]
    fn insert(&mut self, k: &[u8], v: &[u8]) {
        self.m.insert(k.to_vec(), v.to_vec());
    }
    #[inline]
    fn get(&self, k: &[u8], out: &mut [u8]) -> bool {
        match self.m.get(k) {
            Some(v) => {
                out[..v.len()].copy_from_slice(v);
                true
            }
            None => false,
        }
    }
    #[inline]
    fn set(&mut self, k: &[u8], v: &[u8]) {
        // The allocation-free overwrite a careful user would write.
        match self.m.get_mut(k) {
            Some(old) => {
                old.clear();
                old.extend_from_slice(v);
            }
            None => {
                self.m.insert(k.to_vec(), v.to_vec());
            }
        }
    }
    fn remove(&mut self, k: &[u8]) -> bool {
        self.m.remove(k).is_some()
    }
    fn iterate(&self) -> (usize, u64) {
        let mut acc = 0;
        let mut count = 0;
        for (k, v) in self.m.iter() {
            visit(&mut acc, k, v);
            count += 1;
        }
        (count, acc)
    }
    fn len(&self) -> usize {
        self.m.len()
    }
}

// ---------------------------------------------------------------------------
// hashbrown::HashMap<[u8; 16], [u8; 32]>: the best case (fixed-size, inline)
// ---------------------------------------------------------------------------

pub struct HbArr {
    m: HashMap<[u8; KLEN], [u8; VLEN]>,
}

#[inline]
fn k16(k: &[u8]) -> [u8; KLEN] {
    k.try_into().expect("16-byte key")
}

#[inline]
fn v32(v: &[u8]) -> [u8; VLEN] {
    v.try_into().expect("32-byte value")
}

impl Bench for HbArr {
    fn new(cap: usize) -> Self {
        HbArr {
            m: if cap > 0 {
                HashMap::with_capacity(cap)
            } else {
                HashMap::new()
            },
        }
    }
    #[inline]
    fn insert(&mut self, k: &[u8], v: &[u8]) {
        self.m.insert(k16(k), v32(v));
    }
    #[inline]
    fn get(&self, k: &[u8], out: &mut [u8]) -> bool {
        match self.m.get(&k16(k)) {
            Some(v) => {
                out[..VLEN].copy_from_slice(v);
                true
            }
            None => false,
        }
    }
    #[inline]
    fn set(&mut self, k: &[u8], v: &[u8]) {
        self.m.insert(k16(k), v32(v));
    }
    fn remove(&mut self, k: &[u8]) -> bool {
        self.m.remove(&k16(k)).is_some()
    }
    fn iterate(&self) -> (usize, u64) {
        let mut acc = 0;
        let mut count = 0;
        for (k, v) in self.m.iter() {
            visit(&mut acc, k, v);
            count += 1;
        }
        (count, acc)
    }
    fn len(&self) -> usize {
        self.m.len()
    }
}

// ---------------------------------------------------------------------------
// dashmap::DashMap<Vec<u8>, Vec<u8>> (with hashbrown's default foldhash
// hasher, the same hash family mapcore uses; DashMap's own default is SipHash)
// ---------------------------------------------------------------------------

pub struct Dash {
    m: DashMap<Vec<u8>, Vec<u8>, DefaultHashBuilder>,
}

impl Bench for Dash {
    const CONCURRENT: bool = true;

    fn new(cap: usize) -> Self {
        Dash {
            m: DashMap::with_capacity_and_hasher(cap, DefaultHashBuilder::default()),
        }
    }
    #[inline]
    fn insert(&mut self, k: &[u8], v: &[u8]) {
        self.m.insert(k.to_vec(), v.to_vec());
    }
    #[inline]
    fn get(&self, k: &[u8], out: &mut [u8]) -> bool {
        self.cget(k, out)
    }
    #[inline]
    fn set(&mut self, k: &[u8], v: &[u8]) {
        self.cset(k, v)
    }
    fn remove(&mut self, k: &[u8]) -> bool {
        self.m.remove(k).is_some()
    }
    fn iterate(&self) -> (usize, u64) {
        let mut acc = 0;
        let mut count = 0;
        for r in self.m.iter() {
            visit(&mut acc, r.key(), r.value());
            count += 1;
        }
        (count, acc)
    }
    fn len(&self) -> usize {
        self.m.len()
    }
    #[inline]
    fn cget(&self, k: &[u8], out: &mut [u8]) -> bool {
        match self.m.get(k) {
            Some(r) => {
                let v = r.value();
                out[..v.len()].copy_from_slice(v);
                true
            }
            None => false,
        }
    }
    #[inline]
    fn cset(&self, k: &[u8], v: &[u8]) {
        match self.m.get_mut(k) {
            Some(mut old) => {
                old.clear();
                old.extend_from_slice(v);
            }
            None => {
                self.m.insert(k.to_vec(), v.to_vec());
            }
        }
    }
}
