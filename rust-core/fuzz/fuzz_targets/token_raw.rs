//! Raw 48-byte tokens (`mc_iter`) handed to the token-taking calls of a live
//! map and of a snapshot: mc_iter_next, _next_with, _next_batch, _seek,
//! _remove, _set_value, _encode and their snapshot forms.
//!
//! Input: a kind byte picks the token — all zeros, 48 arbitrary bytes, a
//! fresh token of the map or the snapshot advanced some steps, one of
//! another map, of a freed map, or a strict token made stale — then an
//! optional XOR mask over its words, then up to 8 calls with their
//! arguments. Checked, per call:
//! - the status is one the header documents for it (never MC_ERR_INTERNAL
//!   or MC_ERR_POISONED: a caught panic is a crash here);
//! - a token whose words or whose MAC alone were changed gets
//!   MC_ERR_BAD_TOKEN; one of another map, snapshot or freed map
//!   MC_ERR_WRONG_MAP; a stale strict token MC_ERR_ITER_INVALIDATED;
//! - a genuine token returns entries of the map (values as set through it),
//!   never a key twice, leaves the token unchanged on
//!   MC_ERR_BUFFER_TOO_SMALL, and removes or replaces exactly its current
//!   entry.
//!
//! The map is restored after each run (a token the fuzzer forged by
//! learning the MAC through comparison tracing may legitimately change it),
//! and compared with its base contents, so that runs do not depend on each other.
#![no_main]
#![allow(unused_unsafe)]

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::c_void;

use libfuzzer_sys::fuzz_target;
use mapcore::ffi::*;
use mapcore::McStatus::{self, *};
use mapcore_fuzz::common::walk_batch;
use mapcore_fuzz::common::M;
use mapcore_fuzz::snap::Snap;
use mapcore_fuzz::{expect_one_of, key, value, Input};

type Kv = HashMap<Vec<u8>, Vec<u8>>;

struct World {
    a: M,
    snap: Snap,
    b: M,
    freed: mc_map,
    freed_token: mc_iter,
    stale_token: mc_iter,
    base: Kv,
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

fn make_world() -> World {
    let a = M::with(11, false);
    let mut base = Kv::new();
    for i in 0..16u8 {
        let (k, v) = (key(i), value(i, i % 70));
        a.set(&k, &v).unwrap();
        base.insert(k, v);
    }
    let snap = Snap::new(a.0).unwrap();
    let b = M::with(12, false);
    b.set(b"other", b"map").unwrap();
    let f = M::with(13, false);
    f.set(b"k", b"v").unwrap();
    let mut freed_token = f.iter(MC_MODE_CURSOR);
    f.next(&mut freed_token).unwrap();
    let freed = f.0;
    drop(f);
    let mut stale_token = a.iter(MC_MODE_STRICT);
    for _ in 0..3 {
        a.next(&mut stale_token).unwrap();
    }
    a.set(b"transient", b"").unwrap();
    assert_eq!(a.del(b"transient"), MC_OK);
    World {
        a,
        snap,
        b,
        freed,
        freed_token,
        stale_token,
        base,
    }
}

/// What the token is, which decides what every call must return.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    /// Words changed without fixing the MAC, or the MAC alone: BAD_TOKEN.
    Broken,
    /// Arbitrary words (the fuzzer may have learnt a valid MAC): any documented status.
    Arbitrary,
    /// A genuine token of the map (`on_snap` false) or the snapshot.
    Genuine { on_snap: bool, strict: bool },
    /// Genuine, of another map or a freed one: WRONG_MAP on both sources.
    Foreign,
    /// A strict token of the map stamped before a structural change.
    Stale,
}

struct Run<'w> {
    w: &'w World,
    kind: Kind,
    it: mc_iter,
    /// Key the token returned last and has not removed (genuine tokens).
    current: Option<Vec<u8>>,
    returned: HashSet<Vec<u8>>,
    done: bool,
    /// Values set through the token in this run.
    set: Kv,
    removed: HashSet<Vec<u8>>,
    /// Some remove or set_value returned MC_OK: the map needs restoring.
    mutated: bool,
}

