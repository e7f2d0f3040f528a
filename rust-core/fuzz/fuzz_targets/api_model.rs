//! Operation sequences through the C ABI against a `HashMap` model.
//!
//! Each input is a program: a header byte (hash seed, weak hash for tie
//! handling) and then one operation per byte with its arguments — set, get,
//! contains, delete, clear, reserve, shrink, set_many, get_many,
//! delete_many, retain, len; strict and cursor iterators (three slots) with
//! next, next_batch, remove and set_value through the token, encode/decode
//! round trips; snapshots (two slots) created, read, iterated and freed;
//! and freeing the map, after which every call on it must give
//! MC_ERR_BAD_HANDLE while its snapshots keep working.
//!
//! The guarantees checked are the header's (the iterator rules are
//! `tests/common/scan.rs`, shared with the proptest model):
//! - every result equals the model's (values, counts, lengths, statuses);
//! - strict: a token sees every entry exactly once when nothing but itself
//!   changed the map structurally, and MC_ERR_ITER_INVALIDATED from the
//!   first call after any other structural change;
//! - cursor: never a key twice, only current entries, and every key present
//!   from the start to the end of the scan (never removed, never re-added
//!   in between) is returned;
//! - a snapshot is exactly the map at the time it was taken, whatever the
//!   map does afterwards, including being freed.
#![no_main]
#![allow(unused_unsafe)]

use std::collections::HashMap;
use std::ffi::c_void;

use libfuzzer_sys::fuzz_target;
use mapcore::ffi::*;
use mapcore::McStatus::{self, *};
use mapcore_fuzz::common::scan::Scan;
use mapcore_fuzz::common::{get_many, opts, Entries, M};
use mapcore_fuzz::snap::Snap;
use mapcore_fuzz::{key, value, Input};

type Kv = HashMap<Vec<u8>, Vec<u8>>;

struct Tok {
    it: mc_iter,
    scan: Scan,
}

struct State {
    m: M,
    freed: bool,
    model: Kv,
    /// Counts structural changes, as the map's strict stamp does.
    generation: u64,
    toks: [Option<Tok>; 3],
    snaps: [Option<(Snap, Kv)>; 2],
}

fn k(inp: &mut Input) -> Vec<u8> {
    key(inp.u8() % 32)
}

fn v(inp: &mut Input) -> Vec<u8> {
    let seed = inp.u8();
    value(seed, inp.u8() % 80)
}

impl State {
    /// A structural change of `changed` (None: of every key).
    fn structural(&mut self, changed: Option<&Vec<u8>>) {
        self.generation += 1;
        for t in self.toks.iter_mut().flatten() {
            t.scan.changed(changed.map(Vec::as_slice));
        }
    }

    /// Expected status of a map call that would otherwise return `ok`.
    fn on_map(&self, ok: McStatus) -> McStatus {
        if self.freed {
            MC_ERR_BAD_HANDLE
        } else {
            ok
        }
    }

    fn check_step(&mut self, slot: usize, r: Result<(Vec<u8>, Vec<u8>), McStatus>) {
        if self.freed {
            assert_eq!(r, Err(MC_ERR_BAD_HANDLE), "iterating a freed map");
            return;
        }
        let t = self.toks[slot].as_mut().unwrap();
        if let Err(e) = t.scan.step(&self.model, self.generation, r) {
            panic!("token {slot}: {e}");
        }
    }

    /// What removing or replacing the current entry through token `slot` must return.
    fn through_token(&self, slot: usize) -> McStatus {
        let t = self.toks[slot].as_ref().unwrap();
        self.on_map(t.scan.through_token(&self.model, self.generation))
    }

