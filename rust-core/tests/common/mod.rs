//! A thin safe wrapper over the exported C ABI, so the Rust tests exercise the
//! same functions C and Go call.
// SAFETY (every unsafe block in this file): it calls the C ABI with pointers
// to live local buffers and their exact lengths, as the header requires.
#![allow(dead_code)]

pub mod scan;

use mapcore::ffi::*;
use mapcore::McStatus;
use McStatus::*;

pub struct M(pub mc_map);

/// Runs one next-batch call (`call(buf, count, used)`, for a map or a
/// snapshot) into a fresh buffer of `cap` bytes: its entries (empty at
/// MC_DONE), or the status.
pub fn fetch_batch(
    cap: usize,
    call: impl FnOnce(*mut u8, &mut usize, &mut usize) -> McStatus,
) -> Result<Entries, McStatus> {
    let mut buf = vec![0u8; cap];
    let (mut count, mut used) = (0usize, 0usize);
    match call(buf.as_mut_ptr(), &mut count, &mut used) {
        MC_DONE => Ok(Vec::new()),
        MC_OK => {
            let out = walk_batch(&buf, used);
            assert_eq!(out.len(), count, "batch entry count");
            Ok(out)
        }
        e => Err(e),
    }
}

/// Walks the `used` bytes of a next-batch buffer with `mc_batch_entry`.
pub fn walk_batch(buf: &[u8], used: usize) -> Entries {
    let mut out = Vec::new();
    let mut off = 0usize;
    loop {
        let (mut k, mut kl, mut v, mut vl) = (std::ptr::null(), 0, std::ptr::null(), 0);
        let s = unsafe {
            mc_batch_entry(
                buf.as_ptr(),
                used,
                &mut off,
                &mut k,
                &mut kl,
                &mut v,
                &mut vl,
            )
        };
        match s {
            MC_DONE => return out,
            MC_OK => unsafe {
                out.push((
                    std::slice::from_raw_parts(k, kl).to_vec(),
                    std::slice::from_raw_parts(v, vl).to_vec(),
                ));
            },
            e => panic!("mc_batch_entry on a buffer the library filled: {e:?}"),
        }
    }
}

pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Options for a fixed-seed map, with the weak test hash if `weak` (which
/// the library grants only to a process that opts in through its
/// environment; the tests do).
pub fn opts(seed: u64, weak: bool) -> mc_options {
    if weak {
        std::env::set_var("MAPCORE_ALLOW_WEAK_HASH", "1");
    }
    mc_options {
        flags: MC_OPT_FIXED_SEED
            | if weak {
                MC_OPT_WEAK_HASH_FOR_TESTING
            } else {
                0
            },
        reserved: 0,
        seed,
        capacity: 0,
    }
}

/// `mc_map_get_many` of the keys packed in `keys` (lengths in `lens`):
/// values into `out`, their lengths into `vlens`. Returns the status and
/// `*out_used`.
pub fn get_many(
    m: mc_map,
    keys: &[u8],
    lens: &[u32],
    out: &mut [u8],
    vlens: &mut [u32],
) -> (McStatus, usize) {
    assert_eq!(lens.len(), vlens.len());
    let mut used = 0;
    let s = unsafe {
        mc_map_get_many(
            m,
            lens.len(),
            keys.as_ptr(),
            lens.as_ptr(),
            out.as_mut_ptr(),
            out.len(),
            vlens.as_mut_ptr(),
            &mut used,
        )
    };
    (s, used)
}

impl M {
    pub fn new() -> M {
        let mut h = mc_map { id: 0 };
        assert_eq!(unsafe { mc_map_new(&mut h) }, MC_OK);
        M(h)
    }

    pub fn with(seed: u64, weak: bool) -> M {
        let mut h = mc_map { id: 0 };
        assert_eq!(unsafe { mc_map_new_with(&opts(seed, weak), &mut h) }, MC_OK);
        M(h)
    }

    pub fn set(&self, k: &[u8], v: &[u8]) -> Result<bool, McStatus> {
        let mut ins = false;
        let s = unsafe { mc_map_set(self.0, k.as_ptr(), k.len(), v.as_ptr(), v.len(), &mut ins) };
        if s == MC_OK {
            Ok(ins)
        } else {
            Err(s)
        }
    }

    pub fn get(&self, k: &[u8]) -> Result<Vec<u8>, McStatus> {
        let mut n = 0usize;
        let s = unsafe { mc_map_get(self.0, k.as_ptr(), k.len(), std::ptr::null_mut(), 0, &mut n) };
        match s {
            MC_OK => return Ok(Vec::new()),
            MC_ERR_BUFFER_TOO_SMALL => {}
            e => return Err(e),
        }
        let mut buf = vec![0u8; n];
        let s = unsafe {
            mc_map_get(
                self.0,
                k.as_ptr(),
                k.len(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut n,
            )
        };
        if s == MC_OK {
            buf.truncate(n);
            Ok(buf)
        } else {
            Err(s)
        }
    }

    pub fn del(&self, k: &[u8]) -> McStatus {
        unsafe { mc_map_delete(self.0, k.as_ptr(), k.len()) }
    }

    pub fn len(&self) -> usize {
        let mut n = 0;
        assert_eq!(unsafe { mc_map_len(self.0, &mut n) }, MC_OK);
        n
    }

    pub fn iter(&self, mode: u32) -> mc_iter {
        let mut it = mc_iter { opaque: [0; 6] };
        // SAFETY: `it` is a writable mc_iter.
        assert_eq!(unsafe { mc_iter_init(self.0, mode, &mut it) }, MC_OK);
        it
    }

    /// Next entry, or the status.
    pub fn next(&self, it: &mut mc_iter) -> Result<(Vec<u8>, Vec<u8>), McStatus> {
        let mut kb = vec![0u8; 64];
        let mut vb = vec![0u8; 64];
        loop {
            let (mut kl, mut vl) = (0usize, 0usize);
            let s = unsafe {
                mc_iter_next(
                    self.0,
                    it,
                    kb.as_mut_ptr(),
                    kb.len(),
                    &mut kl,
                    vb.as_mut_ptr(),
                    vb.len(),
                    &mut vl,
                )
            };
            match s {
                MC_OK => return Ok((kb[..kl].to_vec(), vb[..vl].to_vec())),
                MC_ERR_BUFFER_TOO_SMALL => {
                    kb.resize(kl.max(kb.len()), 0);
                    vb.resize(vl.max(vb.len()), 0);
                }
                e => return Err(e),
            }
        }
    }

    /// Next batch as a vector of entries (empty at MC_DONE).
    pub fn next_batch(
        &self,
        it: &mut mc_iter,
        cap: usize,
        max: usize,
    ) -> Result<Entries, McStatus> {
        fetch_batch(cap, |buf, count, used| unsafe {
            mc_iter_next_batch(self.0, it, buf, cap, max, count, used)
        })
    }

    pub fn remove_cur(&self, it: &mut mc_iter) -> McStatus {
        // SAFETY: `it` is a token, readable and writable.
        unsafe { mc_iter_remove(self.0, it) }
    }

    pub fn set_cur(&self, it: &mc_iter, v: &[u8]) -> McStatus {
        unsafe { mc_iter_set_value(self.0, it, v.as_ptr(), v.len()) }
    }

    pub fn encode(&self, it: &mc_iter) -> Result<String, McStatus> {
        let mut buf = [0 as std::ffi::c_char; 80];
        let mut n = 0;
        let s = unsafe { mc_iter_encode(self.0, it, buf.as_mut_ptr(), buf.len(), &mut n) };
        if s != MC_OK {
            return Err(s);
        }
        Ok(buf[..n].iter().map(|&c| c as u8 as char).collect())
    }

    pub fn decode(&self, text: &str) -> Result<mc_iter, McStatus> {
        let mut it = mc_iter { opaque: [0; 6] };
        let s = unsafe { mc_iter_decode(self.0, text.as_ptr().cast(), text.len(), &mut it) };
        if s == MC_OK {
            Ok(it)
        } else {
            Err(s)
        }
    }

    /// Every entry via a fresh strict iteration.
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut it = self.iter(MC_MODE_STRICT);
        let mut out = Vec::new();
        loop {
            match self.next(&mut it) {
                Ok(e) => out.push(e),
                Err(MC_DONE) => return out,
                Err(e) => panic!("iteration failed: {e:?}"),
            }
        }
    }
}

impl Drop for M {
    fn drop(&mut self) {
        let _ = mc_map_free(self.0);
    }
}