const NEXT: &[McStatus] = &[
    MC_OK,
    MC_DONE,
    MC_ERR_BUFFER_TOO_SMALL,
    MC_ERR_ITER_INVALIDATED,
    MC_ERR_BAD_TOKEN,
    MC_ERR_WRONG_MAP,
];
const BATCH: &[McStatus] = &[
    MC_OK,
    MC_DONE,
    MC_ERR_BUFFER_TOO_SMALL,
    MC_ERR_INVALID_ARGUMENT,
    MC_ERR_ITER_INVALIDATED,
    MC_ERR_BAD_TOKEN,
    MC_ERR_WRONG_MAP,
];
const WITH: &[McStatus] = &[
    MC_OK,
    MC_DONE,
    MC_ERR_ITER_INVALIDATED,
    MC_ERR_BAD_TOKEN,
    MC_ERR_WRONG_MAP,
];
const CHANGE: &[McStatus] = &[
    MC_OK,
    MC_ERR_NOT_FOUND,
    MC_ERR_ITER_INVALIDATED,
    MC_ERR_BAD_TOKEN,
    MC_ERR_WRONG_MAP,
];
const SEEK_ENCODE: &[McStatus] = &[MC_OK, MC_ERR_BAD_TOKEN, MC_ERR_WRONG_MAP];

unsafe extern "C" fn collect(user: *mut c_void, k: *const u8, kl: usize, v: *const u8, vl: usize) {
    // SAFETY: `user` is the `Option<(Vec<u8>, Vec<u8>)>` passed below, and
    // the library passes readable entry bytes for the call's duration.
    unsafe {
        *user.cast::<Option<(Vec<u8>, Vec<u8>)>>() = Some((
            std::slice::from_raw_parts(k, kl).to_vec(),
            std::slice::from_raw_parts(v, vl).to_vec(),
        ));
    }
}

