//! `mc_iter_decode` / `mc_snapshot_iter_decode` on arbitrary text, and the
//! encode -> decode round trip of real tokens with arbitrary edits.
//!
//! Input: a selector byte, then either the text itself (selector even) or
//! the recipe of a real token (source, mode, steps taken) followed by
//! (position, byte) edits to its text. Checked:
//! - arbitrary text: MC_ERR_BAD_TOKEN or MC_ERR_WRONG_MAP on every source
//!   (MC_OK only for a text that re-encodes to itself, which a forger cannot
//!   make); the text sits against a guard page, so no byte past `len` is read;
//! - a real token's text: "mc1" + 64 base64url characters, decodes to a token
//!   that continues exactly where the original does, gives MC_ERR_WRONG_MAP
//!   on every other map or snapshot, and any edit that changes it gives
//!   MC_ERR_BAD_TOKEN;
//! - encode into a short buffer: MC_ERR_BUFFER_TOO_SMALL, only the length written.
#![no_main]
#![allow(unused_unsafe)]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mapcore::ffi::*;
use mapcore::McStatus::{self, *};
use mapcore_fuzz::common::M;
use mapcore_fuzz::snap::Snap;
use mapcore_fuzz::{guarded, key, value};

/// Two maps and a snapshot of the first, made once and never changed.
struct World {
    a: M,
    b: M,
    snap: Snap,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let a = M::with(7, false);
        for i in 0..12 {
            a.set(&key(i), &value(i, i)).unwrap();
        }
        let b = M::with(8, false);
        b.set(b"x", b"y").unwrap();
        let snap = Snap::new(a.0).unwrap();
        World { a, b, snap }
    })
}

// SAFETY (every unsafe block below): pointers to live locals or to the
// guarded copy of the text, with their exact lengths.
fn decode_map(m: mc_map, text: *const u8, len: usize) -> (McStatus, mc_iter) {
    let mut it = mc_iter { opaque: [0; 6] };
    let s = unsafe { mc_iter_decode(m, text.cast(), len, &mut it) };
    (s, it)
}

fn decode_snap(s: mc_snapshot, text: *const u8, len: usize) -> (McStatus, mc_iter) {
    let mut it = mc_iter { opaque: [0; 6] };
    let st = unsafe { mc_snapshot_iter_decode(s, text.cast(), len, &mut it) };
    (st, it)
}

/// Where the token stands: its next entry (or status), from a copy.
fn next_of(w: &World, on_snap: bool, it: &mc_iter) -> Result<(Vec<u8>, Vec<u8>), McStatus> {
    let mut it = *it;
    if on_snap {
        w.snap.next(&mut it)
    } else {
        w.a.next(&mut it)
    }
}

fn encode(w: &World, on_snap: bool, it: &mc_iter) -> Vec<u8> {
    if on_snap {
        w.snap.encode(it).unwrap()
    } else {
        w.a.encode(it).unwrap().into_bytes()
    }
}

fn arbitrary_text(w: &World, at_end: bool, text: &[u8]) {
    if text.len() > guarded::CAPACITY {
        return;
    }
    let p = guarded::place(text, at_end);
    let results = [
        (false, decode_map(w.a.0, p, text.len())),
        (false, decode_map(w.b.0, p, text.len())),
        (true, decode_snap(w.snap.0, p, text.len())),
    ];
    for (on_snap, (s, it)) in results {
        mapcore_fuzz::expect_one_of("decode", s, &[MC_OK, MC_ERR_BAD_TOKEN, MC_ERR_WRONG_MAP]);
        if s == MC_OK {
            // Only a text the library itself made decodes: it must be canonical.
            assert_eq!(
                encode(w, on_snap, &it),
                text,
                "arbitrary text decoded but does not re-encode to itself"
            );
        }
    }
}

fn real_token(w: &World, recipe: &[u8]) {
    let (sel, steps, edits) = match recipe {
        [sel, steps, rest @ ..] => (*sel, *steps, rest),
        _ => return,
    };
    let on_snap = sel & 1 != 0;
    let mode = if sel & 2 != 0 {
        MC_MODE_STRICT
    } else {
        MC_MODE_CURSOR
    };
    let mut it = if on_snap {
        w.snap.iter(mode).unwrap()
    } else {
        w.a.iter(mode)
    };
    // Up to two steps past the 12 entries: every position, MC_DONE included.
    for _ in 0..steps % 15 {
        let r = if on_snap {
            w.snap.next(&mut it)
        } else {
            w.a.next(&mut it)
        };
        match r {
            Ok(_) | Err(MC_DONE) => {}
            Err(e) => panic!("next on an unchanged source: {e:?}"),
        }
    }
    let text = encode(w, on_snap, &it);
    assert_eq!(text.len(), MC_ITER_TEXT_LEN);
    assert!(text.starts_with(b"mc1"), "prefix");
    assert!(
        text[3..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_'),
        "not base64url: {text:?}"
    );

    // Round trip on the right source; WRONG_MAP on every other one.
    let p = guarded::place(&text, sel & 4 != 0);
    let (right, others) = if on_snap {
        (
            decode_snap(w.snap.0, p, text.len()),
            [
                decode_map(w.a.0, p, text.len()),
                decode_map(w.b.0, p, text.len()),
            ],
        )
    } else {
        (
            decode_map(w.a.0, p, text.len()),
            [
                decode_map(w.b.0, p, text.len()),
                decode_snap(w.snap.0, p, text.len()),
            ],
        )
    };
    assert_eq!(right.0, MC_OK, "a real token's text must decode");
    assert_eq!(
        next_of(w, on_snap, &right.1),
        next_of(w, on_snap, &it),
        "round trip moved the token"
    );
    for (s, _) in others {
        assert_eq!(s, MC_ERR_WRONG_MAP, "text decoded on another source");
    }

    // Too small a buffer: only the length is written.
    let cap = (sel as usize >> 3) % (MC_ITER_TEXT_LEN + 1);
    let mut small = [0x55 as std::ffi::c_char; 80];
    let mut n = 0usize;
    let s = unsafe {
        if on_snap {
            mc_snapshot_iter_encode(w.snap.0, &it, small.as_mut_ptr(), cap, &mut n)
        } else {
            mc_iter_encode(w.a.0, &it, small.as_mut_ptr(), cap, &mut n)
        }
    };
    assert_eq!(s, MC_ERR_BUFFER_TOO_SMALL, "encode into {cap} bytes");
    assert_eq!(n, MC_ITER_TEXT_LEN);
    assert!(
        small.iter().all(|&c| c == 0x55),
        "encode wrote into a short buffer"
    );

    // Edits: (position, new byte) pairs; a position past the end appends,
    // a zero byte at position 0 truncates instead.
    let mut edited = text.clone();
    for e in edits.chunks_exact(2) {
        let (pos, byte) = (e[0] as usize, e[1]);
        if pos < edited.len() {
            edited[pos] = byte;
        } else if byte == 0 {
            edited.truncate(pos % (edited.len() + 1));
        } else {
            edited.push(byte);
        }
    }
    let p = guarded::place(&edited, sel & 4 != 0);
    let (s, _) = if on_snap {
        decode_snap(w.snap.0, p, edited.len())
    } else {
        decode_map(w.a.0, p, edited.len())
    };
    if edited == text {
        assert_eq!(s, MC_OK);
    } else {
        assert_eq!(s, MC_ERR_BAD_TOKEN, "an edited text was not refused");
    }
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel & 1 == 0 {
        arbitrary_text(w, sel & 2 != 0, rest);
    } else {
        real_token(w, rest);
    }
});