    fn op(&mut self, inp: &mut Input) {
        let code = inp.u8();
        let h = self.m.0;
        // SAFETY (every unsafe block here): the C ABI with pointers to live
        // locals and buffers with their exact lengths.
        match code % 23 {
            0 => {
                let (key, val) = (k(inp), v(inp));
                let new = !self.model.contains_key(&key);
                let r = self.m.set(&key, &val);
                if self.freed {
                    assert_eq!(r, Err(MC_ERR_BAD_HANDLE));
                    return;
                }
                assert_eq!(r, Ok(new), "set");
                self.model.insert(key.clone(), val);
                if new {
                    self.structural(Some(&key));
                }
            }
            1 => {
                let key = k(inp);
                let want = match self.model.get(&key) {
                    Some(v) => Ok(v.clone()),
                    None => Err(MC_ERR_NOT_FOUND),
                };
                let want = if self.freed {
                    Err(MC_ERR_BAD_HANDLE)
                } else {
                    want
                };
                assert_eq!(self.m.get(&key), want, "get {key:?}");
            }
            2 => {
                let key = k(inp);
                let mut out = true;
                let s = unsafe { mc_map_contains(h, key.as_ptr(), key.len(), &mut out) };
                assert_eq!(s, self.on_map(MC_OK), "contains");
                if s == MC_OK {
                    assert_eq!(out, self.model.contains_key(&key), "contains {key:?}");
                }
            }
            3 => {
                let key = k(inp);
                let had = !self.freed && self.model.remove(&key).is_some();
                let want = self.on_map(if had { MC_OK } else { MC_ERR_NOT_FOUND });
                assert_eq!(self.m.del(&key), want, "delete {key:?}");
                if had {
                    self.structural(Some(&key));
                }
            }
            4 => {
                assert_eq!(unsafe { mc_map_clear(h) }, self.on_map(MC_OK), "clear");
                if !self.freed {
                    self.model.clear();
                    self.structural(None);
                }
            }
            5 => {
                let n = inp.u16() as usize % 3000;
                assert_eq!(
                    unsafe { mc_map_reserve(h, n) },
                    self.on_map(MC_OK),
                    "reserve"
                );
                if !self.freed {
                    self.generation += 1;
                }
            }
            6 => {
                assert_eq!(
                    unsafe { mc_map_shrink_to_fit(h) },
                    self.on_map(MC_OK),
                    "shrink"
                );
                if !self.freed {
                    self.generation += 1;
                }
            }
            7 => {
                let n = (inp.u8() % 9) as usize;
                let pairs: Vec<_> = (0..n).map(|_| (k(inp), v(inp))).collect();
                let keys: Vec<u8> = pairs.iter().flat_map(|p| p.0.clone()).collect();
                let vals: Vec<u8> = pairs.iter().flat_map(|p| p.1.clone()).collect();
                let klens: Vec<u32> = pairs.iter().map(|p| p.0.len() as u32).collect();
                let vlens: Vec<u32> = pairs.iter().map(|p| p.1.len() as u32).collect();
                let mut inserted = usize::MAX;
                let s = unsafe {
                    mc_map_set_many(
                        h,
                        n,
                        keys.as_ptr(),
                        klens.as_ptr(),
                        vals.as_ptr(),
                        vlens.as_ptr(),
                        &mut inserted,
                    )
                };
                assert_eq!(s, self.on_map(MC_OK), "set_many");
                if s == MC_OK {
                    let mut new = 0;
                    for (key, val) in pairs {
                        if self.model.insert(key.clone(), val).is_none() {
                            new += 1;
                            self.structural(Some(&key));
                        }
                    }
                    assert_eq!(inserted, new, "set_many inserted");
                }
            }
            8 => {
                let n = (inp.u8() % 9) as usize;
                let ks: Vec<Vec<u8>> = (0..n).map(|_| k(inp)).collect();
                let keys: Vec<u8> = ks.concat();
                let klens: Vec<u32> = ks.iter().map(|x| x.len() as u32).collect();
                let need: usize = ks
                    .iter()
                    .filter_map(|x| self.model.get(x))
                    .map(Vec::len)
                    .sum();
                // Sometimes too small a buffer.
                let cap = if inp.u8() & 1 == 0 {
                    need
                } else {
                    need.saturating_sub(1)
                };
                let mut out = vec![0u8; cap];
                let mut vlens = vec![0u32; n];
                let (s, used) = get_many(h, &keys, &klens, &mut out, &mut vlens);
                if self.freed {
                    assert_eq!(s, MC_ERR_BAD_HANDLE);
                } else if cap < need {
                    assert_eq!(
                        (s, used),
                        (MC_ERR_BUFFER_TOO_SMALL, need),
                        "get_many too small"
                    );
                } else {
                    assert_eq!((s, used), (MC_OK, need), "get_many");
                    let mut off = 0;
                    for (x, &l) in ks.iter().zip(&vlens) {
                        match self.model.get(x) {
                            None => assert_eq!(l, MC_ABSENT, "get_many absent {x:?}"),
                            Some(want) => {
                                assert_eq!(
                                    &out[off..off + l as usize],
                                    &want[..],
                                    "get_many {x:?}"
                                );
                                off += l as usize;
                            }
                        }
                    }
                }
            }
            9 => {
                let n = (inp.u8() % 9) as usize;
                let ks: Vec<Vec<u8>> = (0..n).map(|_| k(inp)).collect();
                let keys: Vec<u8> = ks.concat();
                let klens: Vec<u32> = ks.iter().map(|x| x.len() as u32).collect();
                let mut removed = usize::MAX;
                let s = unsafe {
                    mc_map_delete_many(h, n, keys.as_ptr(), klens.as_ptr(), &mut removed)
                };
                assert_eq!(s, self.on_map(MC_OK), "delete_many");
                if s == MC_OK {
                    let mut want = 0;
                    for x in &ks {
                        if self.model.remove(x).is_some() {
                            want += 1;
                            self.structural(Some(x));
                        }
                    }
                    assert_eq!(removed, want, "delete_many removed");
                }
            }
            10 => {
                let mut mask = inp.u8();
                let keep = |m: u8, val: &[u8]| (val[0] ^ m) & 3 != 0;
                let mut removed = usize::MAX;
                let user = (&mut mask as *mut u8).cast::<c_void>();
                let s = unsafe { mc_map_retain(h, Some(pred), user, &mut removed) };
                assert_eq!(s, self.on_map(MC_OK), "retain");
                if s == MC_OK {
                    let gone: Vec<Vec<u8>> = self
                        .model
                        .iter()
                        .filter(|(_, val)| !keep(mask, val))
                        .map(|(x, _)| x.clone())
                        .collect();
                    assert_eq!(removed, gone.len(), "retain removed");
                    for x in gone {
                        self.model.remove(&x);
                        self.structural(Some(&x));
                    }
                }
            }
            11 => {
                let mut n = usize::MAX;
                let s = unsafe { mc_map_len(h, &mut n) };
                assert_eq!(s, self.on_map(MC_OK), "len");
                if s == MC_OK {
                    assert_eq!(n, self.model.len(), "len");
                }
            }
            12 => {
                let (slot, strict) = ((inp.u8() % 3) as usize, inp.u8() & 1 != 0);
                let mode = if strict {
                    MC_MODE_STRICT
                } else {
                    MC_MODE_CURSOR
                };
                let mut it = mc_iter { opaque: [0; 6] };
                let s = unsafe { mc_iter_init(h, mode, &mut it) };
                assert_eq!(s, self.on_map(MC_OK), "iter_init");
                if s == MC_OK {
                    self.toks[slot] = Some(Tok {
                        it,
                        scan: Scan::new(strict, self.generation, &self.model),
                    });
                }
            }
            13 => {
                let slot = (inp.u8() % 3) as usize;
                if let Some(t) = self.toks[slot].as_mut() {
                    let r = self.m.next(&mut t.it);
                    self.check_step(slot, r);
                }
            }
            14 => {
                let slot = (inp.u8() % 3) as usize;
                let (cap, max) = (inp.u16() as usize % 2048, 1 + (inp.u8() % 12) as usize);
                if let Some(t) = self.toks[slot].as_mut() {
                    match self.m.next_batch(&mut t.it, cap, max) {
                        Ok(e) if e.is_empty() => self.check_step(slot, Err(MC_DONE)),
                        Ok(e) => {
                            assert!(e.len() <= max, "batch over max_entries");
                            for x in e {
                                self.check_step(slot, Ok(x));
                            }
                        }
                        // Too small for the next entry: the token did not move.
                        Err(MC_ERR_BUFFER_TOO_SMALL) => assert!(!self.freed),
                        Err(e) => self.check_step(slot, Err(e)),
                    }
                }
            }
            15 => {
                let slot = (inp.u8() % 3) as usize;
                if self.toks[slot].is_some() {
                    let want = self.through_token(slot);
                    let t = self.toks[slot].as_mut().unwrap();
                    assert_eq!(self.m.remove_cur(&mut t.it), want, "remove through token");
                    if want == MC_OK {
                        let key = t.scan.current.take().unwrap();
                        self.model.remove(&key);
                        self.structural(Some(&key));
                        let t = self.toks[slot].as_mut().unwrap();
                        t.scan.stamp = self.generation;
                    }
                }
            }
            16 => {
                let (slot, val) = ((inp.u8() % 3) as usize, v(inp));
                if self.toks[slot].is_some() {
                    let want = self.through_token(slot);
                    let t = self.toks[slot].as_ref().unwrap();
                    assert_eq!(self.m.set_cur(&t.it, &val), want, "set_value through token");
                    if want == MC_OK {
                        self.model.insert(t.scan.current.clone().unwrap(), val);
                    }
                }
            }
            17 => {
                let slot = (inp.u8() % 3) as usize;
                if let Some(t) = self.toks[slot].as_mut() {
                    match self.m.encode(&t.it) {
                        Ok(text) => t.it = self.m.decode(&text).expect("decode of a fresh encode"),
                        Err(e) => assert!(self.freed && e == MC_ERR_BAD_HANDLE, "encode: {e:?}"),
                    }
                }
            }
            18 => {
                let slot = (inp.u8() % 2) as usize;
                match Snap::new(h) {
                    Ok(s) => self.snaps[slot] = Some((s, self.model.clone())),
                    Err(e) => assert!(self.freed && e == MC_ERR_BAD_HANDLE, "snapshot_new: {e:?}"),
                }
            }
            19 => {
                let (slot, key) = ((inp.u8() % 2) as usize, k(inp));
                if let Some((s, at)) = &self.snaps[slot] {
                    let want = at.get(&key).cloned().ok_or(MC_ERR_NOT_FOUND);
                    assert_eq!(s.get(&key), want, "snapshot_get {key:?}");
                    assert_eq!(s.len(), Ok(at.len()), "snapshot_len");
                }
            }
            20 => {
                let (slot, how) = ((inp.u8() % 2) as usize, inp.u8());
                if let Some((s, at)) = &self.snaps[slot] {
                    let got = scan_snapshot(s, how);
                    let mut seen = Kv::new();
                    for (x, val) in got {
                        assert!(
                            seen.insert(x.clone(), val).is_none(),
                            "snapshot returned {x:?} twice"
                        );
                    }
                    assert_eq!(&seen, at, "snapshot differs from the map when taken");
                }
            }
            21 => {
                let slot = (inp.u8() % 2) as usize;
                self.snaps[slot] = None;
            }
            _ => {
                // Freeing is rare (one code of 256): most programs keep the map.
                if code == 255 {
                    let want = self.on_map(MC_OK);
                    assert_eq!(unsafe { mc_map_free(h) }, want, "map_free");
                    self.freed = true;
                }
            }
        }
    }
}