impl Run<'_> {
    /// The status every token-taking call on `on_snap` must return, when the
    /// kind alone decides it.
    fn forced(&self, on_snap: bool) -> Option<McStatus> {
        match self.kind {
            Kind::Broken => Some(MC_ERR_BAD_TOKEN),
            Kind::Foreign => Some(MC_ERR_WRONG_MAP),
            Kind::Genuine { on_snap: s, .. } if s != on_snap => Some(MC_ERR_WRONG_MAP),
            Kind::Stale if on_snap => Some(MC_ERR_WRONG_MAP),
            _ => None,
        }
    }

    fn genuine_here(&self, on_snap: bool) -> bool {
        matches!(self.kind, Kind::Genuine { on_snap: s, .. } if s == on_snap)
    }

    /// Checks an entry a genuine token returned, and records it.
    fn returned_entry(&mut self, k: Vec<u8>, v: Vec<u8>) {
        assert!(!self.done, "entry after MC_DONE");
        assert!(!self.removed.contains(&k), "removed key returned");
        let want = self.set.get(&k).or_else(|| self.w.base.get(&k));
        assert_eq!(want, Some(&v), "entry not in the map as set");
        assert!(self.returned.insert(k.clone()), "key returned twice");
        self.current = Some(k);
    }

    fn stepped(
        &mut self,
        call: &str,
        s: McStatus,
        on_snap: bool,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
    ) {
        if let Some(f) = self.forced(on_snap) {
            // max_entries = 0 may be refused before the token is read.
            if !(call == "batch" && s == MC_ERR_INVALID_ARGUMENT) {
                assert_eq!(s, f, "{call} with a {:?} token", self.kind);
            }
        }
        if self.kind == Kind::Stale && !on_snap && s != MC_ERR_INVALID_ARGUMENT {
            assert_eq!(
                s, MC_ERR_ITER_INVALIDATED,
                "{call} with a stale strict token"
            );
        }
        if self.genuine_here(on_snap) {
            match s {
                MC_OK => {
                    for (k, v) in entries {
                        self.returned_entry(k, v);
                    }
                }
                MC_DONE => {
                    if !self.done {
                        // Nothing else changed the map: every entry was returned.
                        let all = self.w.base.keys().filter(|k| !self.removed.contains(*k));
                        for k in all {
                            assert!(self.returned.contains(k), "{k:?} never returned");
                        }
                    }
                    self.done = true;
                    self.current = None;
                }
                MC_ERR_BUFFER_TOO_SMALL | MC_ERR_INVALID_ARGUMENT => {}
                e => panic!("{call} with a genuine token: {e:?}"),
            }
        }
    }

    fn op(&mut self, inp: &mut Input) {
        let w = self.w;
        let sel = inp.u8();
        let on_snap = sel & 1 != 0;
        let before = self.it;
        // SAFETY (every unsafe block here): pointers to live locals and
        // buffers with their exact lengths.
        match (sel >> 1) % 7 {
            0 => {
                let (kc, vc) = ((inp.u8() % 12) as usize, (inp.u8() % 90) as usize);
                let (mut kb, mut vb) = (vec![0u8; kc], vec![0u8; vc]);
                let (mut kl, mut vl) = (usize::MAX, usize::MAX);
                let s = unsafe {
                    if on_snap {
                        mc_snapshot_iter_next(
                            w.snap.0,
                            &mut self.it,
                            kb.as_mut_ptr(),
                            kc,
                            &mut kl,
                            vb.as_mut_ptr(),
                            vc,
                            &mut vl,
                        )
                    } else {
                        mc_iter_next(
                            w.a.0,
                            &mut self.it,
                            kb.as_mut_ptr(),
                            kc,
                            &mut kl,
                            vb.as_mut_ptr(),
                            vc,
                            &mut vl,
                        )
                    }
                };
                expect_one_of("next", s, NEXT);
                if s == MC_ERR_BUFFER_TOO_SMALL {
                    assert_eq!(
                        self.it.opaque, before.opaque,
                        "token moved on BUFFER_TOO_SMALL"
                    );
                    assert!(
                        kl > kc || vl > vc,
                        "BUFFER_TOO_SMALL with room: {kl}/{kc} {vl}/{vc}"
                    );
                }
                if s != MC_OK && s != MC_DONE {
                    assert_eq!(self.it.opaque, before.opaque, "token written on {s:?}");
                }
                let e = if s == MC_OK {
                    vec![(kb[..kl].to_vec(), vb[..vl].to_vec())]
                } else {
                    vec![]
                };
                self.stepped("next", s, on_snap, e);
            }
            1 => {
                let mut got: Option<(Vec<u8>, Vec<u8>)> = None;
                let user = (&mut got as *mut Option<(Vec<u8>, Vec<u8>)>).cast::<c_void>();
                let s = unsafe {
                    if on_snap {
                        mc_snapshot_iter_next_with(w.snap.0, &mut self.it, Some(collect), user)
                    } else {
                        mc_iter_next_with(w.a.0, &mut self.it, Some(collect), user)
                    }
                };
                expect_one_of("next_with", s, WITH);
                assert_eq!(got.is_some(), s == MC_OK, "callback run iff MC_OK");
                self.stepped("next_with", s, on_snap, got.into_iter().collect());
            }
            2 => {
                let cap = inp.u16() as usize % 3000;
                let max = (inp.u8() % 10) as usize;
                let mut buf = vec![0u8; cap];
                let (mut count, mut used) = (usize::MAX, usize::MAX);
                let s = unsafe {
                    if on_snap {
                        mc_snapshot_iter_next_batch(
                            w.snap.0,
                            &mut self.it,
                            buf.as_mut_ptr(),
                            cap,
                            max,
                            &mut count,
                            &mut used,
                        )
                    } else {
                        mc_iter_next_batch(
                            w.a.0,
                            &mut self.it,
                            buf.as_mut_ptr(),
                            cap,
                            max,
                            &mut count,
                            &mut used,
                        )
                    }
                };
                expect_one_of("next_batch", s, BATCH);
                if max == 0 {
                    // Refused whatever the token, or by the token first.
                    expect_one_of(
                        "next_batch max 0",
                        s,
                        &[
                            MC_ERR_INVALID_ARGUMENT,
                            MC_ERR_BAD_TOKEN,
                            MC_ERR_WRONG_MAP,
                            MC_ERR_ITER_INVALIDATED,
                        ],
                    );
                }
                let mut e = vec![];
                match s {
                    MC_OK => {
                        assert!(used <= cap && count >= 1 && count <= max);
                        e = walk_batch(&buf, used);
                        assert_eq!(e.len(), count);
                    }
                    MC_DONE => assert_eq!((count, used), (0, 0)),
                    MC_ERR_BUFFER_TOO_SMALL => {
                        assert!(used > cap, "BUFFER_TOO_SMALL: needs {used}, cap {cap}");
                        assert_eq!(self.it.opaque, before.opaque);
                    }
                    _ => assert_eq!(self.it.opaque, before.opaque, "token written on {s:?}"),
                }
                self.stepped("batch", s, on_snap, e);
            }
            3 => {
                // Seek exists only on maps.
                let k = key(inp.u8());
                let s = unsafe { mc_iter_seek(w.a.0, &mut self.it, k.as_ptr(), k.len()) };
                expect_one_of("seek", s, SEEK_ENCODE);
                if let Some(f) = self.forced(false) {
                    assert_eq!(s, f, "seek with a {:?} token", self.kind);
                }
                if self.genuine_here(false) {
                    assert_eq!(s, MC_OK);
                    // Where the token now stands is the model's job (api_model);
                    // here it only stops being checked for exactly-once.
                    self.kind = Kind::Arbitrary;
                }
            }
            4 => {
                let s = unsafe { mc_iter_remove(w.a.0, &mut self.it) };
                expect_one_of("remove", s, CHANGE);
                self.changed("remove", s);
                self.mutated |= s == MC_OK;
                if s == MC_OK {
                    if let Some(k) = self.current.take() {
                        self.removed.insert(k);
                    }
                }
            }
            5 => {
                let v = value(inp.u8(), inp.u8() % 100);
                let s = unsafe { mc_iter_set_value(w.a.0, &self.it, v.as_ptr(), v.len()) };
                expect_one_of("set_value", s, CHANGE);
                self.changed("set_value", s);
                self.mutated |= s == MC_OK;
                if s == MC_OK {
                    if let Some(k) = self.current.clone() {
                        self.set.insert(k, v);
                    }
                }
            }
            _ => {
                let mut buf = [0 as std::ffi::c_char; 80];
                let mut n = 0usize;
                let s = unsafe {
                    if on_snap {
                        mc_snapshot_iter_encode(
                            w.snap.0,
                            &self.it,
                            buf.as_mut_ptr(),
                            buf.len(),
                            &mut n,
                        )
                    } else {
                        mc_iter_encode(w.a.0, &self.it, buf.as_mut_ptr(), buf.len(), &mut n)
                    }
                };
                expect_one_of("encode", s, SEEK_ENCODE);
                if let Some(f) = self.forced(on_snap) {
                    assert_eq!(s, f, "encode with a {:?} token", self.kind);
                }
                if s == MC_OK {
                    assert_eq!(n, MC_ITER_TEXT_LEN);
                }
            }
        }
    }

    /// Checks remove / set_value through the token (on the map).
    fn changed(&mut self, call: &str, s: McStatus) {
        if let Some(f) = self.forced(false) {
            assert_eq!(s, f, "{call} with a {:?} token", self.kind);
        }
        if self.kind == Kind::Stale {
            assert_eq!(
                s, MC_ERR_ITER_INVALIDATED,
                "{call} with a stale strict token"
            );
        }
        if self.genuine_here(false) {
            let want = if self.current.is_some() {
                MC_OK
            } else {
                MC_ERR_NOT_FOUND
            };
            assert_eq!(
                s, want,
                "{call} through a genuine token (current {:?})",
                self.current
            );
        }
    }
}

