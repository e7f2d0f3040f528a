//! The snapshot counterpart of `common::M`: a snapshot handle freed on drop,
//! with the calls the targets make on it.
// SAFETY (every unsafe block in this file): it calls the C ABI with pointers
// to live local buffers and their exact lengths, as the header requires.

use mapcore::ffi::*;
use mapcore::McStatus::{self, *};

use crate::common::{fetch_batch, Entries};

pub struct Snap(pub mc_snapshot);

#[allow(clippy::len_without_is_empty)]
impl Snap {
    pub fn new(map: mc_map) -> Result<Snap, McStatus> {
        let mut h = mc_snapshot { id: 0 };
        match unsafe { mc_snapshot_new(map, &mut h) } {
            MC_OK => Ok(Snap(h)),
            e => Err(e),
        }
    }

    pub fn get(&self, k: &[u8]) -> Result<Vec<u8>, McStatus> {
        let mut buf = vec![0u8; 128];
        let mut n = 0usize;
        let s = unsafe {
            mc_snapshot_get(
                self.0,
                k.as_ptr(),
                k.len(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut n,
            )
        };
        match s {
            MC_OK => {
                buf.truncate(n);
                Ok(buf)
            }
            e => Err(e),
        }
    }

    pub fn len(&self) -> Result<usize, McStatus> {
        let mut n = 0usize;
        match unsafe { mc_snapshot_len(self.0, &mut n) } {
            MC_OK => Ok(n),
            e => Err(e),
        }
    }

    pub fn iter(&self, mode: u32) -> Result<mc_iter, McStatus> {
        let mut it = mc_iter { opaque: [0; 6] };
        match unsafe { mc_snapshot_iter_init(self.0, mode, &mut it) } {
            MC_OK => Ok(it),
            e => Err(e),
        }
    }

    /// Next entry, or the status (MC_DONE at the end).
    pub fn next(&self, it: &mut mc_iter) -> Result<(Vec<u8>, Vec<u8>), McStatus> {
        let (mut kb, mut vb) = (vec![0u8; 128], vec![0u8; 128]);
        let (mut kl, mut vl) = (0usize, 0usize);
        let s = unsafe {
            mc_snapshot_iter_next(
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
            MC_OK => {
                kb.truncate(kl);
                vb.truncate(vl);
                Ok((kb, vb))
            }
            e => Err(e),
        }
    }

    /// Next batch (empty at MC_DONE), or the status.
    pub fn next_batch(
        &self,
        it: &mut mc_iter,
        cap: usize,
        max: usize,
    ) -> Result<Entries, McStatus> {
        fetch_batch(cap, |buf, count, used| unsafe {
            mc_snapshot_iter_next_batch(self.0, it, buf, cap, max, count, used)
        })
    }

    pub fn encode(&self, it: &mc_iter) -> Result<Vec<u8>, McStatus> {
        let mut buf = [0 as std::ffi::c_char; 80];
        let mut n = 0;
        let s = unsafe { mc_snapshot_iter_encode(self.0, it, buf.as_mut_ptr(), buf.len(), &mut n) };
        match s {
            MC_OK => Ok(buf[..n].iter().map(|&c| c as u8).collect()),
            e => Err(e),
        }
    }

    pub fn decode(&self, text: &[u8]) -> Result<mc_iter, McStatus> {
        let mut it = mc_iter { opaque: [0; 6] };
        match unsafe { mc_snapshot_iter_decode(self.0, text.as_ptr().cast(), text.len(), &mut it) }
        {
            MC_OK => Ok(it),
            e => Err(e),
        }
    }
}

impl Drop for Snap {
    fn drop(&mut self) {
        let _ = unsafe { mc_snapshot_free(self.0) };
    }
}