unsafe extern "C" fn pred(
    user: *mut c_void,
    _k: *const u8,
    _kl: usize,
    v: *const u8,
    vl: usize,
) -> i32 {
    // SAFETY: `user` is the mask byte passed to mc_map_retain; the value
    // bytes are readable for the call (values here are never empty).
    unsafe {
        assert!(vl > 0);
        let m = *user.cast::<u8>();
        i32::from((*v ^ m) & 3 != 0)
    }
}

/// Every entry of a snapshot: by `next` or by batches, strict or cursor.
fn scan_snapshot(s: &Snap, how: u8) -> Entries {
    let mode = if how & 1 != 0 {
        MC_MODE_STRICT
    } else {
        MC_MODE_CURSOR
    };
    let mut it = s.iter(mode).expect("snapshot iter_init");
    let mut out = Vec::new();
    loop {
        if how & 2 == 0 {
            match s.next(&mut it) {
                Ok(e) => out.push(e),
                Err(MC_DONE) => return out,
                Err(e) => panic!("snapshot next: {e:?}"),
            }
        } else {
            match s.next_batch(&mut it, 512, 1 + (how >> 2) as usize) {
                Ok(e) if e.is_empty() => return out,
                Ok(e) => out.extend(e),
                Err(e) => panic!("snapshot batch: {e:?}"),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let head = inp.u8();
    let o = opts(u64::from(head >> 1), head & 1 != 0);
    let mut h = mc_map { id: 0 };
    // SAFETY: live locals.
    let s = unsafe { mc_map_new_with(&o, &mut h) };
    if s != MC_OK {
        // A build that refuses the weak test hash.
        assert_eq!(s, MC_ERR_INVALID_ARGUMENT);
        return;
    }
    let mut st = State {
        m: M(h),
        freed: false,
        model: Kv::new(),
        generation: 0,
        toks: [None, None, None],
        snaps: [None, None],
    };
    let mut ops = 0;
    while !inp.is_empty() && ops < 400 {
        st.op(&mut inp);
        ops += 1;
    }
    if !st.freed {
        let got: Kv = st.m.entries().into_iter().collect();
        assert_eq!(got, st.model, "final contents");
    }
    // Snapshots outlive the map; dropping `st` frees them, then the map.
});