/// Puts the map back to its base contents and checks it got there.
fn restore(w: &World) {
    let mut now: Kv = w.a.entries().into_iter().collect();
    if now == w.base {
        return;
    }
    for (k, v) in &w.base {
        if now.get(k) != Some(v) {
            w.a.set(k, v).unwrap();
        }
    }
    for k in now.keys() {
        if !w.base.contains_key(k) {
            // Only the fuzzer's forged tokens get here, and they cannot add keys.
            panic!("a key outside the base appeared: {k:?}");
        }
    }
    now = w.a.entries().into_iter().collect();
    assert_eq!(now, w.base, "restore");
}

fn run(w: &World, data: &[u8]) {
    let mut inp = Input(data);
    let k = inp.u8();
    let steps = inp.u8() % 19;
    let strict = k & 8 != 0;
    let mode = if strict {
        MC_MODE_STRICT
    } else {
        MC_MODE_CURSOR
    };
    // What a genuine token returned while it was advanced here.
    let (mut returned, mut current, mut done) = (HashSet::new(), None, false);
    let (mut kind, mut it) = match k % 8 {
        0 => (Kind::Broken, mc_iter { opaque: [0; 6] }),
        1 => {
            let mut it = mc_iter { opaque: [0; 6] };
            for word in it.opaque.iter_mut() {
                let b = inp.bytes(8);
                let mut w8 = [0u8; 8];
                w8[..b.len()].copy_from_slice(b);
                *word = u64::from_le_bytes(w8);
            }
            (Kind::Arbitrary, it)
        }
        2..=4 => {
            let on_snap = k % 8 == 3;
            let mut it = if on_snap {
                w.snap.iter(mode).unwrap()
            } else {
                w.a.iter(mode)
            };
            for _ in 0..steps {
                let r = if on_snap {
                    w.snap.next(&mut it)
                } else {
                    w.a.next(&mut it)
                };
                match r {
                    Ok((key, _)) => {
                        assert!(
                            returned.insert(key.clone()),
                            "setup step returned {key:?} twice"
                        );
                        current = Some(key);
                    }
                    Err(MC_DONE) => {
                        (done, current) = (true, None);
                    }
                    Err(e) => panic!("setup step: {e:?}"),
                }
            }
            (Kind::Genuine { on_snap, strict }, it)
        }
        5 => (Kind::Foreign, w.b.iter(mode)),
        6 => (Kind::Foreign, w.freed_token),
        _ => (Kind::Stale, w.stale_token),
    };
    // Optional corruption: a mask over the words; which words it touches
    // decides whether the MAC still matches.
    if k & 16 != 0 {
        let mut mask = [0u64; 6];
        for m in mask.iter_mut() {
            let b = inp.bytes(8);
            let mut w8 = [0u8; 8];
            w8[..b.len()].copy_from_slice(b);
            *m = u64::from_le_bytes(w8);
        }
        if mask.iter().any(|&m| m != 0) {
            for (o, m) in it.opaque.iter_mut().zip(mask) {
                *o ^= m;
            }
            kind = if kind == Kind::Arbitrary || (mask[..5].iter().any(|&m| m != 0) && mask[5] != 0)
            {
                Kind::Arbitrary
            } else {
                Kind::Broken
            };
        }
    }
    // Any token on the freed map's handle: BAD_HANDLE, token untouched.
    let mut copy = it;
    // SAFETY: live locals; NULL buffers with capacity 0 are allowed.
    let s = unsafe {
        mc_iter_next(
            w.freed,
            &mut copy,
            std::ptr::null_mut(),
            0,
            &mut 0,
            std::ptr::null_mut(),
            0,
            &mut 0,
        )
    };
    assert_eq!(s, MC_ERR_BAD_HANDLE, "next on a freed map");
    assert_eq!(copy.opaque, it.opaque);
    let mut r = Run {
        w,
        kind,
        it,
        current,
        returned,
        done,
        set: Kv::new(),
        removed: HashSet::new(),
        mutated: false,
    };
    for _ in 0..8 {
        if inp.is_empty() {
            break;
        }
        r.op(&mut inp);
    }
    if r.mutated {
        restore(w);
    } else {
        assert_eq!(
            w.a.len(),
            w.base.len(),
            "the map changed without a successful change call"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    WORLD.with(|cell| {
        let mut g = cell.borrow_mut();
        let w = g.get_or_insert_with(make_world);
        run(w, data);
    });
});
